//! Configuration: command line, an optional config file, environment (clap).
//!
//! Precedence: a flag on the command line, then the config file
//! (`--config`), then the flag's `SHOAL_*` environment variable, then the
//! default. The file holds one `flag = value` per line (the flag's name
//! without `--`; `#` starts a comment; a list flag may repeat); it is read as
//! if its flags came first on the command line.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;
use libp2p::multiaddr::{Multiaddr, Protocol};
use shoal_proto::info::IceServer;

/// Where the static page lives when `--www` is not given and `./www` does not
/// exist: the repository's `www/`, so `cargo run -p shoal-relay` works from
/// any directory of a checkout.
const REPO_WWW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");

/// The shoal relay: serves the page, lets browsers reserve relay circuits and
/// find each other (rendezvous), and relays their traffic when no direct
/// WebRTC path exists.
///
/// One TCP port carries the page, /api/info, /healthz, /metrics and the
/// peers' libp2p WebSocket (/p2p); STUN answers on a UDP port. Every flag can
/// also be set by the environment variable shown with it (a flag wins over
/// its variable; lists in a variable are comma-separated). All limits are
/// logged at start-up.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "relay",
    version,
    args_override_self = true,
    after_long_help = "Fixed limits on what clients send (WebSocket message size, handshake \
                       timeouts, rendezvous record size, ...) are not flags; they are \
                       logged at start-up and listed with their reasons in relay/src/limits.rs \
                       and in the README's self-hosting section, with the metric for each.\n\n\
                       Logs: RUST_LOG (default shoal_relay=info,relay=info); addresses, swarms \
                       and PeerIds are logged at debug only."
)]
pub struct Config {
    /// Config file: `flag = value` lines, e.g. `max-connections = 5000`
    /// (see the README). Flags on the command line win over it, and it wins
    /// over environment variables.
    #[arg(long, value_name = "FILE", env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,

    /// The one listen address: the page, /api/info, /healthz and the peers'
    /// libp2p WebSocket (at /p2p). Port 0 picks a free port.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "SHOAL_LISTEN"
    )]
    pub listen: SocketAddr,

    /// ed25519 key file (libp2p protobuf encoding); created with mode 0600 on
    /// first run so the PeerId survives restarts.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "relay.key",
        env = "SHOAL_IDENTITY"
    )]
    pub identity: PathBuf,

    /// Directory with the static page. Default: `./www`, else the
    /// repository's `www/`.
    #[arg(long, value_name = "DIR", env = "SHOAL_WWW")]
    pub www: Option<PathBuf>,

    /// Extra address to announce in relay reservations, e.g. the public
    /// `/dns4/relay.example/tcp/443/wss` in front of a reverse proxy.
    /// Repeatable. The listen addresses are always announced.
    #[arg(
        long = "external-addr",
        value_name = "MULTIADDR",
        env = "SHOAL_EXTERNAL_ADDR",
        value_delimiter = ','
    )]
    pub external_addrs: Vec<Multiaddr>,

    /// Believe `X-Forwarded-For` from these proxies (IP or CIDR network,
    /// repeatable), e.g. `127.0.0.1` when nginx on this host forwards to the
    /// relay. From anyone else the header is ignored.
    #[arg(long = "trusted-proxy", value_name = "NET", value_parser = parse_net, env = "SHOAL_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub ice: IceArgs,

    #[command(flatten)]
    pub limits: Limits,
}

/// HTTPS: certificate files, or automatic certificates over ACME.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "HTTPS (certificate files or ACME)")]
pub struct TlsArgs {
    /// PEM certificate chain: serve HTTPS (and wss) with it. Needs --tls-key.
    #[arg(
        long,
        value_name = "PEM",
        requires = "tls_key",
        conflicts_with = "acme_domains",
        env = "SHOAL_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert", env = "SHOAL_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Get certificates for this domain over ACME (TLS-ALPN-01 on --listen,
    /// which must be reachable on port 443 under that name); repeatable.
    #[arg(
        long = "acme-domain",
        value_name = "NAME",
        env = "SHOAL_ACME_DOMAIN",
        value_delimiter = ','
    )]
    pub acme_domains: Vec<String>,

    /// Contact for the ACME account, e.g. `mailto:ops@example.org`.
    #[arg(
        long,
        value_name = "URI",
        requires = "acme_domains",
        env = "SHOAL_ACME_CONTACT"
    )]
    pub acme_contact: Option<String>,

    /// Where ACME account keys and certificates are kept across restarts.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "acme-cache",
        env = "SHOAL_ACME_CACHE"
    )]
    pub acme_cache: PathBuf,

    /// ACME directory URL. Default: Let's Encrypt (production).
    #[arg(long, value_name = "URL", default_value = LETS_ENCRYPT, env = "SHOAL_ACME_DIRECTORY")]
    pub acme_directory: String,

    /// Extra PEM root certificate to trust for the ACME directory's own
    /// HTTPS (a private or test ACME server such as pebble).
    #[arg(
        long,
        value_name = "PEM",
        requires = "acme_domains",
        env = "SHOAL_ACME_DIRECTORY_CA"
    )]
    pub acme_directory_ca: Option<PathBuf>,
}

/// Let's Encrypt's production ACME directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// ICE servers for the pages: the relay's own STUN and the operator's.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "STUN and ICE servers for the pages")]
pub struct IceArgs {
    /// UDP address of the built-in STUN server. Default: the IP of --listen,
    /// port 3478.
    #[arg(
        long,
        value_name = "ADDR",
        conflicts_with = "no_stun",
        env = "SHOAL_STUN_LISTEN"
    )]
    pub stun_listen: Option<SocketAddr>,

    /// Turn the built-in STUN server off (then configure --ice-server, or
    /// browsers behind NATs will rarely connect directly).
    #[arg(long, env = "SHOAL_NO_STUN")]
    pub no_stun: bool,

    /// A further STUN or TURN server for the pages (`stun:`, `stuns:`,
    /// `turn:` or `turns:` URL), e.g. a coturn you already run; repeatable.
    #[arg(long = "ice-server", value_name = "URL", value_parser = parse_ice_url, env = "SHOAL_ICE_SERVER", value_delimiter = ',')]
    pub ice_servers: Vec<String>,

    /// Username for the `turn:`/`turns:` servers of --ice-server.
    #[arg(
        long,
        value_name = "NAME",
        requires = "ice_credential",
        env = "SHOAL_ICE_USERNAME"
    )]
    pub ice_username: Option<String>,

    /// Credential for the `turn:`/`turns:` servers of --ice-server.
    #[arg(
        long,
        value_name = "SECRET",
        requires = "ice_username",
        env = "SHOAL_ICE_CREDENTIAL",
        hide_env_values = true
    )]
    pub ice_credential: Option<String>,
}

/// The built-in STUN server's default port (the IANA STUN port).
pub const STUN_PORT: u16 = 3478;

impl IceArgs {
    /// What `/api/info` lists besides the relay's own STUN.
    pub fn servers(&self) -> Vec<IceServer> {
        self.ice_servers
            .iter()
            .map(|url| {
                let turn = url.starts_with("turn");
                IceServer {
                    urls: vec![url.clone()],
                    username: self.ice_username.clone().filter(|_| turn),
                    credential: self.ice_credential.clone().filter(|_| turn),
                }
            })
            .collect()
    }
}

/// Relay-server limits. Relayed connections are the fallback when browsers
/// cannot connect directly and carry whole files, so the defaults are far
/// above libp2p's (2 min / 128 KiB per circuit).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Limits (what one relay serves)")]
pub struct Limits {
    /// Longest a relayed connection may live, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)),
        env = "SHOAL_MAX_CIRCUIT_DURATION_SECS")]
    pub max_circuit_duration_secs: u64,

    /// Most bytes a relayed connection may carry (both directions).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, env = "SHOAL_MAX_CIRCUIT_BYTES")]
    pub max_circuit_bytes: u64,

    /// Most peers holding a reservation (a relayed address) at once. Every
    /// open page holds one, so this matches the connection limit (the load
    /// benchmark stopped at 1,024 pages with the old default of 1,024).
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::limits::MAX_CONNECTIONS as usize,
        env = "SHOAL_MAX_RESERVATIONS"
    )]
    pub max_reservations: usize,

    /// Most relayed connections open at once. Signaling opens one per pair
    /// of pages that meet and closes it once they are direct; those left
    /// open are the NAT fallback, bounded in bytes and time each.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4096,
        env = "SHOAL_MAX_CIRCUITS"
    )]
    pub max_circuits: usize,

    /// Most relayed connections one peer may have open at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16,
        env = "SHOAL_MAX_CIRCUITS_PER_PEER"
    )]
    pub max_circuits_per_peer: usize,

    /// Total cap on bytes per second that peers send through the relay (all
    /// relayed circuits together, plus the little signaling and control
    /// traffic); connections over it are slowed, not dropped. 0: no cap.
    #[arg(long, value_name = "BYTES", default_value_t = crate::limits::MAX_RELAY_BYTES_PER_SEC, env = "SHOAL_MAX_RELAY_BYTES_PER_SEC")]
    pub max_relay_bytes_per_sec: u64,

    /// Most libp2p connections (pages) at once, in all; more are refused
    /// with WebSocket close code 1013 "the relay is full".
    #[arg(long, value_name = "N", default_value_t = crate::limits::MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..),
        env = "SHOAL_MAX_CONNECTIONS")]
    pub max_connections: u32,

    /// Most libp2p connections from one address (IPv6: one /64) at once;
    /// more are refused with close code 1013 "too many connections from
    /// your address". Behind a proxy, set --trusted-proxy too.
    #[arg(long, value_name = "N", default_value_t = crate::limits::MAX_CONNECTIONS_PER_IP,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        env = "SHOAL_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: usize,
}

impl Limits {
    pub fn max_circuit_duration(&self) -> Duration {
        Duration::from_secs(self.max_circuit_duration_secs)
    }
}

/// One line for the start-up log: every operator limit as `flag=value`.
impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max-connections={} max-connections-per-ip={} max-relay-bytes-per-sec={} \
             max-reservations={} max-circuits={} max-circuits-per-peer={} \
             max-circuit-duration-secs={} max-circuit-bytes={}",
            self.max_connections,
            self.max_connections_per_ip,
            self.max_relay_bytes_per_sec,
            self.max_reservations,
            self.max_circuits,
            self.max_circuits_per_peer,
            self.max_circuit_duration_secs,
            self.max_circuit_bytes,
        )
    }
}

impl Config {
    /// Where the built-in STUN server listens, if it runs.
    pub fn stun_addr(&self) -> Option<SocketAddr> {
        if self.ice.no_stun {
            return None;
        }
        Some(
            self.ice
                .stun_listen
                .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), STUN_PORT)),
        )
    }

    /// The addresses announced to clients besides the listen address:
    /// `--external-addr`, and for each `--acme-domain` its stock libp2p
    /// address `/dns/<domain>/tcp/<port>/tls/ws` (a name with a certificate
    /// is what clients on the internet can use).
    pub fn announced_addrs(&self, port: u16) -> Vec<Multiaddr> {
        let acme = self.tls.acme_domains.iter().map(|domain| {
            Multiaddr::empty()
                .with(Protocol::Dns(domain.clone().into()))
                .with(Protocol::Tcp(port))
                .with(Protocol::Tls)
                .with(Protocol::Ws("/".into()))
        });
        let mut addrs = self.external_addrs.clone();
        for addr in acme {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        addrs
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

/// The stock libp2p address of the relay's WebSocket, for clients that are
/// not pages: `/ip4|ip6/<ip>/tcp/<port>/ws` (or `/tls/ws`), the path `/`.
pub fn ws_multiaddr(addr: SocketAddr, tls: bool) -> Multiaddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    let base = Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()));
    let base = if tls { base.with(Protocol::Tls) } else { base };
    base.with(Protocol::Ws("/".into()))
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected `flag = value`, got {text:?}")]
    Syntax {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}:{line}: `config` cannot be set in a config file")]
    Nested { path: PathBuf, line: usize },
}

/// The command-line arguments a config file stands for (sans-IO).
pub fn config_file_args(path: &Path, text: &str) -> Result<Vec<String>, ConfigFileError> {
    let mut args = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let syntax = || ConfigFileError::Syntax {
            path: path.to_owned(),
            line: i + 1,
            text: raw.chars().take(80).collect(),
        };
        let (flag, value) = line.split_once('=').ok_or_else(syntax)?;
        let (flag, value) = (flag.trim(), value.trim().trim_matches('"'));
        let name_ok = flag.starts_with(|c: char| c.is_ascii_alphanumeric())
            && flag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !name_ok {
            return Err(syntax());
        }
        if flag == "config" {
            return Err(ConfigFileError::Nested {
                path: path.to_owned(),
                line: i + 1,
            });
        }
        match value {
            // Switches such as `no-stun = true`.
            "true" => args.push(format!("--{flag}")),
            "false" => {}
            _ => args.push(format!("--{flag}={value}")),
        }
    }
    Ok(args)
}

impl Config {
    /// The command line (`std::env::args_os`) with the config file it or
    /// `SHOAL_CONFIG` names. Clap errors (and `--help`) exit the process.
    pub fn load() -> Result<Self, ConfigFileError> {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let path =
            config_path(&args).or_else(|| std::env::var_os("SHOAL_CONFIG").map(PathBuf::from));
        let Some(path) = path else {
            return Ok(Self::parse_from(args));
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigFileError::Read {
            path: path.clone(),
            source,
        })?;
        let from_file = config_file_args(&path, &text)?;
        let mut all: Vec<std::ffi::OsString> = args.iter().take(1).cloned().collect();
        all.extend(from_file.into_iter().map(Into::into));
        all.extend(args.into_iter().skip(1));
        Ok(Self::parse_from(all))
    }
}

/// `--config PATH` or `--config=PATH` among raw arguments.
fn config_path(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let Some(arg) = arg.to_str() else {
            continue;
        };
        if arg == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    s.parse::<IpNet>()
        .map_err(|_| format!("{s:?} is neither an IP address nor a network such as 10.0.0.0/8"))
}

fn parse_ice_url(s: &str) -> Result<String, String> {
    const SCHEMES: [&str; 4] = ["stun:", "stuns:", "turn:", "turns:"];
    let ok = SCHEMES
        .iter()
        .any(|p| s.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
    if ok && !s.chars().any(char::is_whitespace) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a stun:, stuns:, turn: or turns: URL"))
    }
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
        assert_eq!(c.stun_addr(), Some("127.0.0.1:3478".parse().expect("addr")));
        assert_eq!(c.identity, PathBuf::from("relay.key"));
        assert!(c.external_addrs.is_empty());
        assert!(c.trusted_proxies.is_empty());
        assert!(c.tls.tls_cert.is_none() && c.tls.acme_domains.is_empty());
        assert!(c.ice.servers().is_empty());
        assert_eq!(c.limits.max_circuit_duration(), Duration::from_secs(3600));
        assert_eq!(c.limits.max_circuit_bytes, 1 << 30);
        assert!(c.limits.max_reservations >= 128);
        assert!(c.limits.max_circuits >= 16);
        assert_eq!(
            c.limits.max_relay_bytes_per_sec,
            crate::limits::MAX_RELAY_BYTES_PER_SEC
        );
        assert_eq!(c.limits.max_connections, crate::limits::MAX_CONNECTIONS);
        assert_eq!(
            c.limits.max_connections_per_ip,
            crate::limits::MAX_CONNECTIONS_PER_IP
        );
        assert!(Config::try_parse_from(["relay", "--max-connections-per-ip", "0"]).is_err());
        assert!(Config::try_parse_from(["relay", "--max-connections", "0"]).is_err());
    }

    #[test]
    fn stun_follows_listen_ip_or_is_off() {
        let c = parse(&["--listen", "[::1]:9000"]);
        assert_eq!(c.stun_addr(), Some("[::1]:3478".parse().expect("addr")));
        let c = parse(&["--stun-listen", "0.0.0.0:0"]);
        assert_eq!(c.stun_addr(), Some("0.0.0.0:0".parse().expect("addr")));
        assert_eq!(parse(&["--no-stun"]).stun_addr(), None);
        assert!(
            Config::try_parse_from(["relay", "--no-stun", "--stun-listen", "0.0.0.0:1"]).is_err()
        );
    }

    #[test]
    fn ice_servers_take_credentials_for_turn_only() {
        let c = parse(&[
            "--ice-server",
            "stun:stun.example:3478",
            "--ice-server",
            "turn:turn.example:3478?transport=udp",
            "--ice-username",
            "u",
            "--ice-credential",
            "p",
        ]);
        let servers = c.ice.servers();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].username, None);
        assert_eq!(servers[1].username.as_deref(), Some("u"));
        assert_eq!(servers[1].credential.as_deref(), Some("p"));
        for bad in ["http://x", "stun:", "turn:a b", ""] {
            assert!(
                Config::try_parse_from(["relay", "--ice-server", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Config::try_parse_from(["relay", "--ice-username", "u"]).is_err());
    }

    #[test]
    fn tls_flags_pair_up_and_exclude_acme() {
        let c = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        assert_eq!(c.tls.tls_cert, Some(PathBuf::from("c.pem")));
        assert!(Config::try_parse_from(["relay", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::try_parse_from(["relay", "--tls-key", "k.pem"]).is_err());
        assert!(Config::try_parse_from([
            "relay",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--acme-domain",
            "a.example"
        ])
        .is_err());
        let c = parse(&[
            "--acme-domain",
            "a.example",
            "--acme-contact",
            "mailto:x@a.example",
        ]);
        assert_eq!(c.tls.acme_domains, vec!["a.example".to_string()]);
        assert_eq!(c.tls.acme_directory, LETS_ENCRYPT);
        assert!(Config::try_parse_from(["relay", "--acme-contact", "mailto:x@a.example"]).is_err());
    }

    #[test]
    fn acme_domains_are_announced() {
        let c = parse(&[
            "--acme-domain",
            "shoal.example",
            "--external-addr",
            "/ip4/192.0.2.1/tcp/443/tls/ws",
        ]);
        let addrs: Vec<String> = c
            .announced_addrs(443)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            addrs,
            vec![
                "/ip4/192.0.2.1/tcp/443/tls/ws",
                "/dns/shoal.example/tcp/443/tls/ws"
            ]
        );
        assert!(parse(&[]).announced_addrs(443).is_empty());
    }

    #[test]
    fn trusted_proxies_take_ips_and_networks() {
        let c = parse(&[
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "10.0.0.0/8",
        ]);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.trusted_proxies[0].to_string(), "127.0.0.1/32");
        assert!(Config::try_parse_from(["relay", "--trusted-proxy", "nonsense"]).is_err());
    }

    #[test]
    fn stock_ws_address() {
        let a: SocketAddr = "10.0.0.1:443".parse().expect("addr");
        assert_eq!(
            ws_multiaddr(a, false).to_string(),
            "/ip4/10.0.0.1/tcp/443/ws"
        );
        assert_eq!(
            ws_multiaddr(a, true).to_string(),
            "/ip4/10.0.0.1/tcp/443/tls/ws"
        );
        assert!(Config::try_parse_from(["relay", "--p2p-listen", "127.0.0.1:1"]).is_err());
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
    fn config_file_lines_become_flags() {
        let path = Path::new("relay.conf");
        let text = "# a relay\nmax-connections = 5000\n\nno-stun = true\nexternal-addr = \"/dns4/a.example/tcp/443/wss\"\nexternal-addr=/dns4/b.example/tcp/443/wss # second\nmax-circuits = 10\n";
        let args = config_file_args(path, text).expect("valid file");
        assert_eq!(
            args,
            vec![
                "--max-connections=5000",
                "--no-stun",
                "--external-addr=/dns4/a.example/tcp/443/wss",
                "--external-addr=/dns4/b.example/tcp/443/wss",
                "--max-circuits=10",
            ]
        );
        // The file's flags come first; the command line wins.
        let mut all = vec!["relay".to_string()];
        all.extend(args);
        all.extend(["--max-circuits".into(), "20".into()]);
        let c = Config::try_parse_from(all).expect("parse");
        assert_eq!(c.limits.max_connections, 5000);
        assert_eq!(c.limits.max_circuits, 20);
        assert_eq!(c.external_addrs.len(), 2);
        assert_eq!(c.stun_addr(), None);
        for bad in [
            "max-connections 5000",
            "= 3",
            "--x = 1",
            "config = other.conf",
        ] {
            assert!(config_file_args(path, bad).is_err(), "{bad}");
        }
        let unknown = config_file_args(path, "no-such-flag = 1").expect("syntax is fine");
        assert!(
            Config::try_parse_from(std::iter::once("relay".to_string()).chain(unknown)).is_err()
        );
        assert_eq!(
            config_path(&["relay".into(), "--config".into(), "a.conf".into()]),
            Some(PathBuf::from("a.conf"))
        );
        assert_eq!(
            config_path(&["relay".into(), "--config=b.conf".into()]),
            Some(PathBuf::from("b.conf"))
        );
    }

    #[test]
    fn www_falls_back_to_repo_dir() {
        let c = parse(&[]);
        let dir = c.www_dir();
        assert!(dir.as_path() == Path::new("www") || dir.as_path() == Path::new(REPO_WWW));
    }
}
