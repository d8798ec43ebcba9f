//! Auth fixtures: a tiny issuer (RFC 8414 metadata and a JWKS on loopback)
//! with ES256 tokens for resource-server mode, and an OAuth client that plays
//! the authorization server's login and consent forms to get codes.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// An issuer serving its metadata and signing key set on 127.0.0.1.
#[derive(Debug)]
pub struct Issuer {
    /// `http://127.0.0.1:PORT`, also the `iss` of its tokens.
    pub url: String,
    key: EncodingKey,
}

const KID: &str = "bench-es256";

impl Issuer {
    /// Generates a P-256 key and serves `/.well-known/oauth-authorization-server` and `/jwks`.
    pub async fn start() -> Result<Self, String> {
        let signing = SigningKey::random(&mut rand_core::OsRng);
        let der = signing.to_pkcs8_der().map_err(|e| e.to_string())?;
        let key = EncodingKey::from_ec_der(der.as_bytes());
        let point = signing.verifying_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else { return Err("no public point".into()) };
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]});
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let metadata = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        });
        let app = axum::Router::new()
            .route("/.well-known/oauth-authorization-server", get(move || async move { Json(metadata) }))
            .route("/jwks", get(move || async move { Json(jwks) }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, key })
    }

    /// An ES256 access token for `audience`, valid for an hour, in the
    /// RFC 9068 form (`typ: at+jwt`, `client_id`, `jti`) the resource server requires.
    pub fn token(&self, audience: &str, subject: &str) -> Result<String, String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
        let claims = json!({"iss": self.url, "aud": audience, "sub": subject, "iat": now, "exp": now + 3600,
            "scope": "echo", "client_id": "bench", "jti": format!("{subject}-{now}")});
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(KID.into());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

/// The redirect URI the benchmark client registers.
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// An OAuth client of the built-in authorization server.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    /// The issuer (and MCP origin).
    pub origin: String,
    /// The MCP endpoint, the `resource` of every token.
    pub resource: String,
    /// The `scope` every authorization asks for.
    pub scope: String,
    /// The registered `client_id`.
    pub client_id: String,
}

/// What a code exchange returns.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The bearer token for the MCP endpoint.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
}

fn text_after<'a>(html: &'a str, marker: &str) -> Result<&'a str, String> {
    let start = html.find(marker).ok_or_else(|| format!("no {marker} in the page"))? + marker.len();
    html[start..].split('"').next().ok_or_else(|| "unterminated attribute".to_owned())
}

/// A browser's cookies for one origin.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn update(&mut self, headers: &reqwest::header::HeaderMap) {
        for set in headers.get_all(reqwest::header::SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let Some((name, value)) = set.split(';').next().and_then(|p| p.split_once('=')) else { continue };
            if value.is_empty() || set.to_ascii_lowercase().contains("max-age=0") {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

impl OAuthClient {
    /// Registers a public client (RFC 7591) with the server at `origin`,
    /// which will ask for `scope` (one of the server's `scopes_supported`).
    pub async fn register(origin: &str, scope: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let body = json!({"client_name": "bench", "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "application_type": "native"});
        let response =
            http.post(format!("{origin}/register")).json(&body).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        let client_id = body["client_id"].as_str().ok_or(format!("register: {status} {body}"))?.to_owned();
        Ok(Self {
            http,
            origin: origin.to_owned(),
            resource: format!("{origin}/mcp"),
            scope: scope.to_owned(),
            client_id,
        })
    }

    /// `/authorize` → development login as `user` → consent: a code and its PKCE verifier.
    pub async fn code(&self, user: &str) -> Result<(String, String), String> {
        let verifier = format!("bench-verifier-{user}-{}-padding-to-be-long-enough", std::process::id());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&format!("{}/authorize", self.origin)).map_err(|e| e.to_string())?;
        url.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "bench"),
            ("resource", &self.resource),
            ("scope", &self.scope),
        ]);
        let mut jar = Jar::default();
        let page = self.http.get(url.as_str()).send().await.map_err(|e| e.to_string())?;
        jar.update(page.headers());
        let html = page.text().await.map_err(|e| e.to_string())?;
        let mut html_now = html;
        for fields in [vec![("username", user)], vec![("decision", "approve")]] {
            let action = text_after(&html_now, "action=\"")?.replace("&amp;", "&");
            let action = url.join(&action).map_err(|e| e.to_string())?;
            let csrf = text_after(&html_now, "name=\"csrf\" value=\"")?.to_owned();
            let mut form = vec![("csrf", csrf.as_str())];
            form.extend(fields);
            let mut response = self
                .http
                .post(action)
                .header("cookie", jar.header())
                .form(&form)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            jar.update(response.headers());
            // A redirect back to the client carries the code; one within the server (such as
            // from the login to the consent page) is followed, with the cookies.
            for _ in 0..5 {
                if !response.status().is_redirection() {
                    break;
                }
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or("a redirect without Location")?;
                let next = url.join(location).map_err(|e| e.to_string())?;
                if next.as_str().starts_with(REDIRECT) {
                    let code = next.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
                    return code.map(|c| (c, verifier.clone())).ok_or(format!("no code in {location}"));
                }
                response = self
                    .http
                    .get(next)
                    .header("cookie", jar.header())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                jar.update(response.headers());
            }
            html_now = response.text().await.map_err(|e| e.to_string())?;
        }
        Err("the consent step did not redirect".into())
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}/token", self.origin))
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("/token: {status} {body}"));
        }
        Ok(body)
    }

    /// Exchanges a code: the access and refresh tokens.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<Tokens, String> {
        let body = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("client_id", &self.client_id),
                ("redirect_uri", REDIRECT),
                ("resource", &self.resource),
            ])
            .await?;
        let field = |name: &str| body[name].as_str().map(str::to_owned).ok_or(format!("no {name} in {body}"));
        Ok(Tokens { access_token: field("access_token")?, refresh_token: field("refresh_token")? })
    }

    /// Refreshes: the rotated refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<String, String> {
        let body = self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &self.client_id),
            ])
            .await?;
        body["refresh_token"].as_str().map(str::to_owned).ok_or(format!("no refresh_token in {body}"))
    }
}
