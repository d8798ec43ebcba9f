//! Sealing upstream secrets at rest: AES-256-GCM (an AEAD) under a key that
//! lives outside the store, and keyed derivations (HMAC-SHA-256) of values
//! the server must recompute but never store, such as the upstream PKCE
//! verifier.

use std::fmt;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::crypto::{fill_random, write_private_file};

/// Bytes of a sealing key (AES-256).
pub(crate) const KEY_BYTES: usize = 32;

/// Why a sealing key cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealingKeyError {
    /// The key is not 32 bytes of base64.
    #[error("the sealing key must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)")]
    Malformed,
    /// The key file cannot be read or written.
    #[error("sealing key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The key sealing upstream tokens and deriving per-login secrets.
pub(crate) struct Sealer {
    aead: LessSafeKey,
    mac: hmac::Key,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// A sealer from 32 key bytes. The AEAD and HMAC keys are derived apart
    /// from it so neither use can help attack the other.
    pub(crate) fn new(key: &[u8; KEY_BYTES]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, key);
        let aead_bytes = hmac::sign(&root, b"mcp-auth seal v1 aead");
        let mac_bytes = hmac::sign(&root, b"mcp-auth seal v1 mac");
        // 32 bytes is AES-256's key size, so this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, aead_bytes.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC-SHA-256 output is an AES-256 key"));
        Self { aead: LessSafeKey::new(unbound), mac: hmac::Key::new(hmac::HMAC_SHA256, mac_bytes.as_ref()) }
    }

    /// A sealer from a base64 (standard or url-safe) key.
    pub(crate) fn from_base64(text: &str) -> Result<Self, SealingKeyError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| SealingKeyError::Malformed)?;
        let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| SealingKeyError::Malformed)?;
        Ok(Self::new(&key))
    }

    /// The key in `path`, or a new one written there (mode 0600) when the
    /// file does not exist.
    pub(crate) fn from_file(path: &Path) -> Result<Self, SealingKeyError> {
        let file_error = |source| SealingKeyError::File { path: path.display().to_string(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random_key();
                write_private_file(path, STANDARD.encode(key).as_bytes()).map_err(file_error)?;
                tracing::warn!(path = %path.display(), "mcp-auth: generated a new upstream-token sealing key");
                Ok(Self::new(&key))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// A key that lives as long as the process (sealed tokens do not survive a restart).
    pub(crate) fn ephemeral() -> Self {
        Self::new(&random_key())
    }

    /// Seals `plaintext`, bound to `context` (authenticated, not encrypted):
    /// base64url of nonce ‖ ciphertext ‖ tag.
    pub(crate) fn seal(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut buffer = plaintext.as_bytes().to_vec();
        // Sealing only fails for inputs beyond GCM's 64 GiB limit.
        if self
            .aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buffer,
            )
            .is_err()
        {
            unreachable!("AES-GCM seals any input below 64 GiB");
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Opens what [`seal`](Self::seal) made with the same `context`; `None`
    /// when it was tampered with, sealed for another context, or under another key.
    pub(crate) fn open(&self, sealed: &str, context: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = rest.to_vec();
        let plain = self.aead.open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// A secret derived from `input` under `label`: base64url of
    /// HMAC-SHA-256 (43 characters, usable as a PKCE verifier).
    pub(crate) fn derive(&self, label: &str, input: &str) -> String {
        let mut context = hmac::Context::with_key(&self.mac);
        context.update(label.as_bytes());
        context.update(&[0]);
        context.update(input.as_bytes());
        URL_SAFE_NO_PAD.encode(context.sign())
    }
}

fn random_key() -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    fill_random(&mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context_and_under_their_key() {
        let sealer = Sealer::new(&[7; KEY_BYTES]);
        let sealed = sealer.seal("gho_secret", "grant-1");
        assert!(!sealed.contains("gho_secret"));
        assert_eq!(sealer.open(&sealed, "grant-1").as_deref(), Some("gho_secret"));
        assert_eq!(sealer.open(&sealed, "grant-2"), None, "bound to its context");
        assert_eq!(Sealer::new(&[8; KEY_BYTES]).open(&sealed, "grant-1"), None, "bound to its key");
        let mut tampered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(sealer.open(&URL_SAFE_NO_PAD.encode(tampered), "grant-1"), None);
        assert_ne!(sealed, sealer.seal("gho_secret", "grant-1"), "a fresh nonce each time");
    }

    #[test]
    fn derivations_are_stable_keyed_and_labelled() {
        let a = Sealer::new(&[1; KEY_BYTES]);
        assert_eq!(a.derive("pkce", "state"), a.derive("pkce", "state"));
        assert_eq!(a.derive("pkce", "state").len(), 43);
        assert_ne!(a.derive("pkce", "state"), a.derive("nonce", "state"));
        assert_ne!(a.derive("pkce", "state"), Sealer::new(&[2; KEY_BYTES]).derive("pkce", "state"));
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        assert!(Sealer::from_base64(&STANDARD.encode([3u8; 32])).is_ok());
        assert!(Sealer::from_base64(&URL_SAFE_NO_PAD.encode([3u8; 32])).is_ok());
        assert!(matches!(Sealer::from_base64(&STANDARD.encode([3u8; 16])), Err(SealingKeyError::Malformed)));
        assert!(matches!(Sealer::from_base64("not base64!"), Err(SealingKeyError::Malformed)));
    }

    #[test]
    fn a_key_file_is_generated_private_then_reused() {
        let dir = std::env::temp_dir().join(format!("mcp-auth-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seal.key");
        let _ = std::fs::remove_file(&path);
        let first = Sealer::from_file(&path).unwrap();
        let sealed = first.seal("x", "c");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(Sealer::from_file(&path).unwrap().open(&sealed, "c").as_deref(), Some("x"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
