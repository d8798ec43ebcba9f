//! The authorization server under test, over real HTTP on 127.0.0.1, with an
//! MCP stand-in behind its bearer gate, and a browser played by hand
//! (cookies and forms parsed from the raw responses).

// Each test binary uses a part of this; helpers may unwrap (a panic is the report).
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth::authorization_server::store::{AuthStore, MemoryStore};
use mcp_auth::{AuthorizationServer, AuthorizationServerBuilder, AuthorizationServerConfig, Clock, Identity};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;

pub(crate) mod watched;

pub(crate) const REDIRECT: &str = "http://127.0.0.1/callback";

/// A throwaway PostgreSQL server (shared with the end-to-end tests of `mcp-tests`).
#[cfg(feature = "postgres")]
#[allow(unreachable_pub)]
#[path = "../../../tests/src/postgres.rs"]
pub(crate) mod test_postgres;

/// A throwaway Redis server (shared with the end-to-end tests of `mcp-tests`).
#[cfg(feature = "redis")]
#[allow(unreachable_pub)]
#[path = "../../../tests/src/redis.rs"]
pub(crate) mod test_redis;

/// A PostgreSQL store on a fresh database of a server of its own, which
/// lives as long as the returned guard.
#[cfg(feature = "postgres")]
pub(crate) async fn postgres_store() -> (test_postgres::TestPostgres, Arc<dyn AuthStore>) {
    let server = test_postgres::TestPostgres::start()
        .expect("a PostgreSQL server (scripts/setup.sh installs Debian's `postgresql`)");
    let url = server.create_database("mcp_auth").unwrap();
    let store = mcp_auth::authorization_server::store::PostgresStore::connect(&url).await.unwrap();
    (server, Arc::new(store))
}

/// A clock the test moves forward.
#[derive(Debug, Default)]
pub(crate) struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    /// Moves the clock `secs` seconds ahead.
    pub(crate) fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
            + std::time::Duration::from_secs(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

pub(crate) struct TestServer {
    pub(crate) base: String,
    pub(crate) issuer: String,
    pub(crate) resource: String,
    pub(crate) server: AuthorizationServer,
    pub(crate) http: Client,
}

pub(crate) async fn start() -> TestServer {
    start_with(|c| c, Arc::new(MemoryStore::new()), "").await
}

/// Starts a server: `issuer_path` is appended to the origin for the issuer.
pub(crate) async fn start_with(
    tweak: impl FnOnce(AuthorizationServerConfig) -> AuthorizationServerConfig,
    store: Arc<dyn AuthStore>,
    issuer_path: &str,
) -> TestServer {
    start_built(tweak, |builder| builder.store(store), issuer_path).await
}

/// Starts a server whose builder `build` completes (store, login, clock).
pub(crate) async fn start_built(
    tweak: impl FnOnce(AuthorizationServerConfig) -> AuthorizationServerConfig,
    build: impl FnOnce(AuthorizationServerBuilder) -> AuthorizationServerBuilder,
    issuer_path: &str,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}{issuer_path}");
    let resource = format!("{base}/mcp");
    let config =
        tweak(AuthorizationServerConfig::new(&issuer).with_scopes_supported(["notes:read", "notes:write"]));
    let server = build(AuthorizationServer::builder(config, &resource)).build().await.unwrap();
    let mcp = Router::new().route("/mcp", post(whoami)).layer(server.layer().unwrap());
    let app = server.router().merge(mcp);
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestServer { base, issuer, resource, server, http }
}

async fn whoami(Extension(caller): Extension<Arc<Identity>>) -> Json<Value> {
    Json(json!({"subject": caller.subject, "client_id": caller.client_id, "scopes": caller.scopes}))
}

/// A PKCE pair (RFC 7636): verifier and S256 challenge.
pub(crate) fn pkce() -> (String, String) {
    let verifier = format!("verifier-{}", URL_SAFE_NO_PAD.encode(rand_bytes()));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut bytes).unwrap();
    bytes
}

/// A registered client.
pub(crate) struct TestClient {
    pub(crate) id: String,
    pub(crate) secret: Option<String>,
}

impl TestServer {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub(crate) async fn register_raw(&self, metadata: &Value) -> Response {
        self.http.post(self.url("/register")).json(metadata).send().await.unwrap()
    }

    /// A public client with the loopback redirect and refresh allowed.
    /// A public client some user has approved once (so errors at
    /// `/authorize` are redirected to it, RFC 9700 §4.11.2).
    pub(crate) async fn approved_public_client(&self) -> TestClient {
        let client = self.public_client().await;
        self.code(&client).await;
        client
    }

    pub(crate) async fn public_client(&self) -> TestClient {
        self.client(json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Test <Public> App",
        }))
        .await
    }

    /// A public client registered for the code grant only.
    pub(crate) async fn public_client_without_refresh(&self) -> TestClient {
        self.client(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})).await
    }

    /// A confidential client (client_secret_basic).
    pub(crate) async fn confidential_client(&self) -> TestClient {
        self.client(json!({
            "redirect_uris": ["https://app.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await
    }

    pub(crate) async fn client(&self, metadata: Value) -> TestClient {
        let response = self.register_raw(&metadata).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        TestClient {
            id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().map(str::to_owned),
        }
    }

    /// `GET /authorize` with these parameters.
    pub(crate) async fn authorize(&self, params: &[(&str, &str)]) -> Response {
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        self.http.get(url).send().await.unwrap()
    }

    /// A complete valid authorization request's parameters.
    pub(crate) fn request<'a>(
        &'a self,
        client: &'a TestClient,
        challenge: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", "st-123"),
            ("resource", &self.resource),
            ("scope", "notes:read"),
        ]
    }

    /// Drives the browser through login and consent; returns the final
    /// redirect's query parameters.
    pub(crate) async fn browser_flow(
        &self,
        params: &[(&str, &str)],
        decision: &str,
    ) -> Vec<(String, String)> {
        let page = self.authorize(params).await;
        assert_eq!(page.status(), StatusCode::OK);
        let cookie = txn_cookie(page.headers());
        let csrf = csrf(&page.text().await.unwrap());
        let consent = self
            .http
            .post(self.url("/authorize/login"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str()), ("username", "alice")])
            .send()
            .await
            .unwrap();
        let consent = self.follow_to_consent(consent, &cookie).await;
        assert_eq!(consent.status(), StatusCode::OK);
        let html = consent.text().await.unwrap();
        assert!(html.contains("Test &lt;Public&gt; App") || html.contains("wants to"), "{html}");
        let csrf = self::csrf(&html);
        let done = self
            .http
            .post(self.url("/authorize/consent"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str()), ("decision", decision)])
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        redirect_params(&done)
    }

    /// Follows the login form's `303 See Other` to the consent page (Post/Redirect/Get),
    /// sending `cookie`; any other answer is returned as it is.
    pub(crate) async fn follow_to_consent(&self, response: Response, cookie: &str) -> Response {
        let location = response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
        match location {
            Some(location)
                if response.status() == StatusCode::SEE_OTHER && location.contains("/authorize/consent?") =>
            {
                self.http.get(location).header("cookie", cookie).send().await.unwrap()
            }
            _ => response,
        }
    }

    /// A code for `client` (public, loopback redirect) with scope `notes:read`.
    pub(crate) async fn code(&self, client: &TestClient) -> (String, String) {
        let (verifier, challenge) = pkce();
        let back = self.browser_flow(&self.request(client, &challenge), "approve").await;
        (param(&back, "code").unwrap(), verifier)
    }

    pub(crate) async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.http.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// Exchanges a code as the public test client.
    pub(crate) async fn exchange(&self, client: &TestClient, code: &str, verifier: &str) -> Response {
        self.post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("client_id", &client.id),
                ("redirect_uri", REDIRECT),
                ("resource", &self.resource),
            ],
        )
        .await
    }

    pub(crate) async fn refresh(&self, client: &TestClient, refresh_token: &str) -> Response {
        self.post_form(
            "/token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &client.id)],
        )
        .await
    }

    /// Calls the MCP stand-in with a bearer token.
    pub(crate) async fn call_mcp(&self, access_token: &str) -> Response {
        self.http.post(&self.resource).bearer_auth(access_token).send().await.unwrap()
    }
}

/// `name=value` of the transaction cookie, as the browser would send it back.
pub(crate) fn txn_cookie(headers: &HeaderMap) -> String {
    let set = headers.get(SET_COOKIE).expect("a transaction cookie").to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The CSRF token of a page's form.
pub(crate) fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The query parameters of a redirect's `Location`.
pub(crate) fn redirect_params(response: &Response) -> Vec<(String, String)> {
    let location = response.headers().get(LOCATION).expect("a Location").to_str().unwrap();
    Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

pub(crate) fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

pub(crate) fn assert_no_store(response: &Response) {
    assert_eq!(response.headers()["cache-control"], "no-store", "{:?}", response.url());
}

/// Asserts an OAuth error answer and returns it.
pub(crate) async fn assert_oauth_error(response: Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_no_store(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body
}

/// A browser with its own cookie jar (cookies of the authorization pages;
/// `Max-Age=0` deletes).
#[derive(Default)]
pub(crate) struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The `Cookie` header to send.
    pub(crate) fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub(crate) fn has_cookie(&self, name: &str) -> bool {
        self.cookies.iter().any(|(n, _)| n == name)
    }

    fn store(&mut self, response: &Response) {
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !set.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// `GET` with the jar's cookies and extra headers; keeps what is set.
    pub(crate) async fn get(&mut self, s: &TestServer, url: Url, headers: &[(&str, &str)]) -> Response {
        let mut request = s.http.get(url).header("cookie", self.cookie_header());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.store(&response);
        response
    }

    /// `GET /authorize` with these parameters.
    pub(crate) async fn authorize(&mut self, s: &TestServer, params: &[(&str, &str)]) -> Response {
        let mut url = Url::parse(&s.url("/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        // A link the user opened (Fetch Metadata `site: none`), as a browser sends it.
        let navigation =
            [("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document"), ("sec-fetch-site", "none")];
        self.get(s, url, &navigation).await
    }

    /// `POST` of a form of the authorization pages.
    pub(crate) async fn post(&mut self, s: &TestServer, path: &str, form: &[(&str, &str)]) -> Response {
        let response =
            s.http.post(s.url(path)).header("cookie", self.cookie_header()).form(form).send().await.unwrap();
        self.store(&response);
        response
    }

    /// Submits the login page `html` as `user`; returns the next response.
    pub(crate) async fn login(&mut self, s: &TestServer, html: &str, user: &str) -> Response {
        assert!(html.contains("name=\"username\""), "expected the login page: {html}");
        let csrf = csrf(html);
        let response = self.post(s, "/authorize/login", &[("csrf", &csrf), ("username", user)]).await;
        s.follow_to_consent(response, &self.cookie_header()).await
    }

    /// Submits the consent page `html` with `decision`, ticking "remember"
    /// when asked; returns the redirect.
    pub(crate) async fn decide(
        &mut self,
        s: &TestServer,
        html: &str,
        decision: &str,
        remember: bool,
    ) -> Response {
        assert!(html.contains("value=\"approve\""), "expected the consent page: {html}");
        let csrf = csrf(html);
        let mut form = vec![("csrf", csrf.as_str()), ("decision", decision)];
        if remember {
            form.push(("remember", "yes"));
        }
        let response = self.post(s, "/authorize/consent", &form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        response
    }
}
