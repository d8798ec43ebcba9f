//! Redirect URIs: what may be registered, and when a presented one matches.

use std::net::IpAddr;

use reqwest::Url;

/// Longest accepted redirect URI.
const MAX_LEN: usize = 2000;

/// The kind of client, which decides the schemes it may use
/// (OpenID Connect Registration §2 `application_type`, MCP SEP-837).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApplicationType {
    /// Runs on the user's device: loopback http, https, or a private-use scheme.
    Native,
    /// A web application: https on a non-loopback host only.
    Web,
}

impl ApplicationType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Web => "web",
        }
    }
}

/// What a redirect URI is, once parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedirectKind {
    /// `https` on a non-loopback host.
    Https,
    /// `http` (or `https`) on a loopback host (RFC 8252 §7.3).
    Loopback,
    /// A private-use URI scheme (RFC 8252 §7.1).
    PrivateUse,
}

/// Checks a redirect URI offered at registration; returns its kind or why it
/// is refused.
pub(crate) fn classify(uri: &str) -> Result<RedirectKind, &'static str> {
    if uri.len() > MAX_LEN {
        return Err("redirect URI too long");
    }
    // Whitespace and control characters are how scheme blocklists get
    // bypassed (` javascript:`, `java\tscript:`): refuse them outright.
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("redirect URI contains whitespace or control characters");
    }
    let url = Url::parse(uri).map_err(|_| "redirect URI is not an absolute URI")?;
    // RFC 6749 §3.1.2: no fragment.
    if url.fragment().is_some() || uri.contains('#') {
        return Err("redirect URI must not contain a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("redirect URI must not contain user information");
    }
    // The raw scheme must already be lower case, so what is registered is
    // what a browser will see.
    let raw_scheme = uri.split(':').next().unwrap_or_default();
    if raw_scheme != url.scheme() {
        return Err("redirect URI scheme must be lower case");
    }
    match url.scheme() {
        "https" | "http" => {
            let host = url.host_str().ok_or("redirect URI has no host")?;
            if is_loopback_host(host) {
                Ok(RedirectKind::Loopback)
            } else if url.scheme() == "https" {
                Ok(RedirectKind::Https)
            } else {
                Err("http redirect URIs are allowed only on loopback hosts (use https)")
            }
        }
        scheme => {
            // Allowlist, not blocklist: RFC 8252 §7.1 private-use schemes are
            // reverse domain names, so they contain a dot; `javascript`,
            // `data`, `vbscript`, `file`, `blob`, `about`… never do.
            let valid = scheme.contains('.')
                && scheme.split('.').all(|label| !label.is_empty())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
            if valid { Ok(RedirectKind::PrivateUse) } else { Err("redirect URI scheme is not allowed") }
        }
    }
}

/// Whether `kind` fits `application_type`.
pub(crate) fn allowed_for(kind: RedirectKind, app: ApplicationType) -> bool {
    match app {
        ApplicationType::Web => kind == RedirectKind::Https,
        ApplicationType::Native => true,
    }
}

/// RFC 8252 §8.3: `localhost` and the loopback literals.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `presented` matches one of `registered`: exactly, or by the
/// RFC 8252 §7.3 rule that a loopback redirect may use any port (scheme,
/// host, path and query still equal; `localhost` never matches `127.0.0.1`).
pub(crate) fn find_match<'a>(registered: &'a [String], presented: &str) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| *r == presented) {
        return Some(exact);
    }
    let presented_url = Url::parse(presented).ok()?;
    if presented.chars().any(|c| c.is_control() || c.is_whitespace()) || presented.contains('#') {
        return None;
    }
    registered.iter().map(String::as_str).find(|r| loopback_equal(r, &presented_url))
}

fn loopback_equal(registered: &str, presented: &Url) -> bool {
    let Ok(reg) = Url::parse(registered) else { return false };
    let Some(host) = reg.host_str() else { return false };
    reg.scheme() == "http"
        && is_loopback_host(host)
        && presented.scheme() == "http"
        && presented.host_str() == Some(host)
        && presented.path() == reg.path()
        && presented.query() == reg.query()
        && presented.username().is_empty()
        && presented.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_corpus_is_refused() {
        for uri in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " https://app.example/cb",
            "java\tscript:alert(1)",
            "https://app.example/cb\n",
            "https://app.example/\0cb",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "blob:https://app.example/uuid",
            "file:///etc/passwd",
            "about:blank",
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
            "HTTPS://app.example/cb",
            "com..example:/cb",
            "/relative/cb",
            "http://0.0.0.0:8080/cb",
        ] {
            assert!(classify(uri).is_err(), "{uri:?} must be refused");
        }
    }

    #[test]
    fn good_uris_are_classified() {
        assert_eq!(classify("https://claude.ai/api/mcp/auth_callback"), Ok(RedirectKind::Https));
        assert_eq!(classify("http://127.0.0.1:33418/callback"), Ok(RedirectKind::Loopback));
        assert_eq!(classify("http://localhost/cb"), Ok(RedirectKind::Loopback));
        assert_eq!(classify("http://[::1]:9/cb"), Ok(RedirectKind::Loopback));
        assert_eq!(classify("com.example.app:/oauth"), Ok(RedirectKind::PrivateUse));
        assert!(!allowed_for(RedirectKind::Loopback, ApplicationType::Web));
        assert!(!allowed_for(RedirectKind::PrivateUse, ApplicationType::Web));
    }

    #[test]
    fn loopback_port_may_vary_and_nothing_else() {
        let reg = vec!["http://127.0.0.1/callback".to_owned(), "https://app.example/cb".to_owned()];
        assert!(find_match(&reg, "http://127.0.0.1:51004/callback").is_some());
        assert!(find_match(&reg, "http://127.0.0.1:51004/other").is_none());
        assert!(find_match(&reg, "http://127.0.0.1:51004/callback?x=1").is_none());
        assert!(find_match(&reg, "http://localhost:51004/callback").is_none());
        assert!(find_match(&reg, "https://app.example/cb").is_some());
        assert!(find_match(&reg, "https://app.example:8443/cb").is_none());
        assert!(find_match(&reg, "https://app.example/cb/").is_none());
    }
}
