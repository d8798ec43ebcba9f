//! End-to-end tests of the GitHub login of authorization-server mode: the
//! `github-oauth` example (`examples/github-oauth/github.toml`) in front of
//! the GitHub stand-in (`tests/github-standin`), both real processes on
//! 127.0.0.1, driven over HTTP by an MCP client and a browser played by
//! hand: our consent page, the stand-in's test shortcut for the GitHub
//! login, our `/callback`, `/token`, and tool calls on `/mcp`.
//!
//! Needs Node.js and the examples built (`cargo build --examples`).
//! `AUTH_UPSTREAM_DEBUG=1` shows the processes' logs.

use mcp_tests::upstream::{
    CLIENT_STATE, GitHubOAuth, HUBOT_ID, Http, OAuthClient, OCTOCAT_ID, STANDIN_CLIENT_ID, StandIn, TempDir,
    authorize_and_consent, call_tool, callback, code_for_client, error_for_client, free_port, github_login,
    github_spec, jwt_payload, standin_login, start_github_server, tool_result, whoami,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The stand-in, `github-oauth` in front of it (with `extra` environment),
/// an HTTP client and a registered OAuth client; `_dir` lives as long as it.
struct Setup {
    standin: StandIn,
    _dir: TempDir,
    server: GitHubOAuth,
    http: Http,
    client: OAuthClient,
}

async fn setup(standin: StandIn, extra: &[(&str, &str)]) -> Setup {
    let dir = TempDir::new();
    let server = start_github_server(&standin, &dir, extra).await;
    let http = Http::new();
    let client = OAuthClient::register(&http, &server).await;
    Setup { standin, _dir: dir, server, http, client }
}

/// `my_repositories`' list of `owner/name`.
async fn repositories(http: &Http, server: &GitHubOAuth, access_token: &str) -> Value {
    let result = tool_result(http, &server.url, Some(access_token), "my_repositories").await;
    assert_ne!(result["isError"], true, "my_repositories failed: {result}");
    result["structuredContent"]["repositories"].clone()
}

#[tokio::test]
async fn github_login_puts_the_profile_in_our_tokens_and_tools_reach_github_with_the_sealed_token() {
    let Setup { standin: _standin, _dir, server, http, client } = setup(StandIn::start().await, &[]).await;

    let octocat = github_login(&http, &server, &client, "octocat").await;
    assert_eq!(
        whoami(&http, &server, Some(&octocat.access)).await,
        json!({"authenticated": true, "subject": format!("github:{OCTOCAT_ID}"), "login": "octocat",
               "name": "The Octocat", "email": "octocat@github.com"})
    );
    let claims = jwt_payload(&octocat.access);
    assert_eq!(claims["login_provider"], "github", "{claims}");
    assert_eq!(claims["iss"], server.origin);
    // The stand-in lists public repositories only without the `repo` scope.
    assert_eq!(repositories(&http, &server, &octocat.access).await, json!(["octocat/hello-world"]));
    let admin = tool_result(&http, &server.url, Some(&octocat.access), "admin_report").await;
    assert_ne!(admin["isError"], true, "octocat is in [app] admins: {admin}");

    // Refresh: a new access token, same profile, and the sealed GitHub token still reachable.
    let refreshed = client.refresh(&http, &octocat.refresh).await;
    assert_ne!(refreshed.access, octocat.access);
    assert_ne!(refreshed.refresh, octocat.refresh, "rotated");
    assert_eq!(whoami(&http, &server, Some(&refreshed.access)).await["login"], "octocat");
    assert_eq!(repositories(&http, &server, &refreshed.access).await, json!(["octocat/hello-world"]));

    // hubot's e-mail is private: it comes from /user/emails.
    let hubot = github_login(&http, &server, &client, "hubot").await;
    assert_eq!(
        whoami(&http, &server, Some(&hubot.access)).await,
        json!({"authenticated": true, "subject": format!("github:{HUBOT_ID}"), "login": "hubot",
               "name": "Hubot", "email": "hubot@example.com"})
    );
    assert_eq!(repositories(&http, &server, &hubot.access).await, json!(["hubot/hello-world"]));
    let admin = tool_result(&http, &server.url, Some(&hubot.access), "admin_report").await;
    assert_eq!(admin["isError"], true, "hubot is not an admin: {admin}");
}

#[tokio::test]
async fn the_github_token_never_reaches_the_client_or_the_browser() {
    let standin = StandIn::start().await;
    let dir = TempDir::new();
    let server = start_github_server(&standin, &dir, &[]).await;
    // One recorder for everything the client and the browser are told.
    let http = Http::new();
    let (status, challenge, _) = call_tool(&http, &server.url, None, "whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let prm_url = challenge.split("resource_metadata=\"").nth(1).and_then(|r| r.split('"').next());
    let prm_url = prm_url.unwrap_or_else(|| panic!("resource_metadata in {challenge}"));
    let prm = http.send(http.get(prm_url)).await;
    assert_eq!(prm.status, StatusCode::OK);
    let client = OAuthClient::register(&http, &server).await;
    let first = github_login(&http, &server, &client, "octocat").await;
    let second = client.refresh(&http, &first.refresh).await;
    for token in [&first.access, &second.access] {
        for tool in ["whoami", "my_repositories", "admin_report"] {
            let (status, _, message) = call_tool(&http, &server.url, Some(token), tool).await;
            assert_eq!(status, StatusCode::OK, "{tool}: {message}");
        }
    }
    client.revoke(&http, &second.access).await;

    // The recorder did see token answers: our own tokens are in it.
    assert!(transcript_has(&http, &second.refresh), "the transcript records token answers");

    let github_tokens = standin.tokens().await;
    assert_eq!(github_tokens.len(), 1, "one GitHub login, one GitHub token: {github_tokens:?}");
    let transcript = http.transcript();
    assert!(transcript.len() > 20, "the transcript holds the whole flow ({} entries)", transcript.len());
    for github_token in &github_tokens {
        for seen in &transcript {
            assert!(!seen.contains(github_token.as_str()), "the GitHub token leaked in: {seen}");
        }
        for ours in [&first.access, &second.access] {
            let payload = jwt_payload(ours).to_string();
            assert!(!payload.contains(github_token.as_str()), "the GitHub token is in our JWT: {payload}");
        }
    }
}

fn transcript_has(http: &Http, needle: &str) -> bool {
    http.transcript().iter().any(|seen| seen.contains(needle))
}

#[tokio::test]
async fn github_sees_its_own_pkce_pair_and_our_callback_not_the_clients() {
    let Setup { standin, _dir, server, http, client } = setup(StandIn::start().await, &[]).await;
    let at = authorize_and_consent(&http, &server, &client).await;
    let back = standin_login(&http, &at, Some("octocat")).await;
    let code = code_for_client(&callback(&http, &back, Some(&at.jar)).await, &client.issuer);
    client.exchange(&http, &code, &at.verifier).await;

    let authorizations = standin.authorizations().await;
    assert_eq!(authorizations.len(), 1, "{authorizations:?}");
    let sent = &authorizations[0];
    assert_eq!(sent["client_id"], STANDIN_CLIENT_ID);
    assert_eq!(sent["code_challenge_method"], "S256", "{sent}");
    let upstream_challenge = sent["code_challenge"].as_str().expect("a code_challenge at GitHub");
    assert_eq!(upstream_challenge.len(), 43, "an S256 challenge: {sent}");
    assert_ne!(upstream_challenge, at.challenge, "the client's challenge must not be forwarded");
    assert_eq!(sent["redirect_uri"], server.callback());
    assert_ne!(sent["state"], CLIENT_STATE, "the client's state must not be forwarded");

    let requests = standin.requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let exchange = &requests[0];
    assert_eq!(exchange["has_code_verifier"], true, "{exchange}");
    assert_eq!(exchange["code_had_challenge"], true, "{exchange}");
    assert_eq!(exchange["result"], "ok", "the verifier matched the challenge: {exchange}");
    assert_eq!(exchange["redirect_uri"], server.callback());
}

#[tokio::test]
async fn forged_replayed_and_other_browser_callbacks_are_refused() {
    let Setup { standin, _dir, server, http, client } = setup(StandIn::start().await, &[]).await;

    let alice = authorize_and_consent(&http, &server, &client).await;
    let alice_back = standin_login(&http, &alice, Some("octocat")).await;
    let mallory = authorize_and_consent(&http, &server, &client).await;

    // A forged state: 400, with or without a cookie.
    let code = url_param(&alice_back, "code");
    let forged = format!("{}?code={code}&state=forged-{}", server.callback(), alice.upstream_state());
    assert_eq!(callback(&http, &forged, Some(&alice.jar)).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(callback(&http, &forged, None).await.status, StatusCode::BAD_REQUEST);
    // The right state without the browser's cookie, or with another browser's: 403.
    let no_cookie = callback(&http, &alice_back, None).await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN, "{}", no_cookie.body);
    assert!(no_cookie.header("location").is_empty());
    let other = callback(&http, &alice_back, Some(&mallory.jar)).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.body);
    assert!(other.header("location").is_empty());

    // The refused attempts did not consume the transaction: the right browser completes.
    let done = callback(&http, &alice_back, Some(&alice.jar)).await;
    let code = code_for_client(&done, &client.issuer);
    let tokens = client.exchange(&http, &code, &alice.verifier).await;
    assert_eq!(whoami(&http, &server, Some(&tokens.access)).await["login"], "octocat");

    // Replaying the callback, with the cookie: 400.
    let replay = callback(&http, &alice_back, Some(&alice.jar)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    assert!(replay.header("location").is_empty());
    // GitHub redeemed one code only.
    assert_eq!(standin.requests().await.len(), 1);
}

fn url_param(url: &str, name: &str) -> String {
    let url = reqwest::Url::parse(url).expect("a URL");
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[tokio::test]
async fn upstream_errors_are_relayed_to_the_client_with_its_state_and_our_issuer() {
    let Setup { standin, _dir, server, http, client } = setup(StandIn::start().await, &[]).await;

    // The user cancels at GitHub: access_denied.
    let at = authorize_and_consent(&http, &server, &client).await;
    let back = standin_login(&http, &at, None).await;
    assert_eq!(url_param(&back, "error"), "access_denied", "{back}");
    error_for_client(&callback(&http, &back, Some(&at.jar)).await, &client.issuer, "access_denied");

    // Any other provider error: server_error (not relayed verbatim).
    let at = authorize_and_consent(&http, &server, &client).await;
    let url = format!(
        "{}?error=temporarily_unavailable&error_description=%3Cb%3Eboom%3C%2Fb%3E&state={}",
        server.callback(),
        at.upstream_state()
    );
    let seen = callback(&http, &url, Some(&at.jar)).await;
    error_for_client(&seen, &client.issuer, "server_error");
    assert!(
        !seen.location().contains("boom"),
        "the provider's description is not relayed: {}",
        seen.location()
    );
    let at = authorize_and_consent(&http, &server, &client).await;
    let url = format!("{}?error=server_error&state={}", server.callback(), at.upstream_state());
    error_for_client(&callback(&http, &url, Some(&at.jar)).await, &client.issuer, "server_error");
    assert!(standin.requests().await.is_empty(), "no code was redeemed");
    assert!(standin.tokens().await.is_empty());
}

#[tokio::test]
async fn allowed_users_admit_only_the_listed_logins() {
    let Setup { standin, _dir, server, http, client } =
        setup(StandIn::start().await, &[("MCP_AUTH__GITHUB__ALLOWED_USERS", r#"["octocat"]"#)]).await;

    let at = authorize_and_consent(&http, &server, &client).await;
    let back = standin_login(&http, &at, Some("hubot")).await;
    error_for_client(&callback(&http, &back, Some(&at.jar)).await, &client.issuer, "access_denied");
    // The GitHub token of the refused user is not kept: it is revoked at GitHub.
    let records = standin.token_records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (&records[0]["login"], &records[0]["revoked"]),
        (&json!("hubot"), &json!(true)),
        "{records:?}"
    );

    let tokens = github_login(&http, &server, &client, "octocat").await;
    assert_eq!(whoami(&http, &server, Some(&tokens.access)).await["login"], "octocat");
}

/// GitHub logins can be renamed, and a freed login taken by someone else: `allowed_users` is
/// matched on the numeric id the login had when it was resolved (at the first sign-in), so the
/// newcomer who takes the login is refused and the renamed user still gets in. Ids work too.
#[tokio::test]
async fn allowed_users_follow_the_github_id_not_the_login() {
    let Setup { standin, _dir, server, http, client } =
        setup(StandIn::start().await, &[("MCP_AUTH__GITHUB__ALLOWED_USERS", r#"["octocat", "999"]"#)]).await;
    let tokens = github_login(&http, &server, &client, "octocat").await;
    assert_eq!(whoami(&http, &server, Some(&tokens.access)).await["login"], "octocat");

    standin.rename("octocat", "octo-renamed").await;
    standin.rename("hubot", "octocat").await;
    let at = authorize_and_consent(&http, &server, &client).await;
    let back = standin_login(&http, &at, Some("octocat")).await;
    error_for_client(&callback(&http, &back, Some(&at.jar)).await, &client.issuer, "access_denied");

    let tokens = github_login(&http, &server, &client, "octo-renamed").await;
    assert_eq!(whoami(&http, &server, Some(&tokens.access)).await["login"], "octo-renamed");
}

/// A numeric id in `allowed_users` admits that account whatever its login.
#[tokio::test]
async fn allowed_users_admit_numeric_ids() {
    let Setup { standin: _standin, _dir, server, http, client } =
        setup(StandIn::start().await, &[("MCP_AUTH__GITHUB__ALLOWED_USERS", r#"["480938"]"#)]).await;
    let at = authorize_and_consent(&http, &server, &client).await;
    let back = standin_login(&http, &at, Some("octocat")).await;
    error_for_client(&callback(&http, &back, Some(&at.jar)).await, &client.issuer, "access_denied");
    let tokens = github_login(&http, &server, &client, "hubot").await;
    assert_eq!(whoami(&http, &server, Some(&tokens.access)).await["login"], "hubot");
}

#[tokio::test]
async fn allowed_orgs_admit_members_of_a_private_org_and_refuse_others() {
    // octocat's membership of octo-secret-club is private: visible with read:org only, which the
    // server adds to the scopes because of allowed_orgs.
    let Setup { standin: _standin, _dir, server, http, client } =
        setup(StandIn::start().await, &[("MCP_AUTH__GITHUB__ALLOWED_ORGS", r#"["octo-secret-club"]"#)]).await;

    let at = authorize_and_consent(&http, &server, &client).await;
    let scope = at.param("scope").unwrap_or_default();
    assert!(scope.split(' ').any(|s| s == "read:org"), "read:org is asked for: {scope}");
    let back = standin_login(&http, &at, Some("hubot")).await;
    error_for_client(&callback(&http, &back, Some(&at.jar)).await, &client.issuer, "access_denied");

    let tokens = github_login(&http, &server, &client, "octocat").await;
    assert_eq!(whoami(&http, &server, Some(&tokens.access)).await["login"], "octocat");
}

#[tokio::test]
async fn a_code_exchange_refused_with_http_200_ends_in_server_error_without_a_code() {
    // GitHub answers token errors with status 200: the stand-in knows another secret.
    let app = json!({"client_id": STANDIN_CLIENT_ID, "client_secret": "rotated-secret",
                     "callback_url": "http://127.0.0.1/"});
    let Setup { standin, _dir, server, http, client } =
        setup(StandIn::start_with(Some(json!({"apps": [app]}))).await, &[]).await;

    let at = authorize_and_consent(&http, &server, &client).await;
    let back = standin_login(&http, &at, Some("octocat")).await;
    error_for_client(&callback(&http, &back, Some(&at.jar)).await, &client.issuer, "server_error");
    let requests = standin.requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["result"], "incorrect_client_credentials");
    assert!(standin.tokens().await.is_empty());
    // The server is still up and serving.
    let (status, _, _) = call_tool(&http, &server.url, None, "whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn after_revocation_tools_can_no_longer_use_the_github_token() {
    let Setup { standin, _dir, server, http, client } = setup(StandIn::start().await, &[]).await;
    let tokens = github_login(&http, &server, &client, "octocat").await;
    assert_eq!(repositories(&http, &server, &tokens.access).await, json!(["octocat/hello-world"]));

    // Revoking the refresh token revokes the grant, and with it the sealed GitHub token's use.
    client.revoke(&http, &tokens.refresh).await;
    let (status, challenge, message) =
        call_tool(&http, &server.url, Some(&tokens.access), "my_repositories").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{message}");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let seen = client
        .token(
            &http,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &tokens.refresh),
                ("client_id", &client.client_id),
            ],
        )
        .await;
    assert_eq!(seen.status, StatusCode::BAD_REQUEST, "{}", seen.body);

    // The GitHub token itself is revoked at GitHub (DELETE /applications/{client_id}/token), in
    // the background of our answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let records = standin.token_records().await;
        if records.iter().all(|r| r["revoked"] == json!(true)) && !records.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the GitHub token was not revoked: {records:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_sealed_github_token_opens_after_a_restart_on_sqlite() {
    let standin = StandIn::start().await;
    let dir = TempDir::new();
    let port = free_port().await;
    let spec = github_spec(&standin, &dir, port)
        .env("MCP_AUTH__AUTHORIZATION_SERVER__STORE", format!("sqlite://{}", dir.join("auth.db").display()));
    let server = GitHubOAuth::start(&spec).await;
    let http = Http::new();
    let client = OAuthClient::register(&http, &server).await;
    let tokens = github_login(&http, &server, &client, "octocat").await;
    assert_eq!(repositories(&http, &server, &tokens.access).await, json!(["octocat/hello-world"]));
    assert!(dir.join("seal.key").exists(), "the sealing key file was created");

    server.stop().await;
    let server = GitHubOAuth::start(&spec).await;
    let refreshed = client.refresh(&http, &tokens.refresh).await;
    assert_eq!(whoami(&http, &server, Some(&refreshed.access)).await["login"], "octocat");
    assert_eq!(repositories(&http, &server, &refreshed.access).await, json!(["octocat/hello-world"]));
}

#[tokio::test]
async fn github_enterprise_server_endpoints_are_configurable() {
    let standin = StandIn::start().await;
    let dir = TempDir::new();
    // GitHub Enterprise Server serves its REST API under /api/v3.
    let api = format!("{}/api/v3", standin.url);
    let server = start_github_server(&standin, &dir, &[("MCP_AUTH__GITHUB__API_URL", &api)]).await;
    let http = Http::new();
    let client = OAuthClient::register(&http, &server).await;
    let octocat = github_login(&http, &server, &client, "octocat").await;
    assert_eq!(whoami(&http, &server, Some(&octocat.access)).await["login"], "octocat");
    assert_eq!(repositories(&http, &server, &octocat.access).await, json!(["octocat/hello-world"]));
}
