//! Errors, one enum per boundary: building the layer ([`ConfigError`]),
//! judging a token ([`TokenError`]), and talking to the authorization server
//! ([`UpstreamError`]). None of them ever carries a token or a secret.

/// The resource-server configuration cannot work. Messages name the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required key is missing or empty.
    #[error("`{key}` is required: {hint}")]
    Missing {
        /// The key, such as `auth.resource_server.issuer`.
        key: &'static str,
        /// What to put there.
        hint: &'static str,
    },
    /// A key has a value that cannot be used.
    #[error("invalid value for `{key}`: {message}")]
    Invalid {
        /// The key, such as `auth.resource_server.issuer`.
        key: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The HTTP client could not be created (TLS set-up).
    #[error("cannot create the HTTP client for the authorization server: {0}")]
    HttpClient(String),
}

/// Why a bearer token was refused. Every variant but
/// [`Unavailable`](Self::Unavailable) answers `401` with
/// `error="invalid_token"` (RFC 6750 §3.1); [`TokenError::description`] is the
/// short, secret-free text sent as `error_description`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not well-formed (bad encoding, not a JSON object, …).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The JWS `alg` is `none`, unknown, or not in the allowlist.
    #[error("algorithm `{0}` is not accepted")]
    UnsupportedAlgorithm(String),
    /// The JWS names a critical header extension we do not understand (RFC 7515 §4.1.11).
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// No key in the issuer's JWKS has the token's `kid`, even after a refetch.
    #[error("no signing key with this kid")]
    UnknownKey,
    /// The token has no `kid` and several keys could have signed it.
    #[error("the token names no kid and the JWKS holds several candidate keys")]
    AmbiguousKey,
    /// The key the `kid` names does not fit the `alg` (type, curve, size or `alg`).
    #[error("the signing key does not fit the algorithm")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not name this resource (RFC 8707).
    #[error("wrong audience")]
    WrongAudience,
    /// The JWS header's `typ` is not `at+jwt`: an ID token, a logout token or
    /// another JWT the issuer signed, not an access token (RFC 9068 §4).
    #[error("not an access token (typ)")]
    NotAnAccessToken,
    /// A claim the checks need is missing or has the wrong type.
    #[error("missing or invalid claim `{0}`")]
    Claim(&'static str),
    /// Introspection says the token is not active (RFC 7662 §2.2).
    #[error("token is not active")]
    Inactive,
    /// An opaque token, and no introspection is configured.
    #[error("opaque token and no introspection configured")]
    Opaque,
    /// The token could not be checked: the authorization server failed.
    #[error("authorization server unavailable: {0}")]
    Upstream(#[from] UpstreamError),
    /// The token verified, but whether it was revoked cannot be read now
    /// (the built-in authorization server's store is down). Answered `503`
    /// with `Retry-After`: the token may well be good, and a `401` would send
    /// every client back through authorization.
    #[error("revocation state unavailable: {0}")]
    Unavailable(String),
}

impl TokenError {
    /// The `error_description` sent to the client: short, and free of
    /// internals (no URLs, keys or upstream error text).
    pub fn description(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "The access token is malformed",
            Self::UnsupportedAlgorithm(_) | Self::UnsupportedCritical => {
                "The access token uses an unsupported algorithm or header"
            }
            Self::UnknownKey | Self::AmbiguousKey | Self::KeyMismatch | Self::BadSignature => {
                "The access token signature is invalid"
            }
            Self::Expired => "The access token expired",
            Self::NotYetValid | Self::IssuedInFuture => "The access token is not valid yet",
            Self::WrongIssuer => "The access token was issued by another authorization server",
            Self::WrongAudience => "The access token was not issued for this resource",
            Self::NotAnAccessToken => "The token is not an access token",
            Self::Claim(_) => "The access token lacks a required claim",
            Self::Inactive => "The access token is not active",
            Self::Opaque => "The access token is not recognised",
            Self::Upstream(_) | Self::Unavailable(_) => "The access token cannot be verified right now",
        }
    }

    /// Whether the refusal is the authorization server's fault rather than the token's.
    pub fn is_upstream(&self) -> bool {
        matches!(self, Self::Upstream(_))
    }
}

/// Talking to the authorization server failed. Carries URLs and reasons for
/// logs; never sent to clients.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The request could not be made or completed (DNS, connection, TLS).
    #[error("{url}: {reason}")]
    Unreachable {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// No complete answer within the time limit.
    #[error("{url}: no answer within {secs} s")]
    Timeout {
        /// The URL fetched.
        url: String,
        /// The limit.
        secs: u64,
    },
    /// The answer had an unexpected status (redirects are not followed).
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The answer was larger than allowed.
    #[error("{url}: answer larger than {limit} bytes")]
    TooLarge {
        /// The URL fetched.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The answer was not the JSON document expected.
    #[error("{url}: {reason}")]
    InvalidDocument {
        /// The URL fetched.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The metadata's `issuer` is not the configured issuer (RFC 8414 §3.3).
    #[error("{url}: metadata names issuer `{found}`, expected `{expected}`")]
    IssuerMismatch {
        /// The metadata URL.
        url: String,
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// A URL from the metadata may not be fetched (scheme or host policy).
    #[error("refusing to fetch {url}: {reason}")]
    Refused {
        /// The URL.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// No discovery URL gave usable metadata.
    #[error("no authorization server metadata for `{issuer}`; tried {}", tried.join(", "))]
    NoMetadata {
        /// The configured issuer.
        issuer: String,
        /// What each attempt gave.
        tried: Vec<String>,
    },
    /// The metadata names no endpoint for this job.
    #[error("the authorization server metadata has no `{field}`")]
    MissingEndpoint {
        /// The metadata field, such as `jwks_uri`.
        field: &'static str,
    },
    /// A recent attempt failed; the next one waits for the back-off to pass.
    #[error("{what} failed recently ({last}); retrying in {retry_in_secs} s")]
    Backoff {
        /// What is being fetched.
        what: &'static str,
        /// The last failure.
        last: String,
        /// Seconds until the next attempt.
        retry_in_secs: u64,
    },
}
