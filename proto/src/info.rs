//! `GET /api/info`: what a page needs to join the relay's swarm.

use serde::{Deserialize, Serialize};

/// Served by the relay at `/api/info`, read by the page at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayInfo {
    /// The relay's libp2p PeerId (base58).
    pub peer_id: String,
    /// TCP port of the relay's libp2p WebSocket listener. The page dials it on
    /// the host it loaded the page from, so the relay works behind any name.
    pub ws_port: u16,
    /// The multiaddrs the relay listens on (with `/p2p/<id>`), for clients
    /// that are not pages.
    pub listen_addrs: Vec<String>,
    /// The relay's version (crate version).
    pub version: String,
}

/// The multiaddr a page dials to reach the relay: the page's own host, the
/// relay's WebSocket port, and the relay's PeerId.
pub fn relay_ws_multiaddr(host: &str, ws_port: u16, relay_peer_id: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let proto = if host.parse::<std::net::Ipv4Addr>().is_ok() {
        "ip4"
    } else if host.parse::<std::net::Ipv6Addr>().is_ok() {
        "ip6"
    } else {
        "dns"
    };
    format!("/{proto}/{host}/tcp/{ws_port}/ws/p2p/{relay_peer_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_json_is_camel_case() {
        let info = RelayInfo {
            peer_id: "12D3KooW".into(),
            ws_port: 4001,
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001/ws".into()],
            version: "0.1.0".into(),
        };
        let json = serde_json::to_string(&info).expect("serialize");
        assert_eq!(
            json,
            r#"{"peerId":"12D3KooW","wsPort":4001,"listenAddrs":["/ip4/127.0.0.1/tcp/4001/ws"],"version":"0.1.0"}"#
        );
    }

    #[test]
    fn dial_addr_follows_host_kind() {
        assert_eq!(relay_ws_multiaddr("127.0.0.1", 9, "P"), "/ip4/127.0.0.1/tcp/9/ws/p2p/P");
        assert_eq!(relay_ws_multiaddr("[::1]", 9, "P"), "/ip6/::1/tcp/9/ws/p2p/P");
        assert_eq!(relay_ws_multiaddr("shoal.example", 9, "P"), "/dns/shoal.example/tcp/9/ws/p2p/P");
    }
}
