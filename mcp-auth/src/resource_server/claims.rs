//! Claim checks shared by JWT validation and introspection answers, and the
//! [`Identity`] built from the claims.

use std::time::{Duration, SystemTime};

use mcp_core::Identity;
use serde_json::{Map, Value};

use crate::clock::{from_unix_secs, unix_secs};
use crate::error::TokenError;

/// What the claims are checked against.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    pub(crate) leeway: Duration,
    pub(crate) now: SystemTime,
}

/// Where the claims came from: a JWT must carry `iss`, `aud` and `exp`; an
/// introspection answer must carry `aud`, and `iss`/`exp` are checked when present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Jwt,
    Introspection,
}

/// Checks `iss`, `aud`, `exp`, `nbf` and `iat`; returns the expiry, if any.
pub(crate) fn check(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
    source: Source,
) -> Result<Option<SystemTime>, TokenError> {
    let required = source == Source::Jwt;

    // RFC 7519 §4.1.1 / RFC 9068 §4: the issuer, compared exactly.
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expected.issuer => {}
        Some(Value::String(_)) => return Err(TokenError::WrongIssuer),
        None if !required => {}
        _ => return Err(TokenError::Claim("iss")),
    }

    // RFC 8707 §2 / MCP "Token Audience Binding": this resource, exactly; no
    // prefix or trailing-slash leniency. A token without an audience is refused.
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expected.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected.audience)),
        None => return Err(TokenError::Claim("aud")),
        Some(_) => return Err(TokenError::Claim("aud")),
    };
    if !aud_ok {
        return Err(TokenError::WrongAudience);
    }

    let now = unix_secs(expected.now);
    let leeway = expected.leeway.as_secs_f64();

    // RFC 7519 §4.1.4: now must be before exp (plus leeway).
    let exp = numeric_date(claims, "exp")?;
    match exp {
        Some(exp) if now >= exp + leeway => return Err(TokenError::Expired),
        None if required => return Err(TokenError::Claim("exp")),
        _ => {}
    }
    // RFC 7519 §4.1.5: not before nbf (minus leeway).
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now + leeway < nbf
    {
        return Err(TokenError::NotYetValid);
    }
    // RFC 7519 §4.1.6: a token issued in the future is suspect.
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now + leeway
    {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(exp.and_then(from_unix_secs))
}

fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(TokenError::Claim(name)),
        Some(_) => Err(TokenError::Claim(name)),
    }
}

/// The caller of a token from `issuer` (whose claims passed [`check`]):
/// subject from `sub`, or for a client-credentials token without one the
/// client, marked as a client so it never passes for a user of the same
/// name; client from `client_id` or `azp`; scopes from `scope` (RFC 8693
/// §4.2, space-separated) or `scp` (array or string).
pub(crate) fn identity(claims: Map<String, Value>, issuer: &str) -> Result<Identity, TokenError> {
    let client_id =
        ["client_id", "azp"].iter().find_map(|k| claims.get(*k).and_then(Value::as_str)).map(str::to_owned);
    let mut identity = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => {
            let mut user = Identity::new(sub.clone());
            user.client_id = client_id;
            user
        }
        None => Identity::client(client_id.ok_or(TokenError::Claim("sub"))?),
        _ => return Err(TokenError::Claim("sub")),
    };
    identity.issuer = Some(issuer.to_owned());
    identity.scopes = scopes(claims.get("scope")).or_else(|| scopes(claims.get("scp"))).unwrap_or_default();
    identity.claims = claims;
    Ok(identity)
}

fn scopes(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(s) => Some(s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()),
        Value::Array(items) => Some(items.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_core::identity::SubjectKind;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example.com",
            audience: "https://mcp.example.com/mcp",
            leeway: Duration::from_secs(60),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "https://idp.example.com",
            "aud": "https://mcp.example.com/mcp",
            "sub": "alice",
            "exp": NOW + 300,
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base.as_object().unwrap().clone()
    }

    fn jwt(extra: Value) -> Result<Option<SystemTime>, TokenError> {
        check(&claims(extra), &expected(), Source::Jwt)
    }

    #[test]
    fn a_good_token_passes() {
        assert!(jwt(json!({})).unwrap().is_some());
    }

    #[test]
    fn audience_is_exact() {
        assert!(jwt(json!({"aud": ["other", "https://mcp.example.com/mcp"]})).is_ok());
        for wrong in [
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com",
            "https://mcp.example.com/mcp-other",
            "HTTPS://mcp.example.com/mcp",
        ] {
            assert!(matches!(jwt(json!({ "aud": wrong })), Err(TokenError::WrongAudience)), "{wrong}");
        }
        assert!(matches!(jwt(json!({"aud": ["a", "b"]})), Err(TokenError::WrongAudience)));
        assert!(matches!(jwt(json!({"aud": null})), Err(TokenError::Claim("aud"))));
    }

    #[test]
    fn issuer_is_exact() {
        assert!(matches!(jwt(json!({"iss": "https://idp.example.com/"})), Err(TokenError::WrongIssuer)));
        assert!(matches!(jwt(json!({"iss": ["https://idp.example.com"]})), Err(TokenError::Claim("iss"))));
        assert!(matches!(jwt(json!({"iss": null})), Err(TokenError::Claim("iss"))));
    }

    #[test]
    fn times_honour_the_leeway() {
        assert!(jwt(json!({"exp": NOW - 30})).is_ok(), "within leeway");
        assert!(matches!(jwt(json!({"exp": NOW - 60})), Err(TokenError::Expired)));
        assert!(matches!(jwt(json!({"exp": null})), Err(TokenError::Claim("exp"))));
        assert!(matches!(jwt(json!({"exp": "soon"})), Err(TokenError::Claim("exp"))));
        assert!(jwt(json!({"nbf": NOW + 30})).is_ok());
        assert!(matches!(jwt(json!({"nbf": NOW + 61})), Err(TokenError::NotYetValid)));
        assert!(jwt(json!({"iat": NOW + 30})).is_ok());
        assert!(matches!(jwt(json!({"iat": NOW + 61})), Err(TokenError::IssuedInFuture)));
    }

    #[test]
    fn introspection_answers_may_omit_iss_and_exp_but_not_aud() {
        let answer = claims(json!({"iss": null, "exp": null}));
        assert_eq!(check(&answer, &expected(), Source::Introspection).unwrap(), None);
        let answer = claims(json!({"aud": null}));
        assert!(check(&answer, &expected(), Source::Introspection).is_err());
    }

    const ISSUER: &str = "https://idp.example.com";

    #[test]
    fn identity_from_scope_or_scp() {
        let id = identity(claims(json!({"scope": "a  b", "client_id": "app"})), ISSUER).unwrap();
        assert_eq!(
            (id.subject.as_str(), id.client_id.as_deref(), id.scopes.as_slice()),
            ("alice", Some("app"), &["a".to_owned(), "b".to_owned()][..])
        );
        let id = identity(claims(json!({"scp": ["x", "y"], "azp": "spa"})), ISSUER).unwrap();
        assert_eq!(id.scopes, ["x", "y"]);
        assert_eq!(id.client_id.as_deref(), Some("spa"));
        assert_eq!(id.claims["iss"], "https://idp.example.com");
        assert!(identity(claims(json!({"sub": null})), ISSUER).is_err());
    }

    #[test]
    fn the_principal_is_the_issuer_and_a_marked_subject() {
        let user = identity(claims(json!({"sub": "svc"})), ISSUER).unwrap();
        assert_eq!((user.issuer.as_deref(), user.subject_kind), (Some(ISSUER), SubjectKind::User));
        // No `sub`: the client acting for itself, never the user named like it.
        let service = identity(claims(json!({"sub": null, "client_id": "svc"})), ISSUER).unwrap();
        assert_eq!((service.subject.as_str(), service.subject_kind), ("svc", SubjectKind::Client));
        assert_eq!(service.client_id.as_deref(), Some("svc"));
        assert_ne!(service.principal(), user.principal());
    }
}
