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
