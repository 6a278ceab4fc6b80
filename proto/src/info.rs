//! `GET /api/info`: what a page needs to join the relay's swarm.
//!
//! The page dials the relay on the origin it was loaded from (one port for
//! the page and the libp2p WebSocket, `wss` when the page is `https`), so the
//! relay works behind any name, certificate or reverse proxy without knowing
//! its public address. ICE servers come from here too: the page needs no
//! settings to cross NATs.

use serde::{Deserialize, Serialize};

/// The path of the libp2p WebSocket on the relay's HTTP listener.
pub const P2P_PATH: &str = "/p2p";

/// How long a page's rendezvous registration lives, in seconds; the page
/// renews it at half. Short, so that a page that left without unregistering
/// (a closed laptop) leaves the swarm's listing within minutes. The relay
/// accepts TTLs up to twice this.
pub const REGISTRATION_TTL_SECS: u64 = 5 * 60;

/// Served by the relay at `/api/info`, read by the page at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayInfo {
    /// The relay's libp2p PeerId (base58).
    pub peer_id: String,
    /// Path of the libp2p WebSocket on this origin ([`P2P_PATH`]).
    pub p2p_path: String,
    /// UDP port of the relay's own STUN server, on the host the page was
    /// loaded from; `None` when the operator turned it off.
    pub stun_port: Option<u16>,
    /// Further STUN/TURN servers the operator configured, used as given.
    pub ice_servers: Vec<IceServer>,
    /// The multiaddrs the relay listens on (with `/p2p/<id>`), for clients
    /// that are not pages.
    pub listen_addrs: Vec<String>,
    /// The relay's version (crate version).
    pub version: String,
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Where a page reaches the relay, parsed from the page's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub secure: bool,
    /// Host name or IP, without brackets.
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    #[error("the relay must be an http:// or https:// origin, not {0:?}")]
    Scheme(String),
    #[error("the relay origin has no host")]
    NoHost,
    #[error("bad port in the relay origin: {0:?}")]
    Port(String),
}

impl Origin {
    /// From a URL's parts as the browser's `URL` reports them (`protocol`
    /// with its colon, `hostname`, `port` empty for the default).
    pub fn new(protocol: &str, hostname: &str, port: &str) -> Result<Self, OriginError> {
        let secure = match protocol {
            "https:" => true,
            "http:" => false,
            other => return Err(OriginError::Scheme(other.to_owned())),
        };
        let host = hostname.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(OriginError::NoHost);
        }
        let port = if port.is_empty() {
            if secure {
                443
            } else {
                80
            }
        } else {
            port.parse()
                .map_err(|_| OriginError::Port(port.to_owned()))?
        };
        Ok(Self {
            secure,
            host: host.to_owned(),
            port,
        })
    }

    fn host_proto(&self) -> &'static str {
        if self.host.parse::<std::net::Ipv4Addr>().is_ok() {
            "ip4"
        } else if self.host.parse::<std::net::Ipv6Addr>().is_ok() {
            "ip6"
        } else {
            "dns"
        }
    }

    /// The multiaddr that dials `ws[s]://<host>:<port><path>` and expects
    /// the relay's PeerId. A WebSocket path is written percent-encoded after
    /// `x-parity-ws[s]` (the multiaddr form of `/ws` with a path).
    pub fn relay_multiaddr(&self, path: &str, relay_peer_id: &str) -> String {
        let ws = if self.secure {
            "x-parity-wss"
        } else {
            "x-parity-ws"
        };
        let path = path.replace('%', "%25").replace('/', "%2F");
        format!(
            "/{}/{}/tcp/{}/{ws}/{path}/p2p/{relay_peer_id}",
            self.host_proto(),
            self.host,
            self.port
        )
    }

    /// The URL of the relay's own STUN server (same host, UDP `port`).
    pub fn stun_url(&self, port: u16) -> String {
        if self.host_proto() == "ip6" {
            format!("stun:[{}]:{port}", self.host)
        } else {
            format!("stun:{}:{port}", self.host)
        }
    }
}

#[cfg(any(test, feature = "test-util"))]
impl RelayInfo {
    /// A fixed `/api/info` with every field set (the relay's STUN port and
    /// one TURN server with credentials), for tests and fuzz seeds (feature
    /// `test-util`).
    pub fn example() -> Self {
        Self {
            peer_id: "12D3KooW".into(),
            p2p_path: P2P_PATH.into(),
            stun_port: Some(3478),
            ice_servers: vec![IceServer {
                urls: vec!["turn:turn.example:3478?transport=udp".into()],
                username: Some("u".into()),
                credential: Some("p".into()),
            }],
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/8080/ws".into()],
            version: "0.1.0".into(),
        }
    }
}

impl RelayInfo {
    /// The ICE servers a page on `origin` should use: the relay's STUN
    /// first, then the operator's.
    pub fn ice_servers_for(&self, origin: &Origin) -> Vec<IceServer> {
        let own = self.stun_port.map(|port| IceServer {
            urls: vec![origin.stun_url(port)],
            username: None,
            credential: None,
        });
        own.into_iter()
            .chain(self.ice_servers.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_json_is_camel_case() {
        let json = serde_json::to_string(&RelayInfo::example()).expect("serialize");
        assert_eq!(
            json,
            r#"{"peerId":"12D3KooW","p2pPath":"/p2p","stunPort":3478,"iceServers":[{"urls":["turn:turn.example:3478?transport=udp"],"username":"u","credential":"p"}],"listenAddrs":["/ip4/127.0.0.1/tcp/8080/ws"],"version":"0.1.0"}"#
        );
        let back: RelayInfo = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, RelayInfo::example());
    }

    #[test]
    fn origin_parses_browser_url_parts() {
        let o = Origin::new("https:", "shoal.example", "").expect("origin");
        assert_eq!(
            o,
            Origin {
                secure: true,
                host: "shoal.example".into(),
                port: 443
            }
        );
        let o = Origin::new("http:", "[::1]", "8080").expect("origin");
        assert_eq!(
            o,
            Origin {
                secure: false,
                host: "::1".into(),
                port: 8080
            }
        );
        assert_eq!(Origin::new("http:", "h", "").expect("origin").port, 80);
        assert_eq!(
            Origin::new("ftp:", "h", ""),
            Err(OriginError::Scheme("ftp:".into()))
        );
        assert_eq!(Origin::new("http:", "", ""), Err(OriginError::NoHost));
        assert_eq!(
            Origin::new("http:", "h", "99999"),
            Err(OriginError::Port("99999".into()))
        );
    }

    #[test]
    fn dial_addr_follows_scheme_and_host_kind() {
        let http = Origin::new("http:", "127.0.0.1", "9").expect("origin");
        assert_eq!(
            http.relay_multiaddr("/p2p", "P"),
            "/ip4/127.0.0.1/tcp/9/x-parity-ws/%2Fp2p/p2p/P"
        );
        let v6 = Origin::new("https:", "[::1]", "9").expect("origin");
        assert_eq!(
            v6.relay_multiaddr("/p2p", "P"),
            "/ip6/::1/tcp/9/x-parity-wss/%2Fp2p/p2p/P"
        );
        let dns = Origin::new("https:", "shoal.example", "").expect("origin");
        assert_eq!(
            dns.relay_multiaddr("/a/b%", "P"),
            "/dns/shoal.example/tcp/443/x-parity-wss/%2Fa%2Fb%25/p2p/P"
        );
    }

    #[test]
    fn relay_stun_comes_first_on_the_page_host() {
        let o = Origin::new("https:", "shoal.example", "").expect("origin");
        let servers = RelayInfo::example().ice_servers_for(&o);
        assert_eq!(servers[0].urls, vec!["stun:shoal.example:3478".to_string()]);
        assert_eq!(servers[1], RelayInfo::example().ice_servers[0]);
        let v6 = Origin::new("http:", "[2001:db8::1]", "8080").expect("origin");
        assert_eq!(
            RelayInfo::example().ice_servers_for(&v6)[0].urls,
            vec!["stun:[2001:db8::1]:3478".to_string()]
        );
        let off = RelayInfo {
            stun_port: None,
            ice_servers: vec![],
            ..RelayInfo::example()
        };
        assert!(off.ice_servers_for(&o).is_empty());
    }
}
