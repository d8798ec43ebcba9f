//! The issuer's signing keys (RFC 7517 JWK Set) and the choice of the key a
//! token names.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::config::JwsAlgorithm;
use crate::error::{TokenError, UpstreamError};

/// Smallest RSA modulus accepted (RFC 7518 §3.3: 2048 bits or larger).
const MIN_RSA_BITS: usize = 2048;

/// The usable verification keys of one JWKS document.
#[derive(Debug)]
pub(crate) struct KeySet {
    /// The `jwks_uri` it came from.
    pub(crate) uri: String,
    keys: Vec<Arc<VerifyingKey>>,
}

pub(crate) struct VerifyingKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's `alg`, when it pins one (RFC 7517 §4.4).
    alg: Option<String>,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeySet {
    /// Reads a JWK Set. Keys that cannot verify signatures here (other types
    /// or curves, `use` other than `sig`, weak RSA, malformed) are skipped.
    pub(crate) fn parse(uri: &str, json: &Value) -> Result<Self, UpstreamError> {
        let Some(keys) = json.get("keys").and_then(Value::as_array) else {
            return Err(UpstreamError::InvalidDocument {
                url: uri.to_owned(),
                reason: "not a JWK Set (no `keys` array)".into(),
            });
        };
        let keys = keys
            .iter()
            .filter_map(|jwk| match parse_key(jwk) {
                Ok(key) => Some(Arc::new(key)),
                Err(why) => {
                    let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
                    tracing::debug!(kid, why, "mcp-auth: skipping a JWKS key");
                    None
                }
            })
            .collect();
        Ok(Self { uri: uri.to_owned(), keys })
    }

    /// The key for a token with this `alg` and `kid`.
    pub(crate) fn select(
        &self,
        alg: JwsAlgorithm,
        kid: Option<&str>,
    ) -> Result<Arc<VerifyingKey>, TokenError> {
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).peekable();
                if named.peek().is_none() {
                    return Err(TokenError::UnknownKey);
                }
                // The key named must fit the algorithm: an RSA key with
                // `alg: ES256`, or an `alg: RS256` JWK used for PS256, is refused.
                named.find(|k| k.fits(alg)).cloned().ok_or(TokenError::KeyMismatch)
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key.clone()),
                    (None, _) => Err(TokenError::UnknownKey),
                    (Some(_), Some(_)) => Err(TokenError::AmbiguousKey),
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

impl VerifyingKey {
    fn fits(&self, alg: JwsAlgorithm) -> bool {
        if self.alg.as_deref().is_some_and(|pinned| pinned != alg.as_str()) {
            return false;
        }
        use JwsAlgorithm::*;
        match alg {
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => self.kind == KeyKind::Rsa,
            ES256 => self.kind == KeyKind::P256,
            ES384 => self.kind == KeyKind::P384,
            EdDSA => self.kind == KeyKind::Ed25519,
        }
    }
}

fn parse_key(jwk: &Value) -> Result<VerifyingKey, &'static str> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    // RFC 7517 §4.2 / §4.3: only keys meant for verifying signatures.
    if field("use").is_some_and(|u| u != "sig") {
        return Err("`use` is not `sig`");
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verify = ops.as_array().is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verify {
            return Err("`key_ops` lacks `verify`");
        }
    }
    let kid = field("kid").map(str::to_owned);
    let alg = field("alg").map(str::to_owned);
    let (kind, key) = match field("kty") {
        Some("RSA") => {
            let (n, e) = (field("n").ok_or("no `n`")?, field("e").ok_or("no `e`")?);
            if rsa_bits(n).ok_or("bad `n`")? < MIN_RSA_BITS {
                return Err("RSA key shorter than 2048 bits");
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_components(n, e).map_err(|_| "bad RSA key")?)
        }
        Some("EC") => {
            let (kind, len) = match field("crv") {
                Some("P-256") => (KeyKind::P256, 32),
                Some("P-384") => (KeyKind::P384, 48),
                _ => return Err("unsupported curve"),
            };
            let (x, y) = (field("x").ok_or("no `x`")?, field("y").ok_or("no `y`")?);
            if decoded_len(x) != Some(len) || decoded_len(y) != Some(len) {
                return Err("bad EC coordinates");
            }
            (kind, DecodingKey::from_ec_components(x, y).map_err(|_| "bad EC key")?)
        }
        Some("OKP") => {
            if field("crv") != Some("Ed25519") {
                return Err("unsupported curve");
            }
            let x = field("x").ok_or("no `x`")?;
            if decoded_len(x) != Some(32) {
                return Err("bad Ed25519 key");
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_components(x).map_err(|_| "bad Ed25519 key")?)
        }
        // `oct` (shared secrets) never verifies anything here.
        _ => return Err("unsupported key type"),
    };
    Ok(VerifyingKey { kid, kind, alg, key })
}

fn decoded_len(b64: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok().map(|v| v.len())
}

fn rsa_bits(n: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    Some((bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(len: usize, fill: u8) -> String {
        URL_SAFE_NO_PAD.encode(vec![fill; len])
    }

    fn ec(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(32, 1), "y": b64(32, 2)})
    }

    fn rsa(kid: &str, bytes: usize) -> Value {
        json!({"kty": "RSA", "kid": kid, "n": b64(bytes, 0xC1), "e": "AQAB"})
    }

    fn set(keys: Vec<Value>) -> KeySet {
        KeySet::parse("https://idp/jwks", &json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn kid_selects_and_must_fit_the_algorithm() {
        let set = set(vec![ec("e1"), rsa("r1", 256)]);
        assert!(set.select(JwsAlgorithm::ES256, Some("e1")).is_ok());
        assert!(set.select(JwsAlgorithm::RS256, Some("r1")).is_ok());
        assert!(set.select(JwsAlgorithm::PS256, Some("r1")).is_ok());
        assert!(matches!(set.select(JwsAlgorithm::RS256, Some("e1")), Err(TokenError::KeyMismatch)));
        assert!(matches!(set.select(JwsAlgorithm::ES384, Some("e1")), Err(TokenError::KeyMismatch)));
        assert!(matches!(set.select(JwsAlgorithm::EdDSA, Some("r1")), Err(TokenError::KeyMismatch)));
        assert!(matches!(set.select(JwsAlgorithm::ES256, Some("nope")), Err(TokenError::UnknownKey)));
    }

    #[test]
    fn a_pinned_alg_is_honoured() {
        let mut key = rsa("r1", 256);
        key["alg"] = json!("RS256");
        let set = set(vec![key]);
        assert!(set.select(JwsAlgorithm::RS256, Some("r1")).is_ok());
        assert!(matches!(set.select(JwsAlgorithm::PS256, Some("r1")), Err(TokenError::KeyMismatch)));
    }

    #[test]
    fn no_kid_needs_exactly_one_candidate() {
        assert!(set(vec![ec("a")]).select(JwsAlgorithm::ES256, None).is_ok());
        assert!(set(vec![ec("a"), rsa("r", 256)]).select(JwsAlgorithm::ES256, None).is_ok());
        assert!(matches!(
            set(vec![ec("a"), ec("b")]).select(JwsAlgorithm::ES256, None),
            Err(TokenError::AmbiguousKey)
        ));
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let mut enc = ec("enc");
        enc["use"] = json!("enc");
        let mut sign_only = ec("so");
        sign_only["key_ops"] = json!(["sign"]);
        let keys = vec![
            enc,
            sign_only,
            rsa("short", 128),
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
            json!({"kty": "EC", "crv": "P-521", "x": b64(66, 1), "y": b64(66, 1)}),
            json!({"kty": "EC", "crv": "P-256", "x": b64(31, 1), "y": b64(32, 1)}),
            json!({"kty": "OKP", "crv": "X25519", "x": b64(32, 1)}),
            json!("not an object"),
            ec("good"),
        ];
        assert_eq!(set(keys).len(), 1);
    }

    #[test]
    fn a_document_without_keys_is_invalid() {
        assert!(KeySet::parse("u", &json!({"kid": "x"})).is_err());
        assert_eq!(set(vec![]).len(), 0);
    }

    #[test]
    fn rsa_size_is_counted_in_bits() {
        assert_eq!(rsa_bits(&URL_SAFE_NO_PAD.encode([0x00, 0x80, 0x00])), Some(16));
        assert_eq!(rsa_bits(&URL_SAFE_NO_PAD.encode([0x01; 256])), Some(2041));
    }
}
