//! `401`/`403` answers with `WWW-Authenticate: Bearer …` (RFC 6750 §3, with
//! RFC 9728 §5.1 `resource_metadata`).
//!
//! ```
//! use mcp_auth::challenge::{BearerChallenge, BearerError};
//!
//! // No token at all: no `error` (RFC 6750 §3.1), but where to get one.
//! let missing = BearerChallenge::new()
//!     .with_resource_metadata("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
//!     .with_scope(["notes:read"]);
//! assert_eq!(
//!     missing.header_value().to_str().unwrap(),
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="notes:read""#
//! );
//! assert_eq!(missing.status(), http::StatusCode::UNAUTHORIZED);
//!
//! let step_up = BearerChallenge::new().with_error(BearerError::InsufficientScope).with_scope(["a", "b"]);
//! assert_eq!(step_up.status(), http::StatusCode::FORBIDDEN);
//! assert_eq!(step_up.header_value().to_str().unwrap(), r#"Bearer error="insufficient_scope", scope="a b""#);
//! ```

use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

/// The `error` code of a Bearer challenge (RFC 6750 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerError {
    /// The request is malformed, such as two `Authorization` headers: `400`.
    InvalidRequest,
    /// The token is expired, revoked, malformed or otherwise invalid: `401`.
    InvalidToken,
    /// The token lacks scope for the operation: `403`.
    InsufficientScope,
}

impl BearerError {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    /// The status RFC 6750 §3.1 pairs with the code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
        }
    }
}

/// A `WWW-Authenticate: Bearer` challenge and the response that carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BearerChallenge {
    /// The error; `None` when the request simply carried no token.
    pub error: Option<BearerError>,
    /// A short human-readable reason.
    pub error_description: Option<String>,
    /// The protected-resource metadata URL (RFC 9728 §5.1).
    pub resource_metadata: Option<String>,
    /// The scopes to ask for.
    pub scope: Vec<String>,
}

impl BearerChallenge {
    /// A challenge with nothing but the scheme.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the error code.
    #[must_use]
    pub fn with_error(mut self, error: BearerError) -> Self {
        self.error = Some(error);
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.error_description = Some(description.into());
        self
    }

    /// Sets the protected-resource metadata URL.
    #[must_use]
    pub fn with_resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// Sets the scopes.
    #[must_use]
    pub fn with_scope<S: Into<String>>(mut self, scope: impl IntoIterator<Item = S>) -> Self {
        self.scope = scope.into_iter().map(Into::into).collect();
        self
    }

    /// `400`, `401` or `403`, after the error code.
    pub fn status(&self) -> StatusCode {
        self.error.map_or(StatusCode::UNAUTHORIZED, BearerError::status)
    }

    /// The `WWW-Authenticate` value, every parameter a quoted string
    /// (RFC 9110 §11.2, escaping per §5.6.4).
    pub fn header_value(&self) -> HeaderValue {
        let mut params: Vec<String> = Vec::new();
        if let Some(error) = self.error {
            params.push(format!("error=\"{}\"", error.as_str()));
        }
        if let Some(description) = &self.error_description {
            params.push(format!("error_description={}", quoted(description)));
        }
        if let Some(url) = &self.resource_metadata {
            params.push(format!("resource_metadata={}", quoted(url)));
        }
        if !self.scope.is_empty() {
            params.push(format!("scope={}", quoted(&self.scope.join(" "))));
        }
        let value =
            if params.is_empty() { "Bearer".to_owned() } else { format!("Bearer {}", params.join(", ")) };
        // `quoted` leaves only visible ASCII and spaces, which always make a header value.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// The whole answer: status, `WWW-Authenticate`, `Cache-Control:
    /// no-store`, and a small JSON body saying the same for humans.
    pub fn into_response(self) -> Response<Body> {
        let mut body = serde_json::Map::new();
        if let Some(error) = self.error {
            body.insert("error".into(), error.as_str().into());
        }
        if let Some(description) = &self.error_description {
            body.insert("error_description".into(), description.clone().into());
        }
        let mut response = Response::new(Body::from(serde_json::Value::Object(body).to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(WWW_AUTHENTICATE, self.header_value());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A quoted-string: `"` and `\` escaped; control and non-ASCII characters,
/// which RFC 6750 §3 does not allow in these values, replaced by `?`.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        let challenge = BearerChallenge::new()
            .with_error(BearerError::InvalidToken)
            .with_description("say \"hi\" \\ bye\r\n\u{e9}");
        assert_eq!(
            challenge.header_value().to_str().unwrap(),
            r#"Bearer error="invalid_token", error_description="say \"hi\" \\ bye???""#
        );
    }

    #[test]
    fn missing_token_challenge_has_no_error() {
        let challenge =
            BearerChallenge::new().with_resource_metadata("https://x/.well-known/oauth-protected-resource");
        let value = challenge.header_value();
        assert!(!value.to_str().unwrap().contains("error"));
        assert_eq!(challenge.into_response().status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn statuses_follow_rfc_6750() {
        assert_eq!(
            BearerChallenge::new().with_error(BearerError::InvalidRequest).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            BearerChallenge::new().with_error(BearerError::InvalidToken).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            BearerChallenge::new().with_error(BearerError::InsufficientScope).status(),
            StatusCode::FORBIDDEN
        );
    }
}
