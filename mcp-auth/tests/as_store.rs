//! The store contract (tests/store_contract) on the memory and SQLite stores.

mod store_contract;

use std::sync::Arc;

use mcp_auth::authorization_server::store::{AuthStore, MemoryStore, SqliteStore};

#[tokio::test]
async fn the_memory_store_keeps_the_store_contract() {
    store_contract::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn AuthStore> }).await;
}

#[tokio::test]
async fn the_sqlite_store_keeps_the_store_contract() {
    store_contract::run_all(|| async {
        let store = SqliteStore::in_memory().expect("an in-memory database");
        Arc::new(store) as Arc<dyn AuthStore>
    })
    .await;
}

/// One process writes these stores, so they tell its revocation cache of
/// their own revocations, at once: the feed is connected from the start.
#[tokio::test]
async fn the_memory_and_sqlite_stores_tell_of_their_own_revocations() {
    use mcp_auth::authorization_server::store::RevocationEvent;
    let stores: [Arc<dyn AuthStore>; 2] =
        [Arc::new(MemoryStore::new()), Arc::new(SqliteStore::in_memory().expect("an in-memory database"))];
    for store in stores {
        let mut feed = store.revocation_feed().expect("a feed");
        assert!(feed.is_connected());
        store.revoke_access_token("jti-1").await.expect("revoked");
        assert_eq!(feed.events.try_recv().ok(), Some(RevocationEvent::AccessToken("jti-1".into())));
        store.revoke_grant("grant-1").await.expect("revoked");
        assert_eq!(feed.events.try_recv().ok(), Some(RevocationEvent::Grant("grant-1".into())));
        assert!(feed.events.try_recv().is_err(), "nothing else");
    }
}
