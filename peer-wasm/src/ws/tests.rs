//! The WebSocket transport against the browser's `WebSocket`
//! (`make wasm-unit`). What it exists for: a dial whose socket never opens
//! must end with an error, not stay pending (see the module docs). The page's
//! own HTTP server (wasm-bindgen-test-runner's) stands in for a relay that
//! answers without upgrading; no WebSocket server is needed.
//!
//! Not covered here: reads, writes and `flush` on an open socket, which need
//! a WebSocket server the test page can find (the end-to-end tests use the
//! real relay for that).

use libp2p::core::{
    transport::{DialOpts, PortUse, TransportError},
    Endpoint, Multiaddr, Transport as _,
};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{Error, Transport};

fn dialer() -> DialOpts {
    DialOpts {
        role: Endpoint::Dialer,
        port_use: PortUse::New,
    }
}

/// The test page's own HTTP server (it answers, but never upgrades): its
/// host, port and `ws` multiaddr.
fn test_server() -> (String, String, Multiaddr) {
    let location = web_sys::window().unwrap().location();
    let host = location.hostname().unwrap();
    let port = location.port().unwrap();
    let addr = format!("/ip4/{host}/tcp/{port}/ws").parse().unwrap();
    (host, port, addr)
}

#[wasm_bindgen_test]
async fn a_dial_to_a_server_that_does_not_upgrade_fails_instead_of_hanging() {
    let (host, port, addr) = test_server();

    let dial = Transport::default().dial(addr, dialer()).unwrap();
    match dial.await {
        // The browser fails the handshake (an HTTP answer, not 101) with
        // an abnormal close.
        Err(Error::Refused { url, code }) => {
            assert_eq!(url, format!("ws://{host}:{port}/"));
            assert_eq!(code, 1006);
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a WebSocket opened to a plain HTTP server"),
    }
}

#[wasm_bindgen_test]
fn addresses_it_cannot_dial_are_refused_at_once() {
    for addr in [
        "/ip4/127.0.0.1/tcp/8080",
        "/ip4/127.0.0.1/udp/8080/quic-v1",
        "/dns/example.invalid/tcp/443/tls/http",
    ] {
        let addr: Multiaddr = addr.parse().unwrap();
        assert!(
            matches!(
                Transport::default().dial(addr.clone(), dialer()),
                Err(TransportError::MultiaddrNotSupported(_))
            ),
            "{addr} was dialed"
        );
    }
    // Dial only: listening and dialing as the listener are refused.
    let ws: Multiaddr = "/ip4/127.0.0.1/tcp/8080/ws".parse().unwrap();
    let listener = DialOpts {
        role: Endpoint::Listener,
        port_use: PortUse::New,
    };
    assert!(Transport::default().dial(ws.clone(), listener).is_err());
    assert!(Transport::default()
        .listen_on(libp2p::core::transport::ListenerId::next(), ws)
        .is_err());
}

#[wasm_bindgen_test]
fn websocket_urls_keep_scheme_host_port_and_path() {
    use super::websocket_url;
    let url = |addr: &str| websocket_url(&addr.parse().unwrap());
    assert_eq!(
        url("/ip4/127.0.0.1/tcp/8080/ws").as_deref(),
        Some("ws://127.0.0.1:8080/")
    );
    assert_eq!(
        url("/dns4/relay.example/tcp/443/tls/ws/p2p/12D3KooWLRPJAA5o6Z6ZGBqnqZyTbCfnLVV6u7mB2sVtGgMCxs3f")
            .as_deref(),
        Some("wss://relay.example:443/")
    );
    assert_eq!(url("/ip6/::1/tcp/1/wss").as_deref(), Some("wss://[::1]:1/"));
    assert_eq!(
        url("/dns/relay.example/tcp/443/x-parity-wss/%2Fp2p").as_deref(),
        Some("wss://relay.example:443/p2p")
    );
    assert_eq!(url("/ip4/127.0.0.1/udp/1/ws"), None);
}

#[wasm_bindgen_test]
fn the_relay_address_is_the_one_the_relay_info_describes() {
    use shoal_proto::info::Origin;

    let relay = libp2p::PeerId::random();
    for (protocol, host, port, path) in [
        ("http:", "127.0.0.1", "9", "/p2p"),
        ("https:", "[::1]", "9", "/p2p"),
        ("https:", "shoal.example", "", "/a/b%"),
    ] {
        let origin = Origin::new(protocol, host, port).unwrap();
        let text = origin.relay_multiaddr(path, &relay.to_string());
        assert_eq!(super::relay_addr(&origin, path, relay).to_string(), text);
        assert_eq!(
            text.parse::<Multiaddr>().unwrap(),
            super::relay_addr(&origin, path, relay)
        );
    }
}

#[wasm_bindgen_test]
async fn an_early_socket_is_taken_over_only_by_a_dial_to_its_url() {
    let (host, port, addr) = test_server();

    // Its URL: the dial goes through it. The test server does not upgrade, so
    // the dial fails as a socket of its own would, through the socket's events.
    let early = web_sys::WebSocket::new(&format!("ws://{host}:{port}")).unwrap();
    let dial = Transport::with_early_socket(Some(early.clone()))
        .dial(addr.clone(), dialer())
        .unwrap();
    assert!(matches!(dial.await, Err(Error::Refused { code: 1006, .. })));
    // Taken over: the transport set it up (a fresh socket's binaryType is "blob").
    assert_eq!(early.binary_type(), web_sys::BinaryType::Arraybuffer);

    // Another URL: closed at once, and the dial opens its own.
    let elsewhere = web_sys::WebSocket::new(&format!("ws://{host}:{port}/other")).unwrap();
    let dial = Transport::with_early_socket(Some(elsewhere.clone()))
        .dial(addr.clone(), dialer())
        .unwrap();
    assert_eq!(elsewhere.ready_state(), web_sys::WebSocket::CLOSING);
    assert!(matches!(dial.await, Err(Error::Refused { code: 1006, .. })));
    assert_eq!(elsewhere.binary_type(), web_sys::BinaryType::Blob);

    // Taken over, then the dial dropped before it ran: closed with it.
    let dropped = web_sys::WebSocket::new(&format!("ws://{host}:{port}")).unwrap();
    drop(
        Transport::with_early_socket(Some(dropped.clone()))
            .dial(addr.clone(), dialer())
            .unwrap(),
    );
    assert_eq!(dropped.ready_state(), web_sys::WebSocket::CLOSING);

    // Never dialed: closed with the transport.
    let unused = web_sys::WebSocket::new(&format!("ws://{host}:{port}")).unwrap();
    drop(Transport::with_early_socket(Some(unused.clone())));
    assert_eq!(unused.ready_state(), web_sys::WebSocket::CLOSING);
}

#[wasm_bindgen_test]
fn websocket_urls_compare_as_the_browser_serializes_them() {
    use super::same_url;
    assert!(same_url(
        "wss://relay.example:443/p2p",
        "wss://relay.example/p2p"
    ));
    assert!(same_url("ws://127.0.0.1:80/", "ws://127.0.0.1/"));
    assert!(same_url("ws://[::1]:9/p2p", "ws://[0:0:0:0:0:0:0:1]:9/p2p"));
    assert!(!same_url(
        "ws://relay.example/p2p",
        "wss://relay.example/p2p"
    ));
    assert!(!same_url(
        "ws://relay.example/p2p",
        "ws://relay.example/other"
    ));
    assert!(!same_url("not a url", "not a url"));
}
