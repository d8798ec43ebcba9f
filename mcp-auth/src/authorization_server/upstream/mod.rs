//! Logging users in through an upstream identity provider (GitHub, or any
//! OpenID Connect provider) while this server stays the authorization
//! server of its MCP clients.
//!
//! The flow, hardened against the attacks seen on such proxies:
//! 1. `/authorize` checks the client's request and shows **our own consent
//!    page** (a shared upstream client must never consent on a client's
//!    behalf: the "confused deputy" of the MCP security best practices).
//! 2. On approval the transaction is stored server-side under a random,
//!    single-use upstream `state`, bound to the browser's transaction
//!    cookie, and the browser goes to the provider with that `state`, one
//!    fixed callback URL, and PKCE S256 (the verifier is derived from the
//!    `state` under the sealing key, so it is never stored).
//! 3. `/callback` finds the transaction by `state` (unknown or used: 400),
//!    requires the same browser (no cookie or another browser's: 403),
//!    relays an upstream error to the client's redirect URI with `state`
//!    and `iss`, or exchanges the code, learns who the user is, applies the
//!    allow-lists, and redirects with **our own** code.
//! 4. The provider's access token is sealed (AES-256-GCM) into the grant;
//!    tools reach it through [`UpstreamTokens`]. No client ever sees it.

mod flow;
mod github;
mod oidc;
mod tokens;

pub(crate) use self::tokens::sealed_access_token;

use std::fmt;

use reqwest::Url;
use serde_json::{Map, Value};

pub(crate) use self::flow::{callback, start};
pub use self::github::{GitHubConfig, GitHubLogin};
pub use self::oidc::{OidcConfig, OidcLogin};
pub(crate) use self::tokens::seal;
pub use self::tokens::{UpstreamToken, UpstreamTokens};
use crate::error::UpstreamError;
use crate::layer::BoxFuture;

/// Where the browser is sent to log in, for one transaction.
#[derive(Debug)]
#[non_exhaustive]
pub struct UpstreamAuthorization<'a> {
    /// This server's fixed callback URL.
    pub redirect_uri: &'a str,
    /// The opaque, single-use `state`.
    pub state: &'a str,
    /// The PKCE S256 challenge (RFC 7636 §4.2).
    pub code_challenge: &'a str,
    /// An OpenID Connect `nonce`, to be found in the ID token.
    pub nonce: &'a str,
}

/// What came back to the callback, with what is needed to redeem it.
#[derive(Debug)]
#[non_exhaustive]
pub struct UpstreamCallback<'a> {
    /// The provider's authorization code.
    pub code: &'a str,
    /// The callback URL, as sent at authorization.
    pub redirect_uri: &'a str,
    /// The PKCE verifier of the challenge sent.
    pub code_verifier: &'a str,
    /// The nonce sent.
    pub nonce: &'a str,
}

/// The user, as the provider vouched for them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamUser {
    /// The stable subject: becomes `sub` of our tokens.
    pub subject: String,
    /// Profile claims put in our access tokens (`preferred_username`,
    /// `name`, `email`, `login_provider`).
    pub claims: Map<String, Value>,
    /// The provider's tokens, sealed into the grant for tools.
    pub credentials: Option<UpstreamCredentials>,
}

/// The provider's tokens for one user. `Debug` shows no token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamCredentials {
    /// The access token for the provider's API.
    pub access_token: String,
    /// A refresh token, when the provider's tokens expire.
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires, when the provider says.
    pub expires_in: Option<u64>,
}

impl fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamCredentials")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl UpstreamUser {
    /// A user with this subject, no profile and no tokens.
    pub fn new(subject: impl Into<String>) -> Self {
        Self { subject: subject.into(), claims: Map::new(), credentials: None }
    }

    /// Adds a profile claim (such as `preferred_username`).
    #[must_use]
    pub fn with_claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// The provider's tokens, to be sealed into the grant.
    #[must_use]
    pub fn with_credentials(mut self, credentials: UpstreamCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }
}

impl UpstreamCredentials {
    /// An access token that does not expire.
    pub fn new(access_token: impl Into<String>) -> Self {
        Self { access_token: access_token.into(), refresh_token: None, expires_in: None }
    }

    /// A refresh token.
    #[must_use]
    pub fn with_refresh_token(mut self, refresh_token: impl Into<String>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// The access token's lifetime in seconds.
    #[must_use]
    pub fn with_expires_in(mut self, secs: u64) -> Self {
        self.expires_in = Some(secs);
        self
    }

    /// The tokens of a successful token answer (RFC 6749 §5.1).
    pub(crate) fn from_answer(answer: &Value) -> Result<Self, UpstreamLoginError> {
        let text = |name: &str| answer.get(name).and_then(Value::as_str).filter(|t| !t.is_empty());
        let access_token = text("access_token")
            .ok_or_else(|| UpstreamLoginError::Invalid("the token answer has no access_token".into()))?
            .to_owned();
        Ok(Self {
            access_token,
            refresh_token: text("refresh_token").map(str::to_owned),
            expires_in: answer.get("expires_in").and_then(Value::as_u64),
        })
    }
}

/// Why an upstream login failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamLoginError {
    /// The provider could not be reached or answered badly.
    #[error(transparent)]
    Http(#[from] UpstreamError),
    /// The provider refused a code exchange or refresh (GitHub answers
    /// these with status 200 and an `error` field).
    #[error("the provider refused the token request: {error} ({description})")]
    Refused {
        /// The OAuth error code.
        error: String,
        /// Its description.
        description: String,
    },
    /// The provider's answer is not what the protocol requires (a bad ID
    /// token, a missing field).
    #[error("invalid answer from the provider: {0}")]
    Invalid(String),
    /// The user logged in but is not on the allow-lists.
    #[error("{0} is not allowed to use this server")]
    NotAllowed(String),
}

/// A redirect-based login at an upstream provider.
///
/// Implemented by [`GitHubLogin`] and [`OidcLogin`]; any other OAuth or
/// OpenID provider fits the same two steps.
pub trait UpstreamLogin: Send + Sync + fmt::Debug + 'static {
    /// A short name, for logs and the `login_provider` claim (`github`).
    fn name(&self) -> &str;
    /// The name shown to users (`GitHub`).
    fn display_name(&self) -> &str;
    /// The provider's authorization URL for this transaction.
    fn authorization_url<'a>(
        &'a self,
        request: &'a UpstreamAuthorization<'a>,
    ) -> BoxFuture<'a, Result<Url, UpstreamLoginError>>;
    /// Redeems the code and establishes who the user is, allow-lists
    /// included.
    fn finish<'a>(
        &'a self,
        callback: &'a UpstreamCallback<'a>,
    ) -> BoxFuture<'a, Result<UpstreamUser, UpstreamLoginError>>;
    /// Revokes the provider's access token of a grant that was revoked here,
    /// where the provider offers that (GitHub does). Failures are the
    /// provider's business: they are logged, never reported to the client
    /// (RFC 7009 §2.2). The default does nothing.
    fn revoke_token<'a>(&'a self, access_token: &'a str) -> BoxFuture<'a, ()> {
        let _ = access_token;
        Box::pin(std::future::ready(()))
    }
    /// New tokens for a refresh token (RFC 6749 §6), for providers whose
    /// tokens expire. The default refuses.
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamCredentials, UpstreamLoginError>> {
        let _ = refresh_token;
        Box::pin(std::future::ready(Err(UpstreamLoginError::Invalid(format!(
            "{} tokens cannot be refreshed",
            self.display_name()
        )))))
    }
}

/// Who a user is, for the allow-lists: identifiers the provider keeps stable
/// (an OpenID `sub`, a GitHub numeric id), compared exactly, and e-mail
/// addresses, compared without case.
#[derive(Debug, Default)]
pub(crate) struct Names<'a> {
    pub(crate) identifiers: &'a [&'a str],
    pub(crate) emails: &'a [&'a str],
}

/// Whether a user passes the allow-lists: no lists admit everyone; a user
/// named in `users` or a member of one of `groups` is admitted.
pub(crate) fn admitted(
    names: &Names<'_>,
    memberships: &[String],
    users: &[String],
    groups: &[String],
) -> bool {
    if users.is_empty() && groups.is_empty() {
        return true;
    }
    let named = users.iter().any(|u| {
        names.identifiers.iter().any(|id| id == u) || names.emails.iter().any(|e| e.eq_ignore_ascii_case(u))
    });
    let member = memberships.iter().any(|m| groups.iter().any(|g| g.eq_ignore_ascii_case(m)));
    named || member
}

/// Copies each non-empty string field `from` of `source` into `claims` as
/// `to`, for every `(from, to)` pair.
pub(crate) fn copy_claims(source: &Value, pairs: &[(&str, &str)], claims: &mut Map<String, Value>) {
    for (from, to) in pairs {
        if let Some(text) = source.get(*from).and_then(Value::as_str).filter(|s| !s.is_empty()) {
            claims.insert((*to).to_owned(), Value::String(text.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_admit_listed_users_or_members_and_everyone_when_empty() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let id = |id: &'static [&'static str]| Names { identifiers: id, emails: &[] };
        assert!(admitted(&id(&["583231"]), &[], &[], &[]));
        assert!(admitted(&id(&["583231"]), &[], &s(&["583231"]), &[]));
        assert!(!admitted(&id(&["Alice"]), &[], &s(&["alice"]), &[]), "identifiers are exact");
        let email = Names { identifiers: &["x"], emails: &["Alice@Example.com"] };
        assert!(admitted(&email, &[], &s(&["alice@example.com"]), &[]), "e-mail without case");
        assert!(!admitted(&id(&["9"]), &s(&["other-org"]), &s(&["583231"]), &s(&["github"])));
        assert!(admitted(&id(&["9"]), &s(&["GitHub"]), &s(&["583231"]), &s(&["github"])));
    }
}
