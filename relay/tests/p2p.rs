//! Two native libp2p clients do what the browsers do: dial the relay over
//! `/ws`, reserve a relayed address, register / discover it at the rendezvous
//! server, and connect to each other through a circuit.

use libp2p::multiaddr::{Multiaddr, Protocol};
use libp2p::swarm::SwarmEvent;
use libp2p::{rendezvous, PeerId};

mod common;

use common::client::{client, until, ClientEvent};

const NAMESPACE: &str = "shoal/test";

#[tokio::test]
async fn browsers_reserve_register_discover_and_connect_through_circuit() {
    // The relay's info lines, shown with `--nocapture`.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("shoal_relay=info")
        .with_ansi(false)
        .with_test_writer()
        .try_init();
    let relay = common::start(&[]).await;
    let info = relay.info.clone();
    let relay_id: PeerId = info.peer_id.parse().expect("peer id");
    let relay_addr: Multiaddr = info.listen_addrs[0].parse().expect("multiaddr");

    // A: reserve a relayed address and register it.
    let mut a = client();
    let a_id = *a.local_peer_id();
    a.listen_on(relay_addr.clone().with(Protocol::P2pCircuit))
        .expect("listen via relay");
    let circuit_addr = until(&mut a, |e| match e {
        SwarmEvent::NewListenAddr { address, .. } => Some(address),
        _ => None,
    })
    .await;
    assert_eq!(
        circuit_addr,
        relay_addr
            .clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(a_id))
    );
    a.add_external_address(circuit_addr.clone());
    let ns = rendezvous::Namespace::from_static(NAMESPACE);
    // A foreign namespace is refused with the protocol's status code.
    a.behaviour_mut()
        .rendezvous
        .register(
            rendezvous::Namespace::from_static("not-shoal"),
            relay_id,
            None,
        )
        .expect("register");
    let error = until(&mut a, |e| match e {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(
            rendezvous::client::Event::RegisterFailed { error, .. },
        )) => Some(error),
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Registered {
            ..
        })) => panic!("a foreign namespace must be refused"),
        _ => None,
    })
    .await;
    assert_eq!(error, rendezvous::ErrorCode::InvalidNamespace);
    // libp2p's default TTL (2 h) is far beyond what the relay keeps: the
    // relay grants its longest instead.
    a.behaviour_mut()
        .rendezvous
        .register(ns.clone(), relay_id, None)
        .expect("register");
    let ttl = until(&mut a, |e| match e {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Registered {
            ttl,
            ..
        })) => Some(ttl),
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(
            rendezvous::client::Event::RegisterFailed { error, .. },
        )) => {
            panic!("register failed: {error:?}")
        }
        _ => None,
    })
    .await;
    assert_eq!(ttl, shoal_relay::limits::RENDEZVOUS_MAX_TTL);
    // The page's own TTL is granted as asked.
    a.behaviour_mut()
        .rendezvous
        .register(
            ns.clone(),
            relay_id,
            Some(shoal_proto::info::REGISTRATION_TTL_SECS),
        )
        .expect("register");
    let ttl = until(&mut a, |e| match e {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Registered {
            ttl,
            ..
        })) => Some(ttl),
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(
            rendezvous::client::Event::RegisterFailed { error, .. },
        )) => {
            panic!("register failed: {error:?}")
        }
        _ => None,
    })
    .await;
    assert_eq!(ttl, shoal_proto::info::REGISTRATION_TTL_SECS);

    // B: discover A and dial it through the circuit while A keeps running.
    // B comes in at /p2p, the path pages use; A came in at `/`.
    let mut b = client();
    let page_path: Multiaddr = relay_addr
        .iter()
        .map(|p| match p {
            Protocol::Ws(_) => Protocol::Ws(shoal_proto::info::P2P_PATH.into()),
            other => other,
        })
        .collect();
    assert!(
        page_path.to_string().contains("/x-parity-ws/%2Fp2p/"),
        "{page_path}"
    );
    b.dial(page_path).expect("dial relay");
    until(&mut b, |e| {
        matches!(e, SwarmEvent::ConnectionEstablished { .. }).then_some(())
    })
    .await;
    b.behaviour_mut()
        .rendezvous
        .discover(Some(ns), None, None, relay_id);
    let found = until(&mut b, |e| match e {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Discovered {
            registrations,
            ..
        })) => Some(registrations),
        _ => None,
    })
    .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].record.peer_id(), a_id);
    assert_eq!(
        found[0].record.addresses(),
        std::slice::from_ref(&circuit_addr)
    );

    b.dial(circuit_addr).expect("dial A via relay");
    let a_task = tokio::spawn(async move {
        until(&mut a, |e| match e {
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } if peer_id != relay_id => Some(endpoint.is_relayed()),
            _ => None,
        })
        .await
    });
    let relayed = until(&mut b, |e| match e {
        SwarmEvent::ConnectionEstablished {
            peer_id, endpoint, ..
        } if peer_id == a_id => Some(endpoint.is_relayed()),
        SwarmEvent::OutgoingConnectionError {
            peer_id: Some(p),
            error,
            ..
        } if p == a_id => {
            panic!("dial through circuit failed: {error}")
        }
        _ => None,
    })
    .await;
    assert!(relayed);
    assert!(a_task.await.expect("A task"));

    relay.stop().await;
}

/// `GET path` over a plain TCP socket; the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn total_bandwidth_cap_slows_but_serves() {
    // 512 B/s: less than a client's handshake, identify, reservation and
    // registration take (about 1.3 KiB).
    let relay = common::start(&["--max-relay-bytes-per-sec", "512"]).await;
    let relay_id: PeerId = relay.info.peer_id.parse().expect("peer id");
    let relay_addr: Multiaddr = relay.info.listen_addrs[0].parse().expect("multiaddr");
    let text = http_get(relay.addr, "/metrics").await;
    assert_eq!(
        metric(&text, "shoal_relay_bandwidth_limit_bytes_per_second "),
        512
    );
    let mut a = client();
    a.listen_on(relay_addr.with(Protocol::P2pCircuit))
        .expect("listen via relay");
    // The reservation still comes, only later.
    until(&mut a, |e| match e {
        SwarmEvent::NewListenAddr { .. } => Some(()),
        _ => None,
    })
    .await;
    a.behaviour_mut()
        .rendezvous
        .register(
            rendezvous::Namespace::from_static(NAMESPACE),
            relay_id,
            None,
        )
        .expect("register");
    until(&mut a, |e| match e {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Registered {
            ..
        })) => Some(()),
        _ => None,
    })
    .await;
    let text = http_get(relay.addr, "/metrics").await;
    let bytes_in = metric(
        &text,
        "shoal_relay_websocket_bytes_total{direction=\"in\"} ",
    );
    let waits = metric(&text, "shoal_relay_bandwidth_waits_total ");
    assert!(bytes_in > 512, "more than the burst went in: {bytes_in}");
    assert!(waits > 0, "the cap made reads wait: {text}");
    relay.stop().await;
}
