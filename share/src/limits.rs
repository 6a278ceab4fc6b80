//! Every limit a peer applies to what other peers send it, in one place,
//! each with its reason. The browser driver (peer-wasm) and the sans-IO
//! machines in this crate read them from here; README lists them.

use std::time::Duration;

use crate::manifest::{MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_ENCODED_LEN};

/// Longest `Hello` body: type byte, nonce, proof. The first message of a
/// session may be no longer, so a stranger cannot make a peer buffer more
/// than this before it has proved anything.
pub const MAX_HELLO_LEN: usize = 1 + crate::handshake::NONCE_LEN + crate::handshake::PROOF_LEN;

/// Longest `Welcome` body: type byte and proof. The opener's first message
/// back is a `Welcome` or an `Unknown`, never longer than this.
pub const MAX_WELCOME_LEN: usize = 1 + crate::handshake::PROOF_LEN;

/// Longest message of any type: the largest chunk (16 MiB) plus room for its
/// header. Only `Chunk` may come near it.
pub const MAX_MESSAGE_LEN: usize = MAX_CHUNK_SIZE as usize + 64;

/// Longest `Bitfield` body: type, varint length, one bit per chunk.
pub const MAX_BITFIELD_LEN: usize = 1 + 10 + (MAX_CHUNKS as usize).div_ceil(8);

/// Longest `Manifest` body: type byte and the largest encoded manifest.
pub const MAX_MANIFEST_MESSAGE_LEN: usize = 1 + MAX_ENCODED_LEN;

/// Files in one share (manifest version 2). The page lists each as a row
/// with a checkbox and its own progress, recomputed at every redraw, and a
/// save writes each with its own file-system call; past some thousands
/// that gets slow, and a tree that large is better shared as one archive.
/// The manifest's 8 MiB cap bounds the paths' bytes as well.
pub const MAX_FILES: u32 = 10_000;

/// Bytes of one file's relative path, separators included: Linux's
/// `PATH_MAX` (4096). Deeper trees cannot be written out on most systems.
pub const MAX_PATH_LEN: usize = 4096;

/// Bytes of one path component: `NAME_MAX` of ext4, APFS and others (255).
/// A longer name cannot be created on disk when the tree is saved.
pub const MAX_COMPONENT_LEN: usize = 255;

/// Longest body of a message that carries one index (`Have`, `Request`,
/// `Reject`, `Cancel`): type and a 5-byte varint.
pub const MAX_INDEX_MESSAGE_LEN: usize = 1 + 5;

/// How long the acceptor waits for `Hello`, and the opener for the answer:
/// a peer that opens a stream and stays silent holds a session slot no
/// longer than this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sessions with one peer at once, over all shares and both directions.
/// A tab serves a handful of shares; more than this from one peer is a
/// flood, and each session holds read buffers and an outbox.
pub const MAX_SESSIONS_PER_PEER: usize = 8;

/// Sessions about one share with one peer: one opened by each side (two
/// downloaders of a share each open one to the other).
pub const MAX_SESSIONS_PER_PEER_AND_SHARE: usize = 2;

/// Sessions about one share at once, all peers together: two per peer the
/// page may be connected to (`maxPeers`, default 16), twice over.
pub const MAX_SESSIONS_PER_SHARE: usize = 64;

/// Inbound sessions still in their handshake, all peers together: the
/// streams a tab reads before anyone has proved anything.
pub const MAX_PENDING_HANDSHAKES: usize = 32;

/// Bytes of control messages (everything but chunk data) queued for one
/// session's writer. Past it the session is closed as flooded: a peer that
/// does not read what it asks for must not grow the tab's memory. Room for
/// a full bitfield plus thousands of `Have`s.
pub const MAX_OUTBOX_BYTES: usize = 256 * 1024;

/// Chunks one peer may have asked for and not yet received. Far above what
/// a well-behaved downloader keeps in flight; past it, requests are
/// rejected. The chunk bytes themselves are read from storage only when
/// written, one at a time.
pub const MAX_SERVE_QUEUE: usize = 64;

/// `Manifest` answers per session: one. The manifest never changes, so a
/// second `GetManifest` after it was sent is a flood, and ends the session.
pub const MAX_MANIFESTS_PER_SESSION: u32 = 1;

/// Holders asked for the manifest at once: enough that a silent holder or
/// two do not stall the download, few enough that a large manifest (up to
/// 8 MiB) is not fetched many times over.
pub const MANIFEST_PARALLEL_ASKS: usize = 3;

/// How long a holder may take to answer `GetManifest` before another one
/// is asked in its place.
pub const MANIFEST_ASK_TIMEOUT: Duration = Duration::from_secs(8);

/// Events (bitfields, chunks, …) queued from sessions to their download
/// task; senders wait when it is full, so a flood slows its own session's
/// reader and nothing else.
pub const DOWNLOAD_EVENT_QUEUE: usize = 64;

// The first message of either side is the shortest thing a session ever
// starts with; everything an honest peer sends fits its own limit.
const _: () = assert!(MAX_WELCOME_LEN <= MAX_HELLO_LEN);
const _: () = assert!(MAX_BITFIELD_LEN < MAX_MESSAGE_LEN);
const _: () = assert!(MAX_MANIFEST_MESSAGE_LEN < MAX_MESSAGE_LEN);
const _: () = assert!(MAX_BITFIELD_LEN + 64 <= MAX_OUTBOX_BYTES);

/// Bytes one streaming read (`Node.read`, what the page's service worker
/// asks for a media element) returns at most: a few chunks, so a player
/// gets its first bytes as soon as the first chunk is stored, and a read is
/// never a whole file in memory (the worker pulls piece after piece).
pub const STREAM_MAX_READ: u32 = 1024 * 1024;

/// Bytes past a streaming read's start that the download fetches first (the
/// scheduler's focus): the read-ahead a player plays from while the rest
/// comes. 8 MiB is ten seconds or more of a 5 Mbit/s video, and 32 chunks
/// of 256 KiB: enough to spread over many peers' focus slots.
pub const STREAM_READ_AHEAD: u64 = 8 * 1024 * 1024;

/// Streaming reads of one share waiting for chunks at once. A media element
/// makes one or two; past this the page asks too much at once, and the
/// read is refused rather than queued without bound.
pub const MAX_STREAM_READS: usize = 16;

/// How long a streaming read waits for its chunks before it fails (no peer
/// has them, or they never come): the player shows an error instead of
/// hanging, and may ask again.
pub const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

const _: () = assert!(STREAM_MAX_READ as u64 <= STREAM_READ_AHEAD);
