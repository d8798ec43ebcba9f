//! JWT access tokens end to end, over real HTTP on 127.0.0.1: a plain axum
//! handler behind the layer, and a stand-in authorization server publishing
//! metadata and a JWKS. Signatures, claims, key rotation, failures.

// Helpers outside #[test] functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use mcp_auth::{IntrospectionConfig, ResourceServer, ResourceServerConfig};
use serde_json::{Value, json};
use support::{
    App, Discovery, Issuer, IssuerOptions, Jwks, SigningKey, assert_invalid_token, b64, challenge, now,
    setup, setup_with,
};

#[tokio::test]
async fn valid_token_reaches_the_handler_with_the_identity() {
    let (issuer, key, app) = setup().await;
    let mut claims = issuer.claims(&app.resource);
    claims["tenant"] = json!("acme");
    let response = app.call(&key.sign(&claims)).await;
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["subject"], "alice");
    assert_eq!(seen["client_id"], "notes-app");
    assert_eq!(seen["scopes"], json!(["notes:read"]));
    assert_eq!(seen["claims"]["tenant"], "acme");
    assert_eq!(seen["claims"]["iss"], issuer.url);
}

#[tokio::test]
async fn rs256_ps256_and_eddsa_tokens_verify_too() {
    let issuer = Issuer::start().await;
    let (rs, ps, ed) = (SigningKey::rs256("rsa"), SigningKey::ps256("pss"), SigningKey::ed25519("ed"));
    issuer.publish(&[&rs, &ps, &ed]);
    let app =
        App::start(|resource| ResourceServer::new(ResourceServerConfig::new(&issuer.url), resource).unwrap())
            .await;
    for key in [&rs, &ps, &ed] {
        let mut claims = issuer.claims(&app.resource);
        // `scp` as an array (Entra, Okta) instead of `scope`.
        claims.as_object_mut().unwrap().remove("scope");
        claims["scp"] = json!(["a", "b"]);
        let response = app.call(&key.sign(&claims)).await;
        assert_eq!(response.status(), 200, "{}", key.alg);
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["scopes"], json!(["a", "b"]));
    }
    // An RSA key used with an EC algorithm, or ES256 named by an RSA kid: refused.
    let es = SigningKey::es256("rsa");
    assert_invalid_token(app.call(&es.sign(&issuer.claims(&app.resource))).await).await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let (issuer, key, app) = setup().await;
    let mut claims = issuer.claims(&app.resource);
    claims["exp"] = json!(now() - 120); // beyond the 60 s leeway
    let response = app.call(&key.sign(&claims)).await;
    assert!(challenge(&response).contains(r#"error_description="The access token expired""#));
    assert_invalid_token(response).await;
    // Within the leeway it still passes.
    claims["exp"] = json!(now() - 10);
    assert_eq!(app.call(&key.sign(&claims)).await.status(), 200);
    // Not yet valid.
    let mut claims = issuer.claims(&app.resource);
    claims["nbf"] = json!(now() + 600);
    assert_invalid_token(app.call(&key.sign(&claims)).await).await;
}

#[tokio::test]
async fn wrong_audience_is_refused_exactly() {
    let (issuer, key, app) = setup().await;
    let resource = app.resource.clone();
    for wrong in [
        format!("{resource}/"),
        format!("{resource}-other"),
        resource.trim_end_matches("/mcp").to_owned(),
        "https://elsewhere.example.com/mcp".to_owned(),
    ] {
        let mut claims = issuer.claims(&resource);
        claims["aud"] = json!(wrong);
        let response = app.call(&key.sign(&claims)).await;
        assert!(challenge(&response).contains("not issued for this resource"), "{wrong}");
        assert_invalid_token(response).await;
    }
    let mut claims = issuer.claims(&resource);
    claims.as_object_mut().unwrap().remove("aud");
    assert_invalid_token(app.call(&key.sign(&claims)).await).await;
}

#[tokio::test]
async fn audience_array_containing_the_resource_is_accepted() {
    let (issuer, key, app) = setup().await;
    let mut claims = issuer.claims(&app.resource);
    claims["aud"] = json!(["https://api.example.com", app.resource]);
    assert_eq!(app.call(&key.sign(&claims)).await.status(), 200);
    claims["aud"] = json!(["https://api.example.com", format!("{}/", app.resource)]);
    assert_invalid_token(app.call(&key.sign(&claims)).await).await;
}

#[tokio::test]
async fn configured_audience_replaces_the_default() {
    let (issuer, key, app) = setup_with(|c| c.with_audience("api://notes")).await;
    let mut claims = issuer.claims(&app.resource);
    assert_invalid_token(app.call(&key.sign(&claims)).await).await;
    claims["aud"] = json!("api://notes");
    assert_eq!(app.call(&key.sign(&claims)).await.status(), 200);
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let (issuer, key, app) = setup().await;
    for wrong in [json!(format!("{}/", issuer.url)), json!("https://evil.example.com"), json!([issuer.url])] {
        let mut claims = issuer.claims(&app.resource);
        claims["iss"] = wrong;
        assert_invalid_token(app.call(&key.sign(&claims)).await).await;
    }
}

#[tokio::test]
async fn alg_none_is_refused_and_never_introspected() {
    let (issuer, _key, app) =
        setup_with(|c| c.with_introspection(IntrospectionConfig::new("rs", "secret"))).await;
    let claims = issuer.claims(&app.resource);
    for header in
        [json!({"alg": "none", "kid": "k1"}), json!({"alg": "none"}), json!({"alg": "HS256", "kid": "k1"})]
    {
        let token = format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()));
        assert_invalid_token(app.call(&token).await).await;
        assert_invalid_token(app.call(&format!("{token}c2ln")).await).await;
    }
    assert_eq!(issuer.introspection_hits(), 0);
}

#[tokio::test]
async fn tampered_signature_or_payload_is_refused() {
    let (issuer, key, app) = setup().await;
    let token = key.sign(&issuer.claims(&app.resource));
    let (input, signature) = token.rsplit_once('.').unwrap();
    // Flip the signature.
    let mut raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
    raw[10] ^= 0x01;
    assert_invalid_token(app.call(&format!("{input}.{}", b64(&raw))).await).await;
    // Swap in another payload under the original signature.
    let mut elevated = issuer.claims(&app.resource);
    elevated["scope"] = json!("notes:read notes:write admin");
    let (header, _) = input.split_once('.').unwrap();
    assert_invalid_token(app.call(&format!("{header}.{}.{signature}", b64(elevated.to_string()))).await)
        .await;
    // The untouched token still passes.
    assert_eq!(app.call(&token).await.status(), 200);
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_and_picks_up_rotation() {
    let (issuer, old, app) = setup_with(|c| c.with_jwks_min_refetch_secs(0)).await;
    assert_eq!(app.call(&old.sign(&issuer.claims(&app.resource))).await.status(), 200);
    assert_eq!(issuer.jwks_hits(), 1);
    // Rotation: the issuer publishes a new key and signs with it.
    let new = SigningKey::es256("k2");
    issuer.publish(&[&old, &new]);
    assert_eq!(app.call(&new.sign(&issuer.claims(&app.resource))).await.status(), 200);
    assert_eq!(issuer.jwks_hits(), 2);
    // Both keys now come from the cache.
    assert_eq!(app.call(&old.sign(&issuer.claims(&app.resource))).await.status(), 200);
    assert_eq!(app.call(&new.sign(&issuer.claims(&app.resource))).await.status(), 200);
    assert_eq!(issuer.jwks_hits(), 2);
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_cooldown() {
    let (issuer, key, app) = setup_with(|c| c.with_jwks_min_refetch_secs(300)).await;
    assert_eq!(app.call(&key.sign(&issuer.claims(&app.resource))).await.status(), 200);
    let stranger = SigningKey::es256("junk");
    for _ in 0..5 {
        assert_invalid_token(app.call(&stranger.sign(&issuer.claims(&app.resource))).await).await;
    }
    assert_eq!(issuer.jwks_hits(), 1, "junk kids must not hammer the issuer");
}

#[tokio::test]
async fn token_without_kid_needs_a_single_candidate_key() {
    let (issuer, key, app) = setup().await;
    let claims = issuer.claims(&app.resource);
    let no_kid = key.sign_with_header(&json!({"alg": "ES256", "typ": "at+jwt"}), &claims);
    assert_eq!(app.call(&no_kid).await.status(), 200);

    let other = SigningKey::es256("k2");
    issuer.publish(&[&key, &other]);
    let fresh = App::start(|resource| {
        ResourceServer::new(ResourceServerConfig::new(&issuer.url).with_audience(&app.resource), resource)
            .unwrap()
    })
    .await;
    assert_invalid_token(fresh.call(&no_kid).await).await;
}

#[tokio::test]
async fn jwks_down_keeps_cached_keys_working_and_unknown_kids_get_401() {
    // Cache lifetime zero: every request wants a fresh JWKS.
    let (issuer, key, app) =
        setup_with(|c| c.with_jwks_cache_max_secs(0).with_jwks_min_refetch_secs(0)).await;
    assert_eq!(app.call(&key.sign(&issuer.claims(&app.resource))).await.status(), 200);
    issuer.set_jwks(Jwks::Down);
    let hits = issuer.jwks_hits();
    assert_eq!(app.call(&key.sign(&issuer.claims(&app.resource))).await.status(), 200);
    assert!(issuer.jwks_hits() > hits, "a refetch was attempted");
    let rotated = SigningKey::es256("k9");
    let response = app.call(&rotated.sign(&issuer.claims(&app.resource))).await;
    assert!(challenge(&response).contains("cannot be verified right now"), "{}", challenge(&response));
    assert_invalid_token(response).await;
    // Back up: the rotated key is found.
    issuer.publish(&[&key, &rotated]);
    issuer.set_jwks(Jwks::Up);
    assert_eq!(app.call(&rotated.sign(&issuer.claims(&app.resource))).await.status(), 200);
}

#[tokio::test]
async fn slow_jwks_gives_401_within_the_fetch_timeout() {
    let (issuer, key, app) = setup().await;
    issuer.set_jwks(Jwks::Slow);
    let started = Instant::now();
    let response = app.call(&key.sign(&issuer.claims(&app.resource))).await;
    assert_invalid_token(response).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(7), "took {took:?}");
}

#[tokio::test]
async fn unreachable_issuer_gives_401_not_500() {
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let key = SigningKey::es256("k1");
    let app =
        App::start(|resource| ResourceServer::new(ResourceServerConfig::new(&dead), resource).unwrap()).await;
    let claims = json!({"iss": dead, "aud": app.resource, "sub": "a", "exp": now() + 60});
    let started = Instant::now();
    assert_invalid_token(app.call(&key.sign(&claims)).await).await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration_for_issuers_with_a_path() {
    let issuer = Issuer::start_with(IssuerOptions {
        path: "/realms/notes",
        discovery: Discovery::OpenIdAppended,
        ..Default::default()
    })
    .await;
    let key = SigningKey::es256("k1");
    issuer.publish(&[&key]);
    let app =
        App::start(|resource| ResourceServer::new(ResourceServerConfig::new(&issuer.url), resource).unwrap())
            .await;
    assert_eq!(app.call(&key.sign(&issuer.claims(&app.resource))).await.status(), 200);
    assert_eq!(issuer.metadata_hits(), 1);
}

#[tokio::test]
async fn metadata_for_another_issuer_is_not_used() {
    let issuer = Issuer::start_with(IssuerOptions {
        claimed_issuer: Some("https://evil.example.com".into()),
        ..Default::default()
    })
    .await;
    let key = SigningKey::es256("k1");
    issuer.publish(&[&key]);
    let app =
        App::start(|resource| ResourceServer::new(ResourceServerConfig::new(&issuer.url), resource).unwrap())
            .await;
    assert_invalid_token(app.call(&key.sign(&issuer.claims(&app.resource))).await).await;
    assert_eq!(issuer.jwks_hits(), 0, "keys named by unverified metadata are never fetched");
}

#[tokio::test]
async fn jwks_cache_control_max_age_is_honoured() {
    let (issuer, key, app) = setup_with(|c| c.with_jwks_min_refetch_secs(0)).await;
    issuer.set_jwks_cache_control("max-age=0");
    // max-age=0 with no refetch floor: every new token looks again.
    let a = key.sign(&issuer.claims(&app.resource));
    assert_eq!(app.call(&a).await.status(), 200);
    let mut claims = issuer.claims(&app.resource);
    claims["sub"] = json!("bob");
    assert_eq!(app.call(&key.sign(&claims)).await.status(), 200);
    assert_eq!(issuer.jwks_hits(), 2);
    // A verified token is remembered: no key lookup at all.
    assert_eq!(app.call(&a).await.status(), 200);
    assert_eq!(issuer.jwks_hits(), 2);
}

/// RFC 9068 §4: only a JWT whose header says `typ: at+jwt` is an access token. An ID token or a
/// logout token the issuer signed with the same `iss` and `aud` (`typ: JWT`, or no `typ`) is
/// refused, unless `accept_plain_jwt` is on for an issuer that does not mark its access tokens.
#[tokio::test]
async fn only_at_jwt_typed_tokens_are_access_tokens() {
    let (issuer, key, app) = setup().await;
    let claims = issuer.claims(&app.resource);
    let header = |typ: Option<&str>| match typ {
        Some(typ) => json!({"alg": "ES256", "kid": "k1", "typ": typ}),
        None => json!({"alg": "ES256", "kid": "k1"}),
    };
    for typ in [Some("at+jwt"), Some("AT+JWT"), Some("application/at+jwt")] {
        let response = app.call(&key.sign_with_header(&header(typ), &claims)).await;
        assert_eq!(response.status(), 200, "typ {typ:?}");
    }
    for typ in [Some("JWT"), None, Some("logout+jwt"), Some("application/jwt")] {
        let response = app.call(&key.sign_with_header(&header(typ), &claims)).await;
        assert!(
            challenge(&response).contains(r#"error_description="The token is not an access token""#),
            "typ {typ:?}: {}",
            challenge(&response)
        );
        assert_invalid_token(response).await;
    }

    let (issuer, key, app) = setup_with(|mut config| {
        config.accept_plain_jwt = true;
        config
    })
    .await;
    let claims = issuer.claims(&app.resource);
    for typ in [Some("JWT"), None, Some("at+jwt")] {
        let response = app.call(&key.sign_with_header(&header(typ), &claims)).await;
        assert_eq!(response.status(), 200, "accept_plain_jwt, typ {typ:?}");
    }
    let response = app.call(&key.sign_with_header(&header(Some("logout+jwt")), &claims)).await;
    assert_invalid_token(response).await;
}
