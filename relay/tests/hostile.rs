//! Hostile clients against the real `relay` binary. Each case runs beside a
//! well-behaved pair of clients (A reserves a relayed address and registers,
//! B discovers A) and asserts that the pair is still served, that the
//! relay's resident memory stays under [`RSS_GROWTH_BOUND_KIB`] above what it
//! used before the attack, and that `/metrics` counts the refusals.
//!
//! No timing thresholds: waits are bounded only so that a broken relay fails
//! the test instead of hanging it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{rendezvous, Multiaddr, PeerId};

mod common;

use common::client;
use common::process::{self, metric, RelayProcess};

/// How much the relay's RSS may grow during one attack: 64 MiB. The relay's
/// own bounds are far below what each attack here can reach (a few hundred
/// connections, registrations of at most 2 KiB); an unbounded relay grows
/// past this within the same attack (a 200 MiB frame per socket, 1 MiB
/// records, registrations kept forever).
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;

const GOOD_NS: &str = "shoal/good";

fn relay_addr(relay: &RelayProcess) -> (PeerId, Multiaddr) {
    let id = relay.info.peer_id.parse().expect("peer id");
    let addr = relay.info.listen_addrs[0].parse().expect("multiaddr");
    (id, addr)
}

/// The well-behaved pair: A reserves and registers in `GOOD_NS`, B finds A.
/// Returns the background tasks that keep both connected.
async fn good_pair_is_served(relay: &RelayProcess) -> Vec<tokio::task::JoinHandle<()>> {
    let (relay_id, addr) = relay_addr(relay);
    let mut a = client::client();
    let a_id = *a.local_peer_id();
    client::connect(&mut a, &addr).await;
    client::reserve(&mut a, &addr).await;
    assert_eq!(
        client::register(&mut a, GOOD_NS, relay_id, Some(300)).await,
        Ok(300),
        "the good client registers"
    );
    let a = client::keep_alive(a);
    let mut b = client::client();
    client::connect(&mut b, &addr).await;
    let found = client::discover(&mut b, Some(GOOD_NS), relay_id)
        .await
        .expect("the good client discovers");
    assert!(found.contains(&a_id), "B finds A: {found:?}");
    vec![a, client::keep_alive(b)]
}

fn assert_rss_bounded(relay: &RelayProcess, before_kib: u64, what: &str) {
    let now = relay.rss_kib();
    eprintln!("{what}: relay RSS {before_kib} KiB before, {now} KiB after");
    assert!(
        now < before_kib + RSS_GROWTH_BOUND_KIB,
        "{what}: RSS grew from {before_kib} KiB to {now} KiB (bound: +{RSS_GROWTH_BOUND_KIB} KiB)"
    );
}

/// A client whose signed record carries 20 addresses (libp2p's most) with
/// host names of `labels` labels of 60 bytes each.
fn fat_client(labels: usize, relay_id: PeerId) -> libp2p::Swarm<client::Client> {
    let mut swarm = client::client();
    for i in 0..20 {
        let host = vec![format!("{i:04}{}", "x".repeat(56)); labels].join(".");
        let addr: Multiaddr = format!("/dns4/{host}.example/tcp/443/wss")
            .parse()
            .expect("addr");
        swarm.add_external_address(addr.with(Protocol::P2p(relay_id)));
    }
    swarm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendezvous_flood_leaves_the_good_clients_served() {
    let relay = process::start(&[]);
    let (relay_id, addr) = relay_addr(&relay);
    let good = good_pair_is_served(&relay).await;
    let before = relay.rss_kib();

    // Many throwaway PeerIds, each registering in one swarm (in waves of
    // 32: the relay takes at most 64 new WebSockets at once and refuses
    // the rest, which a page retries).
    const FLOOD: usize = 300;
    let mut flooders = Vec::new();
    for wave in (0..FLOOD).collect::<Vec<_>>().chunks(32) {
        let mut tasks = Vec::new();
        for _ in wave {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = client::client();
                client::connect(&mut s, &addr).await;
                let own = *s.local_peer_id();
                s.add_external_address(
                    addr.clone()
                        .with(Protocol::P2pCircuit)
                        .with(Protocol::P2p(own)),
                );
                let res = client::register(&mut s, "shoal/flood", relay_id, Some(600)).await;
                (res, s)
            }));
        }
        for task in tasks {
            let (res, swarm) = task.await.expect("flood task");
            assert_eq!(res, Ok(600), "each throwaway peer may register once");
            flooders.push(client::keep_alive(swarm));
        }
    }

    // One peer in more swarms than it may be in.
    let mut greedy = client::client();
    client::connect(&mut greedy, &addr).await;
    let own = *greedy.local_peer_id();
    greedy.add_external_address(
        addr.clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(own)),
    );
    for i in 0..shoal_relay::limits::RENDEZVOUS_PER_PEER {
        assert!(
            client::register(&mut greedy, &format!("shoal/g{i}"), relay_id, None)
                .await
                .is_ok()
        );
    }
    assert_eq!(
        client::register(&mut greedy, "shoal/one-too-many", relay_id, None).await,
        Err(rendezvous::ErrorCode::Unavailable)
    );
    // Foreign namespaces, and listing every swarm.
    assert_eq!(
        client::register(&mut greedy, "ipfs/anything", relay_id, None).await,
        Err(rendezvous::ErrorCode::InvalidNamespace)
    );
    assert_eq!(
        client::discover(&mut greedy, None, relay_id).await,
        Err(rendezvous::ErrorCode::InvalidNamespace)
    );
    let greedy = client::keep_alive(greedy);

    // Fat records: over the record limit (about 2.6 KiB), and over the
    // request limit (about 5 KiB).
    for labels in [1, 3] {
        let mut fat = fat_client(labels, relay_id);
        client::connect(&mut fat, &addr).await;
        let res = client::register(&mut fat, "shoal/fat", relay_id, None).await;
        assert!(
            res.is_err(),
            "a fat record ({labels} labels) is refused: {res:?}"
        );
    }

    // Discovery answers are paged, however many registered.
    let mut probe = client::client();
    client::connect(&mut probe, &addr).await;
    let page = client::discover(&mut probe, Some("shoal/flood"), relay_id)
        .await
        .expect("discover");
    assert_eq!(
        page.len() as u64,
        shoal_relay::limits::RENDEZVOUS_DISCOVER_LIMIT,
        "one page"
    );

    let _good_again = good_pair_is_served(&relay).await;
    assert_rss_bounded(&relay, before, "rendezvous flood");

    let text = relay.metrics();
    for reason in [
        "peer_full",
        "foreign_namespace",
        "namespace_required",
        "record_too_large",
        "bad_stream",
    ] {
        let series = format!("shoal_relay_rendezvous_refused_total{{reason=\"{reason}\"}}");
        assert!(metric(&text, &series) >= 1, "{series} counted:\n{text}");
    }
    let held = metric(&text, "shoal_relay_rendezvous_registrations");
    assert!(held as usize >= FLOOD, "{held} registrations held");
    // good, flood, and the greedy peer's four.
    let swarms = metric(&text, "shoal_relay_rendezvous_swarms");
    assert_eq!(
        swarms as usize,
        2 + shoal_relay::limits::RENDEZVOUS_PER_PEER
    );
    assert!(metric(&text, "shoal_relay_resident_memory_bytes") > 0);

    // Registrations leave with their peers.
    for task in flooders {
        task.abort();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = metric(&relay.metrics(), "shoal_relay_rendezvous_registrations");
        if held as usize <= 2 + shoal_relay::limits::RENDEZVOUS_PER_PEER {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{held} registrations still held after the flooders left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    greedy.abort();
    for task in good {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservation_flood_from_one_peer_is_refused() {
    let relay = process::start(&[]);
    let (_, addr) = relay_addr(&relay);
    let before = relay.rss_kib();

    let mut flooder = client::client();
    client::connect(&mut flooder, &addr).await;
    let mut denied = 0;
    for _ in 0..40 {
        flooder
            .listen_on(addr.clone().with(Protocol::P2pCircuit))
            .expect("listen via relay");
        let accepted = client::until(&mut flooder, |e| match e {
            SwarmEvent::NewListenAddr { .. } => Some(true),
            SwarmEvent::ListenerClosed { .. } => Some(false),
            _ => None,
        })
        .await;
        if !accepted {
            denied += 1;
        }
    }
    assert!(
        denied > 0,
        "40 reservations in a row from one peer: none denied"
    );
    let _flooder = client::keep_alive(flooder);

    let _good = good_pair_is_served(&relay).await;
    assert_rss_bounded(&relay, before, "reservation flood");
    let text = relay.metrics();
    let counted = metric(&text, "shoal_relay_reservations_total{outcome=\"denied\"}");
    assert!(
        counted >= 1,
        "denied reservations counted ({denied} seen):\n{text}"
    );
}

/// Whether the relay closes `s` (EOF or reset) within `secs`, reading past
/// what it sends first (a 101 answer, a close frame).
fn closed_by_relay(s: &TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs)))
        .expect("timeout");
    let mut s = s;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// `n` circuits through the relay to `target` from `dialer`, one after the
/// other, each kept open: how many were set up and how many refused. (At
/// once, libp2p's relay client cancels all but about ten itself.)
async fn open_circuits(
    dialer: &mut libp2p::Swarm<client::Client>,
    target: PeerId,
    via: &Multiaddr,
    n: usize,
) -> (usize, usize) {
    let addr = via
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(target));
    let (mut up, mut refused) = (0, 0);
    for _ in 0..n {
        let opts = DialOpts::peer_id(target)
            .addresses(vec![addr.clone()])
            .condition(PeerCondition::Always)
            .build();
        dialer.dial(opts).expect("dial through the relay");
        let set_up = client::until(dialer, |e| match e {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == target => Some(true),
            SwarmEvent::OutgoingConnectionError { peer_id, .. } if peer_id == Some(target) => {
                Some(false)
            }
            _ => None,
        })
        .await;
        if set_up {
            up += 1;
        } else {
            refused += 1;
        }
    }
    (up, refused)
}

/// One peer opening circuit after circuit to another (a dial, and its
/// WebRTC signaling, is one circuit): past its cap the relay refuses it,
/// while another peer still gets a circuit to the same target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_flood_from_one_peer_is_refused() {
    let relay = process::start(&[]);
    let (_, addr) = relay_addr(&relay);
    let before = relay.rss_kib();

    let mut target = client::client();
    let target_id = *target.local_peer_id();
    client::connect(&mut target, &addr).await;
    client::reserve(&mut target, &addr).await;
    let _target = client::keep_alive(target);

    const FLOOD: usize = 48;
    let mut flooder = client::client();
    client::connect(&mut flooder, &addr).await;
    let (up, refused) = open_circuits(&mut flooder, target_id, &addr, FLOOD).await;
    eprintln!("circuit flood: {up} circuits set up, {refused} refused");
    assert!(
        refused > 0,
        "{FLOOD} circuits from one peer, all kept open: none refused ({up} set up)"
    );
    let _flooder = client::keep_alive(flooder);

    let mut good = client::client();
    client::connect(&mut good, &addr).await;
    assert_eq!(
        open_circuits(&mut good, target_id, &addr, 1).await,
        (1, 0),
        "another peer gets a circuit to the same target"
    );
    let _good = good_pair_is_served(&relay).await;
    assert_rss_bounded(&relay, before, "circuit flood");
    let text = relay.metrics();
    let counted = metric(&text, "shoal_relay_circuits_total{outcome=\"denied\"}");
    assert!(
        counted >= 1,
        "denied circuits counted ({refused} seen):\n{text}"
    );
}

/// Sockets that start a request and never finish it, and WebSockets that
/// never start the libp2p handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_handshakes_do_not_starve_the_good_clients() {
    let relay = process::start(&[]);
    let before = relay.rss_kib();
    let http = relay.addr;

    let sockets = tokio::task::spawn_blocking(move || {
        let mut half_headers = Vec::new();
        let mut silent_ws = Vec::new();
        let mut silent_tcp = Vec::new();
        for _ in 0..100 {
            // Says nothing at all.
            silent_tcp.push(TcpStream::connect(http).expect("connect"));
        }
        for _ in 0..100 {
            let mut s = TcpStream::connect(http).expect("connect");
            write!(
                s,
                "GET /p2p HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\n"
            )
            .expect("write");
            half_headers.push(s);
        }
        for _ in 0..100 {
            let mut s = TcpStream::connect(http).expect("connect");
            write!(
                s,
                "GET /p2p HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .expect("write");
            silent_ws.push(s);
        }
        (half_headers, silent_ws, silent_tcp)
    })
    .await
    .expect("join");

    let _good = good_pair_is_served(&relay).await;
    assert_rss_bounded(&relay, before, "slow-loris");

    // The relay ends the WebSockets whose libp2p handshake never starts
    // (its upgrade timeout), and the half-sent or never-sent requests (its
    // request-head timeout).
    let (half_headers, silent_ws, silent_tcp) = sockets;
    let closed = tokio::task::spawn_blocking(move || {
        let all_closed = |sockets: Vec<TcpStream>| sockets.iter().all(|s| closed_by_relay(s, 90));
        (
            all_closed(silent_ws),
            all_closed(half_headers),
            all_closed(silent_tcp),
        )
    })
    .await
    .expect("join");
    assert_eq!(
        closed,
        (true, true, true),
        "(silent WebSockets, half-sent requests, silent TCP) closed by the relay"
    );
    let _good = good_pair_is_served(&relay).await;
}

/// WebSockets whose first frame announces 200 MiB, then sends 64 KiB of it
/// and waits: a relay that allocates what a header announces (rust-libp2p's
/// WebSocket did, up to its 256 MiB default) grows by gigabytes here and
/// fails the RSS bound; ours refuses each at its header and closes it. (Tried:
/// with the 256 KiB message cap raised to 256 MiB this still passes, since
/// tungstenite does not allocate ahead and a later timeout closes the
/// sockets; what it guards is the memory bound and the good pair.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_headers_from_many_sockets_are_refused() {
    const SOCKETS: usize = 32;
    let relay = process::start(&[]);
    let before = relay.rss_kib();
    let http = relay.addr;

    let sockets = tokio::task::spawn_blocking(move || {
        (0..SOCKETS)
            .map(|_| {
                let mut s = TcpStream::connect(http).expect("connect");
                write!(
                    s,
                    "GET /p2p HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                .expect("write request");
                let mut frame = vec![0x82, 0x80 | 127];
                frame.extend_from_slice(&(200u64 << 20).to_be_bytes());
                frame.extend_from_slice(&[1, 2, 3, 4]); // mask
                frame.extend_from_slice(&[0; 64 * 1024]);
                // The relay may close before all of it is read.
                let _ = s.write_all(&frame);
                s
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("join");

    let _good = good_pair_is_served(&relay).await;
    assert_rss_bounded(&relay, before, "oversized frame headers");

    let closed = tokio::task::spawn_blocking(move || {
        sockets
            .into_iter()
            .filter(|s| closed_by_relay(s, 30))
            .count()
    })
    .await
    .expect("join");
    assert_eq!(
        closed, SOCKETS,
        "every socket that announced 200 MiB is closed by the relay"
    );
}
