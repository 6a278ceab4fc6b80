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

/// Read buffer of each WebSocket, allocated when it opens. tungstenite's
/// default (128 KiB) was most of the relay's memory per idle peer: the load
/// benchmark (`make bench-load`, 1,000 peers) measured 180 KiB per peer with
/// it, 66 KiB at 16 KiB and 53 KiB at 4 KiB. A socket reads again as soon as
/// the swarm took what it read, so a small buffer costs relayed throughput
/// only more, smaller reads.
pub const WS_READ_BUFFER: usize = 8 * 1024;

/// Bytes a WebSocket gathers before it writes them out (tungstenite's
/// default is 128 KiB); writes are flushed by the swarm anyway.
pub const WS_WRITE_BUFFER: usize = 8 * 1024;

/// Accepted WebSockets waiting for the swarm to take them. The swarm takes
/// them as fast as it polls; a full queue means it is far behind, and a new
/// client is better refused at once (it retries with backoff) than queued.
pub const WS_HANDOVER_QUEUE: usize = 64;

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

/// Peers connected at once, in total. A browser holds one connection to the
/// relay; sized for the 20,000 open tabs one small server should carry, with
/// room for reconnects that overlap the old connection's end.
pub const MAX_CONNECTIONS: u32 = 25_000;

/// libp2p connections from one address at once (IPv6: one /64, what one
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

/// Registrations in total: one per connected page.
pub const RENDEZVOUS_TOTAL: usize = MAX_CONNECTIONS as usize;
