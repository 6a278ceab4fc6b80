//! Every limit the relay applies to what clients send, in one place, each
//! with the reason for its size. Operator-tunable limits (circuits,
//! reservations) are flags in [`crate::config`]; these are not, because the
//! peers' own behaviour fixes them.

use std::time::Duration;

/// Largest WebSocket message (and frame) a peer may send. A libp2p stream
/// over Noise writes frames of at most 65,537 bytes, one per message; 256 KiB
/// leaves room for clients that batch writes. The WebSocket layer allocates a
/// frame's announced length before reading it, so this is also the most one
/// socket can make the relay allocate at once (libp2p's own default is
/// 256 MiB).
pub const MAX_WS_MESSAGE: usize = 256 * 1024;

/// Read buffer of each WebSocket. The WebSocket layer allocates it per
/// socket up front (128 KiB by default: 2.5 GB for 20,000 idle pages; the
/// load benchmark, `make bench-load`, measured 180 KiB per idle page with
/// it and 53 KiB at 4 KiB); a peer's traffic is Noise frames of at most
/// 64 KiB that it reads in chunks of this size anyway.
pub const WS_READ_BUFFER: usize = 8 * 1024;

/// Bytes of a WebSocket's unsent frames held before writes wait (the layer's
/// default is unlimited). Two of the largest messages: what one flush of a
/// yamux connection may queue.
pub const WS_MAX_WRITE_BUFFER: usize = 2 * MAX_WS_MESSAGE;

/// Accepted WebSockets waiting for the swarm to take them. The swarm takes
/// them as fast as it polls; a full queue means it is far behind, and a new
/// client is better refused at once (it retries with backoff) than queued.
pub const WS_HANDOVER_QUEUE: usize = 64;

/// An HTTP request's head (request line and headers) must arrive within
/// this. A browser sends it at once; a socket that trickles it, or sends
/// nothing (slow loris), would otherwise hold a connection and its buffers
/// for as long as it likes.
pub const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS handshake must finish within this, or the connection is dropped: a
/// client that opens TCP and sends nothing holds no resources for long.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest datagram treated as a request: 576 bytes (the IPv4 minimum
/// reassembly size) less the IP and UDP headers, the size RFC 8489 §6.1 has
/// STUN over IPv4 stay under when the path MTU is unknown. Binding requests
/// from browsers are well under 200 bytes. Checked before decoding, it also
/// keeps the codec's u16 length arithmetic far from overflow.
pub const MAX_STUN_DATAGRAM: usize = 548;

/// Entries of `X-Forwarded-For` looked at. Proxies append one entry each; a
/// chain longer than this is a client stuffing the header.
pub const MAX_FORWARDED_HOPS: usize = 16;

/// Peers connected at once, in total (default of `--max-connections`). A
/// browser holds one connection to the
/// relay; sized for the 20,000 open tabs one small server should carry, with
/// room for reconnects that overlap the old connection's end.
pub const MAX_CONNECTIONS: u32 = 25_000;

/// libp2p connections from one address at once (default of
/// `--max-connections-per-ip`; IPv6: one /64, what one
/// household or office gets). An office behind one NAT may have hundreds of
/// tabs open; a single host opening thousands is not a browser.
pub const MAX_CONNECTIONS_PER_IP: usize = 512;

/// Connections one PeerId may hold at once: a reloaded or reconnecting page
/// overlaps its old connection for a moment.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;

/// Connections still in their Noise/Yamux handshake at once.
pub const MAX_PENDING_CONNECTIONS: u32 = 512;

/// The Noise and Yamux handshake after the WebSocket opened must finish
/// within this (a browser needs well under a second).
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);

/// A libp2p WebSocket that delivers nothing for this long is dead (its
/// peer pings every 5 s, the relay every 15 s), and is closed, reclaiming
/// the reservation it held.
pub const WS_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Default total bandwidth cap (`--max-relay-bytes-per-sec`): 32 MiB/s, about
/// 270 Mbit/s, what a small VPS's port carries with room for the page and
/// the handshakes. Relaying is the fallback when browsers cannot connect
/// directly; one relayed transfer runs at a few MB/s, so a handful of them
/// run at full speed before the cap shares the rest.
pub const MAX_RELAY_BYTES_PER_SEC: u64 = 32 << 20;

/// One line for the start-up log: every fixed limit as `name=value`.
pub fn summary() -> String {
    let rate = |r: &RateLimit| format!("{}+1/{:?}", r.burst, r.every);
    format!(
        "ws-message={MAX_WS_MESSAGE}B ws-read-buffer={WS_READ_BUFFER}B ws-idle={WS_IDLE_TIMEOUT:?} upgrade-timeout={UPGRADE_TIMEOUT:?} \
         tls-handshake={TLS_HANDSHAKE_TIMEOUT:?} http-header={HTTP_HEADER_TIMEOUT:?} pending-connections={MAX_PENDING_CONNECTIONS} \
         connections-per-peer={MAX_CONNECTIONS_PER_PEER} ws-handover-queue={WS_HANDOVER_QUEUE} \
         reservations-per-peer={} reservations-per-ip={} circuits-per-peer={} circuits-per-ip={} \
         rendezvous-ttl={RENDEZVOUS_MIN_TTL}..{RENDEZVOUS_MAX_TTL}s rendezvous-per-peer={RENDEZVOUS_PER_PEER} \
         rendezvous-per-ip={RENDEZVOUS_PER_IP} rendezvous-per-swarm={RENDEZVOUS_PER_NAMESPACE} \
         rendezvous-total={RENDEZVOUS_TOTAL} rendezvous-record={RENDEZVOUS_MAX_RECORD}B \
         rendezvous-addrs={RENDEZVOUS_MAX_ADDRS} rendezvous-request={RENDEZVOUS_MAX_REQUEST}B \
         rendezvous-page={RENDEZVOUS_DISCOVER_LIMIT} stun-datagram={MAX_STUN_DATAGRAM}B \
         forwarded-hops={MAX_FORWARDED_HOPS}",
        rate(&RESERVATIONS_PER_PEER),
        rate(&RESERVATIONS_PER_IP),
        rate(&CIRCUITS_PER_PEER),
        rate(&CIRCUITS_PER_IP),
    )
}

/// Rate limits on reservations and circuits, as token buckets: `burst`
/// requests at once, then one more every `every`. libp2p's defaults (per IP a
/// burst of 60, then one a minute) refuse an office of a dozen tabs that
/// reload; these let hundreds of tabs behind one address meet and reload,
/// while one misbehaving page is held to what a page does.
pub struct RateLimit {
    pub burst: u32,
    pub every: Duration,
}

/// A page reserves once, renews before expiry, and again after a relay restart.
pub const RESERVATIONS_PER_PEER: RateLimit = RateLimit {
    burst: 10,
    every: Duration::from_secs(30),
};
/// Every tab behind one address reserving at once after a relay restart.
pub const RESERVATIONS_PER_IP: RateLimit = RateLimit {
    burst: 1_000,
    every: Duration::from_millis(100),
};
/// A page dials each peer it meets (at most its `maxPeers`) and redials when
/// a direct path drops.
pub const CIRCUITS_PER_PEER: RateLimit = RateLimit {
    burst: 64,
    every: Duration::from_secs(2),
};
/// Hundreds of tabs behind one address meeting each other.
pub const CIRCUITS_PER_IP: RateLimit = RateLimit {
    burst: 2_000,
    every: Duration::from_millis(50),
};

/// Rendezvous registration lifetimes accepted, in seconds. Pages register
/// for [`shoal_proto::info::REGISTRATION_TTL_SECS`] and renew at half; a
/// registration of a page that vanished is gone within minutes, not the
/// 2 to 72 hours of libp2p's defaults.
pub const RENDEZVOUS_MIN_TTL: u64 = 60;
pub const RENDEZVOUS_MAX_TTL: u64 = 2 * shoal_proto::info::REGISTRATION_TTL_SECS;

/// Registrations one peer may hold: a page registers in one swarm.
pub const RENDEZVOUS_PER_PEER: usize = 4;

/// Registrations in total: one per connected page. With
/// [`RENDEZVOUS_MAX_RECORD`] this bounds the registry to about 50 MiB even
/// when every record is as fat as allowed (a page's is under 1 KiB).
pub const RENDEZVOUS_TOTAL: usize = MAX_CONNECTIONS as usize;

/// Registrations from one address (IPv6: one /64): one per page that
/// address may connect, so a flood of throwaway PeerIds from one host fills
/// its own share, not the registry.
pub const RENDEZVOUS_PER_IP: usize = MAX_CONNECTIONS_PER_IP;

/// Registrations in one swarm (namespace). A page connects to at most a few
/// dozen peers; a swarm larger than this is paged through by discovery
/// anyway, and one swarm cannot take the whole registry.
pub const RENDEZVOUS_PER_NAMESPACE: usize = 2_000;

/// The only namespaces accepted: pages register as `shoal/<swarm>`
/// (`peer-wasm/src/api.rs`). Anything else is not a shoal swarm.
pub const RENDEZVOUS_NAMESPACE_PREFIX: &str = "shoal/";

/// Longest namespace, the rendezvous spec's limit (255 bytes).
pub const RENDEZVOUS_MAX_NAMESPACE: usize = 255;

/// Largest signed peer record (the envelope's protobuf bytes). A page's
/// record holds a few relayed and `/webrtc` addresses of about 100 bytes
/// each plus a 36-byte key and a 64-byte signature: under 1 KiB.
pub const RENDEZVOUS_MAX_RECORD: usize = 2 * 1024;

/// Addresses in one record: a page announces one or two per relay address.
pub const RENDEZVOUS_MAX_ADDRS: usize = 16;

/// Largest rendezvous request read from a stream: a REGISTER with the largest
/// record and namespace fits with room to spare. Larger ones are refused
/// before being read (libp2p's own limit is 1 MiB).
pub const RENDEZVOUS_MAX_REQUEST: usize = 4 * 1024;

/// Registrations in one discovery answer, at most and by default; the rest
/// come page by page with the cookie. 64 records under 1 KiB each keep an
/// answer well below the 1 MiB a libp2p client reads.
pub const RENDEZVOUS_DISCOVER_LIMIT: u64 = 64;

/// How often expired registrations are swept out (they are never served
/// once expired; this only returns their memory).
pub const RENDEZVOUS_SWEEP_EVERY: Duration = Duration::from_secs(30);
