//! What one caller's own requests carry to an HTTP upstream besides the
//! configured `headers`: the caller's subject (`identity_header`) and the
//! caller's own token from the upstream login (`login_token`). Nothing of
//! the caller goes out unless the upstream's policy asks for it.

use http::{HeaderMap, HeaderName, HeaderValue, header};
use mcp_server::auth::UpstreamTokens;
use mcp_server::{Context, McpError};

use crate::config::UpstreamConfig;

/// The per-caller headers an upstream's policy asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallerHeaders {
    /// `identity_header`, parsed (checked when the configuration was read).
    identity: Option<HeaderName>,
    /// `login_token`: the caller's upstream-login token as `Authorization`.
    login_token: bool,
}

impl CallerHeaders {
    /// The headers `policy` asks for.
    pub(crate) fn of(policy: &UpstreamConfig) -> Self {
        Self {
            identity: policy.identity_header.as_deref().and_then(|name| HeaderName::try_from(name).ok()),
            login_token: policy.login_token,
        }
    }

    /// The headers for one call of the caller in `context`; `None` when the
    /// policy asks for none. A subject that cannot be a header value, or a
    /// caller without a usable login token, fails the call rather than
    /// going out altered or without the caller's credential.
    pub(crate) async fn for_call(&self, context: &Context) -> Result<Option<HeaderMap>, McpError> {
        if self.identity.is_none() && !self.login_token {
            return Ok(None);
        }
        let Some(who) = context.identity() else { return Ok(None) };
        let mut headers = HeaderMap::new();
        if let Some(name) = &self.identity {
            let value = HeaderValue::try_from(who.subject.as_str())
                .map_err(|_| McpError::internal("the caller's subject cannot be sent as a header"))?;
            headers.insert(name.clone(), value);
        }
        if self.login_token {
            headers.insert(header::AUTHORIZATION, login_token(context, who).await?);
        }
        Ok(Some(headers))
    }
}

/// `Bearer <the caller's token from the upstream login>`, unsealed (and
/// refreshed when about to expire) for this one request.
async fn login_token(context: &Context, who: &mcp_server::Identity) -> Result<HeaderValue, McpError> {
    let tokens = context
        .state::<UpstreamTokens>()
        .ok_or_else(|| McpError::internal("login_token needs the built-in authorization server"))?;
    let token = tokens.for_identity(who).await.map_err(|e| {
        tracing::warn!(error = %e, "the caller's login token could not be read");
        McpError::internal("the caller's login token could not be read")
    })?;
    let token = token.ok_or_else(|| {
        McpError::InvalidRequest(
            "this upstream needs your login's token, which is gone or expired: sign in again".into(),
        )
    })?;
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.secret()))
        .map_err(|_| McpError::internal("the caller's login token cannot be sent as a header"))?;
    value.set_sensitive(true);
    Ok(value)
}
