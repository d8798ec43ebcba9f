//! Login with GitHub (github.com, or GitHub Enterprise Server through the
//! endpoint URLs): the OAuth web application flow with PKCE, then the REST
//! API's `/user`, `/user/emails` and `/user/orgs`.

use std::fmt;

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Names, UpstreamAuthorization, UpstreamCallback, UpstreamCredentials, UpstreamLogin, UpstreamLoginError,
    UpstreamUser, admitted, copy_claims,
};
use crate::error::ConfigError;
use crate::layer::BoxFuture;
use crate::resource_server::fetch::{Fetcher, form_encode};

/// `[auth.github]`: the GitHub OAuth app this server logs users in with.
///
/// Create the app at <https://github.com/settings/developers> with the
/// callback URL `ISSUER/callback`. For GitHub Enterprise Server, point the
/// three URLs at `https://HOST/login/oauth/authorize`,
/// `https://HOST/login/oauth/access_token` and `https://HOST/api/v3`.
///
/// ```
/// use mcp_auth::GitHubConfig;
///
/// let config: GitHubConfig = toml::from_str(r#"
///     client_id = "Ov23liExample"
///     client_secret = "0123456789abcdef0123456789abcdef01234567"
///     allowed_orgs = ["my-company"]
/// "#).unwrap();
/// assert_eq!(config.api_url, "https://api.github.com");
/// assert_eq!(config.scopes, ["read:user", "user:email"]);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GitHubConfig {
    /// The OAuth app's client ID.
    pub client_id: String,
    /// The OAuth app's client secret.
    pub client_secret: String,
    /// Scopes asked of GitHub (default `read:user`, `user:email`;
    /// `read:org` is added when `allowed_orgs` is set). Add what your tools
    /// need GitHub's API for, such as `repo`.
    pub scopes: Vec<String>,
    /// The authorization endpoint.
    pub authorize_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The REST API's base URL.
    pub api_url: String,
    /// GitHub users allowed to sign in, by numeric user id (`"583231"`) or by
    /// login (`"octocat"`). Logins can be renamed and a freed login taken by
    /// someone else, so users are matched by id: each login is resolved to
    /// its id once (`GET /users/{login}`, at the first sign-in) and the id is
    /// kept. With `allowed_orgs`, either admits; with neither, every GitHub
    /// user may.
    pub allowed_users: Vec<String>,
    /// Organizations whose members may sign in.
    pub allowed_orgs: Vec<String>,
    /// Organizations whose membership is written into the tokens' `orgs`
    /// claim (only those of them the user belongs to, so no other private
    /// membership leaves GitHub), for policies such as a gateway upstream's
    /// `allowed_orgs`. Membership is read at sign-in, as for `allowed_orgs`.
    pub orgs_claim: Vec<String>,
}

impl Default for GitHubConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            scopes: vec!["read:user".into(), "user:email".into()],
            authorize_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            api_url: "https://api.github.com".into(),
            allowed_users: Vec::new(),
            allowed_orgs: Vec::new(),
            orgs_claim: Vec::new(),
        }
    }
}

impl fmt::Debug for GitHubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .field("allowed_users", &self.allowed_users)
            .field("allowed_orgs", &self.allowed_orgs)
            .field("orgs_claim", &self.orgs_claim)
            .finish()
    }
}

impl GitHubConfig {
    /// An app with this client ID and secret, and GitHub.com's endpoints.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), client_secret: client_secret.into(), ..Self::default() }
    }

    /// Serves another GitHub (Enterprise Server, or a test double) at
    /// `base`: `BASE/login/oauth/…` and the API at `api`.
    #[must_use]
    pub fn with_endpoints(mut self, base: &str, api: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.authorize_url = format!("{base}/login/oauth/authorize");
        self.token_url = format!("{base}/login/oauth/access_token");
        self.api_url = api.trim_end_matches('/').to_owned();
        self
    }

    /// Only these GitHub logins may sign in.
    #[must_use]
    pub fn with_allowed_users<S: Into<String>>(mut self, users: impl IntoIterator<Item = S>) -> Self {
        self.allowed_users = users.into_iter().map(Into::into).collect();
        self
    }

    /// Only members of these organizations may sign in.
    #[must_use]
    pub fn with_allowed_orgs<S: Into<String>>(mut self, orgs: impl IntoIterator<Item = S>) -> Self {
        self.allowed_orgs = orgs.into_iter().map(Into::into).collect();
        self
    }

    /// Records the user's membership of these organizations in the `orgs`
    /// claim of their tokens.
    #[must_use]
    pub fn with_orgs_claim<S: Into<String>>(mut self, orgs: impl IntoIterator<Item = S>) -> Self {
        self.orgs_claim = orgs.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the user's organizations are read at sign-in.
    fn reads_orgs(&self) -> bool {
        !self.allowed_orgs.is_empty() || !self.orgs_claim.is_empty()
    }
}

/// The GitHub login; see [`GitHubConfig`].
#[derive(Debug)]
pub struct GitHubLogin {
    config: GitHubConfig,
    authorize_url: Url,
    token_url: Url,
    api_url: String,
    scopes: Vec<String>,
    fetcher: Fetcher,
    /// `allowed_users` as numeric ids, resolved once.
    allowed_ids: tokio::sync::OnceCell<Vec<String>>,
}

impl GitHubLogin {
    /// Checks the settings; errors name the key.
    pub fn new(config: GitHubConfig) -> Result<Self, ConfigError> {
        if config.client_id.trim().is_empty() {
            return Err(ConfigError::Missing {
                key: "auth.github.client_id",
                hint: "the client ID of your GitHub OAuth app (or set GITHUB_CLIENT_ID for the example)",
            });
        }
        if config.client_secret.trim().is_empty() {
            return Err(ConfigError::Missing {
                key: "auth.github.client_secret",
                hint: "a client secret of your GitHub OAuth app (or set GITHUB_CLIENT_SECRET for the example)",
            });
        }
        let fetcher = Fetcher::new(false)?;
        let endpoint = |key: &'static str, value: &str| -> Result<Url, ConfigError> {
            let url = Url::parse(value)
                .map_err(|e| ConfigError::Invalid { key, message: format!("`{value}` is not a URL: {e}") })?;
            fetcher.check_url(&url).map_err(|e| ConfigError::Invalid { key, message: e.to_string() })?;
            Ok(url)
        };
        let authorize_url = endpoint("auth.github.authorize_url", &config.authorize_url)?;
        let token_url = endpoint("auth.github.token_url", &config.token_url)?;
        endpoint("auth.github.api_url", &config.api_url)?;
        let mut scopes = config.scopes.clone();
        // Private organization memberships are listed only with read:org.
        if config.reads_orgs() && !scopes.iter().any(|s| s == "read:org" || s == "admin:org") {
            scopes.push("read:org".into());
        }
        let api_url = config.api_url.trim_end_matches('/').to_owned();
        Ok(Self {
            config,
            authorize_url,
            token_url,
            api_url,
            scopes,
            fetcher,
            allowed_ids: Default::default(),
        })
    }

    fn api(&self, path: &str) -> Result<Url, UpstreamLoginError> {
        Url::parse(&format!("{}{path}", self.api_url)).map_err(|e| UpstreamLoginError::Invalid(e.to_string()))
    }

    /// A token request (code exchange or refresh). GitHub answers errors
    /// with status 200 and an `error` field, so the body decides, not the status.
    async fn token_request(&self, grant: &[(&str, &str)]) -> Result<UpstreamCredentials, UpstreamLoginError> {
        let mut form = vec![
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
        ];
        form.extend_from_slice(grant);
        let answer = self.fetcher.post_form(&self.token_url, &form, None).await?.json;
        if let Some(error) = answer.get("error").and_then(Value::as_str) {
            let description = answer.get("error_description").and_then(Value::as_str).unwrap_or_default();
            return Err(UpstreamLoginError::Refused {
                error: error.to_owned(),
                description: description.to_owned(),
            });
        }
        UpstreamCredentials::from_answer(&answer)
    }

    /// Revokes a token at GitHub (`DELETE /applications/{client_id}/token`);
    /// a failure is only logged.
    async fn revoke(&self, token: &str) {
        let path = format!("/applications/{}/token", form_encode(&self.config.client_id));
        let result = match self.api(&path) {
            Ok(url) => {
                let basic = (self.config.client_id.as_str(), self.config.client_secret.as_str());
                self.fetcher.delete_json(&url, &serde_json::json!({"access_token": token}), basic).await
            }
            Err(e) => return tracing::warn!(error = %e, "mcp-auth: cannot revoke a GitHub token"),
        };
        match result {
            Ok(204) => {}
            Ok(status) => tracing::warn!(status, "mcp-auth: GitHub did not revoke a token"),
            Err(error) => tracing::warn!(%error, "mcp-auth: cannot revoke a GitHub token"),
        }
    }

    /// The primary verified address, for a user whose e-mail is private.
    async fn primary_email(&self, token: &str) -> Result<Option<String>, UpstreamLoginError> {
        let emails = self.fetcher.get_json_bearer(&self.api("/user/emails")?, token).await?.json;
        Ok(emails.as_array().into_iter().flatten().find_map(|e| {
            let yes = |field: &str| e.get(field).and_then(Value::as_bool) == Some(true);
            (yes("primary") && yes("verified")).then(|| e.get("email")?.as_str().map(str::to_owned)).flatten()
        }))
    }

    /// `allowed_users` as GitHub's numeric ids: ids as they are, logins looked
    /// up once and kept, so a later rename or a re-registered login changes
    /// nothing.
    async fn allowed_ids(&self) -> Result<&[String], UpstreamLoginError> {
        let ids = self
            .allowed_ids
            .get_or_try_init(|| async {
                let mut ids = Vec::with_capacity(self.config.allowed_users.len());
                for user in &self.config.allowed_users {
                    if !user.is_empty() && user.bytes().all(|b| b.is_ascii_digit()) {
                        ids.push(user.clone());
                        continue;
                    }
                    let encoded: String = form_urlencoded::byte_serialize(user.as_bytes()).collect();
                    let profile = self.fetcher.get_json(&self.api(&format!("/users/{encoded}"))?).await?.json;
                    match profile.get("id") {
                        Some(Value::Number(id)) => {
                            tracing::info!(login = %user, id = %id, "mcp-auth: allowed GitHub login resolved to its id");
                            ids.push(id.to_string());
                        }
                        _ => {
                            return Err(UpstreamLoginError::Invalid(format!(
                                "allowed GitHub user `{user}` has no numeric id at /users/{user}"
                            )));
                        }
                    }
                }
                Ok::<_, UpstreamLoginError>(ids)
            })
            .await?;
        Ok(ids)
    }

    async fn organizations(&self, token: &str) -> Result<Vec<String>, UpstreamLoginError> {
        let orgs = self.fetcher.get_json_bearer(&self.api("/user/orgs?per_page=100")?, token).await?.json;
        Ok(orgs
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("login").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    async fn user(&self, credentials: UpstreamCredentials) -> Result<UpstreamUser, UpstreamLoginError> {
        let token = credentials.access_token.as_str();
        let profile = self.fetcher.get_json_bearer(&self.api("/user")?, token).await?.json;
        let id = match profile.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(UpstreamLoginError::Invalid("/user has no numeric id".into())),
        };
        let login = profile
            .get("login")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| UpstreamLoginError::Invalid("/user has no login".into()))?
            .to_owned();
        let orgs = if self.config.reads_orgs() { self.organizations(token).await? } else { Vec::new() };
        let allowed_ids =
            if self.config.allowed_users.is_empty() { &[][..] } else { self.allowed_ids().await? };
        let names = Names { identifiers: &[id.as_str()], emails: &[] };
        if !admitted(&names, &orgs, allowed_ids, &self.config.allowed_orgs) {
            // The token of someone turned away is of no use: give it back.
            self.revoke(token).await;
            return Err(UpstreamLoginError::NotAllowed(format!("GitHub user {login}")));
        }
        let mut claims = Map::new();
        claims.insert("login_provider".into(), Value::String("github".into()));
        copy_claims(
            &profile,
            &[("login", "preferred_username"), ("name", "name"), ("email", "email")],
            &mut claims,
        );
        if !self.config.orgs_claim.is_empty() {
            let recorded =
                self.config.orgs_claim.iter().filter(|o| orgs.iter().any(|m| m.eq_ignore_ascii_case(o)));
            let recorded = recorded.map(|o| Value::String(o.clone())).collect();
            claims.insert("orgs".into(), Value::Array(recorded));
        }
        let may_read_emails = self.scopes.iter().any(|s| s == "user:email" || s == "user");
        if !claims.contains_key("email")
            && may_read_emails
            && let Some(email) = self.primary_email(token).await?
        {
            claims.insert("email".into(), Value::String(email));
        }
        // The numeric id is stable; a login can be renamed and re-registered.
        Ok(UpstreamUser { subject: format!("github:{id}"), claims, credentials: Some(credentials) })
    }
}

impl UpstreamLogin for GitHubLogin {
    fn name(&self) -> &str {
        "github"
    }

    /// `DELETE /applications/{client_id}/token` with the app's credentials.
    fn revoke_token<'a>(&'a self, access_token: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.revoke(access_token))
    }

    fn display_name(&self) -> &str {
        "GitHub"
    }

    fn authorization_url<'a>(
        &'a self,
        request: &'a UpstreamAuthorization<'a>,
    ) -> BoxFuture<'a, Result<Url, UpstreamLoginError>> {
        let mut url = self.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", request.redirect_uri)
            .append_pair("scope", &self.scopes.join(" "))
            .append_pair("state", request.state)
            // GitHub supports PKCE with S256 only.
            .append_pair("code_challenge", request.code_challenge)
            .append_pair("code_challenge_method", "S256");
        Box::pin(std::future::ready(Ok(url)))
    }

    fn finish<'a>(
        &'a self,
        callback: &'a UpstreamCallback<'a>,
    ) -> BoxFuture<'a, Result<UpstreamUser, UpstreamLoginError>> {
        Box::pin(async move {
            let grant = [
                ("code", callback.code),
                ("redirect_uri", callback.redirect_uri),
                ("code_verifier", callback.code_verifier),
            ];
            let credentials = self.token_request(&grant).await?;
            self.user(credentials).await
        })
    }

    /// GitHub Apps with expiring user tokens hand out refresh tokens.
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamCredentials, UpstreamLoginError>> {
        Box::pin(async move {
            self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_credentials_name_the_key() {
        let err = GitHubLogin::new(GitHubConfig::default()).unwrap_err();
        assert!(err.to_string().contains("auth.github.client_id"), "{err}");
        let err =
            GitHubLogin::new(GitHubConfig { client_id: "x".into(), ..GitHubConfig::default() }).unwrap_err();
        assert!(err.to_string().contains("auth.github.client_secret"), "{err}");
        let plain =
            GitHubConfig::new("x", "y").with_endpoints("http://github.example", "http://api.github.example");
        let err = GitHubLogin::new(plain).unwrap_err();
        assert!(err.to_string().contains("auth.github.authorize_url"), "{err}");
    }

    #[test]
    fn org_allow_lists_ask_for_read_org_and_the_url_carries_pkce() {
        let login = GitHubLogin::new(GitHubConfig::new("id", "secret").with_allowed_orgs(["acme"])).unwrap();
        let request = UpstreamAuthorization {
            redirect_uri: "https://mcp.example/callback",
            state: "s",
            code_challenge: "c",
            nonce: "n",
        };
        let url = futures_lite_block(login.authorization_url(&request)).unwrap();
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["scope"], "read:user user:email read:org");
        assert_eq!(
            (query["code_challenge"].as_str(), query["code_challenge_method"].as_str()),
            ("c", "S256")
        );
        assert_eq!(query["state"], "s");
        assert!(!url.as_str().contains("secret"));
    }

    fn futures_lite_block<T>(future: BoxFuture<'_, T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", GitHubConfig::new("id", "hunter2-secret")).contains("hunter2"));
    }
}
