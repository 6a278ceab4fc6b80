//! Property tests of `/api/info` as the peer reads it (`shoal_proto::info`):
//! the JSON round-trips, arbitrary bytes are refused without a panic, and
//! what the peer derives from the page's origin keeps its shape. Public API
//! only; the fuzz target `relay_info` (fuzz/) checks the same on mutated input.

use proptest::prelude::*;
use shoal_proto::info::{IceServer, Origin, OriginError, RelayInfo};

fn arb_ice_server() -> impl Strategy<Value = IceServer> {
    (
        proptest::collection::vec(".{0,40}", 0..3),
        proptest::option::of(".{0,20}"),
        proptest::option::of(".{0,20}"),
    )
        .prop_map(|(urls, username, credential)| IceServer {
            urls,
            username,
            credential,
        })
}

fn arb_info() -> impl Strategy<Value = RelayInfo> {
    (
        ".{0,60}",
        ".{0,30}",
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(arb_ice_server(), 0..3),
        proptest::collection::vec(".{0,40}", 0..3),
        ".{0,10}",
    )
        .prop_map(
            |(peer_id, p2p_path, stun_port, ice_servers, listen_addrs, version)| RelayInfo {
                peer_id,
                p2p_path,
                stun_port,
                ice_servers,
                listen_addrs,
                version,
            },
        )
}

/// Undoes the percent-encoding `relay_multiaddr` applies to the path.
fn unescape(component: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = component;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3)? {
            "%25" => out.push('%'),
            "%2F" => out.push('/'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

proptest! {
    #[test]
    fn info_json_round_trips(info in arb_info()) {
        let json = serde_json::to_vec(&info).expect("serialize");
        let back: RelayInfo = serde_json::from_slice(&json).expect("deserialize");
        prop_assert_eq!(back, info);
    }

    #[test]
    fn arbitrary_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = serde_json::from_slice::<RelayInfo>(&bytes);
    }

    #[test]
    fn origin_accepts_only_http_and_https(protocol in ".{0,8}", host in ".{0,30}", port in ".{0,8}") {
        match Origin::new(&protocol, &host, &port) {
            Ok(origin) => {
                prop_assert!(protocol == "http:" || protocol == "https:");
                prop_assert_eq!(origin.secure, protocol == "https:");
                prop_assert!(!origin.host.is_empty());
                prop_assert!(!origin.host.starts_with('[') && !origin.host.ends_with(']'));
                if port.is_empty() {
                    prop_assert_eq!(origin.port, if origin.secure { 443 } else { 80 });
                } else {
                    prop_assert_eq!(Ok(origin.port), port.parse::<u16>());
                }
            }
            Err(OriginError::Scheme(s)) => prop_assert_eq!(s, protocol),
            Err(OriginError::NoHost) => {}
            Err(OriginError::Port(p)) => prop_assert_eq!(p, port),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn the_path_is_one_multiaddr_component(
        secure in any::<bool>(),
        host in "[a-z0-9.-]{1,20}",
        port in any::<u16>(),
        path in ".{0,40}",
        peer in "[1-9A-HJ-NP-Za-km-z]{1,52}",
    ) {
        let protocol = if secure { "https:" } else { "http:" };
        let origin = Origin::new(protocol, &host, &port.to_string()).expect("origin");
        let addr = origin.relay_multiaddr(&path, &peer);
        let parts: Vec<&str> = addr.split('/').collect();
        // "", proto, host, "tcp", port, ws, path, "p2p", peer
        prop_assert_eq!(parts.len(), 9, "{}", addr);
        prop_assert_eq!(parts[3], "tcp");
        prop_assert_eq!(parts[4], port.to_string());
        prop_assert_eq!(parts[5], if secure { "x-parity-wss" } else { "x-parity-ws" });
        prop_assert_eq!(unescape(parts[6]), Some(path));
        prop_assert_eq!(parts[8], peer);
    }

    #[test]
    fn own_stun_comes_first(info in arb_info(), v6 in any::<bool>()) {
        let host = if v6 { "[2001:db8::1]" } else { "shoal.example" };
        let origin = Origin::new("https:", host, "").expect("origin");
        let servers = info.ice_servers_for(&origin);
        let own = usize::from(info.stun_port.is_some());
        prop_assert_eq!(&servers[own..], &info.ice_servers[..]);
        if let Some(port) = info.stun_port {
            let want = if v6 {
                format!("stun:[2001:db8::1]:{port}")
            } else {
                format!("stun:shoal.example:{port}")
            };
            prop_assert_eq!(&servers[0].urls, &vec![want]);
        }
    }
}
