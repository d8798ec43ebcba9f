//! The client of HTTP upstreams: HTTP/1.1 connections kept open and reused
//! (hyper's connection API, with a pool of its own), TLS by rustls; or
//! reqwest, when the environment names a proxy.
//!
//! The pool is small on purpose. A request takes the connection last put
//! back to its origin, sends on it, and the connection goes back once the
//! answer's body has been read to its end. Nothing else runs per request:
//! no task is spawned to watch for the connection's readiness, and no
//! timer is set.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use mcp_server::core::error::with_causes;
use tower::Service as _;

use super::lock;

/// Longest wait for a TCP connection to an HTTP upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keep-alive on connections to HTTP upstreams (a GET stream may stay quiet for long).
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
/// How long an unused connection is kept open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Most unused connections kept, all origins together.
const MAX_IDLE: usize = 256;
/// Most requests sent again on a fresh connection when a kept one turns
/// out closed before the request went out.
const MAX_RETRIES: usize = 2;

/// The environment variables that name an HTTP proxy.
const PROXY_VARIABLES: [&str; 6] =
    ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An answer's body, whichever client read it.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// How requests reach HTTP upstreams. Cheap to clone (one pool).
#[derive(Debug, Clone)]
pub(crate) enum Client {
    /// Connections of this module's pool: the usual case.
    Direct(Arc<Pool>),
    /// reqwest, when the environment names a proxy (`HTTPS_PROXY` and the
    /// like), which it follows.
    Proxied(reqwest::Client),
}

impl Client {
    /// The client: TLS by rustls with the system's root certificates (or
    /// Mozilla's, when the system has none), connections kept alive.
    pub(crate) fn new() -> Result<Self, String> {
        if PROXY_VARIABLES.iter().any(|name| std::env::var_os(name).is_some()) {
            return reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .map(Self::Proxied)
                .map_err(|e| format!("the HTTP client could not be built: {e}"));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        http.set_keepalive(Some(TCP_KEEPALIVE));
        let tls = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(tls) => tls,
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
        };
        let connector = tls.https_or_http().enable_http1().wrap_connector(http);
        Ok(Self::Direct(Arc::new(Pool { connector, idle: Mutex::default() })))
    }

    /// Sends `request` (whose URI is left to this function) to `target`;
    /// the answer's head, with its body still to read.
    pub(crate) async fn send(
        &self,
        target: &Target,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Body>, String> {
        match self {
            Self::Direct(pool) => pool.send(target, request).await,
            Self::Proxied(client) => {
                let (mut parts, body) = request.into_parts();
                parts.uri = target.uri.clone();
                let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
                    .map_err(|e| with_causes(&e))?;
                let response = client.execute(request).await.map_err(|e| with_causes(&e))?;
                Ok(http::Response::from(response)
                    .map(|body| body.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync()))
            }
        }
    }
}

/// Where requests go, parsed once: the URI, the origin connections are
/// kept for, the request target written on the request line, and the
/// `Host` header.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    uri: Uri,
    origin: Option<Origin>,
    /// The origin-form (path and query), as HTTP/1.1 sends to a server
    /// (RFC 9112 §3.2.1).
    path: Uri,
    pub(crate) host: Option<HeaderValue>,
}

/// The scheme and authority of a URI: requests to the same one share connections.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: Scheme,
    authority: Authority,
}

impl Target {
    /// The target of `uri`.
    pub(crate) fn new(uri: Uri) -> Self {
        let host = uri.authority().and_then(|authority| {
            // As RFC 9110 §7.2 has it: without the user, the port only when not the default.
            let default_port = if uri.scheme() == Some(&Scheme::HTTPS) { 443 } else { 80 };
            match uri.port_u16() {
                Some(port) if port != default_port => {
                    HeaderValue::try_from(format!("{}:{port}", authority.host())).ok()
                }
                _ => HeaderValue::try_from(authority.host()).ok(),
            }
        });
        let origin = match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                Some(Origin { scheme: scheme.clone(), authority: authority.clone() })
            }
            _ => None,
        };
        let path = uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .parse::<Uri>()
            .unwrap_or_else(|_| Uri::from_static("/"));
        Self { uri, origin, path, host }
    }
}

/// Kept connections, with the TLS-capable connector that opens new ones.
pub(crate) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    idle: Mutex<IdleConnections>,
}

/// The unused connections, newest last.
#[derive(Default)]
struct IdleConnections {
    connections: Vec<Idle>,
    /// Whether a [`sweep`] task runs.
    sweeping: bool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("idle", &lock(&self.idle).connections.len()).finish_non_exhaustive()
    }
}

/// An unused connection.
struct Idle {
    origin: Origin,
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

impl Pool {
    async fn send(
        self: &Arc<Self>,
        target: &Target,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Body>, String> {
        let Some(origin) = &target.origin else {
            return Err(format!("{} is not an absolute URL", target.uri));
        };
        let (mut parts, body) = request.into_parts();
        parts.uri = target.path.clone();
        let mut request = http::Request::from_parts(parts, Full::new(body));
        for _ in 0..=MAX_RETRIES {
            let (mut sender, reused) = self.ready_connection(target, origin).await?;
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let keep = Keep { pool: Arc::downgrade(self), origin: origin.clone(), sender };
                    return Ok(response.map(|body| PooledBody::new(body, keep).boxed_unsync()));
                }
                Err(mut error) => match error.take_message() {
                    // Not sent: the kept connection closed first; try another.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(with_causes(error.error())),
                },
            }
        }
        Err("the upstream closed every connection before the request could be sent".into())
    }

    /// A connection to `origin` ready for a request: a kept one when one is
    /// still open (`true`), else a new one.
    async fn ready_connection(
        &self,
        target: &Target,
        origin: &Origin,
    ) -> Result<(SendRequest<Full<Bytes>>, bool), String> {
        while let Some(mut sender) = self.take(origin) {
            if sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
            // Closed while unused (the server's keep-alive ran out): the next one.
        }
        // Boxed: connecting is rare, and its state would otherwise make
        // every request's future larger (and slower to move).
        let mut sender = Box::pin(self.connect(target, origin)).await?;
        sender.ready().await.map_err(|e| with_causes(&e))?;
        Ok((sender, false))
    }

    /// The newest unused connection to `origin` that is still open, if any.
    fn take(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = lock(&self.idle);
        while let Some(position) = idle.connections.iter().rposition(|kept| kept.origin == *origin) {
            let kept = idle.connections.remove(position);
            if !kept.sender.is_closed() && kept.since.elapsed() < IDLE_TIMEOUT {
                return Some(kept.sender);
            }
        }
        None
    }

    /// Opens a connection to `target`, served by a task of its own.
    async fn connect(&self, target: &Target, origin: &Origin) -> Result<SendRequest<Full<Bytes>>, String> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx)).await.map_err(|e| with_causes(e.as_ref()))?;
        let uri = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| with_causes(&e))?;
        let io = connector.call(uri).await.map_err(|e| with_causes(e.as_ref()))?;
        let (sender, connection) = http1::handshake(io).await.map_err(|e| with_causes(&e))?;
        let upstream = target.uri.to_string();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%upstream, error = %with_causes(&e), "a connection to an HTTP upstream ended");
            }
        });
        Ok(sender)
    }

    /// Keeps `sender` for the next request to `origin`, and makes sure a
    /// sweeper closes it once unused for [`IDLE_TIMEOUT`].
    fn put_back(self: Arc<Self>, origin: Origin, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.connections.len() >= MAX_IDLE {
            idle.connections.remove(0);
        }
        idle.connections.push(Idle { origin, sender, since: Instant::now() });
        if !idle.sweeping {
            idle.sweeping = true;
            tokio::spawn(sweep(Arc::downgrade(&self)));
        }
    }
}

/// Closes the pool's connections unused for [`IDLE_TIMEOUT`] (and drops
/// those the server closed), until none is left.
async fn sweep(pool: Weak<Pool>) {
    loop {
        tokio::time::sleep(IDLE_TIMEOUT / 3).await;
        let Some(pool) = pool.upgrade() else { return };
        let mut idle = lock(&pool.idle);
        idle.connections.retain(|kept| kept.since.elapsed() < IDLE_TIMEOUT && !kept.sender.is_closed());
        if idle.connections.is_empty() {
            idle.sweeping = false;
            return;
        }
    }
}

/// A connection to put back once its answer has been read.
struct Keep {
    pool: Weak<Pool>,
    origin: Origin,
    sender: SendRequest<Full<Bytes>>,
}

/// An answer's body that puts its connection back into the pool once read
/// to its end (or when it had none); dropped before, the connection closes.
struct PooledBody {
    body: Incoming,
    keep: Option<Keep>,
    ended: bool,
}

impl PooledBody {
    fn new(body: Incoming, keep: Keep) -> Self {
        let ended = body.is_end_stream();
        Self { body, keep: Some(keep), ended }
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match polled {
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(|e| -> BoxError { Box::new(e) }))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if !self.is_end_stream() {
            return;
        }
        if let Some(Keep { pool, origin, sender }) = self.keep.take()
            && let Some(pool) = pool.upgrade()
        {
            pool.put_back(origin, sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt as _;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::*;

    /// A hyper HTTP/1.1 server on 127.0.0.1 answering `{"n":N}` to every
    /// request, with `Connection: close` when `close` is set.
    struct Server {
        uri: Uri,
        /// The connections it accepted.
        accepted: Arc<AtomicUsize>,
        /// Their tasks, to close them all at once.
        connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    }

    async fn server(close: bool) -> (Uri, Arc<AtomicUsize>) {
        let server = start(close).await;
        (server.uri, server.accepted)
    }

    async fn start(close: bool) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let tasks = connections.clone();
        tokio::spawn(async move {
            let answered = Arc::new(AtomicUsize::new(0));
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let answered = answered.clone();
                let service = service_fn(move |request: http::Request<Incoming>| {
                    let n = answered.fetch_add(1, Ordering::SeqCst);
                    async move {
                        assert_eq!(request.uri().to_string(), "/mcp?x=1", "origin-form request target");
                        let mut response =
                            http::Response::new(Full::new(Bytes::from(format!("{{\"n\":{n}}}"))));
                        if close {
                            response
                                .headers_mut()
                                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                        }
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                lock(&tasks).push(tokio::spawn(connection).abort_handle());
            }
        });
        let uri = format!("http://{addr}/mcp?x=1").parse().expect("uri");
        Server { uri, accepted, connections }
    }

    async fn get(client: &Client, target: &Target) -> String {
        let response = client.send(target, http::Request::new(Bytes::new())).await.expect("answered");
        let body = response.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(body.to_vec()).expect("utf-8")
    }

    /// `calls` requests one after another, each answered in turn; the
    /// connections the server accepted for them.
    async fn one_after_another(close: bool, calls: usize) -> usize {
        let (uri, accepted) = server(close).await;
        let (client, target) = (Client::new().expect("client"), Target::new(uri));
        for n in 0..calls {
            assert_eq!(get(&client, &target).await, format!("{{\"n\":{n}}}"));
        }
        accepted.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn sequential_requests_share_one_kept_connection() {
        assert_eq!(one_after_another(false, 5).await, 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_not_used_again() {
        assert_eq!(one_after_another(true, 3).await, 3);
    }

    #[tokio::test]
    async fn a_connection_whose_answer_was_not_read_is_not_kept() {
        let (uri, accepted) = server(false).await;
        let (client, target) = (Client::new().expect("client"), Target::new(uri));
        let unread = client.send(&target, http::Request::new(Bytes::new())).await.expect("answered");
        drop(unread);
        assert_eq!(get(&client, &target).await, "{\"n\":1}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_of_their_own_and_keep_them() {
        let (uri, accepted) = server(false).await;
        let (client, target) = (Client::new().expect("client"), Target::new(uri));
        let both = tokio::join!(get(&client, &target), get(&client, &target));
        assert_ne!(both.0, both.1);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        for _ in 0..4 {
            get(&client, &target).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "the two kept connections serve on");
    }

    #[tokio::test]
    async fn kept_connections_the_server_closed_meanwhile_give_way_to_a_new_one() {
        let server = start(false).await;
        let (client, target) = (Client::new().expect("client"), Target::new(server.uri.clone()));
        let three = tokio::join!(get(&client, &target), get(&client, &target), get(&client, &target));
        assert_eq!(server.accepted.load(Ordering::SeqCst), 3, "{three:?}");
        for connection in lock(&server.connections).drain(..) {
            connection.abort(); // the server closes all three
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&client, &target).await, "{\"n\":3}");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 4);
    }
}
