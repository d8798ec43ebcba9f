//! Who the user is: a pluggable step between `/authorize` and the consent
//! page, and the built-in development login.

use std::collections::HashMap;
use std::fmt;

use crate::layer::BoxFuture;

use super::responses::escape;

/// The user, as a login step established.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthenticatedUser {
    /// The stable subject identifier (`sub` of the tokens).
    pub subject: String,
}

impl AuthenticatedUser {
    /// A user with this subject.
    pub fn new(subject: impl Into<String>) -> Self {
        Self { subject: subject.into() }
    }
}

/// Why a login attempt failed; the text is shown to the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoginError(pub String);

/// Establishes who the user is.
///
/// The server renders [`form_fields`](Self::form_fields) inside its own login
/// form (which carries the CSRF token and is bound to the browser's
/// transaction cookie), then hands the submitted fields to
/// [`authenticate`](Self::authenticate).
pub trait UserAuthenticator: Send + Sync + fmt::Debug + 'static {
    /// A short name, for logs.
    fn name(&self) -> &str;
    /// Whether this login is for local development only: the server then
    /// refuses to start unless the issuer's host is loopback.
    fn development_only(&self) -> bool {
        false
    }
    /// HTML input elements of the login form (already escaped).
    fn form_fields(&self) -> String;
    /// Checks the submitted fields (never log passwords).
    fn authenticate<'a>(
        &'a self,
        fields: &'a HashMap<String, String>,
    ) -> BoxFuture<'a, Result<AuthenticatedUser, LoginError>>;
}

/// **DEVELOPMENT ONLY.** Accepts any user name, with no password.
///
/// The authorization server refuses to run with it unless the issuer's host
/// is loopback (`localhost`, `127.0.0.1`, `[::1]`), and its page says in
/// red that it is not a real login.
#[derive(Clone, Copy, Debug, Default)]
pub struct DevLogin;

impl UserAuthenticator for DevLogin {
    fn name(&self) -> &str {
        "dev"
    }

    fn development_only(&self) -> bool {
        true
    }

    fn form_fields(&self) -> String {
        format!(
            "<p class=\"dev\">{}</p><label>User name <input name=\"username\" required maxlength=\"64\" \
             autocomplete=\"username\" pattern=\"[A-Za-z0-9._@\\-]+\"></label>",
            escape(
                "DEVELOPMENT LOGIN: any user name is accepted, without a password. Never expose this server."
            )
        )
    }

    fn authenticate<'a>(
        &'a self,
        fields: &'a HashMap<String, String>,
    ) -> BoxFuture<'a, Result<AuthenticatedUser, LoginError>> {
        let result = match fields.get("username").map(String::as_str) {
            Some(name)
                if (1..=64).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_@".contains(&b)) =>
            {
                Ok(AuthenticatedUser::new(name))
            }
            _ => Err(LoginError("enter a user name (letters, digits, . _ @ -)".into())),
        };
        Box::pin(std::future::ready(result))
    }
}
