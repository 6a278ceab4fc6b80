//! The relay's `X-Forwarded-For` reading ([`TrustedProxies::client`]): the
//! header is client-controlled text, believed only from trusted proxies. The
//! client is the TCP peer unless the peer is trusted; otherwise it is one of
//! the last [`MAX_FORWARDED_HOPS`] entries (as IPv4 when IPv4-mapped), the
//! first untrusted one walking outwards, and how the entries are spread over
//! header values does not matter.

use std::net::{IpAddr, SocketAddr};

use shoal_relay::limits::MAX_FORWARDED_HOPS;
use shoal_relay::proxy::TrustedProxies;

use crate::split_seed;

const TRUSTED: &[&str] = &["10.0.0.0/8", "2001:db8::/32", "127.0.0.1/32"];
const PEERS: &[&str] = &[
    "10.1.2.3:443",
    "[2001:db8::7]:8443",
    "127.0.0.1:9",
    "[::ffff:10.0.0.1]:80",
    "203.0.113.7:5000",
    "[2001:db9::1]:1",
];

fn entry_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        })
}

pub fn check(data: &[u8]) {
    let (pick, rest) = split_seed(data);
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let nets = TRUSTED
        .iter()
        .map(|n| n.parse().expect("a network"))
        .collect();
    let proxies = TrustedProxies::new(nets);
    let peer: SocketAddr = PEERS[usize::from(pick) % PEERS.len()]
        .parse()
        .expect("an address");
    let values: Vec<&str> = text.split('\n').collect();
    let client = proxies.client(peer, &values);

    // One header value or several: the same entries, the same client.
    let joined = values.join(",");
    assert_eq!(proxies.client(peer, &[joined.as_str()]), client);
    // Untrusted peers are believed over any header.
    let untrusted: SocketAddr = "198.51.100.1:7".parse().expect("an address");
    assert_eq!(proxies.client(untrusted, &values), untrusted);

    if client == peer {
        return;
    }
    assert_eq!(client.port(), 0, "a proxy does not forward ports");
    let ip = client.ip();
    if let IpAddr::V6(v6) = ip {
        assert!(v6.to_ipv4_mapped().is_none(), "{ip} is IPv4");
    }
    // Taken from the last MAX_FORWARDED_HOPS entries, and only past trusted ones.
    let entries: Vec<&str> = joined.split(',').map(str::trim).collect();
    let nearest: Vec<Option<IpAddr>> = entries
        .iter()
        .rev()
        .take(MAX_FORWARDED_HOPS)
        .map(|e| entry_ip(e))
        .collect();
    let at = nearest
        .iter()
        .position(|e| *e == Some(ip))
        .expect("the client is one of the nearest entries");
    let own = TrustedProxies::new(
        TRUSTED
            .iter()
            .map(|n| n.parse().expect("a network"))
            .collect(),
    );
    for e in &nearest[..at] {
        let e = e.expect("entries before the client parse");
        // Each hop before it is a trusted proxy: with it as the peer, the
        // header is believed.
        let hop = SocketAddr::new(e, 1);
        assert_ne!(own.client(hop, &["198.51.100.9"]), hop, "{e} is untrusted");
    }
}
