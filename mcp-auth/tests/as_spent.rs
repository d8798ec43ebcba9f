//! A store that fails after a code or refresh token was spent (its
//! successor or the new access token cannot be written): the token endpoint
//! answers `server_error`, never the retryable `temporarily_unavailable`,
//! whose retry would present the spent credential again and be taken for a
//! replay that revokes the grant.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use as_support::watched::WatchedStore;
use as_support::{assert_oauth_error, start_with};
use mcp_auth::authorization_server::store::MemoryStore;
use serde_json::Value;

#[tokio::test]
async fn a_failure_after_the_code_was_spent_is_a_server_error_not_a_retry() {
    let store = Arc::new(WatchedStore::new(Arc::new(MemoryStore::new())));
    let s = start_with(|c| c, store.clone(), "").await;
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    store.fail_writes.store(true, Ordering::SeqCst);
    assert_oauth_error(s.exchange(&client, &code, &verifier).await, 500, "server_error").await;
}

#[tokio::test]
async fn a_failure_after_the_refresh_token_was_spent_is_a_server_error_not_a_retry() {
    let store = Arc::new(WatchedStore::new(Arc::new(MemoryStore::new())));
    let s = start_with(|c| c, store.clone(), "").await;
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    let tokens: Value = s.exchange(&client, &code, &verifier).await.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    store.fail_writes.store(true, Ordering::SeqCst);
    assert_oauth_error(s.refresh(&client, refresh).await, 500, "server_error").await;
}
