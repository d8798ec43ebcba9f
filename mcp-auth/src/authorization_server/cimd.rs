//! Client ID metadata documents (MCP 2025-11-25 "Client ID Metadata
//! Documents"; draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL with a path names a JSON document, fetched here and
//! used as the client's registration.
//!
//! The fetch is the SSRF surface of the server (MCP security best practices,
//! "SSRF"), so:
//! - only https, with a non-root path, no user information, fragment or dot
//!   segments (CIMD §3), and only on an allowed port (`cimd_allowed_ports`,
//!   default 443), so the fetch cannot be aimed at another service's port;
//! - the host is resolved by us and **every** address must be public before a
//!   connection is made; the checked addresses are the ones connected to
//!   (no second lookup, so DNS rebinding gains nothing); IP literals are
//!   checked the same way, and so are the IPv6 forms that carry an IPv4
//!   address (mapped, translated, compatible, NAT64, 6to4); no proxy;
//! - at most one redirect (a CDN in front of the document), whose target
//!   passes the same URL and address rules; a second one is refused;
//! - `cimd_fetch_timeout_secs` (default 10 s) for the whole fetch, at most
//!   [`MAX_DOCUMENT`] bytes (by `Content-Length` and while streaming);
//! - `client_id` in the document must equal the URL exactly (CIMD §4.1),
//!   the URL the client gave, not the one redirected to,
//!   the document must carry `client_name` and `redirect_uris`, and it goes
//!   through the rules of dynamic registration; it may not hold secrets or
//!   private keys; `private_key_jwt` is accepted only when the document
//!   also lists `none` in `token_endpoint_auth_methods_supported`, and is
//!   then negotiated down to `none`;
//! - cached by `Cache-Control` (RFC 9111 §5.2.2), capped in age and count;
//!   a document that stops validating is dropped at its next fetch;
//! - a failed fetch is remembered for `cimd_failure_cache_secs` (default
//!   30 s, capped in count like the cache), so requests naming a dead or
//!   slow URL cost one fetch in that time, not one each; during an outage
//!   a copy that validated before keeps serving.
//!
//! `cimd_allow_insecure_for_tests` lifts the https and address rules (not
//! the port rule) so a test can serve documents from 127.0.0.1; nothing
//! else should set it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_LENGTH, LOCATION};
use mcp_core::error::with_causes;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;

use super::config::AuthorizationServerConfig;
use super::register::{Metadata, Validated, validate};
use super::store::{ClientRecord, TokenEndpointAuthMethod, UnixTime};
use crate::error::ConfigError;

/// Largest metadata document read (5 KB, as WOP and FastMCP).
pub(crate) const MAX_DOCUMENT: usize = 5 * 1024;
/// Redirects followed (one: a CDN in front of the document).
const MAX_REDIRECTS: usize = 1;
/// Cache lifetime of a document that says nothing about caching.
const DEFAULT_CACHE_SECS: u64 = 300;
/// Longest accepted `client_id` URL.
const MAX_URL: usize = 2000;

/// Why a metadata document cannot be used; logged, never shown in detail
/// (the client gets a generic "unknown client" / `invalid_client`).
#[derive(Debug, thiserror::Error)]
#[error("client ID metadata document `{url}`: {reason}")]
pub(crate) struct CimdError {
    url: String,
    reason: String,
}

/// Fetches, checks and caches metadata documents.
#[derive(Debug)]
pub(crate) struct CimdFetcher {
    http: reqwest::Client,
    timeout: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    failures: Mutex<HashMap<String, RecentFailure>>,
    capacity: usize,
    max_age: u64,
    failure_secs: u64,
    rules: UrlRules,
    scopes_supported: Vec<String>,
}

/// What a document URL, or a redirect's target, must satisfy to be fetched.
#[derive(Debug, Clone)]
pub(crate) struct UrlRules {
    /// The test switch: http, loopback and private addresses allowed.
    pub(crate) allow_insecure: bool,
    /// The only ports connected to.
    pub(crate) ports: Vec<u16>,
}

#[derive(Debug, Clone)]
struct Cached {
    client: ClientRecord,
    /// Fresh until then.
    expires_at: UnixTime,
    /// Served stale until then when the host cannot be reached.
    usable_until: UnixTime,
}

/// A fetch that failed a moment ago, answered again without fetching.
#[derive(Debug, Clone)]
struct RecentFailure {
    reason: String,
    /// The host could not be reached, so a stale copy may still serve.
    unreachable: bool,
    until: UnixTime,
}

/// Why a fetch failed: the host could not be reached (a stale copy may
/// serve), or what it returned is not a valid document (it may not).
enum Failure {
    Unreachable(String),
    Invalid(String),
}

impl CimdFetcher {
    pub(crate) fn new(config: &AuthorizationServerConfig) -> Result<Self, ConfigError> {
        let allow_insecure = config.cimd_allow_insecure_for_tests;
        if allow_insecure {
            tracing::warn!(
                "mcp-auth: cimd_allow_insecure_for_tests is ON: client metadata documents may be fetched over \
                 http from private and loopback addresses. Tests only."
            );
        }
        let timeout = Duration::from_secs(config.cimd_fetch_timeout_secs.max(1));
        let mut builder = reqwest::Client::builder()
            // Redirects are followed by hand (one, re-checked), never by reqwest.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            // A proxy would resolve the name itself, past the address check.
            .no_proxy()
            .https_only(!allow_insecure)
            .user_agent(concat!("mcp-auth/", env!("CARGO_PKG_VERSION"), " (client metadata fetch)"));
        if !allow_insecure {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        let http = builder.build().map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            http,
            timeout,
            cache: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            capacity: config.cimd_cache_capacity,
            max_age: config.cimd_cache_max_secs,
            failure_secs: config.cimd_failure_cache_secs,
            rules: UrlRules { allow_insecure, ports: config.cimd_allowed_ports.clone() },
            scopes_supported: config.scopes_supported.clone(),
        })
    }

    /// Whether `client_id` is meant as a metadata document URL.
    pub(crate) fn applies_to(&self, client_id: &str) -> bool {
        client_id.starts_with("https://") || (self.rules.allow_insecure && client_id.starts_with("http://"))
    }

    /// The client a metadata document describes, from the cache or fetched.
    pub(crate) async fn client(&self, client_id: &str, now: UnixTime) -> Result<ClientRecord, CimdError> {
        if let Some(hit) = self.cached(client_id, now) {
            return Ok(hit);
        }
        if let Some(failure) = self.recent_failure(client_id, now) {
            return self.after_failure(client_id, failure, now);
        }
        match self.fetch(client_id, now).await {
            Ok((client, ttl)) => {
                self.remember(client.clone(), now, ttl);
                Ok(client)
            }
            Err(failure) => {
                let (reason, unreachable) = match failure {
                    Failure::Unreachable(reason) => (reason, true),
                    Failure::Invalid(reason) => {
                        // A document that no longer validates is dropped at once.
                        self.lock().remove(client_id);
                        (reason, false)
                    }
                };
                let failure =
                    RecentFailure { reason, unreachable, until: now.saturating_add(self.failure_secs) };
                self.remember_failure(client_id, failure.clone(), now);
                self.after_failure(client_id, failure, now)
            }
        }
    }

    /// The answer while a fetch of `client_id` has failed: during an outage,
    /// a copy that validated before is still used for a while (RFC 9111
    /// §4.2.4, serving stale); otherwise the failure.
    fn after_failure(
        &self,
        client_id: &str,
        failure: RecentFailure,
        now: UnixTime,
    ) -> Result<ClientRecord, CimdError> {
        let RecentFailure { reason, unreachable, .. } = failure;
        let stale = unreachable
            .then(|| self.lock().get(client_id).filter(|c| c.usable_until > now).map(|c| c.client.clone()))
            .flatten();
        match stale {
            Some(client) => {
                tracing::warn!(url = client_id, %reason, "mcp-auth: using a stale client metadata document");
                Ok(client)
            }
            None => Err(CimdError { url: client_id.to_owned(), reason }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, RecentFailure>> {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn recent_failure(&self, client_id: &str, now: UnixTime) -> Option<RecentFailure> {
        let mut failures = self.lock_failures();
        match failures.get(client_id) {
            Some(failure) if failure.until > now => Some(failure.clone()),
            Some(_) => {
                failures.remove(client_id);
                None
            }
            None => None,
        }
    }

    /// Remembers a failed fetch until `failure.until`; at capacity, expired
    /// entries go first, then the one that expires soonest.
    fn remember_failure(&self, client_id: &str, failure: RecentFailure, now: UnixTime) {
        if failure.until <= now || self.capacity == 0 {
            return;
        }
        let mut failures = self.lock_failures();
        if failures.len() >= self.capacity && !failures.contains_key(client_id) {
            failures.retain(|_, f| f.until > now);
            if failures.len() >= self.capacity
                && let Some(victim) = failures.iter().min_by_key(|(_, f)| f.until).map(|(k, _)| k.clone())
            {
                failures.remove(&victim);
            }
        }
        failures.insert(client_id.to_owned(), failure);
    }

    fn cached(&self, client_id: &str, now: UnixTime) -> Option<ClientRecord> {
        self.lock().get(client_id).filter(|c| c.expires_at > now).map(|c| c.client.clone())
    }

    fn remember(&self, client: ClientRecord, now: UnixTime, ttl: Option<u64>) {
        let Some(ttl) = ttl else {
            // `no-store`: not even an older copy is kept.
            self.lock().remove(&client.client_id);
            return;
        };
        if self.capacity == 0 {
            return;
        }
        let mut cache = self.lock();
        if cache.len() >= self.capacity && !cache.contains_key(&client.client_id) {
            cache.retain(|_, c| c.usable_until > now);
            // Still full: drop the entry closest to expiry.
            if cache.len() >= self.capacity
                && let Some(victim) = cache.iter().min_by_key(|(_, c)| c.expires_at).map(|(k, _)| k.clone())
            {
                cache.remove(&victim);
            }
        }
        let expires_at = now.saturating_add(ttl);
        let usable_until = expires_at.saturating_add(self.max_age);
        cache.insert(client.client_id.clone(), Cached { client, expires_at, usable_until });
    }

    async fn fetch(&self, client_id: &str, now: UnixTime) -> Result<(ClientRecord, Option<u64>), Failure> {
        // The URL is checked before anything else: a malformed one is never fetched.
        let url = check_target(client_id, &self.rules).map_err(Failure::Invalid)?;
        // One limit for the whole fetch: redirect, headers and body.
        match tokio::time::timeout(self.timeout, self.fetch_checked(client_id, url, now)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Unreachable(format!("no document within {:?}", self.timeout))),
        }
    }

    async fn fetch_checked(
        &self,
        client_id: &str,
        mut url: Url,
        now: UnixTime,
    ) -> Result<(ClientRecord, Option<u64>), Failure> {
        let mut redirects = 0;
        let response = loop {
            let response = self
                .http
                .get(url.clone())
                .header(http::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| {
                    let reason = format!("fetch failed: {}", with_causes(&e));
                    // The resolver's refusal of a private address is a verdict, not an outage.
                    if reason.contains("non-public address") {
                        Failure::Invalid(reason)
                    } else {
                        Failure::Unreachable(reason)
                    }
                })?;
            if !response.status().is_redirection() {
                break response;
            }
            if redirects == MAX_REDIRECTS {
                return Err(Failure::Invalid(format!("more than {MAX_REDIRECTS} redirect")));
            }
            redirects += 1;
            let location =
                response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                    Failure::Invalid(format!("{} without a usable Location", response.status()))
                })?;
            url = redirect_target(&url, location, &self.rules).map_err(Failure::Invalid)?;
        };
        let status = response.status();
        if status.is_server_error() {
            return Err(Failure::Unreachable(format!("the document URL answered {status}")));
        }
        if status != reqwest::StatusCode::OK {
            return Err(Failure::Invalid(format!("the document URL answered {status}")));
        }
        let ttl = cache_lifetime(response.headers().get(CACHE_CONTROL), self.max_age);
        let body = read_limited(response).await?;
        let document: Value =
            serde_json::from_slice(&body).map_err(|_| Failure::Invalid("the document is not JSON".into()))?;
        // The document names the URL the client gave, even behind a redirect.
        let client =
            check_document(client_id, document, &self.scopes_supported, now).map_err(Failure::Invalid)?;
        Ok((client, ttl))
    }
}

/// Reads at most [`MAX_DOCUMENT`] bytes, refusing more (by `Content-Length`
/// up front, and while streaming).
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let too_large = || Failure::Invalid(format!("the document is larger than {MAX_DOCUMENT} bytes"));
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DOCUMENT as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Unreachable(format!("reading failed: {}", with_causes(&e))))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// [`check_url`], on an allowed port, and an IP literal must be a public
/// address (names are checked by the resolver, at connection time).
pub(crate) fn check_target(client_id: &str, rules: &UrlRules) -> Result<Url, String> {
    let url = check_url(client_id, rules.allow_insecure)?;
    // MCP security best practices, "SSRF": only the ports documents are
    // served from, so the fetch cannot probe other services on a host.
    let port = url.port_or_known_default().unwrap_or(0);
    if !rules.ports.contains(&port) {
        return Err(format!("port {port} is not an allowed metadata document port"));
    }
    // IP literals never reach the resolver: check them here.
    if !rules.allow_insecure {
        let host = url.host_str().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        if let Some(ip) = literal
            && !is_public_address(ip)
        {
            return Err(format!("{ip} is not a public address"));
        }
    }
    Ok(url)
}

/// Where a redirect from `from` to `location` leads, if it may be
/// followed: the target passes the rules of the original URL
/// ([`check_target`]: https, no user information or fragment, a path, an
/// allowed port, a public address).
pub(crate) fn redirect_target(from: &Url, location: &str, rules: &UrlRules) -> Result<Url, String> {
    let target = from.join(location).map_err(|_| "the redirect Location is not a URL".to_owned())?;
    check_target(target.as_str(), rules).map_err(|e| format!("redirect refused: {e}"))
}

/// CIMD §3: an https URL with a path other than `/`, no user information,
/// no fragment, no `.` or `..` segments, and in normal form (what is
/// compared is what is fetched).
pub(crate) fn check_url(client_id: &str, allow_insecure: bool) -> Result<Url, String> {
    if client_id.len() > MAX_URL {
        return Err("client_id URL too long".into());
    }
    if client_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("client_id URL contains whitespace or control characters".into());
    }
    let url = Url::parse(client_id).map_err(|_| "client_id is not a URL".to_owned())?;
    let scheme_ok = url.scheme() == "https" || (allow_insecure && url.scheme() == "http");
    if !scheme_ok {
        return Err("client_id URL must be https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("client_id URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("client_id URL must not contain user information".into());
    }
    if client_id.contains('#') {
        return Err("client_id URL must not contain a fragment".into());
    }
    let raw_path = client_id
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or_default();
    let raw_path = raw_path.split('?').next().unwrap_or_default();
    if raw_path.is_empty() || raw_path == "/" {
        return Err("client_id URL must have a path".into());
    }
    if raw_path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        matches!(lower.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.")
    }) {
        return Err("client_id URL must not contain dot segments".into());
    }
    if url.as_str() != client_id {
        return Err("client_id URL is not in normal form".into());
    }
    Ok(url)
}

/// Checks a fetched document and turns it into a client registration.
fn check_document(
    url: &str,
    document: Value,
    scopes_supported: &[String],
    now: UnixTime,
) -> Result<ClientRecord, String> {
    let Value::Object(fields) = &document else { return Err("the document is not a JSON object".into()) };
    // CIMD §4.1: the document's client_id is its own URL, exactly.
    if fields.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err("client_id in the document does not equal its URL".into());
    }
    // MCP 2025-11-25: client_id, client_name and redirect_uris are required.
    match fields.get("client_name").and_then(Value::as_str) {
        Some(name) if !name.trim().is_empty() => {}
        _ => return Err("the document has no client_name".into()),
    }
    if !fields.get("redirect_uris").is_some_and(Value::is_array) {
        return Err("the document has no redirect_uris".into());
    }
    // CIMD §4.1: a public document holds no shared secret and no private key.
    if fields.contains_key("client_secret") || fields.contains_key("client_secret_expires_at") {
        return Err("the document contains a client secret".into());
    }
    let private_jwk = fields
        .get("jwks")
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
        .is_some_and(|keys| keys.iter().any(|k| k.get("d").is_some()));
    if private_jwk {
        return Err("the document contains a private key".into());
    }
    // Only public clients: private_key_jwt is not implemented, and a shared
    // secret cannot come from a public document. A client that prefers
    // private_key_jwt but also accepts `none` is negotiated down to `none`.
    let also_none = fields
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
        .is_some_and(|methods| methods.iter().any(|m| m.as_str() == Some("none")));
    let negotiate = match fields.get("token_endpoint_auth_method").and_then(Value::as_str) {
        None | Some("none") => false,
        Some("private_key_jwt") if also_none => true,
        Some(other) => {
            return Err(format!("token_endpoint_auth_method `{other}` is not supported (only none)"));
        }
    };
    let mut document = document;
    if negotiate {
        document["token_endpoint_auth_method"] = Value::from("none");
    }
    let metadata: Metadata =
        serde_json::from_value(document).map_err(|e| format!("the document is malformed ({e})"))?;
    let Validated { redirect_uris, grant_types, application_type, auth_method, client_name, scope } =
        validate(scopes_supported, metadata, "none").map_err(|e| e.description)?;
    debug_assert_eq!(auth_method, TokenEndpointAuthMethod::None);
    Ok(ClientRecord {
        client_id: url.to_owned(),
        secret_hash: None,
        secret_expires_at: None,
        auth_method,
        redirect_uris,
        application_type: application_type.as_str().into(),
        client_name,
        scope,
        grant_types,
        issued_at: now,
        expires_at: None,
    })
}

/// RFC 9111 §5.2.2: `no-store` and `no-cache` mean not kept at all (`None`);
/// `max-age` is the freshness lifetime; the configured cap bounds it.
fn cache_lifetime(header: Option<&http::HeaderValue>, cap: u64) -> Option<u64> {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else { return Some(DEFAULT_CACHE_SECS.min(cap)) };
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" || lower.starts_with("no-cache=") {
            return None;
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            max_age = Some(n.trim_matches('"').parse::<u64>().unwrap_or(0));
        }
    }
    Some(max_age.unwrap_or(DEFAULT_CACHE_SECS).min(cap))
}

/// Whether a server may fetch from `ip`: false for loopback, private
/// (RFC 1918, RFC 4193), link-local, shared (RFC 6598), unspecified,
/// multicast, broadcast, documentation, benchmarking and reserved ranges,
/// and for IPv6 forms that embed such an IPv4 address (mapped, compatible,
/// NAT64, 6to4) or tunnel to one (Teredo).
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network" (RFC 791)
        || a == 10                             // private (RFC 1918)
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 169 && b == 254)              // link-local, cloud metadata (RFC 3927)
        || (a == 172 && (16..32).contains(&b)) // private (RFC 1918)
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments (RFC 6890)
        || (a == 192 && b == 0 && c == 2)      // documentation (RFC 5737)
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast (RFC 7526)
        || (a == 192 && b == 168)              // private (RFC 1918)
        || (a == 198 && (b == 18 || b == 19))  // benchmarking (RFC 2544)
        || (a == 198 && b == 51 && c == 100)   // documentation
        || (a == 203 && b == 0 && c == 113)    // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    let embedded = |hi: u16, lo: u16| is_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    // Forms that carry an IPv4 address in the last 32 bits, which then decides:
    // IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2), IPv4-compatible
    // ::a.b.c.d (§2.5.5.1), IPv4-translated ::ffff:0:a.b.c.d (RFC 2765 §2.1),
    // and NAT64 64:ff9b::a.b.c.d (RFC 6052 §2.1).
    let mapped = s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0);
    let translated = s[..6] == [0, 0, 0, 0, 0xffff, 0];
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if mapped || translated || nat64 {
        return embedded(s[6], s[7]);
    }
    // 6to4 (2002::/16, RFC 3056 §2): the IPv4 address in bits 16..48 decides.
    if s[0] == 0x2002 {
        return embedded(s[1], s[2]);
    }
    !((s[0] & 0xfe00) == 0xfc00               // unique local (RFC 4193)
        || (s[0] & 0xffc0) == 0xfe80           // link-local
        || (s[0] & 0xffc0) == 0xfec0           // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00           // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8)  // documentation (RFC 3849)
        || (s[0] == 0x2001 && s[1] == 0)       // Teredo (RFC 4380)
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 (RFC 8215)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only (RFC 6666)
}

/// Resolves names with the system resolver and fails unless every address
/// is public; reqwest then connects only to the addresses returned here.
#[derive(Debug)]
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = host.clone();
            let addrs = tokio::task::spawn_blocking(move || {
                (lookup.as_str(), 0).to_socket_addrs().map(Iterator::collect::<Vec<_>>)
            })
            .await??;
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            if let Some(bad) = addrs.iter().find(|a| !is_public_address(a.ip())) {
                return Err(format!("{host} resolves to the non-public address {}", bad.ip()).into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_urls() {
        for good in ["https://app.example/client.json", "https://app.example/oauth/meta?v=2"] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example/client.json",
            "https://app.example",
            "https://app.example/",
            "https://user@app.example/c",
            "https://app.example/c#f",
            "https://app.example/a/../c",
            "https://app.example/a/%2e%2e/c",
            "https://app.example/./c",
            "https://APP.example/c",
            "https://app.example/ c",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:8/c", true).is_ok());
    }

    #[test]
    fn a_redirect_target_passes_the_rules_of_the_original_url() {
        let strict = UrlRules { allow_insecure: false, ports: vec![443] };
        let from = Url::parse("https://app.example/client.json").unwrap();
        let ok = redirect_target(&from, "https://cdn.example/app/client.json", &strict).unwrap();
        assert_eq!(ok.as_str(), "https://cdn.example/app/client.json");
        // Relative locations resolve against the URL redirected from.
        let relative = redirect_target(&from, "/v2/client.json", &strict).unwrap();
        assert_eq!(relative.as_str(), "https://app.example/v2/client.json");
        for bad in [
            // private, loopback and metadata addresses, with the switch off
            "https://10.0.0.1/client.json",
            "https://127.0.0.1/client.json",
            "https://[::1]/client.json",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:192.168.1.1]/client.json",
            // the URL rules
            "http://cdn.example/client.json",
            "https://user:pw@cdn.example/client.json",
            "https://cdn.example/client.json#frag",
            "https://cdn.example/",
            "file:///etc/passwd",
            // a port other than the allowed ones
            "https://cdn.example:8443/client.json",
            "https://cdn.example:22/client.json",
        ] {
            assert!(redirect_target(&from, bad, &strict).is_err(), "{bad}");
        }
        // The test switch lifts only the scheme and address rules.
        let insecure = UrlRules { allow_insecure: true, ports: vec![8, 9] };
        let from = Url::parse("http://127.0.0.1:8/c.json").unwrap();
        assert!(redirect_target(&from, "http://127.0.0.1:9/d.json", &insecure).is_ok());
        assert!(redirect_target(&from, "http://u@127.0.0.1:9/d.json", &insecure).is_err());
        assert!(redirect_target(&from, "http://127.0.0.1:10/d.json", &insecure).is_err());
    }

    #[test]
    fn private_key_jwt_is_negotiated_down_to_none_only_when_none_is_listed() {
        let url = "https://app.example/c.json";
        let mut d = serde_json::json!({"client_id": url, "client_name": "A", "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}});
        assert!(check_document(url, d.clone(), &[], 0).is_err());
        d["token_endpoint_auth_methods_supported"] = serde_json::json!(["private_key_jwt"]);
        assert!(check_document(url, d.clone(), &[], 0).is_err());
        d["token_endpoint_auth_methods_supported"] = serde_json::json!(["private_key_jwt", "none"]);
        let client = check_document(url, d.clone(), &[], 0).unwrap();
        assert_eq!(client.auth_method, TokenEndpointAuthMethod::None);
        // Listing `none` does not make a secret-based method acceptable.
        d["token_endpoint_auth_method"] = "client_secret_basic".into();
        assert!(check_document(url, d, &[], 0).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_non_public_addresses() {
        use std::str::FromStr as _;
        let refused = PublicOnlyResolver.resolve(Name::from_str("localhost").unwrap()).await;
        let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("non-public address"), "{error}");
    }

    #[test]
    fn cache_control() {
        let h = |v: &'static str| http::HeaderValue::from_static(v);
        assert_eq!(cache_lifetime(None, 86400), Some(DEFAULT_CACHE_SECS));
        assert_eq!(cache_lifetime(Some(&h("public, max-age=600")), 86400), Some(600));
        assert_eq!(cache_lifetime(Some(&h("max-age=99999999")), 86400), Some(86400));
        assert_eq!(cache_lifetime(Some(&h("max-age=0")), 86400), Some(0));
        assert_eq!(cache_lifetime(Some(&h("no-store")), 86400), None);
        assert_eq!(cache_lifetime(Some(&h("max-age=60, no-cache")), 86400), None);
    }

    #[test]
    fn documents_with_secrets_or_other_methods_are_refused() {
        let url = "https://app.example/c.json";
        let base = || serde_json::json!({"client_id": url, "client_name": "A", "redirect_uris": ["http://127.0.0.1/cb"]});
        assert!(check_document(url, base(), &[], 0).is_ok());
        let mut d = base();
        d["client_secret"] = "s".into();
        assert!(check_document(url, d, &[], 0).is_err());
        let mut d = base();
        d["token_endpoint_auth_method"] = "client_secret_basic".into();
        assert!(check_document(url, d, &[], 0).is_err());
        let mut d = base();
        d["jwks"] = serde_json::json!({"keys": [{"kty": "EC", "d": "secret"}]});
        assert!(check_document(url, d, &[], 0).is_err());
        let mut d = base();
        d.as_object_mut().map(|o| o.remove("client_name"));
        assert!(check_document(url, d, &[], 0).is_err());
        let mut d = base();
        d["redirect_uris"] = serde_json::json!(["javascript:alert(1)"]);
        assert!(check_document(url, d, &[], 0).is_err());
    }
}
