//! Two instances of the `notes` example in authorization-server mode, on one
//! PostgreSQL database (a throwaway server, see `mcp_tests::postgres`),
//! behind a round-robin load balancer with no sticky sessions
//! (`mcp_tests::balancer`): every OAuth step and every stateless tool call
//! lands on the other instance than the one before it; both instances
//! answer 503 while PostgreSQL is down, then recover by themselves; and,
//! sharing one Redis too (`mcp_tests::redis`, `[redis] url`), they serve the
//! official TypeScript SDK client (`tests/interop/oauth-scale-out.mjs`)
//! through the whole OAuth flow, with registration, authorize, consent and
//! token each on the other instance than the step before, then through one
//! legacy session whose requests, tool calls included, alternate between them.
//!
//! Needs the examples built (`cargo build --examples`), PostgreSQL's server
//! binaries and `redis-server` (scripts/setup.sh installs Debian's), Node.js
//! and `npm ci` in `tests/interop` (scripts/test.sh runs it before the Rust
//! tests). `AUTH_AS_DEBUG=1` shows the instances' logs.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use mcp_tests::as_client::*;
use mcp_tests::balancer::{Balancer, Served};
use mcp_tests::free_port;
use mcp_tests::postgres::TestPostgres;
use mcp_tests::redis::TestRedis;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How soon a revocation on one instance is honoured by the others (SECURITY.md).
const REVOCATION_BOUND: Duration = Duration::from_secs(1);

/// How long the TypeScript SDK client may take for its whole run.
const SDK_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// What every instance shares besides the database: `request_state_key`
/// (so a multi-round request sealed by one opens on another).
const REQUEST_STATE_KEY: &str = "c2NhbGUtb3V0LXRlc3QtcmVxdWVzdC1zdGF0ZS1rZXk=";

/// Two instances behind a balancer; the first `Notes` is the one to kill.
struct Cluster {
    pg: TestPostgres,
    balancer: Balancer,
    instances: Vec<Notes>,
    /// Each instance's own loopback port, in the balancer's order.
    ports: Vec<u16>,
}

async fn cluster() -> Cluster {
    cluster_with(&[]).await
}

/// [`cluster`], the instances also given the environment overrides `more_env`.
async fn cluster_with(more_env: &[(&str, &str)]) -> Cluster {
    let pg = TestPostgres::start().expect("a PostgreSQL server (scripts/setup.sh installs it)");
    let store = pg.create_database("notes").expect("a database");
    let balancer = Balancer::start().await;
    let mut env = vec![
        ("MCP_SERVER__REQUEST_STATE_KEY", REQUEST_STATE_KEY),
        // Reuse of a rotated refresh token counts at once (no retry window).
        ("MCP_AUTH__AUTHORIZATION_SERVER__REFRESH_GRACE_SECS", "0"),
    ];
    env.extend_from_slice(more_env);
    let mut instances = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..2 {
        let port = free_port().await;
        instances.push(start_notes_as(port, &balancer.origin, &store, logs(), &env).await);
        ports.push(port);
    }
    balancer.set_backends(&ports);
    Cluster { pg, balancer, instances, ports }
}

impl Cluster {
    /// The clients' view: the balancer's origin and MCP endpoint.
    fn front(&self) -> &Notes {
        &self.instances[0]
    }

    /// The backends that answered the requests logged since `from`, in order.
    fn backends_since(&self, from: usize) -> Vec<usize> {
        self.balancer.log()[from..].iter().map(|served| served.backend).collect()
    }
}

/// Consecutive requests never land on the same instance.
fn assert_alternating(backends: &[usize], what: &str) {
    assert!(backends.len() >= 2, "{what}: {backends:?}");
    assert!(backends.windows(2).all(|pair| pair[0] != pair[1]), "{what} alternate: {backends:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_and_tool_calls_alternate_between_two_instances_and_survive_losing_one() {
    let cluster = cluster().await;
    let front = cluster.front();

    // Discovery, registration, the login and consent pages and the token
    // request, each on the other instance than the step before.
    let start = cluster.balancer.log().len();
    let as_ = discover(front).await;
    let client_id = register(&as_).await;
    let (code, verifier) = authorize(&as_, front, &client_id, "alice").await;
    let first = exchange(&as_, front, &client_id, &code, &verifier).await;
    assert_alternating(&cluster.backends_since(start), "the OAuth steps");

    // Tool calls alternate, and each instance accepts the token.
    let start = cluster.balancer.log().len();
    for _ in 0..4 {
        assert_eq!(whoami(front, &first.access).await["subject"], "alice");
    }
    let calls = cluster.backends_since(start);
    assert_alternating(&calls, "tool calls");
    assert!(cluster.balancer.log()[start..].iter().all(|served| served.status == 200));

    // Rotation on one instance, then reuse of the rotated token on the other:
    // the reuse is refused and the whole grant dies on both.
    let start = cluster.balancer.log().len();
    let (status, body) = refresh(&as_, &client_id, &first.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = tokens(&body);
    let (status, body) = refresh(&as_, &client_id, &first.refresh).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    assert_alternating(&cluster.backends_since(start), "the refresh and its reuse");
    for _ in 0..2 {
        assert_refused(front, &second.access, "the token of a grant whose refresh token was reused").await;
    }
    let (status, _) = refresh(&as_, &client_id, &second.refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the successor dies with the grant");

    // A revocation on one instance is honoured by the other.
    let (code, verifier) = authorize(&as_, front, &client_id, "bob").await;
    let third = exchange(&as_, front, &client_id, &code, &verifier).await;
    for _ in 0..2 {
        assert_eq!(whoami(front, &third.access).await["subject"], "bob");
    }
    let revoked_on = cluster.balancer.log().len();
    revoke(&as_, &client_id, &third.access).await;
    let revoked_at = Instant::now();
    let revoking_instance = cluster.balancer.log()[revoked_on].backend;
    // The other instance refuses it within the bound SECURITY.md states.
    let other = format!("http://127.0.0.1:{}/mcp", cluster.ports[1 - revoking_instance]);
    loop {
        let (status, _, _) = call_at(&other, &third.access, "whoami", json!({})).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked_at.elapsed() < REVOCATION_BOUND,
            "still accepted {:?} after revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("revocation on one instance honoured by the other after {:?}", revoked_at.elapsed());
    assert_refused(front, &third.access, "a revoked access token").await;

    // One instance dies: the other serves every request, and nothing issued before is lost.
    let (code, verifier) = authorize(&as_, front, &client_id, "carol").await;
    let fourth = exchange(&as_, front, &client_id, &code, &verifier).await;
    let Cluster { pg: _pg, balancer, mut instances, .. } = cluster;
    let survivor = instances.pop().expect("two instances");
    instances.pop().expect("the first instance").stop().await;
    let start = balancer.log().len();
    for _ in 0..3 {
        assert_eq!(whoami(&survivor, &fourth.access).await["subject"], "carol", "a token issued before");
    }
    let (status, body) = refresh(&as_, &client_id, &fourth.refresh).await;
    assert_eq!(status, StatusCode::OK, "a refresh token issued before: {body}");
    let fifth = tokens(&body);
    assert_eq!(whoami(&survivor, &fifth.access).await["subject"], "carol");
    assert!(
        balancer.log()[start..].iter().all(|served| served.backend == 1),
        "{:?}",
        &balancer.log()[start..]
    );
}

/// Runs `tests/interop/oauth-scale-out.mjs`, the official TypeScript SDK
/// client's OAuth flow and tool calls in one session, against `url` as `user`.
async fn sdk_client(url: &str, user: &str) -> Output {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop");
    let sdk = dir.join("node_modules/@modelcontextprotocol/sdk/package.json");
    assert!(sdk.exists(), "{} is missing: run `npm ci` in tests/interop first", sdk.display());
    let child = tokio::process::Command::new("node")
        .arg("oauth-scale-out.mjs")
        .args([url, user])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts (scripts/setup.sh installs Node.js)");
    tokio::time::timeout(SDK_CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the SDK client did not finish within {SDK_CLIENT_TIMEOUT:?}"))
        .expect("the SDK client's output")
}

/// The one request the log holds for `method` and `path`, and its place in the log.
fn only<'a>(log: &'a [Served], method: &str, path: &str) -> (usize, &'a Served) {
    let mut found =
        log.iter().enumerate().filter(|(_, served)| served.method == method && served.path == path);
    let first = found.next().unwrap_or_else(|| panic!("no {method} {path} went through the balancer"));
    assert!(found.next().is_none(), "{method} {path} went through the balancer more than once");
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_signs_in_and_keeps_one_session_across_two_instances() {
    let redis = TestRedis::start().expect("a Redis server (scripts/setup.sh installs redis-server)");
    let redis_url = redis.url();
    let cluster = cluster_with(&[("MCP_REDIS__URL", &redis_url)]).await;
    let start = cluster.balancer.log().len();
    let run = sdk_client(&cluster.front().url, "alice").await;
    let log = cluster.balancer.log().split_off(start);
    let stdout = String::from_utf8_lossy(&run.stdout);
    // Shown with any failure below.
    println!("the SDK client: {}\n{stdout}\n{}", run.status, String::from_utf8_lossy(&run.stderr));
    for served in &log {
        println!("{served:?}");
    }

    // Registration, the authorization request, the login and consent pages and the token
    // request: one each, in this order, each on the other instance than the step before.
    let steps = [
        ("POST", "/register"),
        ("GET", "/authorize"),
        ("POST", "/authorize/login"),
        ("GET", "/authorize/consent"),
        ("POST", "/authorize/consent"),
        ("POST", "/token"),
    ];
    let steps: Vec<(usize, &Served)> = steps.iter().map(|(method, path)| only(&log, method, path)).collect();
    assert!(steps.windows(2).all(|pair| pair[0].0 < pair[1].0), "the OAuth steps in order");
    assert!(steps.iter().all(|(_, served)| served.status < 400), "{steps:?}");
    assert_eq!((steps[0].1.status, steps[5].1.status), (201, 200), "registered, then tokens");
    let backends: Vec<usize> = steps.iter().map(|(_, served)| served.backend).collect();
    assert_alternating(&backends, "registration, authorize, login, consent and token");

    // Then one session, opened on one instance and served by both: every request of it, the
    // tool calls included, on the other instance than the one before, none refused, and no
    // second initialize (the SDK did not start over).
    assert!(
        run.status.success(),
        "the SDK client failed after the OAuth flow (its output above): does each instance know the \
         sessions the other opened ([redis] url)?"
    );
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("the SDK client's JSON summary: {stdout}"));
    assert_eq!(summary["subject"], "alice");
    let session = summary["sessionId"].as_str().expect("the session the SDK client held");
    let mcp: Vec<&Served> = log.iter().filter(|served| served.path == "/mcp").collect();
    let opened = mcp
        .iter()
        .position(|served| served.session.as_deref() == Some(session))
        .expect("requests in the session");
    let in_session = &mcp[opened..];
    let initializes: Vec<usize> =
        (opened..mcp.len()).filter(|&at| mcp[at].rpc_method.as_deref() == Some("initialize")).collect();
    assert_eq!(initializes, [opened], "the session's initialize, and no other after it");
    for served in in_session {
        assert_eq!(served.session.as_deref(), Some(session), "{served:?}");
        assert!(served.status < 300, "{served:?}");
    }
    let backends: Vec<usize> = in_session.iter().map(|served| served.backend).collect();
    assert_alternating(&backends, "the requests of the session");
    let calls: Vec<usize> = in_session
        .iter()
        .filter(|served| served.rpc_method.as_deref() == Some("tools/call"))
        .map(|served| served.backend)
        .collect();
    assert_eq!(calls.len(), 6, "the SDK client's tool calls: {calls:?}");
    assert_alternating(&calls, "the tool calls");
    assert_eq!(in_session.last().map(|served| served.method.as_str()), Some("DELETE"), "the session ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_instances_answer_503_while_postgres_is_down_and_recover_when_it_is_back() {
    let mut cluster = cluster().await;
    let as_ = discover(cluster.front()).await;
    let client_id = register(&as_).await;
    let (code, verifier) = authorize(&as_, cluster.front(), &client_id, "alice").await;
    let first = exchange(&as_, cluster.front(), &client_id, &code, &verifier).await;
    let urls: Vec<String> = cluster.ports.iter().map(|port| format!("http://127.0.0.1:{port}/mcp")).collect();
    for url in &urls {
        let (status, _, _) = call_at(url, &first.access, "whoami", json!({})).await;
        assert_eq!(status, StatusCode::OK);
    }

    cluster.pg.stop().expect("PostgreSQL stops");
    // Each instance: the MCP endpoint and the token endpoint say "not now", not "not you".
    for url in &urls {
        let (status, challenge, message) = call_at(url, &first.access, "whoami", json!({})).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{url}: {message}");
        assert!(challenge.is_empty(), "{url}: no bearer challenge while the store is down: {challenge}");
    }
    for _ in 0..2 {
        let (status, body) = refresh(&as_, &client_id, &first.refresh).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable"))
        );
    }

    cluster.pg.restart().expect("PostgreSQL starts again");
    for url in &urls {
        let (status, _, message) = call_at(url, &first.access, "whoami", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{url} recovers: {message}");
    }
    let (status, body) = refresh(&as_, &client_id, &first.refresh).await;
    assert_eq!(status, StatusCode::OK, "the refresh token survived the outage: {body}");
    assert_eq!(whoami(cluster.front(), &tokens(&body).access).await["subject"], "alice");
}
