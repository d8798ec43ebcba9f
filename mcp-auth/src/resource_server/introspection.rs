//! Asking the authorization server about an opaque token (RFC 7662).

use reqwest::Url;
use serde_json::{Map, Value};

use super::fetch::Fetcher;
use crate::config::{ClientAuthMethod, IntrospectionConfig};
use crate::error::{TokenError, UpstreamError};

/// The introspection answer's claims when the token is active.
pub(crate) async fn introspect(
    fetcher: &Fetcher,
    endpoint: &Url,
    config: &IntrospectionConfig,
    token: &str,
) -> Result<Map<String, Value>, TokenError> {
    // RFC 7662 §2.1: the token and a hint, with client authentication.
    let mut form = vec![("token", token), ("token_type_hint", "access_token")];
    let basic = match config.auth_method {
        ClientAuthMethod::ClientSecretBasic => {
            Some((config.client_id.as_str(), config.client_secret.as_str()))
        }
        ClientAuthMethod::ClientSecretPost => {
            form.push(("client_id", &config.client_id));
            form.push(("client_secret", &config.client_secret));
            None
        }
    };
    let fetched = fetcher.post_form(endpoint, &form, basic).await.inspect_err(|error| {
        tracing::warn!(%error, "mcp-auth: token introspection failed; the token is refused with 401");
    })?;
    let Value::Object(answer) = fetched.json else {
        let error =
            UpstreamError::InvalidDocument { url: endpoint.to_string(), reason: "not a JSON object".into() };
        tracing::warn!(%error, "mcp-auth: token introspection failed; the token is refused with 401");
        return Err(error.into());
    };
    // RFC 7662 §2.2: `active` is required; anything but `true` means invalid.
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(TokenError::Inactive);
    }
    Ok(answer)
}
