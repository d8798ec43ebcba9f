//! The tower layer: serves protected-resource metadata, demands a bearer
//! token everywhere else, hands the caller's [`Identity`] to the service, and
//! turns the service's [`InsufficientScope`] into a `403` challenge.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use mcp_core::Identity;
use mcp_core::identity::InsufficientScope;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::challenge::{BearerChallenge, BearerError};
use crate::error::{ConfigError, TokenError};
use crate::metadata::{PROTECTED_RESOURCE_WELL_KNOWN, ProtectedResourceMetadata, published_scopes};
use crate::resource_server::ResourceServer;

/// Discovery documents of a co-hosted authorization server: public (RFC 8615).
const PUBLIC_WELL_KNOWN: [&str; 2] =
    ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"];

/// A boxed, sendable future, as [`TokenVerifier`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that turns a bearer token into an [`Identity`].
///
/// [`ResourceServer`] is the built-in one; implement this to guard a service
/// with tokens checked some other way, and build the layer with
/// [`AuthLayer::with_verifier`].
pub trait TokenVerifier: Send + Sync + fmt::Debug + 'static {
    /// Checks `token` (never log it) and says who presented it.
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, TokenError>>;

    /// Who presented `token`, when that is already known without waiting for
    /// anything (a token verified earlier and still valid); `None` otherwise,
    /// and the layer calls [`verify`](Self::verify). The default knows nothing.
    ///
    /// Answer only for tokens [`verify`](Self::verify) accepted: the layer
    /// checks a token's syntax (RFC 6750 §2.1) only before calling `verify`.
    fn verified(&self, token: &str) -> Option<Arc<Identity>> {
        let _ = token;
        None
    }
}

/// Guards any HTTP service with bearer tokens (RFC 6750) and publishes the
/// protected-resource metadata (RFC 9728).
///
/// For each request:
/// - `GET`/`HEAD`/`OPTIONS` on `/.well-known/oauth-protected-resource` and on
///   its path-inserted form for the resource (such as
///   `/.well-known/oauth-protected-resource/mcp`) answer the metadata, with
///   CORS `*` and no authentication; other methods get `405` with `Allow`.
/// - Other `/.well-known/` paths and every `OPTIONS` request (CORS preflight)
///   pass through untouched.
/// - Everything else needs `Authorization: Bearer <token>`. Without one:
///   `401` and `WWW-Authenticate: Bearer resource_metadata="…", scope="…"`;
///   with a bad one: `401 error="invalid_token"`. With a good one, the
///   caller's identity is put into the request extensions as an
///   `Arc<Identity>` (shared with the token cache, never copied).
/// - When the service's response carries the [`InsufficientScope`]
///   extension, it is replaced by `403 error="insufficient_scope"` naming
///   the scopes.
///
/// Apply it where it sees the request's full path, such as
/// `axum::Router::layer`, around a service that expects `http` requests.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    gate: Arc<Gate>,
}

#[derive(Clone, Debug)]
struct Gate {
    verifier: Arc<dyn TokenVerifier>,
    /// The published metadata documents: the main endpoint's first, then one
    /// per other endpoint of the same server (see [`AuthLayer::with_endpoint`]).
    documents: Vec<Published>,
    /// Scopes offered in `401` challenges.
    challenge_scopes: Vec<String>,
    required_scopes: Vec<String>,
}

/// One protected-resource metadata document as the gate serves it.
#[derive(Clone, Debug)]
struct Published {
    /// The request path of the endpoint it describes (`/mcp`, `/sse`), or
    /// `None` for the main endpoint, which also answers for every other path.
    endpoint_path: Option<String>,
    body: Bytes,
    /// Request paths of the document, without a trailing slash.
    paths: Vec<String>,
    url: String,
}

impl Published {
    fn new(metadata: &ProtectedResourceMetadata, url: String, paths: &[String]) -> Self {
        Self {
            endpoint_path: None,
            body: Bytes::from(serde_json::to_vec(metadata).unwrap_or_default()),
            paths: paths.iter().map(|p| p.trim_end_matches('/').to_owned()).collect(),
            url,
        }
    }
}

impl AuthLayer {
    /// The layer for a [`ResourceServer`]: its metadata, its required scopes.
    pub fn new(resource_server: ResourceServer) -> Self {
        let metadata = resource_server.protected_resource_metadata().clone();
        let (url, paths) = resource_server.well_known();
        let (url, paths) = (url.to_owned(), paths.to_vec());
        let required = resource_server.required_scopes().to_vec();
        Self { gate: Arc::new(Gate::new(Arc::new(resource_server), &metadata, url, &paths, required)) }
    }

    /// A layer with any [`TokenVerifier`], publishing `metadata`.
    pub fn with_verifier(
        verifier: impl TokenVerifier,
        metadata: ProtectedResourceMetadata,
    ) -> Result<Self, ConfigError> {
        let url = metadata.metadata_url()?;
        let paths = metadata.well_known_paths()?;
        Ok(Self { gate: Arc::new(Gate::new(Arc::new(verifier), &metadata, url, &paths, Vec::new())) })
    }

    /// Scopes every request needs (`403 insufficient_scope` without them),
    /// replacing those the resource server was configured with.
    #[must_use]
    pub fn with_required_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        Arc::make_mut(&mut self.gate).required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Also protects the endpoint at `path` on the same origin (such as the
    /// legacy `/sse` and `/messages` endpoints beside `/mcp`), publishing its
    /// own metadata document, whose `resource` is that endpoint's URL, at the
    /// path-inserted well-known URL (RFC 9728 §3.1), and naming that document
    /// in the endpoint's challenges. Clients check that the `resource` they
    /// are told matches the URL they connected to (RFC 9728 §3.3), so each
    /// endpoint needs a document of its own. The verifier must accept tokens
    /// issued for any of the endpoints.
    ///
    /// ```
    /// use mcp_auth::{AuthLayer, ResourceServer, ResourceServerConfig};
    ///
    /// let rs = ResourceServer::new(ResourceServerConfig::new("https://idp.example.com"), "https://mcp.example.com/mcp")?;
    /// let layer = rs.layer().with_endpoint("/sse")?;
    /// assert_eq!(layer.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
    /// assert_eq!(
    ///     layer.metadata_url_for("/sse"),
    ///     "https://mcp.example.com/.well-known/oauth-protected-resource/sse"
    /// );
    /// # Ok::<(), mcp_auth::ConfigError>(())
    /// ```
    pub fn with_endpoint(mut self, path: &str) -> Result<Self, ConfigError> {
        let main = self.gate.main_metadata()?;
        let metadata = main.for_endpoint(path)?;
        let url = metadata.metadata_url()?;
        // Only the path-inserted form: the root form stays the main endpoint's.
        let paths = [format!("{PROTECTED_RESOURCE_WELL_KNOWN}{}", path.trim_end_matches('/'))];
        let mut published = Published::new(&metadata, url, &paths);
        published.endpoint_path = Some(path.trim_end_matches('/').to_owned());
        Arc::make_mut(&mut self.gate).documents.push(published);
        Ok(self)
    }

    /// The URL of the main endpoint's protected-resource metadata, as sent in
    /// its challenges.
    pub fn metadata_url(&self) -> &str {
        &self.gate.documents[0].url
    }

    /// The metadata URL named in challenges for a request to `path`.
    pub fn metadata_url_for(&self, path: &str) -> &str {
        &self.gate.document_for(path).url
    }
}

impl Gate {
    fn new(
        verifier: Arc<dyn TokenVerifier>,
        metadata: &ProtectedResourceMetadata,
        metadata_url: String,
        paths: &[String],
        required_scopes: Vec<String>,
    ) -> Self {
        Self {
            verifier,
            documents: vec![Published::new(metadata, metadata_url, paths)],
            challenge_scopes: published_scopes(metadata.scopes_supported.iter().cloned()),
            required_scopes,
        }
    }

    fn route(&self, method: &Method, path: &str, headers: &http::HeaderMap) -> Route {
        if let Some(rest) = path.strip_prefix(PROTECTED_RESOURCE_WELL_KNOWN)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            // A trailing slash is tolerated.
            let trimmed = path.trim_end_matches('/');
            return match self.documents.iter().position(|d| d.paths.iter().any(|p| p == trimmed)) {
                Some(index) => Route::Metadata(index),
                None => Route::NotFound,
            };
        }
        // Authorization-server discovery documents (RFC 8414, OpenID Discovery) are public.
        let under =
            |p: &str| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if PUBLIC_WELL_KNOWN.iter().any(|p| under(p)) {
            return Route::Pass;
        }
        // A CORS preflight carries no credentials and must come before auth;
        // any other OPTIONS request is protected like the rest.
        let preflight = method == Method::OPTIONS
            && headers.contains_key(http::header::ORIGIN)
            && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            return Route::Pass;
        }
        Route::Protected
    }

    /// The main endpoint's metadata, parsed back from the served document.
    fn main_metadata(&self) -> Result<ProtectedResourceMetadata, ConfigError> {
        serde_json::from_slice(&self.documents[0].body).map_err(|e| ConfigError::Invalid {
            key: "server.public_url",
            message: format!("the protected-resource metadata cannot be read back: {e}"),
        })
    }

    /// The index of the document describing the endpoint at `path`: its own
    /// when it has one, the main endpoint's (0) otherwise.
    fn document_index(&self, path: &str) -> usize {
        let path = path.trim_end_matches('/');
        self.documents.iter().position(|d| d.endpoint_path.as_deref() == Some(path)).unwrap_or(0)
    }

    fn document_for(&self, path: &str) -> &Published {
        &self.documents[self.document_index(path)]
    }

    /// RFC 9728 §3.1 / §3.2: the document, without authentication, readable cross-origin.
    fn metadata_response(&self, method: &Method, document: &Published) -> Response<Body> {
        const ALLOWED: &str = "GET, HEAD, OPTIONS";
        let (status, body) = match *method {
            Method::GET => (StatusCode::OK, Body::from(document.body.clone())),
            Method::HEAD => (StatusCode::OK, Body::empty()),
            Method::OPTIONS => (StatusCode::NO_CONTENT, Body::empty()),
            _ => (StatusCode::METHOD_NOT_ALLOWED, Body::empty()),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        match status {
            StatusCode::OK => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(CONTENT_LENGTH, HeaderValue::from(document.body.len()));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            }
            StatusCode::NO_CONTENT => {
                headers.insert(ALLOW, HeaderValue::from_static(ALLOWED));
                headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED));
                headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
                headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            }
            _ => {
                headers.insert(ALLOW, HeaderValue::from_static(ALLOWED));
            }
        }
        response
    }

    /// A challenge naming the metadata of document `doc` (see [`Gate::document_index`]).
    fn challenge(&self, doc: usize) -> BearerChallenge {
        BearerChallenge::new().with_resource_metadata(&self.documents[doc].url)
    }

    /// RFC 6750 §3.1: no token at all, so no error code; only where to get one.
    fn missing(&self, doc: usize) -> Response<Body> {
        let mut response =
            self.challenge(doc).with_scope(self.challenge_scopes.iter().cloned()).into_response();
        let body = serde_json::json!({
            "error_description": "This resource needs an OAuth 2.0 bearer token in the Authorization header \
                                  (RFC 6750); the WWW-Authenticate header says where to get one",
        });
        *response.body_mut() = Body::from(body.to_string());
        response
    }

    fn invalid(&self, doc: usize, error: BearerError, description: &str) -> Response<Body> {
        self.challenge(doc)
            .with_error(error)
            .with_description(description)
            .with_scope(self.challenge_scopes.iter().cloned())
            .into_response()
    }

    /// RFC 6750 §3.1 `insufficient_scope`, naming every scope the operation
    /// needs (MCP SEP-2350), never `offline_access` (SEP-2207).
    fn insufficient(&self, doc: usize, needed: &[String]) -> Response<Body> {
        let scopes = published_scopes(needed.iter().cloned());
        self.challenge(doc)
            .with_error(BearerError::InsufficientScope)
            .with_description(format!("This operation needs the scopes: {}", scopes.join(" ")))
            .with_scope(scopes)
            .into_response()
    }
}

/// `503` with `Retry-After` and a JSON-RPC error (no id: the request was not
/// read): the token's state cannot be read now, and the client should retry
/// with the same token rather than authorize again.
fn unavailable() -> Response<Body> {
    let body = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"The access token cannot be verified right now; retry later"}}"#;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("5"));
    response
}

impl Gate {
    /// The service's response, or `403` when it says the caller lacks scope.
    fn finish<B>(&self, doc: usize, response: Response<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        if let Some(needed) = response.extensions().get::<InsufficientScope>() {
            return self.insufficient(doc, &needed.scopes);
        }
        response.map(Body::new)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// The metadata document at this index of `Gate::documents`.
    Metadata(usize),
    NotFound,
    Pass,
    Protected,
}

#[derive(Debug, PartialEq, Eq)]
enum Presented<'a> {
    Missing,
    Token(&'a str),
    Malformed,
    Several,
}

/// RFC 6750 §2.1: the token only ever comes from `Authorization: Bearer`,
/// never from the query or the body. The token's syntax is not checked
/// here: see [`is_b64token`].
fn presented(headers: &HeaderMap) -> Presented<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Presented::Missing };
    if values.next().is_some() {
        return Presented::Several;
    }
    // `Bearer`, in any case, then spaces and the token (RFC 6750 §2.1).
    let value = value.as_bytes();
    let (scheme, rest) = value.split_at(value.len().min(6));
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first().is_some_and(|&b| b != b' ') {
        // Another scheme (Basic, …) carries no bearer token: treated as none.
        return Presented::Missing;
    }
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let end = rest.iter().rposition(|&b| b != b' ').map_or(start, |last| last + 1);
    match std::str::from_utf8(&rest[start..end]) {
        Ok(token) => Presented::Token(token),
        Err(_) => Presented::Malformed,
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, gate: self.gate.clone() }
    }
}

/// The service [`AuthLayer`] wraps around `S`.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let route = self.gate.route(request.method(), request.uri().path(), request.headers());
        let doc = self.gate.document_index(request.uri().path());
        // The common case: a token verified before. Nothing to wait for, so the
        // service driven to readiness takes the request at once. Only
        // well-formed tokens are ever verified, so a known one needs no
        // syntax check.
        if route == Route::Protected
            && let Presented::Token(token) = presented(request.headers())
            && let Some(identity) = self.gate.verifier.verified(token)
        {
            if !identity.has_all_scopes(&self.gate.required_scopes) {
                let refusal = self.gate.insufficient(doc, &self.gate.required_scopes);
                return AuthFuture::boxed(Box::pin(async move { Ok(refusal) }));
            }
            request.extensions_mut().insert(identity);
            let response = self.inner.call(request);
            return AuthFuture { kind: Kind::Known { response, gate: self.gate.clone(), doc } };
        }
        // The clone that was driven to readiness serves this request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let gate = self.gate.clone();
        AuthFuture::boxed(Box::pin(async move {
            match route {
                Route::Metadata(index) => {
                    return Ok(gate.metadata_response(request.method(), &gate.documents[index]));
                }
                Route::NotFound => return Ok(not_found()),
                Route::Pass => return inner.call(request).await.map(|r| r.map(Body::new)),
                Route::Protected => {}
            }
            let token = match presented(request.headers()) {
                Presented::Token(token) if is_b64token(token) => token.to_owned(),
                Presented::Missing => return Ok(gate.missing(doc)),
                Presented::Token(_) | Presented::Malformed => {
                    let why = "The Authorization header is not a valid Bearer token";
                    return Ok(gate.invalid(doc, BearerError::InvalidToken, why));
                }
                // RFC 6750 §3.1: more than one way of presenting a token is a bad request.
                Presented::Several => {
                    let why = "Send exactly one Authorization header";
                    return Ok(gate.invalid(doc, BearerError::InvalidRequest, why));
                }
            };
            let identity = match gate.verifier.verify(&token).await {
                Ok(identity) => identity,
                Err(error @ TokenError::Unavailable(_)) => {
                    tracing::debug!(reason = %error, "mcp-auth: bearer token not checkable now");
                    return Ok(unavailable());
                }
                Err(error) => {
                    // The reason, never the token; upstream failures were
                    // logged as warnings where they happened.
                    tracing::debug!(reason = %error, "mcp-auth: bearer token refused");
                    return Ok(gate.invalid(doc, BearerError::InvalidToken, error.description()));
                }
            };
            drop(token);
            if !identity.has_all_scopes(&gate.required_scopes) {
                return Ok(gate.insufficient(doc, &gate.required_scopes));
            }
            request.extensions_mut().insert(Arc::new(identity));
            Ok(gate.finish(doc, inner.call(request).await?))
        }))
    }
}

pin_project! {
    /// The future [`AuthService`] returns.
    pub struct AuthFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project! {
    #[project = KindProjection]
    enum Kind<F, E> {
        // A token verified before: the service's response, nothing boxed.
        Known { #[pin] response: F, gate: Arc<Gate>, doc: usize },
        // Everything else: the whole check.
        Boxed { future: BoxFuture<'static, Result<Response<Body>, E>> },
    }
}

impl<F, E> AuthFuture<F, E> {
    fn boxed(future: BoxFuture<'static, Result<Response<Body>, E>>) -> Self {
        Self { kind: Kind::Boxed { future } }
    }
}

impl<F, B, E> Future for AuthFuture<F, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProjection::Known { response, gate, doc } => {
                response.poll(cx).map_ok(|r| gate.finish(*doc, r))
            }
            KindProjection::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

fn not_found() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    /// What the layer makes of the headers, syntax check included.
    fn checked(headers: &HeaderMap) -> Presented<'_> {
        match presented(headers) {
            Presented::Token(token) if !is_b64token(token) => Presented::Malformed,
            other => other,
        }
    }

    #[test]
    fn bearer_header_forms() {
        assert_eq!(checked(&headers(&[])), Presented::Missing);
        assert_eq!(checked(&headers(&["Bearer abc.def-ghi_~+/=="])), Presented::Token("abc.def-ghi_~+/=="));
        assert_eq!(checked(&headers(&["bearer abc"])), Presented::Token("abc"));
        assert_eq!(checked(&headers(&["Basic dXNlcjpwdw=="])), Presented::Missing);
        assert_eq!(checked(&headers(&["Bearerish abc"])), Presented::Missing);
        assert_eq!(checked(&headers(&["Bear"])), Presented::Missing);
        assert_eq!(checked(&headers(&["BEARER   abc  "])), Presented::Token("abc"));
        assert_eq!(checked(&headers(&["Bearer"])), Presented::Malformed);
        assert_eq!(checked(&headers(&["Bearer "])), Presented::Malformed);
        assert_eq!(checked(&headers(&["Bearer a b"])), Presented::Malformed);
        assert_eq!(checked(&headers(&["Bearer a\"b"])), Presented::Malformed);
        assert_eq!(checked(&headers(&["Bearer =="])), Presented::Malformed);
        assert_eq!(checked(&headers(&["Bearer a", "Bearer b"])), Presented::Several);
    }

    #[derive(Debug)]
    struct Nobody;
    impl TokenVerifier for Nobody {
        fn verify<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Identity, TokenError>> {
            Box::pin(async { Err(TokenError::Opaque) })
        }
    }

    #[test]
    fn routes() {
        let metadata = ProtectedResourceMetadata::new("https://mcp.example.com/mcp", "https://idp");
        let layer = AuthLayer::with_verifier(Nobody, metadata).unwrap();
        let gate = &layer.gate;
        let none = http::HeaderMap::new();
        let route = |m: Method, p: &str| gate.route(&m, p, &none);
        assert_eq!(route(Method::GET, "/.well-known/oauth-protected-resource/mcp"), Route::Metadata(0));
        assert_eq!(route(Method::GET, "/.well-known/oauth-protected-resource/mcp/"), Route::Metadata(0));
        assert_eq!(route(Method::POST, "/.well-known/oauth-protected-resource"), Route::Metadata(0));
        assert_eq!(route(Method::GET, "/.well-known/oauth-protected-resource/other"), Route::NotFound);
        assert_eq!(route(Method::GET, "/.well-known/oauth-protected-resourcex"), Route::Protected);
        assert_eq!(route(Method::GET, "/.well-known/oauth-authorization-server"), Route::Pass);
        assert_eq!(route(Method::GET, "/.well-known/openid-configuration/tenant"), Route::Pass);
        assert_eq!(route(Method::GET, "/.well-known/anything-else"), Route::Protected);
        assert_eq!(route(Method::OPTIONS, "/mcp"), Route::Protected, "a bare OPTIONS is no preflight");
        let mut preflight = http::HeaderMap::new();
        preflight.insert(http::header::ORIGIN, "http://localhost:5173".parse().unwrap());
        preflight.insert(http::header::ACCESS_CONTROL_REQUEST_METHOD, "POST".parse().unwrap());
        assert_eq!(gate.route(&Method::OPTIONS, "/mcp", &preflight), Route::Pass);
        assert_eq!(route(Method::POST, "/mcp"), Route::Protected);
        assert_eq!(route(Method::GET, "/anything"), Route::Protected);
        assert_eq!(layer.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
    }
}
