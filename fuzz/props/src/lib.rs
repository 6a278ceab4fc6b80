//! The properties shoal's fuzz targets check, one module per decoder of
//! untrusted bytes. Each module has `check(data: &[u8])`, which panics when a
//! property fails; the cargo-fuzz targets in `fuzz/fuzz_targets/` call it
//! under libFuzzer (nightly), and `tests/replay.rs` feeds it every committed
//! corpus and regression file on stable, as part of `cargo test`.
//!
//! # Layout
//! - [`signaling`]: `/webrtc-signaling` messages and their reader (proto).
//! - [`frame`]: data-channel frames, their reader and the stream state (proto).
//! - [`blocks_wire`]: `/shoal/blocks` messages and their reader (share).
//! - [`blocks_session`]: the handshake and message rules of a session (share).
//! - [`manifest`]: the canonical manifest encoding and share ids (share).
//! - [`bitfield`]: bitfields and the `.have` record around one (share).
//! - [`share_link`]: share links and share id text (share).
//! - [`relay_info`]: `/api/info` JSON as the peer reads it, and the origin (proto).
//! - [`rendezvous`]: the relay's rendezvous request reading and parsing (relay).
//! - [`stun`]: the relay's STUN Binding answer (relay; the codec is a crate).
//! - [`forwarded_for`]: the relay's `X-Forwarded-For` reading (relay).
//!
//! # Properties
//! Beyond "no panic": what decodes re-encodes to something that decodes to
//! the same value (byte-exact where the format is canonical), a reader gives
//! the same results however its input is cut, a reader's memory follows the
//! bytes that arrived and its limit, never a length prefix ([`CountingAlloc`]),
//! errors are sticky, and state machines keep their invariants.
//!
//! # Input shape
//! Targets over a byte stream take the first input byte as the chunking seed
//! ([`pieces`]) and the rest as the stream, so one corpus file exercises one
//! way of cutting it and libFuzzer explores the others.

pub mod bitfield;
pub mod blocks_session;
pub mod blocks_wire;
pub mod forwarded_for;
pub mod frame;
pub mod manifest;
pub mod relay_info;
pub mod rendezvous;
pub mod share_link;
pub mod signaling;
pub mod stun;

mod alloc;

pub use alloc::CountingAlloc;
use shoal_proto::prefixed::{Decode, PrefixedReader};

/// A target's property: panics when it does not hold for the input.
pub type Check = fn(&[u8]);

/// Every target, by the name of its fuzz target and corpus directory.
pub const TARGETS: &[(&str, Check)] = &[
    ("signaling", signaling::check),
    ("frame", frame::check),
    ("blocks_wire", blocks_wire::check),
    ("blocks_session", blocks_session::check),
    ("manifest", manifest::check),
    ("bitfield", bitfield::check),
    ("share_link", share_link::check),
    ("relay_info", relay_info::check),
    ("rendezvous", rendezvous::check),
    ("stun", stun::check),
    ("forwarded_for", forwarded_for::check),
];

/// Cuts `data` into pieces whose lengths follow `seed`: seed 0 is one piece,
/// seed 1 one byte at a time, any other a pseudo-random walk of lengths
/// between 1 and `seed % 64 + 1`.
pub fn pieces(seed: u8, data: &[u8]) -> Vec<&[u8]> {
    match seed {
        0 => vec![data],
        1 => data.chunks(1).collect(),
        _ => {
            let max = usize::from(seed % 64) + 1;
            let mut state = u32::from(seed) | 0x100;
            let mut out = Vec::new();
            let mut rest = data;
            while !rest.is_empty() {
                // xorshift32: cheap and deterministic.
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let len = (state as usize % max + 1).min(rest.len());
                let (piece, later) = rest.split_at(len);
                out.push(piece);
                rest = later;
            }
            out
        }
    }
}

/// Longest unsigned-varint length prefix any of these formats accepts.
pub const MAX_PREFIX_LEN: usize = 10;

/// Reads the unsigned-varint length prefix at the front of `bytes`: its value
/// and its length. Our own, so that the properties do not lean on the codecs
/// they check.
pub fn read_prefix(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(MAX_PREFIX_LEN) {
        value |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Splits a fuzz input into the chunking seed and the stream.
pub fn split_seed(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&seed, rest)) => (seed, rest),
        None => (0, &[]),
    }
}

/// Heap bytes this thread holds now, relative to some earlier reading; `None`
/// when [`CountingAlloc`] is not the global allocator (memory properties are
/// then skipped).
pub fn live_bytes() -> Option<isize> {
    alloc::live()
}

/// Feeds `cut` to `reader` one piece at a time, taking whole messages out
/// after each, and checks its memory after every piece: at most twice (Vec
/// growth) what arrived so far, and at most twice what a limit of `limit`
/// bytes (prefix included) plus one piece needs. Memory is measured from just
/// before the first piece; nothing is checked unless [`CountingAlloc`] is the
/// global allocator ([`live_bytes`]).
pub fn assert_reader_memory<T: Decode>(
    what: &str,
    mut reader: PrefixedReader<T>,
    cut: &[&[u8]],
    limit: usize,
) {
    let max_piece = cut.iter().map(|p| p.len()).max().unwrap_or(0);
    let Some(before) = live_bytes() else {
        return;
    };
    // Slack for the reader's own small allocations.
    const SLACK: usize = 256;
    let by_limit = 2 * (limit + max_piece) + SLACK;
    let mut pushed = 0;
    for piece in cut {
        reader.push(piece);
        pushed += piece.len();
        while let Ok(Some(_)) = reader.next_message() {}
        let Some(now) = live_bytes() else {
            return;
        };
        let held = usize::try_from(now - before).unwrap_or(0);
        let by_input = 2 * pushed + SLACK;
        assert!(
            held <= by_input.min(by_limit),
            "{what}: holds {held} bytes after {pushed} arrived (pieces ≤ {max_piece}, limit {limit})"
        );
    }
}
