//! `/api/info` as the peer reads it: [`RelayInfo`] from JSON (the page gets
//! the same serde shape through `serde_wasm_bindgen`), then what the peer
//! derives from it with the page's [`Origin`]: the relay's multiaddr and
//! the ICE servers.

use shoal_proto::info::{Origin, RelayInfo};

/// Origins the checks combine with each decoded document.
const ORIGINS: &[(&str, &str, &str)] = &[
    ("https:", "shoal.example", ""),
    ("http:", "127.0.0.1", "8080"),
    ("http:", "[::1]", "9"),
];

pub fn check(data: &[u8]) {
    if let Ok(info) = serde_json::from_slice::<RelayInfo>(data) {
        // JSON → value → JSON → value is the identity.
        let json = serde_json::to_vec(&info).expect("serializes");
        let back: RelayInfo = serde_json::from_slice(&json).expect("reads its own JSON");
        assert_eq!(back, info);

        for &(protocol, host, port) in ORIGINS {
            let origin = Origin::new(protocol, host, port).expect("a valid origin");
            check_derived(&info, &origin);
        }
    }

    // The input as the parts of the page's URL (protocol, hostname, port,
    // one per line), as the browser's URL reports them.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut parts = text.splitn(3, '\n');
        let (protocol, host, port) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if let Ok(origin) = Origin::new(protocol, host, port) {
            assert!(protocol == "http:" || protocol == "https:");
            assert_eq!(origin.secure, protocol == "https:");
            assert!(!origin.host.is_empty());
            let info = RelayInfo {
                peer_id: "12D3KooWPeer".into(),
                p2p_path: "/p2p".into(),
                stun_port: Some(3478),
                ice_servers: Vec::new(),
                listen_addrs: Vec::new(),
                version: "0".into(),
            };
            check_derived(&info, &origin);
        }
    }
}

fn check_derived(info: &RelayInfo, origin: &Origin) {
    let addr = origin.relay_multiaddr(&info.p2p_path, &info.peer_id);
    // The path is one multiaddr component however many slashes it has.
    let tail = format!("/p2p/{}", info.peer_id);
    assert!(addr.ends_with(&tail), "{addr}");
    let path = addr[..addr.len() - tail.len()]
        .rsplit('/')
        .next()
        .expect("a path component");
    assert_eq!(
        path.replace("%2F", "/").replace("%25", "%"),
        info.p2p_path,
        "{addr}"
    );

    let servers = info.ice_servers_for(origin);
    let own = usize::from(info.stun_port.is_some());
    assert_eq!(servers.len(), own + info.ice_servers.len());
    assert_eq!(&servers[own..], &info.ice_servers[..]);
    if let Some(port) = info.stun_port {
        assert_eq!(servers[0].urls, vec![origin.stun_url(port)]);
        assert!(servers[0].username.is_none() && servers[0].credential.is_none());
    }
}
