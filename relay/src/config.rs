//! Command-line configuration (clap).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use libp2p::multiaddr::{Multiaddr, Protocol};

/// Where the static page lives when `--www` is not given and `./www` does not
/// exist: the repository's `www/`, so `cargo run -p shoal-relay` works from
/// any directory of a checkout.
const REPO_WWW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");

/// The shoal relay: serves the page, lets browsers reserve relay circuits and
/// find each other (rendezvous), and relays their traffic when no direct
/// WebRTC path exists.
#[derive(Debug, Clone, Parser)]
#[command(name = "relay", version)]
pub struct Config {
    /// HTTP listen address (page, /api/info, /healthz). Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// libp2p WebSocket listen address, as `IP:PORT` or a multiaddr ending in
    /// `/ws`. Default: the IP of --listen, port 0 (the page learns the port
    /// from /api/info).
    #[arg(long, value_name = "ADDR", value_parser = parse_p2p_listen)]
    pub p2p_listen: Option<Multiaddr>,

    /// Extra address to announce in relay reservations, e.g. the public
    /// `/dns4/relay.example/tcp/443/wss` in front of a reverse proxy.
    /// Repeatable. The listen addresses are always announced.
    #[arg(long = "external-addr", value_name = "MULTIADDR")]
    pub external_addrs: Vec<Multiaddr>,

    /// ed25519 key file (libp2p protobuf encoding); created with mode 0600 on
    /// first run so the PeerId survives restarts.
    #[arg(long, value_name = "PATH", default_value = "relay.key")]
    pub identity: PathBuf,

    /// Directory with the static page. Default: `./www`, else the
    /// repository's `www/`.
    #[arg(long, value_name = "DIR")]
    pub www: Option<PathBuf>,

    #[command(flatten)]
    pub limits: Limits,
}

/// Relay-server limits. Relayed connections are the fallback when browsers
/// cannot connect directly and carry whole files, so the defaults are far
/// above libp2p's (2 min / 128 KiB per circuit).
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Longest a relayed connection may live, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    pub max_circuit_duration_secs: u64,

    /// Most bytes a relayed connection may carry (both directions).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_circuit_bytes: u64,

    /// Most peers holding a reservation (a relayed address) at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_reservations: usize,

    /// Most relayed connections open at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_circuits: usize,

    /// Most relayed connections one peer may have open at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_circuits_per_peer: usize,
}

impl Limits {
    pub fn max_circuit_duration(&self) -> Duration {
        Duration::from_secs(self.max_circuit_duration_secs)
    }
}

impl Config {
    /// The libp2p listen address: `--p2p-listen`, or the `--listen` IP with
    /// an OS-chosen port.
    pub fn p2p_listen_addr(&self) -> Multiaddr {
        self.p2p_listen
            .clone()
            .unwrap_or_else(|| ws_multiaddr(SocketAddr::new(self.listen.ip(), 0)))
    }

    /// The directory the page is served from (see `--www`).
    pub fn www_dir(&self) -> PathBuf {
        if let Some(dir) = &self.www {
            return dir.clone();
        }
        let local = PathBuf::from("www");
        if local.is_dir() {
            local
        } else {
            PathBuf::from(REPO_WWW)
        }
    }
}

/// `/ip4|ip6/<ip>/tcp/<port>/ws`
pub fn ws_multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty()
        .with(ip)
        .with(Protocol::Tcp(addr.port()))
        .with(Protocol::Ws("/".into()))
}

fn parse_p2p_listen(s: &str) -> Result<Multiaddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(ws_multiaddr(addr));
    }
    let addr: Multiaddr = s
        .parse()
        .map_err(|e| format!("neither IP:PORT nor a multiaddr: {e}"))?;
    if !addr.iter().any(|p| matches!(p, Protocol::Ws(_))) {
        return Err(
            "the multiaddr must contain /ws: browsers reach the relay over WebSocket".into(),
        );
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("relay").chain(args.iter().copied()))
            .expect("valid arguments")
    }

    #[test]
    fn defaults() {
        let c = parse(&[]);
        assert_eq!(c.listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(c.p2p_listen_addr().to_string(), "/ip4/127.0.0.1/tcp/0/ws");
        assert_eq!(c.identity, PathBuf::from("relay.key"));
        assert!(c.external_addrs.is_empty());
        assert_eq!(c.limits.max_circuit_duration(), Duration::from_secs(3600));
        assert_eq!(c.limits.max_circuit_bytes, 1 << 30);
        assert!(c.limits.max_reservations >= 128);
        assert!(c.limits.max_circuits >= 16);
    }

    #[test]
    fn p2p_default_follows_listen_ip() {
        let c = parse(&["--listen", "0.0.0.0:0"]);
        assert_eq!(c.p2p_listen_addr().to_string(), "/ip4/0.0.0.0/tcp/0/ws");
        let c = parse(&["--listen", "[::1]:9000"]);
        assert_eq!(c.p2p_listen_addr().to_string(), "/ip6/::1/tcp/0/ws");
    }

    #[test]
    fn p2p_listen_accepts_socket_addr_or_multiaddr() {
        let c = parse(&["--p2p-listen", "10.0.0.1:4001"]);
        assert_eq!(c.p2p_listen_addr().to_string(), "/ip4/10.0.0.1/tcp/4001/ws");
        let c = parse(&["--p2p-listen", "/ip4/0.0.0.0/tcp/4002/ws"]);
        assert_eq!(c.p2p_listen_addr().to_string(), "/ip4/0.0.0.0/tcp/4002/ws");
        assert!(Config::try_parse_from(["relay", "--p2p-listen", "/ip4/0.0.0.0/tcp/1"]).is_err());
        assert!(Config::try_parse_from(["relay", "--p2p-listen", "nonsense"]).is_err());
    }

    #[test]
    fn limits_and_paths() {
        let c = parse(&[
            "--identity",
            "/tmp/k",
            "--www",
            "/srv/www",
            "--max-circuit-duration-secs",
            "60",
            "--max-circuit-bytes",
            "1000",
            "--max-reservations",
            "5",
            "--max-circuits",
            "6",
            "--max-circuits-per-peer",
            "2",
            "--external-addr",
            "/dns4/relay.example/tcp/443/wss",
        ]);
        assert_eq!(c.identity, PathBuf::from("/tmp/k"));
        assert_eq!(c.www_dir(), PathBuf::from("/srv/www"));
        assert_eq!(c.limits.max_circuit_duration(), Duration::from_secs(60));
        assert_eq!(c.limits.max_circuit_bytes, 1000);
        assert_eq!(
            (
                c.limits.max_reservations,
                c.limits.max_circuits,
                c.limits.max_circuits_per_peer
            ),
            (5, 6, 2)
        );
        assert_eq!(c.external_addrs.len(), 1);
        // libp2p panics on circuit durations above u32::MAX seconds.
        let too_long = (u64::from(u32::MAX) + 1).to_string();
        assert!(
            Config::try_parse_from(["relay", "--max-circuit-duration-secs", &too_long]).is_err()
        );
    }

    #[test]
    fn www_falls_back_to_repo_dir() {
        let c = parse(&[]);
        let dir = c.www_dir();
        assert!(dir.as_path() == Path::new("www") || dir.as_path() == Path::new(REPO_WWW));
    }
}
