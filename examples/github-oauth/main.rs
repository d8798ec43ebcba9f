//! An MCP server whose users sign in with GitHub.
//!
//! - `whoami`: your GitHub login, name and e-mail (from the token this
//!   server issued after the GitHub login);
//! - `admin_report`: only for the GitHub users listed in `[app] admins`;
//! - `my_repositories`: calls GitHub's API on your behalf with your GitHub
//!   token, which this server keeps sealed and never sends to any client.
//!
//! ```text
//! GITHUB_CLIENT_ID=… GITHUB_CLIENT_SECRET=… cargo run --example github-oauth
//! cargo run --example github-oauth -- --config examples/github-oauth/github.toml
//! ```
//!
//! Without `--config` it serves `http://127.0.0.1:8080/mcp` as its own OAuth
//! authorization server with the GitHub login (see `defaults.toml`). The
//! same binary runs with auth off or as a resource server when its config
//! file says so; see `examples/github-oauth/README.md`.
use mcp_server::auth::UpstreamTokens;
use mcp_server::config::{CommandLine, Config};
use mcp_server::{Context, Identity, Server, State, tool};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// What the tools need from the configuration.
struct Settings {
    /// GitHub logins allowed to call `admin_report` (`[app] admins`).
    admins: Vec<String>,
    /// GitHub's REST API (`[auth.github] api_url`).
    api_url: String,
    http: reqwest::Client,
}

#[derive(Serialize, JsonSchema)]
struct Profile {
    /// `false` when auth is off.
    authenticated: bool,
    /// The token's subject (`github:<numeric id>` after a GitHub login).
    subject: Option<String>,
    /// The GitHub login.
    login: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Repositories {
    /// `owner/name` of each repository, as GitHub lists them.
    repositories: Vec<String>,
}

fn claim(identity: &Identity, name: &str) -> Option<String> {
    identity.claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Who you are, as GitHub told this server when you signed in.
#[tool(annotations(read_only_hint = true))]
async fn whoami(caller: Option<Identity>) -> Profile {
    match caller {
        None => Profile { authenticated: false, subject: None, login: None, name: None, email: None },
        Some(who) => Profile {
            authenticated: true,
            login: claim(&who, "preferred_username"),
            name: claim(&who, "name"),
            email: claim(&who, "email"),
            subject: Some(who.subject),
        },
    }
}

/// A report for the administrators listed in `[app] admins` only.
#[tool(annotations(read_only_hint = true))]
async fn admin_report(State(settings): State<Settings>, caller: Option<Identity>) -> Result<String, String> {
    let login = caller.as_ref().and_then(|who| claim(who, "preferred_username"));
    match login {
        Some(login) if settings.admins.iter().any(|a| a.eq_ignore_ascii_case(&login)) => {
            Ok(format!("Hello {login}: you are an administrator of this server."))
        }
        _ => Err("Only the administrators listed in [app] admins may use this tool.".into()),
    }
}

/// Your GitHub repositories, fetched from GitHub's API with your GitHub
/// token (which stays on this server).
#[tool(annotations(read_only_hint = true, open_world_hint = true))]
async fn my_repositories(
    ctx: Context,
    State(settings): State<Settings>,
    caller: Option<Identity>,
) -> Result<Repositories, String> {
    let (Some(tokens), Some(who)) = (ctx.state::<UpstreamTokens>(), caller) else {
        return Err("Sign in with GitHub first (this server runs without the GitHub login).".into());
    };
    let token = match tokens.for_identity(&who).await {
        Ok(Some(token)) => token,
        Ok(None) => return Err("No GitHub token for this sign-in: sign in with GitHub again.".into()),
        Err(e) => return Err(format!("The token store failed: {e}")),
    };
    let answer = settings
        .http
        .get(format!("{}/user/repos?per_page=100", settings.api_url))
        .bearer_auth(token.secret())
        .header("accept", "application/vnd.github+json")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("GitHub's API failed: {}", e.without_url()))?;
    let repos: Vec<Value> = answer.json().await.map_err(|e| format!("GitHub's answer is not a list: {e}"))?;
    let repositories =
        repos.iter().filter_map(|r| r.get("full_name").and_then(Value::as_str).map(str::to_owned)).collect();
    Ok(Repositories { repositories })
}

fn settings(config: &Config) -> Result<Settings, String> {
    let admins = match config.app.get("admins") {
        None => Vec::new(),
        Some(toml::Value::Array(list)) => list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(toml::Value::String(list)) => list.split(',').map(|s| s.trim().to_owned()).collect(),
        Some(_) => return Err("app.admins must be a list of GitHub logins".into()),
    };
    let api_url = config
        .auth
        .get("github")
        .and_then(|g| g.get("api_url"))
        .and_then(toml::Value::as_str)
        .unwrap_or("https://api.github.com")
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::Client::builder()
        .user_agent("mcp-github-oauth-example")
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Settings { admins, api_url, http })
}

#[tokio::main]
async fn main() -> Result<(), mcp_server::ServeError> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = CommandLine::parse(std::env::args().skip(1))?;
    let mut config = cli.load_or_defaults(include_str!("defaults.toml"))?;
    config.github_credentials_from_env();
    let settings = settings(&config)
        .map_err(|message| mcp_server::config::ConfigError::Value { key: "app.admins", message })?;
    Server::new("github-oauth", "1.0.0")
        .state(settings)
        .tool(whoami)
        .tool(admin_report)
        .tool(my_repositories)
        .serve_command_line(&cli, config)
        .await
}
