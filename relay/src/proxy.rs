//! Who the client is, when the relay sits behind a reverse proxy.
//!
//! A proxy connects from its own address and names the client in
//! `X-Forwarded-For` (each proxy appends the address it saw). Anyone can send
//! that header, so it is believed only from `--trusted-proxy` networks: the
//! client is the rightmost entry that is not itself a trusted proxy. Without
//! trusted proxies the header is ignored and the TCP peer is the client.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::limits::MAX_FORWARDED_HOPS;

/// The networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's IP, given the TCP peer and the `X-Forwarded-For` header
    /// values (in order of appearance). The port is the TCP peer's when the
    /// peer is the client, else 0 (a proxy does not forward the client port).
    pub fn client(&self, peer: SocketAddr, forwarded_for: &[&str]) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let entries: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        // Walk from the nearest hop outwards; stop at the first untrusted one.
        let mut client = peer;
        for entry in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
            let Some(ip) = parse_entry(entry) else {
                // Garbage from a hop we trust is that hop's problem, but
                // nothing beyond it can be believed either.
                break;
            };
            client = SocketAddr::new(ip, 0);
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an IP, maybe `[v6]`, maybe with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4
/// peers) is IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().expect("net")).collect())
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket addr")
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client(sa("203.0.113.7:5000"), &["1.2.3.4"]),
            sa("203.0.113.7:5000")
        );
        assert_eq!(
            TrustedProxies::default().client(sa("127.0.0.1:9"), &["1.2.3.4"]),
            sa("127.0.0.1:9")
        );
    }

    #[test]
    fn trusted_proxy_names_the_client() {
        let p = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            p.client(sa("127.0.0.1:40000"), &["198.51.100.9"]),
            sa("198.51.100.9:0")
        );
        assert_eq!(
            p.client(sa("127.0.0.1:40000"), &["[2001:db8::1]:443"]),
            sa("[2001:db8::1]:0")
        );
        assert_eq!(
            p.client(sa("[::ffff:127.0.0.1]:1"), &["198.51.100.9"]),
            sa("198.51.100.9:0")
        );
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        // The client forged the first entry; the trusted chain appended the rest.
        let p = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        let got = p.client(sa("127.0.0.1:1"), &["6.6.6.6, 198.51.100.9", "10.1.2.3"]);
        assert_eq!(got, sa("198.51.100.9:0"));
    }

    #[test]
    fn garbage_stops_the_walk() {
        let p = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!(
            p.client(sa("127.0.0.1:1"), &["1.1.1.1, nonsense, 10.0.0.2"]),
            sa("10.0.0.2:0")
        );
        assert_eq!(p.client(sa("127.0.0.1:1"), &[]), sa("127.0.0.1:1"));
        assert_eq!(p.client(sa("127.0.0.1:1"), &[""]), sa("127.0.0.1:1"));
    }

    #[test]
    fn long_chains_are_cut() {
        let p = proxies(&["10.0.0.0/8"]);
        let chain = vec!["10.0.0.1"; MAX_FORWARDED_HOPS * 4].join(",");
        let got = p.client(sa("10.9.9.9:1"), &[&chain]);
        assert!(got.ip().to_string().starts_with("10."));
    }
}
