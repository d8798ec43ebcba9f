//! Signing keys: ES256 (P-256) or RS256 (RSA 2048) generated with aws-lc-rs,
//! persisted as PKCS#8 in the store (or in a PEM file), published as a JWKS
//! with the previous keys until every token they signed has expired.
//!
//! Several instances may share one store (PostgreSQL). Each one re-reads the
//! stored keys every [`RELOAD_EVERY`], before serving the JWKS, and when a
//! token names a key it does not know (each at most once a second), so every
//! key one instance signs with is published and accepted by all. A rotated-in
//! key is published at once but signs only [`ACTIVATION_DELAY_SECS`] later,
//! by which time every instance has read it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::store::{AuthStore, StoreError, StoredSigningKey, UnixTime};

/// How often a key ring re-reads the store's keys on its own.
pub(crate) const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// How long after a rotation the new key starts signing: two reload
/// periods, so every instance sharing the store publishes it first.
pub(crate) const ACTIVATION_DELAY_SECS: UnixTime = 2 * RELOAD_EVERY.as_secs();
/// Shortest time between two re-reads that requests ask for (a JWKS fetch,
/// a token naming an unknown key): a flood of them costs the store one read
/// a second.
const ON_DEMAND_RELOAD_SECS: UnixTime = 1;

/// Why the keys cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key is not a valid PKCS#8 key of its algorithm.
    #[error("stored signing key `{0}` is not a valid ES256 or RS256 PKCS#8 key")]
    Invalid(String),
    /// The signing key file cannot be read, written or used.
    #[error("signing key file `{path}` (auth.authorization_server.signing_key_file): {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key comes from `signing_key_file`; rotate by replacing the file.
    #[error("the signing key comes from signing_key_file; rotate it by replacing the file and restarting")]
    FileManaged,
    /// Key generation or signing failed.
    #[error("signing failed")]
    Crypto,
}

/// The algorithm tokens are signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048.
    Rs256,
}

impl SigningAlgorithm {
    /// The `signing_algorithm` setting, if known.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }
}

/// Where the signing key comes from.
#[derive(Clone, Debug)]
pub(crate) struct KeySource {
    pub(crate) algorithm: SigningAlgorithm,
    /// `signing_key_file`, when set.
    pub(crate) file: Option<PathBuf>,
    /// When a current key of another algorithm stops being published.
    pub(crate) retire_other_at: UnixTime,
}

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A loaded key.
struct Loaded {
    kid: String,
    alg: SigningAlgorithm,
    signer: Signer,
    /// The public key as the verifier takes it (SEC1 point or PKCS#1 DER).
    public: Vec<u8>,
    jwk: Value,
    created_at: UnixTime,
    retire_at: Option<UnixTime>,
    signs_from: Option<UnixTime>,
}

impl Loaded {
    /// Whether it may sign at `now` with `algorithm`: a key being retired
    /// still signs until the key that replaces it starts to.
    fn signs(&self, algorithm: SigningAlgorithm, now: UnixTime) -> bool {
        self.alg == algorithm
            && self.retire_at.is_none_or(|r| r > now)
            && self.signs_from.is_none_or(|s| s <= now)
    }
}

/// The server's signing keys: the newest key that may sign does (the
/// greatest `kid` among equally new ones, so that instances which generated
/// keys at the same moment agree); every key not yet retired is published.
#[derive(Clone)]
pub(crate) struct KeyRing {
    keys: Arc<RwLock<Vec<Loaded>>>,
    algorithm: SigningAlgorithm,
    from_file: bool,
    /// When the store's keys were last read.
    read_at: Arc<Mutex<UnixTime>>,
    /// Held from reading the store to installing what was read, so that a
    /// slow read never installs keys older than a later read's.
    reading: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the key file when one is configured; otherwise loads the
    /// stored keys, generating (and storing) one when there is no current
    /// key of the configured algorithm.
    pub(crate) async fn load(
        store: &dyn AuthStore,
        now: UnixTime,
        source: &KeySource,
    ) -> Result<Self, KeyError> {
        let algorithm = source.algorithm;
        let read_at = Arc::new(Mutex::new(now));
        if let Some(path) = &source.file {
            let key = key_file(path, algorithm, now)?;
            let keys = Arc::new(RwLock::new(vec![key]));
            return Ok(Self { keys, algorithm, from_file: true, read_at, reading: Arc::default() });
        }
        let mut loaded = read(store, now).await?;
        if !loaded.iter().any(|k| k.retire_at.is_none() && k.alg == algorithm) {
            // A change of algorithm: the other current keys stay published
            // until the tokens they signed have expired.
            for mut stored in store.signing_keys().await? {
                if stored.retire_at.is_none() {
                    stored.retire_at = Some(source.retire_other_at);
                    store.put_signing_key(stored).await?;
                }
            }
            for key in loaded.iter_mut().filter(|k| k.retire_at.is_none()) {
                key.retire_at = Some(source.retire_other_at);
            }
            let stored = generate(algorithm, now)?;
            tracing::warn!(
                kid = %stored.kid,
                alg = algorithm.name(),
                "mcp-auth: NO SIGNING KEY FOUND: generated a new signing key and stored it in the authorization \
                 store. Tokens signed with any earlier key are now unverifiable. Keep the store (it holds the \
                 private key) safe and persistent."
            );
            store.put_signing_key(stored).await?;
            // Read back: another instance starting on the same store at the
            // same moment may have made one too, and both must then pick
            // the same key to sign with.
            loaded = read(store, now).await?;
        }
        let keys = Arc::new(RwLock::new(loaded));
        Ok(Self { keys, algorithm, from_file: false, read_at, reading: Arc::default() })
    }

    /// Re-reads the stored keys (keys from `signing_key_file` stay as they are).
    pub(crate) async fn reload(&self, store: &dyn AuthStore, now: UnixTime) -> Result<(), KeyError> {
        if self.from_file {
            return Ok(());
        }
        let _reading = self.reading.lock().await;
        *self.read_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
        let loaded = read(store, now).await?;
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(())
    }

    /// [`reload`](Self::reload) unless the keys were read in the last
    /// second; a failure keeps the keys known and is logged.
    pub(crate) async fn refresh(&self, store: &dyn AuthStore, now: UnixTime) {
        {
            let mut read_at = self.read_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.from_file || now.saturating_sub(*read_at) < ON_DEMAND_RELOAD_SECS {
                return;
            }
            *read_at = now;
        }
        if let Err(error) = self.reload(store, now).await {
            tracing::warn!(%error, "mcp-auth: re-reading the signing keys failed; the known keys stay in use");
        }
    }

    /// [`verify`](Self::verify), re-reading the store's keys once when the
    /// token does not verify with the keys known (another instance may have
    /// signed it with a key made since the last read).
    pub(crate) async fn verify_fresh(
        &self,
        store: &dyn AuthStore,
        token: &str,
        now: UnixTime,
    ) -> Option<Map<String, Value>> {
        if let Some(claims) = self.verify(token, now) {
            return Some(claims);
        }
        self.refresh(store, now).await;
        self.verify(token, now)
    }

    /// Makes a new current key; the old ones stay published until `retire_at`.
    pub(crate) async fn rotate(
        &self,
        store: &dyn AuthStore,
        now: UnixTime,
        retire_at: UnixTime,
    ) -> Result<(), KeyError> {
        if self.from_file {
            return Err(KeyError::FileManaged);
        }
        let mut fresh = generate(self.algorithm, now)?;
        fresh.signs_from = Some(now.saturating_add(ACTIVATION_DELAY_SECS));
        let old: Vec<StoredSigningKey> = store
            .signing_keys()
            .await?
            .into_iter()
            .filter(|k| k.retire_at.is_none())
            .map(|mut k| {
                k.retire_at = Some(retire_at);
                k
            })
            .collect();
        for key in old {
            store.put_signing_key(key).await?;
        }
        store.put_signing_key(fresh).await?;
        self.reload(store, now).await
    }

    /// The JWKS document (RFC 7517 §5): every key not yet retired.
    pub(crate) fn jwks(&self, now: UnixTime) -> Value {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let published: Vec<&Value> =
            keys.iter().filter(|k| k.retire_at.is_none_or(|r| r > now)).map(|k| &k.jwk).collect();
        json!({ "keys": published })
    }

    /// Signs `claims` as a JWT access token (RFC 9068: `typ` `at+jwt`) with the current key.
    pub(crate) fn sign(&self, claims: &Map<String, Value>, now: UnixTime) -> Result<String, KeyError> {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ordered newest first (see `read`): the newest key that may sign.
        let key = keys.iter().find(|k| k.signs(self.algorithm, now)).ok_or(KeyError::Crypto)?;
        let header = json!({"alg": key.alg.name(), "typ": "at+jwt", "kid": key.kid});
        let encode = |v: &Value| serde_json::to_vec(v).map(|b| URL_SAFE_NO_PAD.encode(b));
        let claims = Value::Object(claims.clone());
        let signing_input = format!(
            "{}.{}",
            encode(&header).map_err(|_| KeyError::Crypto)?,
            encode(&claims).map_err(|_| KeyError::Crypto)?
        );
        let rng = SystemRandom::new();
        let signature = match &key.signer {
            Signer::Ec(pair) => {
                pair.sign(&rng, signing_input.as_bytes()).map_err(|_| KeyError::Crypto)?.as_ref().to_vec()
            }
            Signer::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut signature)
                    .map_err(|_| KeyError::Crypto)?;
                signature
            }
        };
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// The claims of a token this server signed, if its signature verifies
    /// with one of the published keys. Expiry is the caller's business.
    pub(crate) fn verify(&self, token: &str, now: UnixTime) -> Option<Map<String, Value>> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let kid = header.get("kid")?.as_str()?;
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = keys.iter().find(|k| k.kid == kid && k.retire_at.is_none_or(|r| r > now))?;
        // RFC 8725 §3.1: only the algorithm this key signs with.
        if header.get("alg")?.as_str()? != key.alg.name() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let signing_input = &token[..token.len() - token.rsplit('.').next()?.len() - 1];
        let verification: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match key.alg {
            SigningAlgorithm::Es256 => &ECDSA_P256_SHA256_FIXED,
            SigningAlgorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(verification, &key.public)
            .verify(signing_input.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

/// A fresh PKCS#8 private key.
fn generate_pkcs8(alg: SigningAlgorithm) -> Result<Vec<u8>, KeyError> {
    match alg {
        SigningAlgorithm::Es256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto)
        }
        SigningAlgorithm::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .and_then(|pair| pair.as_der())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError::Crypto),
    }
}

fn generate(alg: SigningAlgorithm, now: UnixTime) -> Result<StoredSigningKey, KeyError> {
    let pkcs8 = generate_pkcs8(alg)?;
    let (_, _, jwk) = parse(alg, &pkcs8).ok_or(KeyError::Crypto)?;
    Ok(StoredSigningKey {
        kid: thumbprint(&jwk),
        alg: alg.name().into(),
        pkcs8,
        created_at: now,
        retire_at: None,
        signs_from: None,
    })
}

/// The stored keys not yet retired at `now`, newest first (the greatest
/// `kid` first among equally new ones).
async fn read(store: &dyn AuthStore, now: UnixTime) -> Result<Vec<Loaded>, KeyError> {
    let mut loaded = Vec::new();
    for stored in store.signing_keys().await? {
        if stored.retire_at.is_none_or(|r| r > now) {
            loaded.push(load_key(&stored)?);
        }
    }
    loaded.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
    Ok(loaded)
}

fn load_key(stored: &StoredSigningKey) -> Result<Loaded, KeyError> {
    let invalid = || KeyError::Invalid(stored.kid.clone());
    let alg = SigningAlgorithm::from_name(&stored.alg).ok_or_else(invalid)?;
    let (signer, public, jwk) = parse(alg, &stored.pkcs8).ok_or_else(invalid)?;
    let mut key = loaded(stored.kid.clone(), alg, signer, public, jwk, stored.created_at, stored.retire_at);
    key.signs_from = stored.signs_from;
    Ok(key)
}

fn loaded(
    kid: String,
    alg: SigningAlgorithm,
    signer: Signer,
    public: Vec<u8>,
    mut jwk: Value,
    created_at: UnixTime,
    retire_at: Option<UnixTime>,
) -> Loaded {
    if let Some(object) = jwk.as_object_mut() {
        object.insert("kid".into(), json!(kid));
        object.insert("alg".into(), json!(alg.name()));
        object.insert("use".into(), json!("sig"));
    }
    Loaded { kid, alg, signer, public, jwk, created_at, retire_at, signs_from: None }
}

/// The signer, the verifier's public key and the public JWK (RFC 7518 §6)
/// of a PKCS#8 key of `alg`.
fn parse(alg: SigningAlgorithm, pkcs8: &[u8]) -> Option<(Signer, Vec<u8>, Value)> {
    match alg {
        SigningAlgorithm::Es256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).ok()?;
            let point = pair.public_key().as_ref().to_vec();
            // Uncompressed SEC1 point: 0x04 || X (32) || Y (32).
            if point.len() != 65 || point[0] != 4 {
                return None;
            }
            let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..65]));
            Some((Signer::Ec(pair), point, json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})))
        }
        SigningAlgorithm::Rs256 => {
            let pair = RsaKeyPair::from_pkcs8(pkcs8).ok()?;
            if pair.public_modulus_len() < 256 {
                return None;
            }
            let public = pair.public_key();
            let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
            let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
            let der = public.as_ref().to_vec();
            Some((Signer::Rsa(pair), der, json!({"kty": "RSA", "n": n, "e": e})))
        }
    }
}

/// RFC 7638 §3: the SHA-256 of the required members in lexicographic order.
fn thumbprint(jwk: &Value) -> String {
    let member = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
    let canonical = if jwk["kty"] == "RSA" {
        format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, member("e"), member("n"))
    } else {
        format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, member("x"), member("y"))
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// Loads `signing_key_file`, or generates it (mode 0600) when absent.
fn key_file(path: &Path, alg: SigningAlgorithm, now: UnixTime) -> Result<Loaded, KeyError> {
    let error = |message: String| KeyError::File { path: path.to_owned(), message };
    let pkcs8 = match std::fs::read_to_string(path) {
        Ok(text) => {
            let body = text
                .split_once(PEM_BEGIN)
                .and_then(|(_, rest)| rest.split_once(PEM_END))
                .map(|(body, _)| body.split_whitespace().collect::<String>())
                .ok_or_else(|| {
                    error(format!("not a PKCS#8 PEM key (expected `{PEM_BEGIN}` ... `{PEM_END}`)"))
                })?;
            STANDARD.decode(body).map_err(|_| error("the PEM body is not valid base64".into()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pkcs8 = generate_pkcs8(alg)?;
            write_pem(path, &pkcs8).map_err(|e| error(format!("cannot write a new key: {e}")))?;
            tracing::warn!(
                path = %path.display(),
                alg = alg.name(),
                "mcp-auth: SIGNING KEY FILE NOT FOUND: generated a new signing key and wrote it there (mode 0600). \
                 Tokens signed with any earlier key are now unverifiable. Keep this file safe and persistent."
            );
            pkcs8
        }
        Err(e) => return Err(error(format!("cannot read: {e}"))),
    };
    let Some((signer, public, jwk)) = parse(alg, &pkcs8) else {
        let other = [SigningAlgorithm::Es256, SigningAlgorithm::Rs256]
            .into_iter()
            .find(|other| *other != alg && parse(*other, &pkcs8).is_some());
        return Err(error(match other {
            Some(other) => format!(
                "holds an {} key but auth.authorization_server.signing_algorithm is {}; use a matching key or \
                 algorithm",
                other.name(),
                alg.name()
            ),
            None => format!("is not a valid {} PKCS#8 private key", alg.name()),
        }));
    };
    Ok(loaded(thumbprint(&jwk), alg, signer, public, jwk, now, None))
}

fn write_pem(path: &Path, pkcs8: &[u8]) -> std::io::Result<()> {
    let encoded = STANDARD.encode(pkcs8);
    let mut pem = format!("{PEM_BEGIN}\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    super::crypto::write_private_file(path, pem.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::store::MemoryStore;
    use super::*;

    fn es256() -> KeySource {
        KeySource { algorithm: SigningAlgorithm::Es256, file: None, retire_other_at: 1000 }
    }

    fn rs256(file: Option<PathBuf>) -> KeySource {
        KeySource { algorithm: SigningAlgorithm::Rs256, file, retire_other_at: 1000 }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mcp-auth-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("signing.pem")
    }

    fn sub(name: &str) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(name));
        claims
    }

    #[tokio::test]
    async fn rs256_keys_persist_sign_verify_and_publish_an_rsa_jwk() {
        let store = MemoryStore::new();
        let ring = KeyRing::load(&store, 100, &rs256(None)).await.unwrap();
        let again = KeyRing::load(&store, 101, &rs256(None)).await.unwrap();
        assert_eq!(ring.jwks(100), again.jwks(101), "the stored RSA key is reused");
        let jwk = &ring.jwks(100)["keys"][0];
        assert_eq!((jwk["kty"].as_str(), jwk["alg"].as_str()), (Some("RSA"), Some("RS256")));
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap().len(), 256);
        let token = ring.sign(&sub("alice"), 100).unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(again.verify(&token, 102).unwrap()["sub"], "alice");

        // Switching back to ES256 makes a new EC key; the RSA one stays published until it retires.
        let es = KeyRing::load(&store, 200, &es256()).await.unwrap();
        assert_eq!(es.jwks(200)["keys"].as_array().unwrap().len(), 2);
        assert!(es.verify(&token, 200).is_some());
        assert_eq!(es.jwks(1000)["keys"].as_array().unwrap().len(), 1);
        assert!(es.sign(&sub("bob"), 200).is_ok());
    }

    #[tokio::test]
    async fn a_key_file_is_generated_with_mode_0600_then_loaded() {
        let path = temp_path("generate");
        let store = MemoryStore::new();
        let ring = KeyRing::load(&store, 100, &rs256(Some(path.clone()))).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(PEM_BEGIN), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(store.signing_keys().await.unwrap().is_empty(), "the store holds no key");
        let token = ring.sign(&sub("alice"), 100).unwrap();

        let again = KeyRing::load(&store, 200, &rs256(Some(path.clone()))).await.unwrap();
        assert_eq!(ring.jwks(100), again.jwks(200), "the file's key is loaded");
        assert_eq!(again.verify(&token, 200).unwrap()["sub"], "alice");
        assert!(matches!(again.rotate(&store, 200, 300).await, Err(KeyError::FileManaged)));

        // The wrong type names the file and both algorithms.
        let KeyError::File { path: named, message } =
            KeyRing::load(&store, 200, &KeySource { file: Some(path.clone()), ..es256() }).await.unwrap_err()
        else {
            panic!("a file error")
        };
        assert_eq!(named, path);
        assert!(message.contains("RS256") && message.contains("ES256"), "{message}");
        let shown = KeyError::File { path: named, message }.to_string();
        assert!(shown.contains("signing_key_file") && shown.contains("signing.pem"), "{shown}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn an_existing_es256_pem_file_is_loaded() {
        let path = temp_path("load");
        let pkcs8 = generate_pkcs8(SigningAlgorithm::Es256).unwrap();
        write_pem(&path, &pkcs8).unwrap();
        let store = MemoryStore::new();
        let ring =
            KeyRing::load(&store, 100, &KeySource { file: Some(path.clone()), ..es256() }).await.unwrap();
        let (_, _, jwk) = parse(SigningAlgorithm::Es256, &pkcs8).unwrap();
        let published = &ring.jwks(100)["keys"][0];
        assert_eq!((published["x"].clone(), published["alg"].clone()), (jwk["x"].clone(), json!("ES256")));
        assert!(ring.verify(&ring.sign(&sub("alice"), 100).unwrap(), 100).is_some());

        std::fs::write(&path, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
            .unwrap();
        let error =
            KeyRing::load(&store, 100, &KeySource { file: Some(path.clone()), ..es256() }).await.unwrap_err();
        assert!(error.to_string().contains("PKCS#8"), "{error}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn keys_persist_sign_verify_and_rotate() {
        let store = MemoryStore::new();
        let ring = KeyRing::load(&store, 100, &es256()).await.unwrap();
        let again = KeyRing::load(&store, 101, &es256()).await.unwrap();
        assert_eq!(ring.jwks(100), again.jwks(101), "the stored key is reused");
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("alice"));
        let token = ring.sign(&claims, 100).unwrap();
        assert_eq!(again.verify(&token, 102).unwrap()["sub"], "alice");
        let mut tampered = token.clone();
        tampered.push('A');
        assert!(ring.verify(&tampered, 102).is_none());

        ring.rotate(&store, 200, 300).await.unwrap();
        assert_eq!(ring.jwks(250)["keys"].as_array().unwrap().len(), 2);
        assert!(ring.verify(&token, 250).is_some(), "old tokens verify until the old key retires");
        assert_eq!(ring.jwks(300)["keys"].as_array().unwrap().len(), 1);
        assert!(ring.verify(&token, 300).is_none());
    }

    fn kid_of(token: &str) -> String {
        let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn a_rotated_in_key_is_published_at_once_and_signs_after_the_activation_delay() {
        let store = MemoryStore::new();
        let ring = KeyRing::load(&store, 100, &es256()).await.unwrap();
        let old = kid_of(&ring.sign(&sub("alice"), 100).unwrap());
        ring.rotate(&store, 200, 200 + ACTIVATION_DELAY_SECS + 600).await.unwrap();
        let published: Vec<String> = ring.jwks(201)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(published.len(), 2);
        let new = published.iter().find(|k| **k != old).unwrap().clone();
        assert_eq!(kid_of(&ring.sign(&sub("alice"), 201).unwrap()), old, "not yet the new key");
        let at = 200 + ACTIVATION_DELAY_SECS;
        assert_eq!(kid_of(&ring.sign(&sub("alice"), at - 1).unwrap()), old);
        assert_eq!(kid_of(&ring.sign(&sub("alice"), at).unwrap()), new, "the new key from its time on");
    }

    #[tokio::test]
    async fn rings_sharing_a_store_accept_each_others_keys_and_agree_on_the_signer() {
        let store = MemoryStore::new();
        // Two instances start at once on an empty store: each makes a key
        // before it sees the other's (here, the second key is stored by hand
        // after the first ring has read the store; a second later, so that
        // it is the one both end up signing with).
        let first = KeyRing::load(&store, 100, &es256()).await.unwrap();
        store.put_signing_key(generate(SigningAlgorithm::Es256, 101).unwrap()).await.unwrap();
        let second = KeyRing::load(&store, 101, &es256()).await.unwrap();
        let by_second = second.sign(&sub("bob"), 101).unwrap();
        let by_first = first.sign(&sub("alice"), 101).unwrap();
        assert!(second.verify(&by_first, 101).is_some(), "the second read both keys");
        assert!(first.verify(&by_second, 101).is_none(), "the first has not read the second's key yet");
        assert!(first.jwks(101)["keys"].as_array().unwrap().len() == 1);
        // A token naming a key it does not know makes it read the store again.
        assert_eq!(first.verify_fresh(&store, &by_second, 102).await.unwrap()["sub"], "bob");
        assert_eq!(first.jwks(102), second.jwks(102), "both publish both keys");
        assert_eq!(
            kid_of(&first.sign(&sub("alice"), 102).unwrap()),
            kid_of(&by_second),
            "and sign with the same one"
        );

        // A rotation on one is read by the other before the new key signs.
        second.rotate(&store, 200, 200 + ACTIVATION_DELAY_SECS + 600).await.unwrap();
        first.reload(&store, 230).await.unwrap();
        let at = 200 + ACTIVATION_DELAY_SECS;
        let rotated = second.sign(&sub("bob"), at).unwrap();
        assert_ne!(kid_of(&rotated), kid_of(&by_second));
        assert_eq!(kid_of(&first.sign(&sub("alice"), at).unwrap()), kid_of(&rotated));
        assert!(first.verify(&rotated, at).is_some());
    }

    #[tokio::test]
    async fn on_demand_reads_happen_at_most_once_a_second() {
        let store = MemoryStore::new();
        let ring = KeyRing::load(&store, 100, &es256()).await.unwrap();
        store.put_signing_key(generate(SigningAlgorithm::Es256, 100).unwrap()).await.unwrap();
        ring.refresh(&store, 100).await;
        assert_eq!(ring.jwks(100)["keys"].as_array().unwrap().len(), 1, "read at load, this second");
        ring.refresh(&store, 101).await;
        assert_eq!(ring.jwks(101)["keys"].as_array().unwrap().len(), 2, "a second later");
    }
}
