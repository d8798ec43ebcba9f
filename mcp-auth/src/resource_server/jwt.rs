//! JWS compact serialization (RFC 7515 §7.1): telling a JWT from an opaque
//! token, and checking its signature with a JWKS key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use serde_json::{Map, Value};

use super::jwks::VerifyingKey;
use crate::config::JwsAlgorithm;
use crate::error::TokenError;

/// A token that is a JWS: three base64url segments whose first is a JSON
/// object with an `alg`.
#[derive(Debug)]
pub(crate) struct Jws<'t> {
    pub(crate) alg: String,
    pub(crate) kid: Option<String>,
    /// The header's `typ`, if any.
    typ: Option<String>,
    crit: bool,
    signing_input: &'t str,
    payload: &'t str,
    signature: &'t str,
}

/// `Some` when `token` is shaped like a JWS, whatever its `alg` (so `none`
/// is refused as a JWT rather than sent to introspection); `None` for opaque
/// tokens (and JWE, which has five segments).
pub(crate) fn parse(token: &str) -> Option<Jws<'_>> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let alg = header.get("alg")?.as_str()?.to_owned();
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => Some(kid.clone()),
        _ => None,
    };
    let typ = header.get("typ").and_then(Value::as_str).map(str::to_owned);
    let signing_input = &token[..token.len() - signature.len() - 1];
    Some(Jws { alg, kid, typ, crit: header.contains_key("crit"), signing_input, payload, signature })
}

impl Jws<'_> {
    /// The algorithm, if allowed. RFC 8725 §3.1: never `none`, only the
    /// configured list.
    pub(crate) fn algorithm(&self, allowed: &[JwsAlgorithm]) -> Result<JwsAlgorithm, TokenError> {
        // RFC 7515 §4.1.11: a critical extension we do not implement makes the JWS invalid.
        if self.crit {
            return Err(TokenError::UnsupportedCritical);
        }
        JwsAlgorithm::from_name(&self.alg)
            .filter(|alg| allowed.contains(alg))
            .ok_or_else(|| TokenError::UnsupportedAlgorithm(printable(&self.alg)))
    }

    /// RFC 9068 §4: an access token's header says `typ: at+jwt` (a media
    /// type, so compared without case and with `application/` optional, RFC
    /// 7515 §4.1.9). This is what tells it from an ID token or a logout token
    /// the same issuer signed for the same audience. With `accept_plain_jwt`,
    /// `typ: JWT` and no `typ` pass too, for issuers that do not mark their
    /// access tokens.
    pub(crate) fn check_type(&self, accept_plain_jwt: bool) -> Result<(), TokenError> {
        let typ = self.typ.as_deref().map(str::to_ascii_lowercase);
        let media = typ.as_deref().map(|t| t.strip_prefix("application/").unwrap_or(t));
        match media {
            Some("at+jwt") => Ok(()),
            Some("jwt") | None if accept_plain_jwt => Ok(()),
            _ => Err(TokenError::NotAnAccessToken),
        }
    }

    /// Checks the signature with `key`, then returns the claims.
    pub(crate) fn verify(
        &self,
        alg: JwsAlgorithm,
        key: &VerifyingKey,
    ) -> Result<Map<String, Value>, TokenError> {
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| TokenError::Malformed("signature encoding"))?;
        // The provider is named, not taken from jsonwebtoken's process-wide
        // default, so another crate's choice of backend cannot change it.
        let verifier = (DEFAULT_PROVIDER.verifier_factory)(&to_jsonwebtoken(alg), &key.key)
            .map_err(|_| TokenError::KeyMismatch)?;
        verifier.verify(self.signing_input.as_bytes(), &signature).map_err(|_| TokenError::BadSignature)?;
        let payload =
            URL_SAFE_NO_PAD.decode(self.payload).map_err(|_| TokenError::Malformed("payload encoding"))?;
        serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed("payload is not a JSON object"))
    }
}

fn to_jsonwebtoken(alg: JwsAlgorithm) -> Algorithm {
    match alg {
        JwsAlgorithm::RS256 => Algorithm::RS256,
        JwsAlgorithm::RS384 => Algorithm::RS384,
        JwsAlgorithm::RS512 => Algorithm::RS512,
        JwsAlgorithm::PS256 => Algorithm::PS256,
        JwsAlgorithm::PS384 => Algorithm::PS384,
        JwsAlgorithm::PS512 => Algorithm::PS512,
        JwsAlgorithm::ES256 => Algorithm::ES256,
        JwsAlgorithm::ES384 => Algorithm::ES384,
        JwsAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

/// An attacker-chosen string, made safe and short for logs.
fn printable(value: &str) -> String {
    value.chars().take(32).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn jws_shapes_are_recognised() {
        let token = format!("{}.{}.sig", b64(r#"{"alg":"ES256","kid":"k1"}"#), b64("{}"));
        let jws = parse(&token).unwrap();
        assert_eq!((jws.alg.as_str(), jws.kid.as_deref()), ("ES256", Some("k1")));
        assert_eq!(jws.signing_input, &token[..token.len() - 4]);
        assert!(parse("opaque-token").is_none());
        assert!(parse("a.b.c").is_none(), "header must be base64url JSON");
        assert!(parse(&format!("{}.{}.s", b64(r#"{"typ":"JWT"}"#), b64("{}"))).is_none(), "no alg");
        assert!(parse(&format!("{}.e.i.c.t", b64(r#"{"alg":"RSA-OAEP"}"#))).is_none(), "JWE");
    }

    #[test]
    fn none_and_unlisted_algorithms_are_refused() {
        let allowed = JwsAlgorithm::DEFAULT;
        for alg in ["none", "None", "HS256", "ES384", "RS256 ", "es256"] {
            let token = format!("{}.{}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64("{}"));
            let jws = parse(&token).unwrap();
            assert!(matches!(jws.algorithm(&allowed), Err(TokenError::UnsupportedAlgorithm(_))), "{alg}");
        }
        let token = format!("{}.{}.s", b64(r#"{"alg":"ES256","crit":["exp"]}"#), b64("{}"));
        assert!(matches!(parse(&token).unwrap().algorithm(&allowed), Err(TokenError::UnsupportedCritical)));
    }
}
