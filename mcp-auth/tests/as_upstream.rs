//! The upstream-login machinery of the authorization server over real HTTP,
//! with an in-process provider implementing [`UpstreamLogin`]: our consent
//! comes first, the provider gets its own PKCE challenge, the profile lands
//! in our tokens, and the provider's token is sealed, reached only through
//! [`UpstreamTokens`], refreshed once for concurrent callers, and cut off by
//! revocation. (The GitHub and OpenID logins are tested end to end against
//! a GitHub stand-in and a real OpenID provider in `tests/`.)

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use as_support::{Browser, ManualClock, REDIRECT, TestServer, param, pkce, redirect_params, start_built};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth::authorization_server::store::MemoryStore;
use mcp_auth::authorization_server::{
    UpstreamAuthorization, UpstreamCallback, UpstreamCredentials, UpstreamLoginError, UpstreamUser,
};
use mcp_auth::{BoxFuture, Identity, UpstreamLogin};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

const UPSTREAM: &str = "https://upstream.test/authorize";

/// A provider that remembers the challenge it was sent, checks the
/// verifier against it, and rotates refresh tokens.
#[derive(Debug, Default)]
struct Provider {
    challenges: Mutex<Vec<String>>,
    refreshes: AtomicUsize,
}

impl UpstreamLogin for Provider {
    fn name(&self) -> &str {
        "test"
    }

    fn display_name(&self) -> &str {
        "Test Provider"
    }

    fn authorization_url<'a>(
        &'a self,
        request: &'a UpstreamAuthorization<'a>,
    ) -> BoxFuture<'a, Result<Url, UpstreamLoginError>> {
        self.challenges.lock().unwrap().push(request.code_challenge.to_owned());
        let mut url = Url::parse(UPSTREAM).unwrap();
        url.query_pairs_mut()
            .append_pair("state", request.state)
            .append_pair("redirect_uri", request.redirect_uri)
            .append_pair("code_challenge", request.code_challenge);
        Box::pin(std::future::ready(Ok(url)))
    }

    fn finish<'a>(
        &'a self,
        callback: &'a UpstreamCallback<'a>,
    ) -> BoxFuture<'a, Result<UpstreamUser, UpstreamLoginError>> {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(callback.code_verifier.as_bytes()));
        let known = self.challenges.lock().unwrap().contains(&challenge);
        let result = match callback.code {
            _ if !known => Err(UpstreamLoginError::Invalid("PKCE verifier mismatch".into())),
            "good-code" => Ok(UpstreamUser::new("test:42")
                .with_claim("preferred_username", "octo")
                .with_claim("sub", "forged-subject")
                .with_credentials(
                    UpstreamCredentials::new("upstream-access-1")
                        .with_refresh_token("upstream-refresh-1")
                        .with_expires_in(120),
                )),
            "outsider" => Err(UpstreamLoginError::NotAllowed("outsider".into())),
            _ => Err(UpstreamLoginError::Refused {
                error: "bad_verification_code".into(),
                description: String::new(),
            }),
        };
        Box::pin(std::future::ready(result))
    }

    fn refresh<'a>(
        &'a self,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamCredentials, UpstreamLoginError>> {
        Box::pin(async move {
            // Slow enough for concurrent callers to overlap.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            // Rotation: only the latest refresh token works.
            if refresh_token != format!("upstream-refresh-{n}") {
                return Err(UpstreamLoginError::Refused {
                    error: "invalid_grant".into(),
                    description: String::new(),
                });
            }
            Ok(UpstreamCredentials::new(format!("upstream-access-{}", n + 1))
                .with_refresh_token(format!("upstream-refresh-{}", n + 1))
                .with_expires_in(120))
        })
    }
}

struct Fixture {
    server: TestServer,
    provider: Arc<Provider>,
    clock: Arc<ManualClock>,
}

async fn fixture() -> Fixture {
    let provider = Arc::new(Provider::default());
    let clock = Arc::new(ManualClock::default());
    let (p, c) = (provider.clone(), clock.clone());
    let server = start_built(
        |config| config.with_login("test"),
        move |builder| builder.store(Arc::new(MemoryStore::new())).upstream(p).clock(c),
        "",
    )
    .await;
    Fixture { server, provider, clock }
}

/// Consent, then out to the provider: returns the browser and the upstream state.
async fn to_provider(s: &TestServer, params: &[(&str, &str)]) -> (Browser, String) {
    let mut browser = Browser::new();
    let page = browser.authorize(s, params).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains("name=\"username\""), "no login form with an upstream login");
    assert!(html.contains("Test Provider") && html.contains("Allow and continue"), "{html}");
    let out = browser.decide(s, &html, "approve", false).await;
    let location = out.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(UPSTREAM), "{location}");
    let upstream = Url::parse(&location).unwrap();
    let query = |name: &str| upstream.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned());
    assert_eq!(query("redirect_uri").unwrap(), s.url("/callback"));
    (browser, query("state").unwrap())
}

async fn callback(s: &TestServer, browser: &mut Browser, query: &[(&str, &str)]) -> reqwest::Response {
    let mut url = Url::parse(&s.url("/callback")).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    browser.get(s, url, &[]).await
}

fn claims_of(jwt: &str) -> Map<String, Value> {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A full login: returns the token answer.
async fn login(f: &Fixture) -> Value {
    let s = &f.server;
    let client = s.public_client().await;
    let (verifier, challenge) = pkce();
    let (mut browser, state) = to_provider(s, &s.request(&client, &challenge)).await;
    // Dual PKCE: the provider saw a challenge of ours, not the client's.
    assert!(!f.provider.challenges.lock().unwrap().contains(&challenge));
    let back = callback(s, &mut browser, &[("code", "good-code"), ("state", &state)]).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let params = redirect_params(&back);
    assert_eq!(param(&params, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&params, "iss").as_deref(), Some(s.issuer.as_str()));
    let code = param(&params, "code").expect("our code");
    let answer = s.exchange(&client, &code, &verifier).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let text = answer.text().await.unwrap();
    assert!(!text.contains("upstream-access") && !text.contains("upstream-refresh"), "{text}");
    serde_json::from_str(&text).unwrap()
}

fn identity(access_token: &str) -> Identity {
    let claims = claims_of(access_token);
    let mut identity = Identity::new(claims["sub"].as_str().unwrap());
    identity.claims = claims;
    identity
}

#[tokio::test]
async fn the_profile_reaches_our_tokens_and_the_provider_token_only_tools() {
    let f = fixture().await;
    let tokens = login(&f).await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims = claims_of(access);
    assert_eq!(claims["sub"], "test:42", "the profile cannot override registered claims");
    assert_eq!(claims["preferred_username"], "octo");
    assert!(!serde_json::to_string(&claims).unwrap().contains("upstream-"));
    assert_eq!(f.server.call_mcp(access).await.status(), StatusCode::OK);

    let upstream = f.server.server.upstream_tokens();
    let token = upstream.for_identity(&identity(access)).await.unwrap().expect("the sealed token");
    assert_eq!(token.secret(), "upstream-access-1");
    assert_eq!(format!("{token:?}"), "UpstreamToken(<redacted>)");
    // Another subject presenting the same jti gets nothing.
    let mut other = identity(access);
    other.subject = "someone-else".into();
    assert!(upstream.for_identity(&other).await.unwrap().is_none());
    // The grant as stored holds no readable token.
    let jti = claims["jti"].as_str().unwrap();
    let store = f.server.server.store();
    let record = store.access_token(jti, 0).await.unwrap().unwrap();
    let grant = store.grant(&record.grant_id, 0).await.unwrap().unwrap();
    let sealed = grant.upstream_token.expect("sealed");
    assert!(!sealed.contains("upstream-access") && !sealed.contains("upstream-refresh"));
}

#[tokio::test]
async fn an_expiring_provider_token_is_refreshed_once_for_concurrent_callers() {
    let f = fixture().await;
    let tokens = login(&f).await;
    let who = identity(tokens["access_token"].as_str().unwrap());
    let upstream = f.server.server.upstream_tokens();
    assert_eq!(upstream.for_identity(&who).await.unwrap().unwrap().secret(), "upstream-access-1");
    assert_eq!(f.provider.refreshes.load(Ordering::SeqCst), 0, "fresh: no refresh");

    // 120 s lifetime, refreshed from 60 s before expiry.
    f.clock.advance(70);
    let calls = (0..5).map(|_| {
        let (upstream, who) = (upstream.clone(), who.clone());
        tokio::spawn(async move { upstream.for_identity(&who).await.unwrap().unwrap().secret().to_owned() })
    });
    for call in calls {
        assert_eq!(call.await.unwrap(), "upstream-access-2");
    }
    assert_eq!(f.provider.refreshes.load(Ordering::SeqCst), 1, "one refresh for five callers");
    // The rotated refresh token was kept: the next expiry refreshes again.
    f.clock.advance(70);
    assert_eq!(upstream.for_identity(&who).await.unwrap().unwrap().secret(), "upstream-access-3");
}

#[tokio::test]
async fn revocation_cuts_tools_off_from_the_provider_token() {
    let f = fixture().await;
    let tokens = login(&f).await;
    let who = identity(tokens["access_token"].as_str().unwrap());
    let upstream = f.server.server.upstream_tokens();
    assert!(upstream.for_identity(&who).await.unwrap().is_some());
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let revoked =
        f.server.post_form("/revoke", &[("token", refresh), ("client_id", &client_id(&tokens))]).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(upstream.for_identity(&who).await.unwrap().is_none());
}

fn client_id(tokens: &Value) -> String {
    claims_of(tokens["access_token"].as_str().unwrap())["client_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_callback_is_single_use_browser_bound_and_relays_refusals() {
    let f = fixture().await;
    let s = &f.server;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let params = s.request(&client, &challenge);

    // Forged state.
    let mut stranger = Browser::new();
    let forged = callback(s, &mut stranger, &[("code", "good-code"), ("state", "forged")]).await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    // Right state, another browser: 403, and the transaction survives it.
    let (mut browser, state) = to_provider(s, &params).await;
    let stolen = callback(s, &mut stranger, &[("code", "good-code"), ("state", &state)]).await;
    assert_eq!(stolen.status(), StatusCode::FORBIDDEN);
    let done = callback(s, &mut browser, &[("code", "good-code"), ("state", &state)]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(param(&redirect_params(&done), "code").is_some());
    // Replayed: 400.
    let replay = callback(s, &mut browser, &[("code", "good-code"), ("state", &state)]).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

    // The provider's access_denied, an allow-list refusal and a refused code
    // go back to the client with its state and our iss.
    for (query, error) in [
        (vec![("error", "access_denied")], "access_denied"),
        (vec![("code", "outsider")], "access_denied"),
        (vec![("code", "bad-code")], "server_error"),
        (vec![("error", "temporarily_unavailable")], "server_error"),
    ] {
        let (mut browser, state) = to_provider(s, &params).await;
        let mut query = query.clone();
        query.push(("state", &state));
        let back = callback(s, &mut browser, &query).await;
        assert_eq!(back.status(), StatusCode::SEE_OTHER);
        let location = back.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        let back = redirect_params(&back);
        assert_eq!(param(&back, "error").as_deref(), Some(error), "{query:?}");
        assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
        assert_eq!(param(&back, "iss").as_deref(), Some(s.issuer.as_str()));
        assert!(param(&back, "code").is_none());
    }
}

#[tokio::test]
async fn an_upstream_login_off_loopback_needs_a_sealing_key() {
    let config = mcp_auth::AuthorizationServerConfig::new("https://auth.example.com").with_login("test");
    let builder = mcp_auth::AuthorizationServer::builder(config, "https://auth.example.com/mcp")
        .store(Arc::new(MemoryStore::new()))
        .upstream(Arc::new(Provider::default()));
    let err = builder.validate().unwrap_err().to_string();
    assert!(err.contains("auth.authorization_server.sealing_key"), "{err}");
    let err = builder.build().await.unwrap_err().to_string();
    assert!(err.contains("auth.authorization_server.sealing_key"), "{err}");

    let key = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let config = mcp_auth::AuthorizationServerConfig::new("https://auth.example.com")
        .with_login("test")
        .with_sealing_key(key.as_str());
    let builder = mcp_auth::AuthorizationServer::builder(config, "https://auth.example.com/mcp")
        .store(Arc::new(MemoryStore::new()))
        .upstream(Arc::new(Provider::default()));
    builder.validate().unwrap();
    let config = mcp_auth::AuthorizationServerConfig::new("https://auth.example.com")
        .with_login("test")
        .with_sealing_key("too-short");
    let builder = mcp_auth::AuthorizationServer::builder(config, "https://auth.example.com/mcp")
        .store(Arc::new(MemoryStore::new()))
        .upstream(Arc::new(Provider::default()));
    assert!(builder.validate().unwrap_err().to_string().contains("sealing_key"));
}
