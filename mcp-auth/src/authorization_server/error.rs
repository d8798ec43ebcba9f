//! Errors of the authorization server: OAuth errors sent to clients (RFC 6749
//! §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707 §2) and store failures.

use http::StatusCode;

/// An OAuth error code, as sent in `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// The request is missing a parameter, repeats one, or is malformed.
    InvalidRequest,
    /// Client authentication failed (RFC 6749 §5.2: `401`).
    InvalidClient,
    /// The code or refresh token is invalid, expired, revoked or not this client's.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The response type is not supported.
    UnsupportedResponseType,
    /// The scope is invalid, unknown, or wider than granted.
    InvalidScope,
    /// The user or the server denied the request.
    AccessDenied,
    /// RFC 8707 §2: the `resource` is not this server's.
    InvalidTarget,
    /// RFC 7591 §3.2.2: a redirect URI is not acceptable.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: other client metadata is not acceptable.
    InvalidClientMetadata,
    /// Something went wrong on our side; details are only logged.
    ServerError,
    /// RFC 6749 §4.1.2.1: the server cannot handle the request now (an
    /// upstream identity provider is unreachable).
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An OAuth error answer: the code and a short, secret-free description.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The error code.
    pub code: OAuthErrorCode,
    /// Human-readable, never containing a credential.
    pub description: String,
}

impl OAuthError {
    pub(crate) fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, description)
    }

    pub(crate) fn invalid_client() -> Self {
        Self::new(OAuthErrorCode::InvalidClient, "client authentication failed")
    }

    pub(crate) fn server_error() -> Self {
        Self::new(OAuthErrorCode::ServerError, "internal error")
    }

    /// RFC 6749 §5.2: `401` for failed client authentication, `500` for our
    /// own failures, `503` when we cannot serve the request now (the
    /// database is down), `400` otherwise.
    ///
    /// ```
    /// use mcp_auth::authorization_server::{OAuthError, StoreError};
    ///
    /// let error = OAuthError::from(StoreError::Unavailable("connection refused".into()));
    /// assert_eq!(error.code.as_str(), "temporarily_unavailable");
    /// assert_eq!(error.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self.code {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        if let StoreError::Unavailable(_) = error {
            // RFC 6749 §4.1.2.1's `temporarily_unavailable`, as a 503: the client may retry.
            tracing::warn!(%error, "mcp-auth: authorization store unavailable");
            return Self::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the server is temporarily unavailable",
            );
        }
        tracing::error!(%error, "mcp-auth: authorization store failed");
        Self::server_error()
    }
}

/// The authorization store failed. Messages never carry a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite database failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored record could not be (de)serialized.
    #[error("stored record: {0}")]
    Record(#[from] serde_json::Error),
    /// A blocking task was cancelled or panicked.
    #[error("store task failed: {0}")]
    Task(String),
    /// The same key was stored twice.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// The database file could not be created with owner-only permissions.
    #[error("store file: {0}")]
    File(#[from] std::io::Error),
    /// The database cannot be reached right now (down, restarting, no free
    /// connection in time); the request may succeed later. Endpoints answer
    /// `503` with `temporarily_unavailable`.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The PostgreSQL database refused a statement.
    #[cfg(feature = "postgres")]
    #[error("postgres: {0}")]
    Postgres(#[source] tokio_postgres::Error),
    /// The `postgres://` setting cannot be used (the message never repeats a password).
    #[cfg(feature = "postgres")]
    #[error("postgres settings: {0}")]
    PostgresConfig(String),
}
