//! Login with any OpenID Connect provider: discovery, the code flow with
//! PKCE and `nonce`, ID-token verification (OpenID Connect Core §3.1.3.7),
//! and the UserInfo endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::{
    Names, UpstreamAuthorization, UpstreamCallback, UpstreamCredentials, UpstreamLogin, UpstreamLoginError,
    UpstreamUser, admitted, copy_claims,
};
use crate::config::JwsAlgorithm;
use crate::error::ConfigError;
use crate::layer::BoxFuture;
use crate::resource_server::claims::{self, Expected, Source};
use crate::resource_server::discovery::discover;
use crate::resource_server::fetch::Fetcher;
use crate::resource_server::jwks::KeySet;
use crate::resource_server::jwt;

/// How long discovered endpoints and keys are used before being fetched again.
const REFRESH_AFTER: Duration = Duration::from_secs(3600);
/// Clock skew tolerated on ID-token times.
const LEEWAY: Duration = Duration::from_secs(60);

/// `[auth.oidc]`: the OpenID Connect provider this server logs users in with.
///
/// Register a client at the provider with the redirect URI `ISSUER/callback`
/// (`ISSUER` being this server's issuer).
///
/// ```
/// use mcp_auth::OidcConfig;
///
/// let config: OidcConfig = toml::from_str(r#"
///     issuer = "https://accounts.example.com"
///     client_id = "mcp-server"
///     client_secret = "s3cr3t-from-the-provider"
///     allowed_users = ["alice@example.com"]
/// "#).unwrap();
/// assert_eq!(config.scopes, ["openid", "profile", "email"]);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OidcConfig {
    /// The provider's issuer identifier (discovery starts from it).
    pub issuer: String,
    /// Our client ID at the provider.
    pub client_id: String,
    /// Our client secret (absent: a public client, PKCE only).
    pub client_secret: Option<String>,
    /// Scopes asked for (default `openid profile email`; `openid` is always sent).
    pub scopes: Vec<String>,
    /// The provider's name on our pages (default: its host).
    pub display_name: Option<String>,
    /// Users allowed to sign in, by `sub` or **verified** e-mail (compared
    /// without case). With `allowed_groups`, either admits; with neither,
    /// every user of the provider may.
    pub allowed_users: Vec<String>,
    /// Values of the `groups` claim that admit a user.
    pub allowed_groups: Vec<String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            display_name: None,
            allowed_users: Vec::new(),
            allowed_groups: Vec::new(),
        }
    }
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("scopes", &self.scopes)
            .field("display_name", &self.display_name)
            .field("allowed_users", &self.allowed_users)
            .field("allowed_groups", &self.allowed_groups)
            .finish()
    }
}

impl OidcConfig {
    /// A client of the provider at `issuer`.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), client_id: client_id.into(), ..Self::default() }
    }

    /// A confidential client with this secret.
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }
}

/// What discovery found.
#[derive(Debug)]
struct Provider {
    authorization_endpoint: Url,
    token_endpoint: Url,
    userinfo_endpoint: Option<Url>,
    /// `client_secret_post` only (else HTTP Basic, the default).
    secret_in_body: bool,
    algorithms: Vec<JwsAlgorithm>,
    keys: KeySet,
    fetched_at: Instant,
}

/// The OpenID Connect login; see [`OidcConfig`].
#[derive(Debug)]
pub struct OidcLogin {
    config: OidcConfig,
    display_name: String,
    fetcher: Fetcher,
    provider: Mutex<Option<Arc<Provider>>>,
}

impl OidcLogin {
    /// Checks the settings; errors name the key. The provider is discovered
    /// at the first login.
    pub fn new(config: OidcConfig) -> Result<Self, ConfigError> {
        let issuer = crate::metadata::parse_issuer(&config.issuer).map_err(|e| match e {
            ConfigError::Missing { .. } => ConfigError::Missing {
                key: "auth.oidc.issuer",
                hint: "the OpenID provider's issuer URL, such as https://accounts.example.com",
            },
            other => ConfigError::Invalid { key: "auth.oidc.issuer", message: other.to_string() },
        })?;
        if config.client_id.trim().is_empty() {
            return Err(ConfigError::Missing {
                key: "auth.oidc.client_id",
                hint: "the client ID this server has at the OpenID provider",
            });
        }
        let fetcher = Fetcher::new(false)?;
        fetcher
            .check_url(&issuer)
            .map_err(|e| ConfigError::Invalid { key: "auth.oidc.issuer", message: e.to_string() })?;
        let display_name = config
            .display_name
            .clone()
            .unwrap_or_else(|| issuer.host_str().unwrap_or("the provider").to_owned());
        Ok(Self { config, display_name, fetcher, provider: Mutex::new(None) })
    }

    /// The discovered provider, fetched again after an hour or when `stale`
    /// (an ID token names a key we do not have).
    async fn provider(&self, stale: bool) -> Result<Arc<Provider>, UpstreamLoginError> {
        let mut slot = self.provider.lock().await;
        if let Some(found) = slot.as_ref()
            && !stale
            && found.fetched_at.elapsed() < REFRESH_AFTER
        {
            return Ok(found.clone());
        }
        let fresh = Arc::new(self.discover().await?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    async fn discover(&self) -> Result<Provider, UpstreamLoginError> {
        let (metadata, _) = discover(&self.fetcher, &self.config.issuer).await?;
        let field = |name: &str| metadata.other.get(name).and_then(Value::as_str);
        let url = |name: &str| -> Result<Url, UpstreamLoginError> {
            let text =
                field(name).ok_or_else(|| UpstreamLoginError::Invalid(format!("no {name} in discovery")))?;
            let url = Url::parse(text).map_err(|e| UpstreamLoginError::Invalid(format!("{name}: {e}")))?;
            self.fetcher.check_url(&url)?;
            Ok(url)
        };
        let jwks_uri = metadata
            .jwks_uri
            .as_deref()
            .ok_or_else(|| UpstreamLoginError::Invalid("no jwks_uri in discovery".into()))?;
        let jwks_url =
            Url::parse(jwks_uri).map_err(|e| UpstreamLoginError::Invalid(format!("jwks_uri: {e}")))?;
        let keys = KeySet::parse(jwks_uri, &self.fetcher.get_json(&jwks_url).await?.json)?;
        let list = |name: &str| -> Vec<String> {
            metadata
                .other
                .get(name)
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        // OpenID Connect Discovery §3: RS256 when the provider lists none.
        let mut algorithms: Vec<JwsAlgorithm> = list("id_token_signing_alg_values_supported")
            .iter()
            .filter_map(|a| JwsAlgorithm::from_name(a))
            .collect();
        if algorithms.is_empty() {
            algorithms.push(JwsAlgorithm::RS256);
        }
        let methods = list("token_endpoint_auth_methods_supported");
        let secret_in_body = !methods.is_empty()
            && methods.iter().any(|m| m == "client_secret_post")
            && !methods.iter().any(|m| m == "client_secret_basic");
        Ok(Provider {
            authorization_endpoint: url("authorization_endpoint")?,
            token_endpoint: url("token_endpoint")?,
            userinfo_endpoint: field("userinfo_endpoint").map(|_| url("userinfo_endpoint")).transpose()?,
            secret_in_body,
            algorithms,
            keys,
            fetched_at: Instant::now(),
        })
    }

    /// A token request (code exchange or refresh) with our client
    /// authentication (RFC 6749 §2.3.1: Basic unless the provider only
    /// takes the secret in the body).
    async fn token_request(
        &self,
        provider: &Provider,
        grant: &[(&str, &str)],
    ) -> Result<Value, UpstreamLoginError> {
        let mut form = grant.to_vec();
        let secret = self.config.client_secret.as_deref();
        let basic = match secret {
            Some(secret) if !provider.secret_in_body => Some((self.config.client_id.as_str(), secret)),
            Some(secret) => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", secret));
                None
            }
            None => {
                form.push(("client_id", &self.config.client_id));
                None
            }
        };
        Ok(self.fetcher.post_form(&provider.token_endpoint, &form, basic).await?.json)
    }

    /// OpenID Connect Core §3.1.3.7: signature with the provider's key,
    /// `iss`, `aud` (and `azp` when several audiences), `exp`, `nonce`.
    async fn verify_id_token(
        &self,
        provider: Arc<Provider>,
        id_token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, UpstreamLoginError> {
        let invalid = |what: String| UpstreamLoginError::Invalid(format!("ID token: {what}"));
        let jws = jwt::parse(id_token).ok_or_else(|| invalid("not a JWS".into()))?;
        let alg = jws.algorithm(&provider.algorithms).map_err(|e| invalid(e.to_string()))?;
        let key = match provider.keys.select(alg, jws.kid.as_deref()) {
            Ok(key) => key,
            // A rotated key: look again once.
            Err(_) => self
                .provider(true)
                .await?
                .keys
                .select(alg, jws.kid.as_deref())
                .map_err(|e| invalid(e.to_string()))?,
        };
        let claims = jws.verify(alg, &key).map_err(|e| invalid(e.to_string()))?;
        let expected = Expected {
            issuer: &self.config.issuer,
            audience: &self.config.client_id,
            leeway: LEEWAY,
            now: SystemTime::now(),
        };
        claims::check(&claims, &expected, Source::Jwt).map_err(|e| invalid(e.to_string()))?;
        if claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1)
            && claims.get("azp").and_then(Value::as_str) != Some(self.config.client_id.as_str())
        {
            return Err(invalid("several audiences and azp is not this client".into()));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(invalid("nonce does not match".into()));
        }
        Ok(claims)
    }

    async fn user(&self, callback: &UpstreamCallback<'_>) -> Result<UpstreamUser, UpstreamLoginError> {
        let provider = self.provider(false).await?;
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", callback.code),
            ("redirect_uri", callback.redirect_uri),
            ("code_verifier", callback.code_verifier),
        ];
        let answer = self.token_request(&provider, &grant).await?;
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| UpstreamLoginError::Invalid("the token answer has no id_token".into()))?;
        let mut claims = self.verify_id_token(provider.clone(), id_token, callback.nonce).await?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| UpstreamLoginError::Invalid("ID token has no sub".into()))?
            .to_owned();
        let credentials = UpstreamCredentials::from_answer(&answer).ok();
        if let (Some(userinfo), Some(credentials)) = (&provider.userinfo_endpoint, &credentials) {
            let info = self.fetcher.get_json_bearer(userinfo, &credentials.access_token).await?.json;
            // OpenID Connect Core §5.3.2: the UserInfo `sub` must be the ID token's.
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(UpstreamLoginError::Invalid("UserInfo sub differs from the ID token's".into()));
            }
            if let Value::Object(info) = info {
                for (name, value) in info {
                    claims.entry(name).or_insert(value);
                }
            }
        }
        let source = Value::Object(claims);
        let verified_email = (source.get("email_verified").and_then(Value::as_bool) == Some(true))
            .then(|| source.get("email").and_then(Value::as_str))
            .flatten();
        // `sub` is case-sensitive (OpenID Connect Core §5.7: never reassigned, compared
        // exactly); an e-mail address is compared without case.
        let identifiers = [subject.as_str()];
        let emails: Vec<&str> = verified_email.into_iter().collect();
        let names = Names { identifiers: &identifiers, emails: &emails };
        let groups: Vec<String> = source
            .get("groups")
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        if !admitted(&names, &groups, &self.config.allowed_users, &self.config.allowed_groups) {
            return Err(UpstreamLoginError::NotAllowed(format!(
                "user {}",
                verified_email.unwrap_or(&subject)
            )));
        }
        let mut profile = Map::new();
        profile.insert("login_provider".into(), Value::String("oidc".into()));
        copy_claims(
            &source,
            &[("preferred_username", "preferred_username"), ("name", "name"), ("email", "email")],
            &mut profile,
        );
        Ok(UpstreamUser { subject, claims: profile, credentials })
    }
}

impl UpstreamLogin for OidcLogin {
    fn name(&self) -> &str {
        "oidc"
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn authorization_url<'a>(
        &'a self,
        request: &'a UpstreamAuthorization<'a>,
    ) -> BoxFuture<'a, Result<Url, UpstreamLoginError>> {
        Box::pin(async move {
            let provider = self.provider(false).await?;
            let mut scopes = vec!["openid"];
            scopes.extend(self.config.scopes.iter().map(String::as_str).filter(|s| *s != "openid"));
            let mut url = provider.authorization_endpoint.clone();
            url.query_pairs_mut()
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", request.redirect_uri)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", request.state)
                .append_pair("nonce", request.nonce)
                .append_pair("code_challenge", request.code_challenge)
                .append_pair("code_challenge_method", "S256");
            Ok(url)
        })
    }

    fn finish<'a>(
        &'a self,
        callback: &'a UpstreamCallback<'a>,
    ) -> BoxFuture<'a, Result<UpstreamUser, UpstreamLoginError>> {
        Box::pin(self.user(callback))
    }

    fn refresh<'a>(
        &'a self,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<UpstreamCredentials, UpstreamLoginError>> {
        Box::pin(async move {
            let provider = self.provider(false).await?;
            let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
            UpstreamCredentials::from_answer(&self.token_request(&provider, &grant).await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_errors_name_the_key() {
        let err = OidcLogin::new(OidcConfig::default()).unwrap_err();
        assert!(err.to_string().contains("auth.oidc.issuer"), "{err}");
        let err = OidcLogin::new(OidcConfig::new("https://idp.example", "")).unwrap_err();
        assert!(err.to_string().contains("auth.oidc.client_id"), "{err}");
        let err = OidcLogin::new(OidcConfig::new("http://idp.example", "c")).unwrap_err();
        assert!(err.to_string().contains("auth.oidc.issuer"), "{err}");
        assert!(OidcLogin::new(OidcConfig::new("http://127.0.0.1:9", "c")).is_ok());
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = OidcConfig::new("https://idp.example", "c").with_secret("hunter2-secret");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
