//! Signing settings over HTTP: RS256 tokens through the one validation path,
//! a signing key file, the SQLite store (which holds the key) owner-only
//! with its `-wal` and `-shm` files, and the memory store refused off
//! loopback.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;

use as_support::{TestServer, start_with};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth::authorization_server::store::{MemoryStore, SqliteStore};
use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
use serde_json::Value;

async fn access_token(s: &TestServer) -> String {
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    let response = s.exchange(&client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn header(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

async fn jwks(s: &TestServer) -> Vec<Value> {
    let jwks: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_rs256_server_issues_rs256_tokens_that_work_at_mcp() {
    let s = start_with(|c| c.with_signing_algorithm("RS256"), Arc::new(MemoryStore::new()), "").await;
    let keys = jwks(&s).await;
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["alg"].as_str()), (Some("RSA"), Some("RS256")));

    let access = access_token(&s).await;
    let header = header(&access);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], keys[0]["kid"]);
    // The ResourceServer path, then the gated MCP endpoint.
    assert_eq!(s.server.resource_server().unwrap().verify(&access).await.unwrap().subject, "alice");
    let response = s.call_mcp(&access).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["subject"], "alice");
}

#[tokio::test]
async fn the_default_is_es256() {
    let s = start_with(|c| c, Arc::new(MemoryStore::new()), "").await;
    let keys = jwks(&s).await;
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["alg"].as_str()), (Some("EC"), Some("ES256")));
    assert_eq!(header(&access_token(&s).await)["alg"], "ES256");
}

#[tokio::test]
async fn a_signing_key_file_is_generated_then_reused_across_restarts() {
    let dir = std::env::temp_dir().join(format!("mcp-auth-as-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("signing.pem");
    let file = path.to_str().unwrap().to_owned();

    let first = start_with(
        |c| c.with_signing_algorithm("RS256").with_signing_key_file(&file),
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;
    assert!(std::fs::read_to_string(&path).unwrap().contains("BEGIN PRIVATE KEY"));
    let kid = jwks(&first).await[0]["kid"].clone();
    assert_eq!(first.call_mcp(&access_token(&first).await).await.status(), 200);

    // Another server (another store) with the same file publishes the same key.
    let second = start_with(
        |c| c.with_signing_algorithm("RS256").with_signing_key_file(&file),
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;
    assert_eq!(jwks(&second).await[0]["kid"], kid);

    // The wrong algorithm for the file's key is refused at start, naming it.
    let config = AuthorizationServerConfig::new(&second.issuer).with_signing_key_file(&file);
    let error = AuthorizationServer::builder(config, &second.resource)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("signing.pem") && error.contains("RS256") && error.contains("ES256"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_unknown_signing_algorithm_is_refused() {
    let config = AuthorizationServerConfig::new("http://127.0.0.1:9").with_signing_algorithm("HS256");
    let error = AuthorizationServer::builder(config, "http://127.0.0.1:9/mcp")
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("auth.authorization_server.signing_algorithm"), "{error}");
}

#[tokio::test]
async fn the_memory_store_is_refused_off_loopback() {
    let config = AuthorizationServerConfig::new("https://auth.example.com").with_store("memory");
    let error = AuthorizationServer::builder(config, "https://auth.example.com/mcp")
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("auth.authorization_server.store"), "{error}");
    assert!(error.contains("sqlite://PATH"), "{error}");

    // On loopback it still starts (with its warning).
    let config = AuthorizationServerConfig::new("http://127.0.0.1:9").with_store("memory");
    assert!(AuthorizationServer::builder(config, "http://127.0.0.1:9/mcp").build().await.is_ok());
}

/// Set in the child process of the umask test: the directory it works in.
#[cfg(unix)]
const UMASK_CHILD_DIR: &str = "MCP_AUTH_TEST_UMASK_CHILD_DIR";

/// The SQLite store holds the private signing key, and so do the `-wal` and
/// `-shm` files SQLite keeps beside it: all three are mode 0600 under the
/// common umask 022. The umask is per process, so the test runs itself again
/// in a child started with `sh -c 'umask 022; exec …'`, which starts a
/// server on a fresh database and makes it write over HTTP.
#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_store_and_its_wal_and_shm_files_are_owner_only_under_umask_022() {
    const NAME: &str = "the_sqlite_store_and_its_wal_and_shm_files_are_owner_only_under_umask_022";
    if let Some(dir) = std::env::var_os(UMASK_CHILD_DIR) {
        return sqlite_files_are_owner_only(std::path::Path::new(&dir)).await;
    }
    let dir = std::env::temp_dir().join(format!("mcp-auth-as-umask-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 022; exec "$0" "$@""#)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(UMASK_CHILD_DIR, &dir)
        .output()
        .unwrap();
    let report =
        format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{report}");
    assert!(report.contains("1 passed"), "the child ran the test: {report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
async fn sqlite_files_are_owner_only(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    // The umask really is 022 here: a plain new file is world-readable.
    let plain = dir.join("plain");
    std::fs::write(&plain, "x").unwrap();
    assert_eq!(mode(&plain), 0o644);

    let db = dir.join("auth.db");
    let s = start_with(|c| c, Arc::new(SqliteStore::open(&db).unwrap()), "").await;
    // Registration, a code and a token exchange: the WAL holds writes, and
    // the key was written at start.
    assert_eq!(s.call_mcp(&access_token(&s).await).await.status(), 200);
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("auth.db{suffix}"));
        assert!(path.exists(), "{} exists while the store is open", path.display());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}
