//! Two instances of the `notes` example in authorization-server mode, on one
//! PostgreSQL database (a throwaway server, see `mcp_tests::postgres`),
//! behind a round-robin load balancer with no sticky sessions
//! (`mcp_tests::balancer`): every OAuth step and every stateless tool call
//! lands on the other instance than the one before it; and both instances
//! answer 503 while PostgreSQL is down, then recover by themselves.
//!
//! Needs the examples built (`cargo build --examples`) and PostgreSQL's
//! server binaries (scripts/setup.sh installs Debian's). `AUTH_AS_DEBUG=1`
//! shows the instances' logs.

use std::time::{Duration, Instant};

use mcp_tests::as_client::*;
use mcp_tests::balancer::Balancer;
use mcp_tests::free_port;
use mcp_tests::postgres::TestPostgres;
use reqwest::StatusCode;
use serde_json::json;

/// How soon a revocation on one instance is honoured by the others (SECURITY.md).
const REVOCATION_BOUND: Duration = Duration::from_secs(1);

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
    let pg = TestPostgres::start().expect("a PostgreSQL server (scripts/setup.sh installs it)");
    let store = pg.create_database("notes").expect("a database");
    let balancer = Balancer::start().await;
    let env = [
        ("MCP_SERVER__REQUEST_STATE_KEY", REQUEST_STATE_KEY),
        // Reuse of a rotated refresh token counts at once (no retry window).
        ("MCP_AUTH__AUTHORIZATION_SERVER__REFRESH_GRACE_SECS", "0"),
    ];
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
