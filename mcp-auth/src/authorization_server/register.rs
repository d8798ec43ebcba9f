//! Dynamic client registration (RFC 7591).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::crypto::{hash, random_token};
use super::error::{OAuthError, OAuthErrorCode};
use super::redirect::{ApplicationType, RedirectKind, allowed_for, classify};
use super::responses::{json_no_store, oauth_error};
use super::store::{ClientRecord, StoreError, TokenEndpointAuthMethod};
use std::sync::Arc;

/// Largest registration document accepted.
pub(crate) const MAX_DOCUMENT: usize = 16 * 1024;
const MAX_REDIRECT_URIS: usize = 16;
const MAX_NAME: usize = 200;

/// The RFC 7591 §2 metadata we act on; other fields are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) token_endpoint_auth_method: Option<String>,
    pub(crate) grant_types: Option<Vec<String>>,
    pub(crate) response_types: Option<Vec<String>>,
    pub(crate) application_type: Option<String>,
    pub(crate) client_name: Option<String>,
    pub(crate) scope: Option<String>,
}

/// Client metadata that passed [`validate`].
#[derive(Debug)]
pub(crate) struct Validated {
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) grant_types: Vec<String>,
    pub(crate) application_type: ApplicationType,
    pub(crate) auth_method: TokenEndpointAuthMethod,
    pub(crate) client_name: Option<String>,
    pub(crate) scope: Option<String>,
}

/// `POST /register`.
pub(crate) async fn register(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match register_client(&shared, &body).await {
        Ok(answer) => json_no_store(StatusCode::CREATED, &answer),
        Err(error) => oauth_error(&error),
    }
}

fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClientMetadata, description)
}

fn redirect_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRedirectUri, description)
}

async fn register_client(shared: &Shared, body: &[u8]) -> Result<Value, OAuthError> {
    if !shared.config.registration_enabled {
        return Err(OAuthError::new(OAuthErrorCode::AccessDenied, "dynamic client registration is disabled"));
    }
    if body.len() > MAX_DOCUMENT {
        return Err(metadata_error("registration document too large"));
    }
    let metadata: Metadata = serde_json::from_slice(body)
        .map_err(|_| metadata_error("body must be a JSON client metadata document"))?;
    // RFC 7591 §2: the default method is `client_secret_basic`.
    let Validated { redirect_uris, grant_types, application_type, auth_method, client_name, scope } =
        validate(&shared.config.scopes_supported, metadata, "client_secret_basic")?;

    let now = shared.now();
    let config = &shared.config;
    let secret = (auth_method != TokenEndpointAuthMethod::None).then(random_token);
    let secret_expires_at = (secret.is_some() && config.client_secret_ttl_secs > 0)
        .then(|| now.saturating_add(config.client_secret_ttl_secs));
    let record = ClientRecord {
        client_id: random_token(),
        secret_hash: secret.as_deref().map(hash),
        secret_expires_at,
        auth_method,
        redirect_uris,
        application_type: application_type.as_str().into(),
        client_name,
        scope,
        grant_types,
        issued_at: now,
        expires_at: (config.client_ttl_secs > 0).then(|| now.saturating_add(config.client_ttl_secs)),
    };
    match shared.store.put_client(record.clone()).await {
        Ok(()) => {}
        Err(StoreError::Duplicate(_)) => return Err(OAuthError::server_error()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(client_id = %record.client_id, name = ?record.client_name, "mcp-auth: client registered");

    // RFC 7591 §3.2.1: the secret is returned this once; only its hash is kept.
    let mut answer = json!({
        "client_id": record.client_id,
        "client_id_issued_at": record.issued_at,
        "redirect_uris": record.redirect_uris,
        "grant_types": record.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": auth_method.as_str(),
        "application_type": record.application_type,
    });
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
        answer["client_secret_expires_at"] = json!(secret_expires_at.unwrap_or(0));
    }
    if let Some(name) = &record.client_name {
        answer["client_name"] = json!(name);
    }
    if let Some(scope) = &record.scope {
        answer["scope"] = json!(scope);
    }
    Ok(answer)
}

/// The registration rules shared by dynamic registration, client ID metadata
/// documents and configured clients (RFC 7591 §2, RFC 8252, OpenID Connect
/// Registration §2 `application_type`). `default_auth_method` applies when
/// the metadata names none.
pub(crate) fn validate(
    scopes_supported: &[String],
    metadata: Metadata,
    default_auth_method: &str,
) -> Result<Validated, OAuthError> {
    // RFC 7591 §2: defaults `authorization_code` and `code`.
    let grant_types = metadata.grant_types.unwrap_or_else(|| vec!["authorization_code".into()]);
    let response_types = metadata.response_types.unwrap_or_else(|| vec!["code".into()]);
    for grant in &grant_types {
        if !matches!(grant.as_str(), "authorization_code" | "refresh_token") {
            return Err(metadata_error(format!("grant type `{grant}` is not supported")));
        }
    }
    // RFC 7591 §2.1: `code` goes with `authorization_code`, and only that is implemented.
    if response_types != ["code"] {
        return Err(metadata_error("response_types must be [\"code\"]"));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(metadata_error("grant_types must include authorization_code with response type code"));
    }

    if metadata.redirect_uris.is_empty() {
        return Err(redirect_error("redirect_uris is required"));
    }
    if metadata.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(redirect_error("too many redirect_uris"));
    }
    let mut kinds = Vec::new();
    for uri in &metadata.redirect_uris {
        kinds.push(classify(uri).map_err(redirect_error)?);
    }
    // MCP 2026: native for loopback and private-use redirects, web otherwise;
    // when it is not given, it is inferred the same way.
    let application_type = match metadata.application_type.as_deref() {
        Some("web") => ApplicationType::Web,
        Some("native") => ApplicationType::Native,
        Some(other) => {
            return Err(metadata_error(format!("application_type `{other}` is not native or web")));
        }
        None if kinds.iter().all(|k| *k == RedirectKind::Https) => ApplicationType::Web,
        None => ApplicationType::Native,
    };
    if !kinds.iter().all(|k| allowed_for(*k, application_type)) {
        return Err(redirect_error("a web client's redirect URIs must be https on a non-loopback host"));
    }

    let auth_method = match metadata.token_endpoint_auth_method.as_deref().unwrap_or(default_auth_method) {
        "none" => TokenEndpointAuthMethod::None,
        "client_secret_basic" => TokenEndpointAuthMethod::ClientSecretBasic,
        "client_secret_post" => TokenEndpointAuthMethod::ClientSecretPost,
        other => {
            return Err(metadata_error(format!("token_endpoint_auth_method `{other}` is not supported")));
        }
    };

    if let Some(name) = &metadata.client_name
        && (name.chars().count() > MAX_NAME || name.chars().any(char::is_control))
    {
        return Err(metadata_error("client_name too long or contains control characters"));
    }
    // RFC 7591 §2: a space-separated list. An empty or blank value (sent by clients
    // when the server publishes no scopes) says nothing, so it counts as absent.
    let scope = match metadata.scope.as_deref().map(str::split_whitespace) {
        Some(scopes) => {
            let scopes: Vec<&str> = scopes.collect();
            if let Some(unknown) = scopes.iter().find(|s| !scopes_supported.iter().any(|known| known == *s)) {
                return Err(metadata_error(format!("scope `{unknown}` is not supported")));
            }
            (!scopes.is_empty()).then(|| scopes.join(" "))
        }
        None => None,
    };
    Ok(Validated {
        redirect_uris: metadata.redirect_uris,
        grant_types,
        application_type,
        auth_method,
        client_name: metadata.client_name,
        scope,
    })
}
