//! Signing keys: ES256 (P-256) generated with aws-lc-rs, persisted as PKCS#8
//! in the store, published as a JWKS with the previous keys until every token
//! they signed has expired.

use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::store::{AuthStore, StoreError, StoredSigningKey, UnixTime};

/// Why the keys cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key is not a P-256 PKCS#8 key.
    #[error("stored signing key `{0}` is not a valid ES256 PKCS#8 key")]
    Invalid(String),
    /// Key generation or signing failed.
    #[error("signing failed")]
    Crypto,
}

/// A loaded key.
struct Loaded {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
    created_at: UnixTime,
    retire_at: Option<UnixTime>,
}

/// The server's signing keys: the newest current key signs; every key not
/// yet retired is published.
#[derive(Clone)]
pub(crate) struct KeyRing {
    keys: Arc<RwLock<Vec<Loaded>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the stored keys, generating (and storing) one when there is no
    /// current key.
    pub(crate) async fn load(store: &dyn AuthStore, now: UnixTime) -> Result<Self, KeyError> {
        let mut loaded = Vec::new();
        for stored in store.signing_keys().await? {
            if stored.retire_at.is_some_and(|r| r <= now) {
                continue;
            }
            loaded.push(load_key(&stored)?);
        }
        if !loaded.iter().any(|k| k.retire_at.is_none()) {
            let stored = generate(now)?;
            tracing::warn!(
                kid = %stored.kid,
                "mcp-auth: NO SIGNING KEY FOUND: generated a new ES256 key and stored it in the authorization \
                 store. Tokens signed with any earlier key are now unverifiable. Keep the store (it holds the \
                 private key) safe and persistent."
            );
            store.put_signing_key(stored.clone()).await?;
            loaded.push(load_key(&stored)?);
        }
        loaded.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(Self { keys: Arc::new(RwLock::new(loaded)) })
    }

    /// Makes a new current key; the old ones stay published until `retire_at`.
    pub(crate) async fn rotate(
        &self,
        store: &dyn AuthStore,
        now: UnixTime,
        retire_at: UnixTime,
    ) -> Result<(), KeyError> {
        let fresh = generate(now)?;
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
        store.put_signing_key(fresh.clone()).await?;
        let loaded = load_key(&fresh)?;
        let mut keys = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in keys.iter_mut().filter(|k| k.retire_at.is_none()) {
            key.retire_at = Some(retire_at);
        }
        keys.insert(0, loaded);
        Ok(())
    }

    /// The JWKS document (RFC 7517 §5): every key not yet retired.
    pub(crate) fn jwks(&self, now: UnixTime) -> Value {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let published: Vec<&Value> =
            keys.iter().filter(|k| k.retire_at.is_none_or(|r| r > now)).map(|k| &k.jwk).collect();
        json!({ "keys": published })
    }

    /// Signs `claims` as a JWT access token (RFC 9068: `typ` `at+jwt`) with the current key.
    pub(crate) fn sign(&self, claims: &Map<String, Value>) -> Result<String, KeyError> {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = keys.iter().find(|k| k.retire_at.is_none()).ok_or(KeyError::Crypto)?;
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid});
        let encode = |v: &Value| serde_json::to_vec(v).map(|b| URL_SAFE_NO_PAD.encode(b));
        let claims = Value::Object(claims.clone());
        let signing_input = format!(
            "{}.{}",
            encode(&header).map_err(|_| KeyError::Crypto)?,
            encode(&claims).map_err(|_| KeyError::Crypto)?
        );
        // The provider is named, not jsonwebtoken's process-wide default.
        let signer = (DEFAULT_PROVIDER.signer_factory)(&Algorithm::ES256, &key.encoding)
            .map_err(|_| KeyError::Crypto)?;
        let signature = signer.try_sign(signing_input.as_bytes()).map_err(|_| KeyError::Crypto)?;
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
        // RFC 8725 §3.1: only the algorithm we sign with.
        if header.get("alg")?.as_str()? != "ES256" {
            return None;
        }
        let kid = header.get("kid")?.as_str()?;
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = keys.iter().find(|k| k.kid == kid && k.retire_at.is_none_or(|r| r > now))?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let verifier = (DEFAULT_PROVIDER.verifier_factory)(&Algorithm::ES256, &key.decoding).ok()?;
        let signing_input = &token[..token.len() - token.rsplit('.').next()?.len() - 1];
        verifier.verify(signing_input.as_bytes(), &signature).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

fn generate(now: UnixTime) -> Result<StoredSigningKey, KeyError> {
    let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|_| KeyError::Crypto)?;
    let pkcs8 = document.as_ref().to_vec();
    let (_, jwk) = public_jwk(&pkcs8).ok_or(KeyError::Crypto)?;
    Ok(StoredSigningKey {
        kid: thumbprint(&jwk),
        alg: "ES256".into(),
        pkcs8,
        created_at: now,
        retire_at: None,
    })
}

fn load_key(stored: &StoredSigningKey) -> Result<Loaded, KeyError> {
    let invalid = || KeyError::Invalid(stored.kid.clone());
    if stored.alg != "ES256" {
        return Err(invalid());
    }
    let ((x, y), mut jwk) = public_jwk(&stored.pkcs8).ok_or_else(invalid)?;
    let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|_| invalid())?;
    if let Some(object) = jwk.as_object_mut() {
        object.insert("kid".into(), json!(stored.kid));
        object.insert("alg".into(), json!("ES256"));
        object.insert("use".into(), json!("sig"));
    }
    Ok(Loaded {
        kid: stored.kid.clone(),
        encoding: EncodingKey::from_ec_der(&stored.pkcs8),
        decoding,
        jwk,
        created_at: stored.created_at,
        retire_at: stored.retire_at,
    })
}

/// The public JWK (RFC 7518 §6.2) of a PKCS#8 P-256 key, and its coordinates.
fn public_jwk(pkcs8: &[u8]) -> Option<((String, String), Value)> {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).ok()?;
    let point = pair.public_key().as_ref();
    // Uncompressed SEC1 point: 0x04 || X (32) || Y (32).
    if point.len() != 65 || point[0] != 4 {
        return None;
    }
    let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..65]));
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
    Some(((x, y), jwk))
}

/// RFC 7638 §3: the SHA-256 of the required members in lexicographic order.
fn thumbprint(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap_or_default(),
        jwk["y"].as_str().unwrap_or_default()
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::super::store::MemoryStore;
    use super::*;

    #[tokio::test]
    async fn keys_persist_sign_verify_and_rotate() {
        let store = MemoryStore::new();
        let ring = KeyRing::load(&store, 100).await.unwrap();
        let again = KeyRing::load(&store, 101).await.unwrap();
        assert_eq!(ring.jwks(100), again.jwks(101), "the stored key is reused");
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("alice"));
        let token = ring.sign(&claims).unwrap();
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
}
