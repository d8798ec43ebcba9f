//! The PostgreSQL store against a real server (each test starts its own,
//! see tests/src/postgres.rs): the store contract, two instances racing on
//! single-use operations, concurrent migrations, and a database that goes
//! down and comes back.

// A panic is the report.
#![allow(clippy::unwrap_used)]

mod as_support;
mod store_contract;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use as_support::test_postgres::TestPostgres;
use mcp_auth::authorization_server::StoreError;
use mcp_auth::authorization_server::store::{AuthStore, PostgresStore, Succession};
use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
use store_contract::{access, client, code, grant, refresh, signing_key};

/// Concurrent calls per instance in the race tests.
const RACERS: usize = 16;

fn server() -> TestPostgres {
    TestPostgres::start().expect("a PostgreSQL server (scripts/setup.sh installs Debian's `postgresql`)")
}

/// Two instances (two pools) on one fresh database.
async fn two_instances(pg: &TestPostgres, db: &str) -> (Arc<PostgresStore>, Arc<PostgresStore>) {
    let url = pg.create_database(db).unwrap();
    let a = PostgresStore::connect(&url).await.unwrap();
    let b = PostgresStore::connect(&url).await.unwrap();
    (Arc::new(a), Arc::new(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_store_contract() {
    let pg = server();
    let next = AtomicUsize::new(0);
    store_contract::run_all(|| {
        let url = pg.create_database(&format!("contract{}", next.fetch_add(1, Ordering::Relaxed))).unwrap();
        async move { Arc::new(PostgresStore::connect(&url).await.unwrap()) as Arc<dyn AuthStore> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_used_first_exactly_once_across_instances() {
    let pg = server();
    let (a, b) = two_instances(&pg, "codes").await;
    for round in 0..3 {
        let hash = format!("code-{round}");
        a.put_code(code(&hash, "g", 1000)).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..2 * RACERS {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let hash = hash.clone();
            tasks.push(tokio::spawn(async move { store.use_code(&hash, 10).await.unwrap().unwrap() }));
        }
        let mut seen = BTreeSet::new();
        for task in tasks {
            seen.insert(task.await.unwrap().previous_uses);
        }
        // Every use saw a different count: one saw none, the others every count after it.
        assert_eq!(seen, (0..2 * RACERS as u32).collect::<BTreeSet<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_is_used_first_exactly_once_across_instances() {
    let pg = server();
    let (a, b) = two_instances(&pg, "refresh").await;
    a.put_refresh_token(refresh("r", "g", None, None)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..2 * RACERS {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { store.use_refresh_token("r", 10).await.unwrap().unwrap() }));
    }
    let mut firsts = 0;
    let mut seen = BTreeSet::new();
    for task in tasks {
        let used = task.await.unwrap();
        if used.previous_uses == 0 {
            firsts += 1;
            assert_eq!(used.first_used_at, None);
        } else {
            assert_eq!(used.first_used_at, Some(10));
        }
        seen.insert(used.previous_uses);
    }
    assert_eq!(firsts, 1);
    assert_eq!(seen.len(), 2 * RACERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_of_one_token_from_two_instances_leave_one_live_successor() {
    let pg = server();
    let (a, b) = two_instances(&pg, "rotation").await;
    a.put_refresh_token(refresh("p", "g", None, None)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..2 * RACERS {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let successor = refresh(&format!("s{i}"), "g", Some("p"), None);
            store.put_successor_refresh_token(successor).await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results.iter().filter(|s| **s == Succession::First).count(), 1, "{results:?}");
    assert!(results.iter().all(|s| matches!(s, Succession::First | Succession::Replaced)), "{results:?}");
    let mut live = 0;
    for i in 0..2 * RACERS {
        let token = a.refresh_token(&format!("s{i}"), 10).await.unwrap().unwrap();
        live += usize::from(!token.record.superseded);
    }
    assert_eq!(live, 1, "one successor stays live");
}

/// A use of the first successor racing a grace-window retry that replaces
/// it, on two instances: either the use comes first and the retry finds the
/// family forked, or the retry comes first and the use finds the token
/// superseded. Never both unnoticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_used_while_replaced_is_noticed_on_one_side() {
    let pg = server();
    let (a, b) = two_instances(&pg, "fork").await;
    for round in 0..20 {
        let parent = format!("p{round}");
        let first = format!("s{round}");
        a.put_refresh_token(refresh(&parent, "g", None, None)).await.unwrap();
        a.put_successor_refresh_token(refresh(&first, "g", Some(&parent), None)).await.unwrap();
        let retry = refresh(&format!("t{round}"), "g", Some(&parent), None);
        let (used, replaced) = tokio::join!(
            {
                let a = a.clone();
                let first = first.clone();
                tokio::spawn(async move { a.use_refresh_token(&first, 10).await })
            },
            {
                let b = b.clone();
                tokio::spawn(async move { b.put_successor_refresh_token(retry).await })
            },
        );
        let used = used.unwrap().unwrap().unwrap();
        match replaced.unwrap().unwrap() {
            Succession::EarlierSuccessorUsed => assert!(!used.record.superseded),
            Succession::Replaced => assert!(used.record.superseded, "the use must see the replacement"),
            Succession::First => panic!("the first successor was not seen"),
            _ => panic!("unknown succession"),
        }
    }
}

/// A grant revoked on one instance while a rotation of one of its tokens
/// replaces a successor on the other: both lock refresh tokens before
/// access tokens, so neither fails (no deadlock), and the grant's earlier
/// tokens are gone or revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_grant_while_it_rotates_on_another_instance_fails_neither() {
    let pg = server();
    let (a, b) = two_instances(&pg, "revoke").await;
    for round in 0..20 {
        let (g, parent, first, jti) =
            (format!("g{round}"), format!("p{round}"), format!("s{round}"), format!("j{round}"));
        a.put_grant(store_contract::grant(&g, "alice", "c", 1000)).await.unwrap();
        a.put_access_token(store_contract::access(&jti, &g, 1000)).await.unwrap();
        a.put_refresh_token(refresh(&parent, &g, None, None)).await.unwrap();
        a.put_successor_refresh_token(refresh(&first, &g, Some(&parent), Some(&jti))).await.unwrap();
        let retry = refresh(&format!("t{round}"), &g, Some(&parent), None);
        let (revoked, rotated) = tokio::join!(
            {
                let (a, g) = (a.clone(), g.clone());
                tokio::spawn(async move { a.revoke_grant(&g).await })
            },
            {
                let b = b.clone();
                tokio::spawn(async move { b.put_successor_refresh_token(retry).await })
            },
        );
        revoked.unwrap().unwrap();
        rotated.unwrap().unwrap();
        assert!(a.grant(&g, 1).await.unwrap().unwrap().revoked);
        assert!(a.access_token(&jti, 1).await.unwrap().unwrap().revoked);
        assert!(a.refresh_token(&first, 1).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_migrating_one_fresh_database_at_once_all_start() {
    let pg = server();
    let url = pg.create_database("migrations").unwrap();
    let (a, b, c, d) = tokio::join!(
        PostgresStore::connect(&url),
        PostgresStore::connect(&url),
        PostgresStore::connect(&url),
        PostgresStore::connect(&url),
    );
    let (a, b, c, d) = (a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap());
    a.put_code(code("h", "g", 1000)).await.unwrap();
    for store in [&b, &c, &d] {
        assert!(store.code("h", 1).await.unwrap().is_some());
    }
    drop((a, b, c, d));

    // Connecting again keeps the data, and applies nothing twice.
    let again = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(again.code("h", 1).await.unwrap().unwrap().record, code("h", "g", 1000));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let versions =
        client.query("SELECT version FROM mcp_auth_migrations ORDER BY version", &[]).await.unwrap();
    assert_eq!(versions.iter().map(|row| row.get::<_, i32>(0)).collect::<Vec<_>>(), [1, 2]);
}

/// `open_store` takes both URL schemes libpq takes, and connects lazily:
/// opening never waits for the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_store_takes_postgres_and_postgresql_urls() {
    let pg = server();
    let url = pg.create_database("schemes").unwrap();
    let postgres = mcp_auth::authorization_server::open_store(&url).unwrap();
    let postgresql =
        mcp_auth::authorization_server::open_store(&url.replacen("postgres://", "postgresql://", 1)).unwrap();
    postgres.put_code(code("h", "g", 1000)).await.unwrap();
    assert_eq!(postgresql.code("h", 1).await.unwrap().unwrap().record, code("h", "g", 1000));
    // Nothing listens on port 1: opening succeeds, the first use is unavailable.
    let nowhere = mcp_auth::authorization_server::open_store("postgres://mcp@127.0.0.1:1/auth").unwrap();
    let result = nowhere.code("h", 1).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_stored_by_one_instance_are_read_by_another() {
    let pg = server();
    let (a, b) = two_instances(&pg, "keys").await;
    a.put_signing_key(signing_key("k1", &[7; 40], None)).await.unwrap();
    assert_eq!(b.signing_keys().await.unwrap(), [signing_key("k1", &[7; 40], None)]);

    // Two authorization servers on one `store = "postgres://..."`: the second
    // signs with the key the first generated.
    let url = pg.create_database("servers").unwrap();
    let build = || {
        let config = AuthorizationServerConfig::new("http://127.0.0.1:9").with_store(url.clone());
        AuthorizationServer::builder(config, "http://127.0.0.1:9/mcp").build()
    };
    let first = build().await.unwrap();
    let second = build().await.unwrap();
    let keys = first.store().signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(second.store().signing_keys().await.unwrap(), keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_down_is_unavailable_then_recovers() {
    let mut pg = server();
    let url = pg.create_database("down").unwrap();
    let store = PostgresStore::connect(&url).await.unwrap();
    store.put_code(code("h", "g", 1000)).await.unwrap();

    pg.stop().unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let result = store.code("h", 1).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    }

    pg.restart().unwrap();
    // The same store recovers by itself (a connection that died with the server may fail once).
    let mut recovered = None;
    for _ in 0..3 {
        match store.code("h", 1).await {
            Ok(found) => {
                recovered = found;
                break;
            }
            Err(StoreError::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(recovered.unwrap().record, code("h", "g", 1000));
    assert!(store.use_code("h", 2).await.unwrap().is_some());
}

/// The HTTP side: with the database down, the token and registration
/// endpoints answer `503 temporarily_unavailable` (JSON), not `500`, and the
/// authorization page is an HTML `503`; once the database is back, the same
/// server serves the same refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_endpoints_answer_503_while_the_database_is_down() {
    let mut pg = server();
    let url = pg.create_database("http").unwrap();
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let s = as_support::start_with(|c| c, store, "").await;
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    let response = s.exchange(&client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    pg.stop().unwrap();
    let body = as_support::assert_oauth_error(
        s.refresh(&client, refresh_token).await,
        503,
        "temporarily_unavailable",
    )
    .await;
    assert!(!body.to_string().contains("postgres"), "no internals: {body}");
    // Registration too; the authorization page is an HTML 503.
    let registered = s.register_raw(&serde_json::json!({"redirect_uris": [as_support::REDIRECT]})).await;
    as_support::assert_oauth_error(registered, 503, "temporarily_unavailable").await;
    let (_, challenge) = as_support::pkce();
    let params = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", as_support::REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = s.authorize(&params).await;
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("Try again later"));

    pg.restart().unwrap();
    let mut status = 0;
    for _ in 0..3 {
        status = s.refresh(&client, refresh_token).await.status().as_u16();
        if status != 503 {
            break;
        }
    }
    assert_eq!(status, 200);
}

/// The revocation feed of one instance: `Connected` once it listens, then
/// an event for every change of an access token or grant that another
/// instance commits, and none for new rows or other kinds of records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revocation_feed_tells_of_access_tokens_and_grants_changed_by_another_instance() {
    use mcp_auth::authorization_server::store::{RevocationEvent, RevocationFeed};
    async fn next(feed: &mut RevocationFeed) -> RevocationEvent {
        tokio::time::timeout(Duration::from_secs(5), feed.events.recv()).await.unwrap().unwrap()
    }
    let pg = server();
    let (a, b) = two_instances(&pg, "feed").await;
    let mut feed = b.revocation_feed().unwrap();
    if !feed.is_connected() {
        assert_eq!(next(&mut feed).await, RevocationEvent::Connected);
    }
    assert!(feed.is_connected());
    // New rows, and records of other kinds: nothing to hear of.
    a.put_grant(grant("g1", "alice", "c", 1000)).await.unwrap();
    a.put_access_token(access("j1", "g1", 1000)).await.unwrap();
    a.put_access_token(access("j2", "g1", 1000)).await.unwrap();
    a.put_client(client("c", None)).await.unwrap();
    a.revoke_access_token("j1").await.unwrap();
    assert_eq!(next(&mut feed).await, RevocationEvent::AccessToken("j1".into()));
    a.revoke_grant("g1").await.unwrap();
    let mut heard = BTreeSet::new();
    for _ in 0..3 {
        heard.insert(format!("{:?}", next(&mut feed).await));
    }
    let expected = ["AccessToken(\"j1\")", "AccessToken(\"j2\")", "Grant(\"g1\")"];
    assert_eq!(heard, expected.iter().map(|s| (*s).to_owned()).collect());
    assert!(feed.events.try_recv().is_err(), "nothing else was changed");
    // A second subscriber of a connected store hears of it at once.
    assert!(b.revocation_feed().unwrap().is_connected());
    // The listener goes with the store, saying so first: nothing may be cached on its word.
    drop(b);
    let last = tokio::time::timeout(Duration::from_secs(5), feed.events.recv()).await.unwrap();
    assert_eq!(last.ok(), Some(RevocationEvent::Disconnected));
    assert!(!feed.is_connected());
    let closed = tokio::time::timeout(Duration::from_secs(5), feed.events.recv()).await.unwrap();
    assert!(closed.is_err(), "{closed:?}");
}
