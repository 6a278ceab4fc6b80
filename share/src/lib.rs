//! Content addressing, manifests and the download scheduler for shoal.
//!
//! A shared file (or several files, concatenated into one byte stream) is
//! cut into fixed-size chunks, each named by its BLAKE3 hash. A [`Manifest`] lists the file's name, size, media type, chunk size
//! and chunk hashes; BLAKE3 of its encoding is the [`ShareId`] that a share
//! link carries. A downloader fetches the manifest, checks it against the id,
//! and then runs a [`Scheduler`] that asks every peer with the file for
//! chunks, rarest first, verifies each on arrival, and hands back verified
//! chunks to store and announce, so they can be served onwards at once.
//!
//! # Layout
//! - [`chunk`]: chunk size, chunk arithmetic, chunk hashes, and
//!   [`ManifestBuilder`], which hashes a file as a stream for the sharer.
//! - [`manifest`]: the manifest, its versioned canonical binary encoding
//!   (documented there: version 1 one file, version 2 several files with
//!   relative paths in one byte stream), name and path rules, and
//!   [`ShareId`] with its text form.
//! - [`link`]: share links; the share id rides in the URL fragment.
//! - [`bitfield`]: which chunks a peer has, and its wire encoding.
//! - [`scheduler`]: the sans-IO state machine for one download.
//! - [`pick`]: which files of a share the page asks for, and what that
//!   takes: a running download told, a finished one kept or reopened for
//!   the missing chunks of newly picked files.
//! - [`stream`]: streaming reads (play while downloading): which chunks a
//!   byte range needs, and the focus the scheduler fetches first.
//! - [`resume`]: what a downloader keeps on disk to resume after a reload
//!   (file names, the record of stored chunks, re-verification, what may be
//!   deleted, when to checkpoint).
//! - [`wire`]: `/shoal/blocks/2.0.0`, the messages two peers exchange about a
//!   share, and [`MessageReader`], which reassembles them from a stream.
//! - [`handshake`]: how two peers prove they know a share id without
//!   sending it.
//! - [`session`]: the sans-IO rules of one session: handshake, which
//!   message may come when, the manifest answered once.
//! - [`fetch`]: the sans-IO manifest fetch: several holders asked at once,
//!   each with a timeout.
//! - [`admission`]: who may have a session about which share: swarm
//!   membership, bans by peer, session limits.
//! - [`limits`]: every limit on what peers send, with its reason.
//!
//! # Codecs
//! The encodings here (manifest, bitfield, blocks messages) are shoal's own,
//! documented in their modules, but none hand-rolls a primitive: integers
//! are `shoal_proto::varint` (minimal unsigned LEB128), and blocks messages
//! are cut from the stream by `shoal_proto::prefixed::PrefixedReader`, the
//! same reader (and the same `PrefixError` for a refused prefix) as the
//! WebRTC signaling and data-channel formats. Share ids are base32 by
//! `data-encoding`, swarm names in links percent-encoded by
//! `percent-encoding`.
//!
//! Nothing here does I/O, spawns threads or reads a clock: the driver in the
//! peer feeds bytes, events and a `now`, and carries out the actions it gets
//! back. So all of it compiles for wasm32 and is tested natively.

pub mod admission;
pub mod bitfield;
pub mod chunk;
pub mod fetch;
pub mod handshake;
pub mod limits;
pub mod link;
pub mod manifest;
pub mod pick;
pub mod resume;
pub mod scheduler;
pub mod session;
pub mod stream;
pub mod wire;

pub use bitfield::{Bitfield, BitfieldError};
pub use chunk::{
    chunk_count, chunk_range, chunk_size_for, hash_chunk, BuildError, ChunkHash, ManifestBuilder,
    VerifyError, DEFAULT_CHUNK_SIZE,
};
pub use link::{make_link, parse_link, LinkError};
pub use manifest::{FileEntry, Manifest, ManifestError, PathError, ShareId, ShareIdParseError};
pub use scheduler::{Action, Config, PeerStats, Progress, Scheduler, SchedulerError, Verdict};
pub use wire::{
    encode_chunk_header, encode_manifest_header, Message, MessageReader, WireError,
    MAX_MESSAGE_LEN, PROTOCOL,
};
