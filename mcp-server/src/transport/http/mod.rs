//! The Streamable HTTP transport: one endpoint (conventionally `/mcp`) that
//! serves both protocol eras.
//!
//! - **Modern** (2026-07-28) requests are stateless POSTs: the
//!   `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers are checked
//!   against the body, and each request is answered with JSON, or with an SSE
//!   stream when the handler sends notifications first. Closing that stream
//!   cancels the request.
//! - **Legacy** (2025-03-26 to 2025-11-25) clients `initialize` a session
//!   (`Mcp-Session-Id`), may open a GET stream for `list_changed`
//!   notifications, and end the session with DELETE.
//!
//! ```no_run
//! use mcp_server::{tool, Server};
//!
//! /// Says hello.
//! #[tool]
//! async fn hello() -> &'static str {
//!     "Hello!"
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     Server::new("hello", "1.0.0").tool(hello).serve_http("127.0.0.1:8080").await
//! }
//! ```

mod app;
mod backplane;
mod common;
mod cors;
mod event_store;
mod guard;
mod headers;
mod legacy_sse;
mod listen;
mod mounts;
mod post;
#[cfg(feature = "redis")]
mod redis_backplane;
mod reply;
mod sessions;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Method, Request, Response, StatusCode, header};
use tokio::net::{TcpListener, ToSocketAddrs};

use crate::BoxFuture;
use crate::server::Server;
pub(crate) use app::{HttpApp, check_auth};
pub use cors::{BrowserCors, BrowserCorsLayer, cors_layer};
pub use event_store::{
    DEFAULT_BYTES_PER_SESSION, DEFAULT_EVENTS_PER_STREAM, DEFAULT_STREAMS_PER_SESSION, EventStore,
    InMemoryEventStore, StoredEvent,
};
pub use guard::{HostOriginGuard, HostOriginGuardLayer, HostOriginPolicy, Refusal};
pub use legacy_sse::{
    DEFAULT_MAX_SSE_SESSIONS, DEFAULT_MAX_SSE_SESSIONS_PER_PRINCIPAL, DEFAULT_SSE_KEEP_ALIVE, LegacySse,
};
pub use mounts::Mounts;
pub use sessions::HttpOptions;
#[cfg(feature = "redis")]
pub use sessions::InvalidRedisUrl;
use sessions::Sessions;

/// Largest POST body accepted; a larger one is answered with 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The Streamable HTTP endpoint of a [`Server`], as a [`tower::Service`].
///
/// Cheap to clone; clones share the legacy sessions. Mount it with
/// `axum::Router::new().route_service("/mcp", server.streamable_http())`.
#[derive(Debug, Clone)]
pub struct StreamableHttp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    server: Server,
    sessions: Sessions,
    options: HttpOptions,
}

impl StreamableHttp {
    /// The endpoint for `server`, with the default [`HttpOptions`].
    pub fn new(server: Server) -> Self {
        Self::with_options(server, HttpOptions::default())
    }

    /// The endpoint for `server`, with `options` for its legacy sessions and streams.
    ///
    /// Idle sessions are ended by a background task started with the first
    /// request; it stops when the last clone of the endpoint is dropped, which
    /// also ends the sessions still open.
    pub fn with_options(server: Server, options: HttpOptions) -> Self {
        Self { inner: Arc::new(Inner { server, sessions: Sessions::new(&options), options }) }
    }

    /// How many legacy sessions are open.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    async fn handle(self, request: Request<Body>) -> Response<Body> {
        self.inner.sessions.start(&self.inner.server);
        match *request.method() {
            Method::POST => post::handle(&self.inner, request).await,
            Method::GET => self.get(request).await,
            Method::DELETE => reply::batched(self.delete(request).await).await,
            _ => method_not_allowed(),
        }
    }

    /// GET: a legacy session's stream of server notifications.
    async fn get(&self, request: Request<Body>) -> Response<Body> {
        let Some(id) = headers::session_id(request.headers()) else {
            return method_not_allowed();
        };
        // Like POST: a session answers only the caller who opened it (SPEC §4.2).
        let who = common::caller(request.extensions());
        match post::owned_session(&self.inner, &id, who.as_deref()).await {
            Ok(Some(session)) => {
                reply::get_stream(&self.inner.server, &self.inner.options, session, request.headers()).await
            }
            Ok(None) => reply::status(StatusCode::NOT_FOUND),
            Err(unreachable) => unreachable.with_id(None),
        }
    }

    /// DELETE: ends a legacy session.
    async fn delete(&self, request: Request<Body>) -> Response<Body> {
        let Some(id) = headers::session_id(request.headers()) else {
            return method_not_allowed();
        };
        let who = common::caller(request.extensions());
        match post::owned_session(&self.inner, &id, who.as_deref()).await {
            Ok(Some(_)) if self.inner.sessions.end(&id) => reply::status(StatusCode::NO_CONTENT),
            Ok(_) => reply::status(StatusCode::NOT_FOUND),
            Err(unreachable) => unreachable.with_id(None),
        }
    }
}

fn method_not_allowed() -> Response<Body> {
    let mut response = reply::status(StatusCode::METHOD_NOT_ALLOWED);
    response.headers_mut().insert(header::ALLOW, http::HeaderValue::from_static("GET, POST, DELETE"));
    response
}

impl tower::Service<Request<Body>> for StreamableHttp {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}

impl Server {
    /// This server's Streamable HTTP endpoint, to mount in your own router.
    ///
    /// It does not check `Host` or `Origin` by itself: put a
    /// [`HostOriginGuardLayer`] in front (as [`Server::http_app`] does), since
    /// MCP servers must validate `Origin` against DNS rebinding.
    pub fn streamable_http(&self) -> StreamableHttp {
        StreamableHttp::new(self.clone())
    }

    /// Serves this server over Streamable HTTP at `/mcp` (and HTTP+SSE at
    /// `/sse`) on `addr` until Ctrl-C or SIGTERM, with the default hardening:
    /// bound to loopback, only loopback `Host`/`Origin` values are accepted;
    /// elsewhere use [`Server::serve`] with a configuration naming the allowed
    /// hosts or the public URL.
    pub async fn serve_http(self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        let mut config = crate::config::Config::default();
        config.server.bind = Some(listener.local_addr()?.to_string());
        let app = self.http_app_parts(&config).map_err(io::Error::other)?;
        let grace = std::time::Duration::from_secs(config.http.shutdown_grace_secs);
        crate::serve::serve_until_signal(listener, app, grace).await
    }
}
