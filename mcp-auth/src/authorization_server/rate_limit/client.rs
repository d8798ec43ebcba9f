//! Whom a request counts against: the client address (the TCP peer, or the
//! `X-Forwarded-For` entry of the nearest trusted proxy), reduced to a
//! [`ClientKey`]. Both limiters, in memory and in Redis, count by this key.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::HeaderMap;

/// Whom a window counts: an IPv4 address, or an IPv6 /64 (one
/// customer's network is commonly a whole /64, so counting single IPv6
/// addresses would let one client take a fresh window per request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum ClientKey {
    V4(Ipv4Addr),
    V6Prefix(u64),
}

impl ClientKey {
    pub(super) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 client.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// `192.0.2.1`, or `2001:db8:1:2::/64`: the client part of a Redis key.
impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6Prefix(prefix) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*prefix) << 64)),
        }
    }
}

/// Why no client address could be found for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum NoClient {
    /// No TCP peer address and no trusted forwarding header: not limited.
    Unknown,
    /// The entry the nearest trusted proxy wrote is not an address.
    Unparsable(String),
}

/// The client address of a request from `peer`, behind `hops` trusted
/// reverse proxies.
pub(super) fn client_ip(hops: usize, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<IpAddr, NoClient> {
    if hops == 0 {
        return peer.ok_or(NoClient::Unknown);
    }
    // Each trusted proxy appends the address it received from: with n
    // trusted proxies, the n-th entry from the right is the client's.
    // A shorter list was written by trusted proxies only, so its first
    // entry is the client; an empty one means the peer is the client.
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let Some(entry) = forwarded.get(forwarded.len().saturating_sub(hops)) else {
        return peer.ok_or(NoClient::Unknown);
    };
    // Never fall back to the peer here: behind a proxy, the peer is the
    // proxy, and every client would share its window.
    parse_forwarded_address(entry).ok_or_else(|| NoClient::Unparsable((*entry).to_owned()))
}

/// An `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`, `[2001:db8::1]`).
fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    entry.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn key(text: &str) -> ClientKey {
        ClientKey::of(ip(text))
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"), "same /64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"), "next /64");
        assert_eq!(key("192.0.2.7"), key("::ffff:192.0.2.7"), "mapped IPv4");
    }

    #[test]
    fn keys_print_as_an_address_or_a_64_prefix() {
        assert_eq!(key("192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:ffff::9").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8::1").to_string(), "2001:db8::/64");
    }

    #[test]
    fn forwarded_for_is_trusted_only_for_the_configured_hops() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        let peer = Some(ip("10.0.0.1"));
        assert_eq!(client_ip(0, peer, &headers), Ok(ip("10.0.0.1")), "spoofable header ignored");
        assert_eq!(client_ip(1, peer, &headers), Ok(ip("203.0.113.7")));
        // Fewer entries than trusted hops: all were written by trusted proxies.
        assert_eq!(client_ip(3, peer, &headers), Ok(ip("6.6.6.6")));
        assert_eq!(client_ip(3, peer, &HeaderMap::new()), Ok(ip("10.0.0.1")), "no header: the peer");
        assert_eq!(client_ip(3, None, &HeaderMap::new()), Err(NoClient::Unknown));
    }

    #[test]
    fn forwarded_entries_parse_with_ports_or_are_refused() {
        let peer = Some(ip("10.0.0.1"));
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", HeaderValue::from_static(value));
            client_ip(1, peer, &headers)
        };
        assert_eq!(with("192.0.2.1:4711"), Ok(ip("192.0.2.1")));
        assert_eq!(with("[2001:db8::1]:443"), Ok(ip("2001:db8::1")));
        assert_eq!(with("[2001:db8::1]"), Ok(ip("2001:db8::1")));
        assert_eq!(with("unknown"), Err(NoClient::Unparsable("unknown".into())));
        assert_eq!(with("192.0.2.1, "), Err(NoClient::Unparsable(String::new())));
    }
}
