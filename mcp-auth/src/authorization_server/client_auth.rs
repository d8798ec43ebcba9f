//! Client authentication at the token, revocation and introspection
//! endpoints (RFC 6749 §2.3, RFC 7591 §2 `token_endpoint_auth_method`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::Shared;
use super::crypto::{constant_time_eq, hash};
use super::error::OAuthError;
use super::params::Params;
use super::store::{ClientRecord, TokenEndpointAuthMethod};

/// A failed authentication, and whether the client used the `Authorization`
/// header (then the answer carries `WWW-Authenticate`, RFC 6749 §5.2).
#[derive(Debug)]
pub(crate) struct ClientAuthError {
    pub(crate) error: OAuthError,
    pub(crate) used_basic: bool,
}

/// Authenticates the client of a request by the method it registered.
pub(crate) async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientRecord, ClientAuthError> {
    let basic = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(parse_basic(value.to_str().ok()).ok_or_else(|| fail(true))?),
    };
    let used_basic = basic.is_some();
    let (client_id, secret, method) = match basic {
        Some((id, secret)) => {
            // RFC 6749 §2.3: one method per request; a body client_id must agree.
            if params.get("client_secret").is_some() {
                return Err(ClientAuthError {
                    error: OAuthError::invalid_request("use one client authentication method"),
                    used_basic,
                });
            }
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(fail(true));
            }
            (id, Some(secret), TokenEndpointAuthMethod::ClientSecretBasic)
        }
        None => {
            let id = params.get("client_id").ok_or_else(|| fail(false))?.to_owned();
            match params.get("client_secret") {
                Some(secret) => (id, Some(secret.to_owned()), TokenEndpointAuthMethod::ClientSecretPost),
                None => (id, None, TokenEndpointAuthMethod::None),
            }
        }
    };
    let now = shared.now();
    let client =
        shared.client(&client_id, now).await.map_err(|e| ClientAuthError { error: e.into(), used_basic })?;
    let Some(client) = client else { return Err(fail(used_basic)) };
    // The registered method, and only it.
    if client.auth_method != method {
        return Err(fail(used_basic));
    }
    if let Some(secret) = secret {
        let Some(stored) = &client.secret_hash else { return Err(fail(used_basic)) };
        // Both are hex SHA-256 of equal length: the comparison is constant-time.
        if !constant_time_eq(hash(&secret).as_bytes(), stored.as_bytes()) {
            return Err(fail(used_basic));
        }
        if client.secret_expires_at.is_some_and(|at| at <= now) {
            return Err(fail(used_basic));
        }
    }
    Ok(client)
}

fn fail(used_basic: bool) -> ClientAuthError {
    ClientAuthError { error: OAuthError::invalid_client(), used_basic }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(header: Option<&str>) -> Option<(String, String)> {
    let header = header?;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        let joined = format!("v={s}");
        form_urlencoded::parse(joined.as_bytes()).next().map(|(_, v)| v.into_owned())
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() || secret.is_empty() {
        return None;
    }
    Some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        assert_eq!(parse_basic(Some(&header)), Some(("my client".into(), "s:cret".into())));
        assert_eq!(parse_basic(Some("Basic !!!")), None);
        assert_eq!(parse_basic(Some(&format!("Basic {}", STANDARD.encode("nocolon")))), None);
        assert_eq!(parse_basic(Some("Bearer abc")), None);
    }
}
