//! Sealed `requestState` for multi round-trip requests (2026-07-28).
//!
//! The client echoes `requestState` back verbatim, so it is attacker-controlled
//! (SEP-2322: MUST be integrity-protected when it influences behaviour). Ours
//! carries the answers gathered in earlier rounds and is bound to the method,
//! the tool/prompt/resource name, the caller (issuer, kind of subject and subject) and an expiry, all under
//! an HMAC-SHA256 tag checked in constant time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use mcp_core::types::JsonObject;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest `requestState` accepted, before any decoding.
const MAX_STATE_LEN: usize = 256 * 1024;

/// The secret that seals request state. Random per process by default; set the
/// same key on every instance behind a load balancer.
#[derive(Clone)]
pub struct RequestStateKey([u8; 32]);

impl std::fmt::Debug for RequestStateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestStateKey(..)")
    }
}

impl RequestStateKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A key from 32 bytes of secret material.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

/// What a sealed state is bound to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Binding<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    /// [`principal_of`] the caller, if authenticated.
    pub(crate) principal: Option<&'a str>,
    /// [`arguments_digest`] of the call's arguments: answers given for one
    /// set of arguments cannot be replayed into another.
    pub(crate) arguments: &'a str,
}

/// The caller as one string for a [`Binding`]: issuer, kind of subject and
/// subject, so state sealed for one principal never opens for another that
/// merely shares a subject.
pub(crate) fn principal_of(identity: &mcp_core::Identity) -> String {
    let principal = identity.principal();
    let kind = match principal.kind {
        mcp_core::identity::SubjectKind::Client => "client",
        _ => "user",
    };
    serde_json::json!([principal.issuer, kind, principal.subject]).to_string()
}

/// A SHA-256 over a canonical form of `value` (object keys sorted), hex.
pub(crate) fn arguments_digest(value: &serde_json::Value) -> String {
    use sha2::Digest as _;
    fn feed(hasher: &mut Sha256, value: &serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                hasher.update(b"{");
                for key in keys {
                    feed(hasher, &serde_json::Value::String(key.clone()));
                    hasher.update(b":");
                    feed(hasher, &map[key.as_str()]);
                    hasher.update(b",");
                }
                hasher.update(b"}");
            }
            serde_json::Value::Array(items) => {
                hasher.update(b"[");
                for item in items {
                    feed(hasher, item);
                    hasher.update(b",");
                }
                hasher.update(b"]");
            }
            scalar => hasher.update(scalar.to_string().as_bytes()),
        }
    }
    let mut hasher = Sha256::new();
    feed(&mut hasher, value);
    hex::encode(hasher.finalize())
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Method.
    m: String,
    /// Tool or prompt name, or resource URI.
    t: String,
    /// Subject of the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// Digest of the arguments.
    d: String,
    /// Expiry, seconds since the Unix epoch.
    e: u64,
    /// Answers so far.
    a: JsonObject,
}

/// Why a `requestState` was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum StateError {
    #[error("requestState is malformed")]
    Malformed,
    #[error("requestState failed its integrity check")]
    Tampered,
    #[error("requestState has expired")]
    Expired,
    #[error("requestState belongs to a different request or caller")]
    WrongBinding,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn mac(key: &RequestStateKey) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(&key.0).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

pub(crate) fn seal(
    key: &RequestStateKey,
    binding: Binding<'_>,
    answers: &JsonObject,
    ttl: Duration,
) -> String {
    let sealed = Sealed {
        m: binding.method.to_owned(),
        t: binding.target.to_owned(),
        s: binding.principal.map(str::to_owned),
        d: binding.arguments.to_owned(),
        e: now_secs().saturating_add(ttl.as_secs()),
        a: answers.clone(),
    };
    let payload = serde_json::to_vec(&sealed).unwrap_or_default();
    let mut mac = mac(key);
    mac.update(&payload);
    let tag = mac.finalize().into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag))
}

pub(crate) fn open(
    key: &RequestStateKey,
    binding: Binding<'_>,
    state: &str,
) -> Result<JsonObject, StateError> {
    if state.len() > MAX_STATE_LEN {
        return Err(StateError::Malformed);
    }
    let (payload, tag) = state.split_once('.').ok_or(StateError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| StateError::Malformed)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| StateError::Malformed)?;
    let mut mac = mac(key);
    mac.update(&payload);
    // Constant-time comparison of the tag.
    mac.verify_slice(&tag).map_err(|_| StateError::Tampered)?;
    let sealed: Sealed = serde_json::from_slice(&payload).map_err(|_| StateError::Malformed)?;
    if sealed.e < now_secs() {
        return Err(StateError::Expired);
    }
    if sealed.m != binding.method
        || sealed.t != binding.target
        || sealed.s.as_deref() != binding.principal
        || sealed.d != binding.arguments
    {
        return Err(StateError::WrongBinding);
    }
    Ok(sealed.a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BINDING: Binding<'static> =
        Binding { method: "tools/call", target: "t", principal: Some("alice"), arguments: "d1" };

    fn answers() -> JsonObject {
        json!({"step1": {"action": "accept"}}).as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn sealed_state_opens_with_the_same_binding() {
        let key = RequestStateKey::random();
        let state = seal(&key, BINDING, &answers(), Duration::from_secs(60));
        assert_eq!(open(&key, BINDING, &state), Ok(answers()));
    }

    #[test]
    fn tampering_and_rebinding_are_refused() {
        let key = RequestStateKey::random();
        let state = seal(&key, BINDING, &answers(), Duration::from_secs(60));
        assert!(open(&key, BINDING, &format!("{state}-TAMPERED")).is_err());
        let (payload, tag) = state.split_once('.').unwrap();
        let mut forged = URL_SAFE_NO_PAD.decode(payload).unwrap();
        forged[3] ^= 1;
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(open(&key, BINDING, &forged), Err(StateError::Tampered));
        let other = Binding { principal: Some("mallory"), ..BINDING };
        assert_eq!(open(&key, other, &state), Err(StateError::WrongBinding));
        let other_arguments = Binding { arguments: "d2", ..BINDING };
        assert_eq!(open(&key, other_arguments, &state), Err(StateError::WrongBinding));
        assert_eq!(open(&RequestStateKey::random(), BINDING, &state), Err(StateError::Tampered));
    }

    #[test]
    fn principals_differ_by_issuer_and_kind_not_only_subject() {
        use mcp_core::Identity;
        let alice = principal_of(&Identity::new("alice").with_issuer("https://a.example"));
        let elsewhere = principal_of(&Identity::new("alice").with_issuer("https://b.example"));
        let client = principal_of(&Identity::client("alice").with_issuer("https://a.example"));
        assert_ne!(alice, elsewhere);
        assert_ne!(alice, client);
        assert_eq!(
            alice,
            principal_of(&Identity::new("alice").with_issuer("https://a.example").with_scopes(["x"]))
        );
    }

    #[test]
    fn argument_digests_ignore_key_order() {
        let a = serde_json::json!({"b": 1, "a": [1, {"y": 2, "x": 3}]});
        let b = serde_json::json!({"a": [1, {"x": 3, "y": 2}], "b": 1});
        assert_eq!(arguments_digest(&a), arguments_digest(&b));
        assert_ne!(arguments_digest(&a), arguments_digest(&serde_json::json!({"b": 2})));
    }

    #[test]
    fn expired_state_is_refused() {
        let key = RequestStateKey::random();
        let state = seal(&key, BINDING, &answers(), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(open(&key, BINDING, &state), Err(StateError::Expired));
    }
}
