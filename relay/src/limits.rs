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
