//! The authorization server's metadata (RFC 8414 §2), listing only what is
//! implemented, and the JWKS.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::HeaderValue;
use http::StatusCode;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL};
use serde_json::{Value, json};

use super::Shared;
use super::responses::json_no_store;

/// The metadata document; `issuer` is the configured one, never the `Host`.
pub(crate) fn document(shared: &Shared) -> Value {
    let methods = ["none", "client_secret_basic", "client_secret_post"];
    let mut doc = json!({
        "issuer": shared.issuer,
        "authorization_endpoint": shared.endpoint("/authorize"),
        "token_endpoint": shared.endpoint("/token"),
        "jwks_uri": shared.endpoint("/jwks.json"),
        "revocation_endpoint": shared.endpoint("/revoke"),
        "introspection_endpoint": shared.endpoint("/introspect"),
        "scopes_supported": shared.config.scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        // RFC 7636 §4.2 / MCP: S256 only.
        "code_challenge_methods_supported": ["S256"],
        // RFC 9207 §3: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
    });
    // MCP 2025-11-25 / CIMD §5: advertised only when documents are accepted.
    if shared.cimd.is_some() {
        doc["client_id_metadata_document_supported"] = json!(true);
    }
    if shared.config.registration_enabled {
        doc["registration_endpoint"] = json!(shared.endpoint("/register"));
    }
    doc
}

/// `GET` of the metadata (any of its well-known paths).
pub(crate) async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    public_json(&document(&shared))
}

/// `GET /jwks.json`: the keys in the store now (read at most once a
/// second), so that with a shared store every instance publishes the keys
/// any of them signs with.
pub(crate) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let now = shared.now();
    shared.keys.refresh(shared.store.as_ref(), now).await;
    public_json(&shared.keys.jwks(now))
}

/// Public documents: CORS `*` without credentials, cacheable briefly.
fn public_json(body: &Value) -> Response {
    let mut response = json_no_store(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.remove(http::header::PRAGMA);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
