//! Test doubles over real HTTP on 127.0.0.1: an authorization server
//! (metadata, JWKS, introspection) whose behaviour the tests steer, keys that
//! sign tokens with aws-lc-rs directly (not with the library under test), and
//! a plain axum app guarded by the layer.

// Each test binary uses a part of this.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use mcp_auth::{Identity, InsufficientScope, ResourceServer, ResourceServerConfig};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A signing key of the authorization server.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) alg: &'static str,
    pair: Pair,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair, &'static signature::RsaSignatureEncoding),
    Ed(Ed25519KeyPair),
}

impl SigningKey {
    pub(crate) fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self { kid: kid.into(), alg: "ES256", pair: Pair::Ec(pair) }
    }

    pub(crate) fn rs256(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Self { kid: kid.into(), alg: "RS256", pair: Pair::Rsa(pair, &signature::RSA_PKCS1_SHA256) }
    }

    pub(crate) fn ps256(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Self { kid: kid.into(), alg: "PS256", pair: Pair::Rsa(pair, &signature::RSA_PSS_SHA256) }
    }

    pub(crate) fn ed25519(kid: &str) -> Self {
        Self { kid: kid.into(), alg: "EdDSA", pair: Pair::Ed(Ed25519KeyPair::generate().unwrap()) }
    }

    /// The public JWK, as a JWKS publishes it.
    pub(crate) fn jwk(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Pair::Rsa(pair, _) => {
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({"kty": "RSA", "n": b64(&components.n), "e": b64(&components.e)})
            }
            Pair::Ed(pair) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())}),
        };
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// A compact JWS with this key's `alg` and `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": self.alg, "kid": self.kid, "typ": "at+jwt"}), claims)
    }

    pub(crate) fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = match &self.pair {
            Pair::Ec(pair) => pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap().as_ref().to_vec(),
            Pair::Rsa(pair, encoding) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), input.as_bytes(), &mut out).unwrap();
                out
            }
            Pair::Ed(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(signature))
    }
}

/// How the JWKS endpoint behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Jwks {
    Up,
    /// `503 Service Unavailable`.
    Down,
    /// Answers after 8 seconds.
    Slow,
}

/// Where the metadata is published, relative to the issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Discovery {
    /// `/.well-known/oauth-authorization-server{path}` (RFC 8414).
    OAuth,
    /// `{path}/.well-known/openid-configuration` only (the last resort).
    OpenIdAppended,
}

#[derive(Clone, Debug)]
pub(crate) struct IssuerOptions {
    pub(crate) path: &'static str,
    pub(crate) discovery: Discovery,
    /// The `issuer` the metadata claims, when not the real one.
    pub(crate) claimed_issuer: Option<String>,
}

impl Default for IssuerOptions {
    fn default() -> Self {
        Self { path: "", discovery: Discovery::OAuth, claimed_issuer: None }
    }
}

struct IssuerState {
    url: String,
    origin: String,
    options: IssuerOptions,
    keys: Mutex<Vec<Value>>,
    jwks: Mutex<Jwks>,
    jwks_cache_control: Mutex<Option<String>>,
    jwks_hits: AtomicUsize,
    metadata_hits: AtomicUsize,
    /// token → introspection answer; unknown tokens are inactive.
    tokens: Mutex<HashMap<String, Value>>,
    introspection_hits: AtomicUsize,
    /// (Authorization header, form body) of the last introspection request.
    last_introspection: Mutex<Option<(Option<String>, String)>>,
}

/// The authorization server the tests steer.
pub(crate) struct Issuer {
    /// The issuer identifier.
    pub(crate) url: String,
    state: Arc<IssuerState>,
}

impl Issuer {
    pub(crate) async fn start() -> Self {
        Self::start_with(IssuerOptions::default()).await
    }

    pub(crate) async fn start_with(options: IssuerOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let url = format!("{origin}{}", options.path);
        let state = Arc::new(IssuerState {
            url: url.clone(),
            origin,
            options,
            keys: Mutex::new(Vec::new()),
            jwks: Mutex::new(Jwks::Up),
            jwks_cache_control: Mutex::new(None),
            jwks_hits: AtomicUsize::new(0),
            metadata_hits: AtomicUsize::new(0),
            tokens: Mutex::new(HashMap::new()),
            introspection_hits: AtomicUsize::new(0),
            last_introspection: Mutex::new(None),
        });
        let app = Router::new().fallback(issuer_endpoint).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    /// Publishes exactly these keys.
    pub(crate) fn publish(&self, keys: &[&SigningKey]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    pub(crate) fn set_jwks(&self, mode: Jwks) {
        *self.state.jwks.lock().unwrap() = mode;
    }

    pub(crate) fn set_jwks_cache_control(&self, value: &str) {
        *self.state.jwks_cache_control.lock().unwrap() = Some(value.into());
    }

    pub(crate) fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub(crate) fn metadata_hits(&self) -> usize {
        self.state.metadata_hits.load(Ordering::SeqCst)
    }

    /// Makes introspection of `token` answer `answer`.
    pub(crate) fn introspects(&self, token: &str, answer: Value) {
        self.state.tokens.lock().unwrap().insert(token.into(), answer);
    }

    pub(crate) fn introspection_hits(&self) -> usize {
        self.state.introspection_hits.load(Ordering::SeqCst)
    }

    pub(crate) fn last_introspection(&self) -> (Option<String>, String) {
        self.state.last_introspection.lock().unwrap().clone().unwrap()
    }

    /// Claims of a good access token for `audience`: subject alice, client
    /// notes-app, scope notes:read, valid for five minutes.
    pub(crate) fn claims(&self, audience: &str) -> Value {
        let now = now();
        json!({
            "iss": self.url,
            "aud": audience,
            "sub": "alice",
            "client_id": "notes-app",
            "scope": "notes:read",
            "iat": now,
            "exp": now + 300,
        })
    }
}

async fn issuer_endpoint(State(state): State<Arc<IssuerState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let issuer_path = state.options.path;
    let metadata_path = match state.options.discovery {
        Discovery::OAuth => format!("/.well-known/oauth-authorization-server{issuer_path}"),
        Discovery::OpenIdAppended => format!("{issuer_path}/.well-known/openid-configuration"),
    };
    if path == metadata_path {
        state.metadata_hits.fetch_add(1, Ordering::SeqCst);
        return Json(json!({
            "issuer": state.options.claimed_issuer.clone().unwrap_or_else(|| state.url.clone()),
            "authorization_endpoint": format!("{}/authorize", state.origin),
            "token_endpoint": format!("{}/token", state.origin),
            "jwks_uri": format!("{}/jwks", state.origin),
            "introspection_endpoint": format!("{}/introspect", state.origin),
            "response_types_supported": ["code"],
        }))
        .into_response();
    }
    match path.as_str() {
        "/jwks" => {
            state.jwks_hits.fetch_add(1, Ordering::SeqCst);
            let mode = *state.jwks.lock().unwrap();
            match mode {
                Jwks::Down => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
                Jwks::Slow => tokio::time::sleep(Duration::from_secs(8)).await,
                Jwks::Up => {}
            }
            let keys = state.keys.lock().unwrap().clone();
            let mut response = Json(json!({ "keys": keys })).into_response();
            if let Some(cc) = state.jwks_cache_control.lock().unwrap().clone() {
                response.headers_mut().insert(http::header::CACHE_CONTROL, cc.parse().unwrap());
            }
            response
        }
        "/introspect" => {
            state.introspection_hits.fetch_add(1, Ordering::SeqCst);
            let auth =
                request.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
            let body = axum::body::to_bytes(request.into_body(), 1 << 16).await.unwrap();
            let form = String::from_utf8(body.to_vec()).unwrap();
            *state.last_introspection.lock().unwrap() = Some((auth, form.clone()));
            let token = form
                .split('&')
                .find_map(|pair| pair.strip_prefix("token="))
                .map(|t| t.replace("%2F", "/").replace("%2B", "+").replace("%3D", "="))
                .unwrap_or_default();
            let answer = state.tokens.lock().unwrap().get(&token).cloned();
            Json(answer.unwrap_or_else(|| json!({"active": false}))).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A plain axum app (not an MCP server) guarded by the layer, on 127.0.0.1.
pub(crate) struct App {
    /// The canonical URL of the protected endpoint, `http://127.0.0.1:PORT/mcp`.
    pub(crate) resource: String,
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
}

impl App {
    /// Binds first, so the resource URL (with its port) is known to `build`.
    pub(crate) async fn start(build: impl FnOnce(&str) -> ResourceServer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resource = format!("http://{addr}/mcp");
        let resource_server = build(&resource);
        let app = Router::new()
            .route("/mcp", post(whoami))
            .route("/mcp/notes", post(add_note))
            .layer(resource_server.layer());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { resource, addr, client: reqwest::Client::new() }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST /mcp with `Authorization: Bearer <token>`.
    pub(crate) async fn call(&self, token: &str) -> reqwest::Response {
        self.client.post(self.url("/mcp")).bearer_auth(token).send().await.unwrap()
    }
}

/// Echoes the identity the layer handed over.
async fn whoami(Extension(caller): Extension<Arc<Identity>>) -> Json<Value> {
    Json(json!({
        "subject": caller.subject,
        "client_id": caller.client_id,
        "scopes": caller.scopes,
        "claims": caller.claims,
    }))
}

/// Needs notes:read and notes:write; says so with the marker when they are missing.
async fn add_note(Extension(caller): Extension<Arc<Identity>>) -> Response<Body> {
    let needed = ["notes:read", "notes:write"];
    if !caller.has_all_scopes(&needed) {
        let marker = InsufficientScope { scopes: needed.map(String::from).to_vec() };
        return (StatusCode::OK, Extension(marker), "the layer must replace this").into_response();
    }
    "added".into_response()
}

/// The `WWW-Authenticate` value of a response.
pub(crate) fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

/// The usual set-up: an issuer with one ES256 key, and the app trusting it.
pub(crate) async fn setup() -> (Issuer, SigningKey, App) {
    setup_with(|config| config).await
}

pub(crate) async fn setup_with(
    tune: impl FnOnce(ResourceServerConfig) -> ResourceServerConfig,
) -> (Issuer, SigningKey, App) {
    let issuer = Issuer::start().await;
    let key = SigningKey::es256("k1");
    issuer.publish(&[&key]);
    let config =
        tune(ResourceServerConfig::new(&issuer.url).with_scopes_supported(["notes:read", "notes:write"]));
    let app = App::start(|resource| ResourceServer::new(config, resource).unwrap()).await;
    (issuer, key, app)
}

pub(crate) async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    let challenge = challenge(&response);
    assert!(challenge.starts_with(r#"Bearer error="invalid_token""#), "{challenge}");
    assert!(challenge.contains("resource_metadata=\"http://"), "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}
