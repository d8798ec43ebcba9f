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
    let (id, secret) = (form_decode(id)?, form_decode(secret)?);
    if id.is_empty() || secret.is_empty() {
        return None;
    }
    Some((id, secret))
}

/// One value decoded as `application/x-www-form-urlencoded` (RFC 6749
/// §2.3.1, Appendix B): `+` is a space, `%XX` a byte, and every other
/// character (`&` and `=` included) stands for itself. A `%` not followed by
/// two hex digits is kept as it is. `None` when the bytes are not UTF-8.
fn form_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                    (Some(high), Some(low)) => {
                        // Two hex digits make one byte: both are below 16.
                        out.push(u8::try_from(high * 16 + low).ok()?);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
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

    #[test]
    fn form_decoding_keeps_ampersands_and_equals() {
        assert_eq!(form_decode("a&b=c").as_deref(), Some("a&b=c"));
        assert_eq!(form_decode("a+b%2Bc%26d").as_deref(), Some("a b+c&d"));
        assert_eq!(form_decode("100%").as_deref(), Some("100%"));
        assert_eq!(form_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(form_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(form_decode("%FF"), None);
    }
}
