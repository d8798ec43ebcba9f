//! CORS for browser clients, at no cost to the others.
//!
//! Browsers send `Origin` on every cross-origin request; most MCP clients
//! are not browsers and send none. Those requests skip the CORS machinery
//! and get only the `Vary` header a CORS-aware response carries, so caches
//! keep answers for different origins apart.

use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::TryFutureExt as _;
use futures_util::future::{Either, MapOk};
use http::header::{ORIGIN, VARY};
use http::{HeaderName, HeaderValue, Method, Request, Response};
use tower::{Layer, Service};
use tower_http::cors::{AllowHeaders, AllowOrigin, Cors, CorsLayer};

/// Response headers browser clients must be able to read (SPEC §3.2, CORS;
/// `retry-after` for the authorization server's `429`s).
const EXPOSED_HEADERS: [&str; 4] =
    ["mcp-session-id", "www-authenticate", "mcp-protocol-version", "retry-after"];

/// The request headers the CORS answer depends on.
const VARY_ON: HeaderValue =
    HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers");

/// CORS for browser clients: any origin may ask (the Host/Origin guard
/// decides which may act), any request header may be sent (so
/// `Mcp-Param-*` works), and the MCP response headers are exposed.
/// Preflight is answered here, before any other layer, auth included.
///
/// ```
/// use axum::{Router, routing::post};
/// let app: Router = Router::new().route("/mcp", post(|| async { "ok" })).layer(mcp_server::transport::http::cors_layer());
/// # let _ = app;
/// ```
pub fn cors_layer() -> BrowserCorsLayer {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(24 * 60 * 60));
    BrowserCorsLayer { cors }
}

/// The layer [`cors_layer`] returns.
#[derive(Clone, Debug)]
pub struct BrowserCorsLayer {
    cors: CorsLayer,
}

impl<S> Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCors { cors: self.cors.layer(inner) }
    }
}

/// The service [`BrowserCorsLayer`] wraps around `S`.
#[derive(Clone, Debug)]
pub struct BrowserCors<S> {
    cors: Cors<S>,
}

/// The inner service's future, adding `Vary` to its response.
type WithVary<F, B> = MapOk<F, fn(Response<B>) -> Response<B>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BrowserCors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<<Cors<S> as Service<Request<ReqBody>>>::Future, WithVary<S::Future, ResBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readies the one inner service both paths call.
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Without `Origin` only an `OPTIONS` request is still CORS business
        // (answered as a preflight, as before).
        if request.headers().contains_key(ORIGIN) || request.method() == Method::OPTIONS {
            return Either::Left(self.cors.call(request));
        }
        let add_vary: fn(Response<ResBody>) -> Response<ResBody> = |mut response| {
            response.headers_mut().append(VARY, VARY_ON);
            response
        };
        Either::Right(self.cors.get_mut().call(request).map_ok(add_vary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS};
    use tower::ServiceExt as _;

    async fn answer(request: Request<Body>) -> Response<Body> {
        let inner = tower::service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::from("inner")))
        });
        cors_layer().layer(inner).oneshot(request).await.unwrap()
    }

    fn vary(response: &Response<Body>) -> Vec<&HeaderValue> {
        response.headers().get_all(VARY).iter().collect()
    }

    #[tokio::test]
    async fn requests_without_origin_get_the_same_vary_and_no_cors_headers() {
        let plain = answer(Request::post("/mcp").body(Body::empty()).unwrap()).await;
        let browser = answer(
            Request::post("/mcp").header(ORIGIN, "http://localhost:5173").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(vary(&plain), vary(&browser), "one Vary for both, as caches need");
        assert_eq!(vary(&plain), [&VARY_ON]);
        assert!(plain.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_eq!(browser.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:5173");
        let exposed = browser.headers()[ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap();
        assert!(exposed.contains("mcp-session-id") && exposed.contains("www-authenticate"), "{exposed}");
    }

    #[tokio::test]
    async fn options_is_answered_as_preflight_with_or_without_origin() {
        for origin in [None, Some("http://localhost:5173")] {
            let mut request = Request::options("/mcp").header("access-control-request-method", "POST");
            if let Some(origin) = origin {
                request = request.header(ORIGIN, origin);
            }
            let response = answer(request.body(Body::empty()).unwrap()).await;
            let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
            assert!(body.is_empty(), "the preflight answer, not the inner service's ({origin:?})");
        }
    }
}
