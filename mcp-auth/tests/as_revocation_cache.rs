//! The cache of revocation checks with two authorization servers on one
//! PostgreSQL database (each test starts its own server, see
//! tests/src/postgres.rs): a cached check reads nothing, a revocation at one
//! instance is honoured by the other within a measured bound, and while the
//! listener is down nothing is cached.

// A panic is the report.
#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use as_support::test_postgres::TestPostgres;
use as_support::watched::WatchedStore;
use as_support::{TestClient, TestServer, start_with};
use axum::Router;
use axum::routing::post;
use mcp_auth::authorization_server::store::PostgresStore;
use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
use serde_json::Value;

const DB: &str = "mcp_auth";

/// The tokens of one grant and the client they were issued to.
struct Grant {
    access: String,
    refresh: String,
    client: TestClient,
}

/// Instance A (issues and revokes) and instance B (the MCP endpoint under
/// test), their stores counted, on one database of `pg`.
struct TwoInstances {
    a: TestServer,
    a_store: Arc<WatchedStore>,
    b_mcp: String,
    b_store: Arc<WatchedStore>,
    /// Keeps B's server alive.
    _b: AuthorizationServer,
}

impl TwoInstances {
    async fn start(pg: &TestPostgres) -> Self {
        let url = pg.create_database(DB).unwrap();
        let counted =
            || async { Arc::new(WatchedStore::new(Arc::new(PostgresStore::connect(&url).await.unwrap()))) };
        let a_store = counted().await;
        let a = start_with(|c| c, a_store.clone(), "").await;
        let b_store = counted().await;
        // The same issuer and resource as A, its own pool, listener and port.
        let config =
            AuthorizationServerConfig::new(&a.issuer).with_scopes_supported(["notes:read", "notes:write"]);
        let b =
            AuthorizationServer::builder(config, &a.resource).store(b_store.clone()).build().await.unwrap();
        let mcp = Router::new().route("/mcp", post(|| async { "ok" })).layer(b.layer().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b_mcp = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, mcp).await.unwrap() });
        Self { a, a_store, b_mcp, b_store, _b: b }
    }

    /// A fresh grant's tokens, from A, each grant for a client of its own:
    /// a later grant to the same user, client and redirect URI revokes the
    /// earlier ones.
    async fn tokens(&self) -> Grant {
        let client = self.a.public_client().await;
        let (code, verifier) = self.a.code(&client).await;
        let response = self.a.exchange(&client, &code, &verifier).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let token = |name: &str| body[name].as_str().unwrap().to_owned();
        Grant { access: token("access_token"), refresh: token("refresh_token"), client }
    }

    /// B's answer to an MCP call with `token`.
    async fn call_b(&self, token: &str) -> u16 {
        self.call(&self.b_mcp, token).await
    }

    /// A's answer to an MCP call with `token`.
    async fn call_a(&self, token: &str) -> u16 {
        self.call(&self.a.resource, token).await
    }

    async fn call(&self, mcp: &str, token: &str) -> u16 {
        let response = self.a.http.post(mcp).bearer_auth(token).send().await.unwrap();
        response.status().as_u16()
    }

    /// Calls B with `token` (accepted) until a call reads nothing from the
    /// store: B's listener is connected and the token cached.
    async fn cached_at_b(&self, token: &str) {
        self.cached_at(&self.b_mcp, &self.b_store, token).await;
    }

    /// The same at A.
    async fn cached_at_a(&self, token: &str) {
        self.cached_at(&self.a.resource, &self.a_store, token).await;
    }

    async fn cached_at(&self, mcp: &str, store: &WatchedStore, token: &str) {
        // Generous: the listener connects in the background, slowly on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            assert_eq!(self.call(mcp, token).await, 200);
            let before = store.lookups();
            assert_eq!(self.call(mcp, token).await, 200);
            if store.lookups() == before {
                return;
            }
            assert!(Instant::now() < deadline, "{mcp} never cached its revocation check");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Revokes `token` of `grant` at A's `/revoke`.
    async fn revoke_at_a(&self, grant: &Grant, token: &str) {
        let form = [("token", token), ("client_id", grant.client.id.as_str())];
        assert_eq!(self.a.post_form("/revoke", &form).await.status(), 200);
    }
}

fn server() -> TestPostgres {
    TestPostgres::start().expect("a PostgreSQL server (scripts/setup.sh installs Debian's `postgresql`)")
}

/// A superuser connection to the server's database `db`, its connection
/// driven in the background.
async fn admin(pg: &TestPostgres, db: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg.url(db), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_revocation_check_reads_nothing_from_the_store() {
    let pg = server();
    let two = TwoInstances::start(&pg).await;
    let grant = two.tokens().await;
    let access = grant.access.as_str();
    two.cached_at_b(access).await;
    let before = two.b_store.lookups();
    for _ in 0..20 {
        assert_eq!(two.call_b(access).await, 200);
    }
    assert_eq!(two.b_store.lookups(), before, "a cached check read the store");
    // Another token is not in the cache: its first check reads the token and its grant.
    let other = two.tokens().await;
    assert_eq!(two.call_b(&other.access).await, 200);
    assert_eq!(two.b_store.lookups(), before + 2);
}

/// Measures, over 20 trials, the time from A's answer to a revocation to
/// the moment B refuses the token it had cached: revoking the access token
/// itself (even trials) or its grant through the refresh token (odd ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_honoured_by_another_within_a_bound() {
    const TRIALS: usize = 20;
    const BOUND: Duration = Duration::from_secs(1);
    let pg = server();
    let two = TwoInstances::start(&pg).await;
    let mut delays = Vec::new();
    for trial in 0..TRIALS {
        let grant = two.tokens().await;
        let access = grant.access.as_str();
        two.cached_at_b(access).await;
        let revoked = if trial % 2 == 0 { access } else { grant.refresh.as_str() };
        two.revoke_at_a(&grant, revoked).await;
        let revoked_at = Instant::now();
        while two.call_b(access).await == 200 {
            assert!(revoked_at.elapsed() < BOUND, "trial {trial}: B still accepts the token after {BOUND:?}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        delays.push(revoked_at.elapsed());
    }
    let max = delays.iter().max().unwrap();
    let mean = delays.iter().sum::<Duration>() / u32::try_from(TRIALS).unwrap();
    println!("revocation honoured by the other instance: max {max:?}, mean {mean:?} over {TRIALS} trials");
    assert!(*max < BOUND);
}

/// With B's listener cut off (its backend terminated, the database closed
/// to new connections), B caches nothing and a revocation at A, which B
/// cannot hear of, is honoured at once; once the database takes connections
/// again the listener reconnects and B caches again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_listener_is_down_nothing_is_cached_and_it_reconnects() {
    let pg = server();
    let two = TwoInstances::start(&pg).await;
    let first_grant = two.tokens().await;
    let first = first_grant.access.as_str();
    let second = two.tokens().await;
    let second = second.access.as_str();
    two.cached_at_b(first).await;
    two.cached_at_b(second).await;

    // The pools keep their open connections; new ones, the listeners' included, are refused.
    let admin = admin(&pg, "postgres").await;
    admin.batch_execute(&format!("ALTER DATABASE {DB} ALLOW_CONNECTIONS false")).await.unwrap();
    let terminated = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = $1 AND query LIKE 'LISTEN%'",
            &[&DB],
        )
        .await
        .unwrap();
    let terminated: i64 = terminated.get(0);
    assert_eq!(terminated, 2, "one listener per instance");

    // B stops caching as soon as its listener is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = two.b_store.lookups();
        assert_eq!(two.call_b(second).await, 200);
        if two.b_store.lookups() > before {
            break;
        }
        assert!(Instant::now() < deadline, "B still answers from its cache without a listener");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Revoked at A: no notification reaches B, which refuses it all the same.
    two.revoke_at_a(&first_grant, first).await;
    assert_eq!(two.call_b(first).await, 401);
    // And nothing is cached meanwhile: every check reads the store.
    for _ in 0..3 {
        let before = two.b_store.lookups();
        assert_eq!(two.call_b(second).await, 200);
        assert_eq!(
            two.b_store.lookups(),
            before + 2,
            "a check was answered from the cache while disconnected"
        );
    }

    // Connections allowed again: the listener is back within its back-off (at most 5 s).
    admin.batch_execute(&format!("ALTER DATABASE {DB} ALLOW_CONNECTIONS true")).await.unwrap();
    two.cached_at_b(second).await;
    assert_eq!(two.call_b(first).await, 401);
    let listening = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'",
            &[&DB],
        )
        .await
        .unwrap();
    assert_eq!(listening.get::<_, i64>(0), 2);
}

/// With notifications gone (the trigger dropped), the instance that revoked
/// refuses the token at once all the same: it drops its own cached answer
/// without waiting to hear of it. The other instance, told nothing, still
/// accepts it: only the cache's TTL bounds that case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_that_revokes_refuses_at_once_without_a_notification() {
    let pg = server();
    let two = TwoInstances::start(&pg).await;
    let first = two.tokens().await;
    let second = two.tokens().await;
    let tokens = [&first.access, &second.access];
    for token in tokens {
        two.cached_at_a(token).await;
        two.cached_at_b(token).await;
    }
    admin(&pg, DB)
        .await
        .batch_execute("DROP TRIGGER mcp_auth_revocations ON mcp_auth_records")
        .await
        .unwrap();
    // The access token itself, then the second grant through its refresh token.
    two.revoke_at_a(&first, &first.access).await;
    two.revoke_at_a(&second, &second.refresh).await;
    for token in tokens {
        assert_eq!(two.call_a(token).await, 401, "the revoking instance answered from its cache");
        assert_eq!(two.call_b(token).await, 200, "B heard of it without a notification?");
    }
}
