//! Streaming reads (play while downloading): which chunks a byte range of a
//! share needs, and which the download should fetch first for it.
//!
//! A reader (the page's service worker, for a media element) asks for
//! `len` bytes at `offset` of the share's byte stream. [`plan_read`] clamps
//! the length to [`STREAM_MAX_READ`], names the chunks that hold those bytes
//! (the read waits until every one is verified and stored) and the focus:
//! those chunks and the read-ahead after them ([`STREAM_READ_AHEAD`]), which
//! the driver hands to [`Scheduler::set_focus`](crate::Scheduler::set_focus).

use std::ops::Range;

use crate::limits::{STREAM_MAX_READ, STREAM_READ_AHEAD};
use crate::manifest::Manifest;

/// Why a read cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    #[error("read at {offset} is past the end of the share ({size} bytes)")]
    OutOfRange { offset: u64, size: u64 },
    #[error("a read of 0 bytes")]
    Empty,
}

/// One read, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub offset: u64,
    /// At most [`STREAM_MAX_READ`], and never past the end of the share.
    pub len: u32,
    /// The chunks holding the bytes read.
    pub chunks: Range<u32>,
    /// `chunks` and the read-ahead after them, to fetch first.
    pub focus: Range<u32>,
}

/// Plans a read of up to `len` bytes at `offset` of `manifest`'s share.
pub fn plan_read(manifest: &Manifest, offset: u64, len: u64) -> Result<ReadPlan, StreamError> {
    let size = manifest.size();
    if offset >= size {
        return Err(StreamError::OutOfRange { offset, size });
    }
    if len == 0 {
        return Err(StreamError::Empty);
    }
    let len = len.min(u64::from(STREAM_MAX_READ)).min(size - offset);
    let chunk = u64::from(manifest.chunk_size());
    // Chunk indices fit in u32: the manifest has at most MAX_CHUNKS.
    let index = |byte: u64| (byte / chunk) as u32;
    let chunks = index(offset)..index(offset + len - 1) + 1;
    let ahead_end = offset.saturating_add(STREAM_READ_AHEAD).min(size);
    let focus = chunks.start..index(ahead_end - 1).max(chunks.end - 1) + 1;
    Ok(ReadPlan {
        offset,
        len: len as u32,
        chunks,
        focus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ManifestBuilder;
    use crate::manifest::MIN_CHUNK_SIZE;

    const CS: u64 = MIN_CHUNK_SIZE as u64;

    /// A manifest of `size` bytes in chunks of MIN_CHUNK_SIZE.
    fn manifest(size: u64) -> Manifest {
        let mut b = ManifestBuilder::new("v.webm", "video/webm", MIN_CHUNK_SIZE).expect("valid");
        let mut left = size;
        while left > 0 {
            let n = left.min(CS);
            b.push_chunk(&vec![0; n as usize]).expect("in order");
            left -= n;
        }
        b.finish().expect("valid")
    }

    #[test]
    fn a_read_needs_its_chunks_and_focuses_ahead() {
        let ahead = (STREAM_READ_AHEAD / CS) as u32;
        let m = manifest(CS * u64::from(ahead) * 4);
        // Inside one chunk.
        let p = plan_read(&m, CS + 10, 100).expect("valid");
        assert_eq!((p.offset, p.len, p.chunks.clone()), (CS + 10, 100, 1..2));
        assert_eq!(p.focus, 1..1 + ahead + 1);
        // Across a boundary: both chunks.
        let p = plan_read(&m, CS - 1, 2).expect("valid");
        assert_eq!(p.chunks, 0..2);
        // Clamped to STREAM_MAX_READ.
        let p = plan_read(&m, 0, u64::MAX).expect("valid");
        assert_eq!(p.len, STREAM_MAX_READ);
        assert_eq!(p.chunks, 0..(u64::from(STREAM_MAX_READ) / CS) as u32);
        assert_eq!(p.focus, 0..ahead);
    }

    #[test]
    fn reads_stop_at_the_end() {
        let m = manifest(3 * CS + 5);
        let p = plan_read(&m, 3 * CS, 1 << 20).expect("valid");
        assert_eq!((p.len, p.chunks.clone(), p.focus), (5, 3..4, 3..4));
        let p = plan_read(&m, 0, 1 << 30).expect("valid");
        assert_eq!(p.focus, 0..4);
        assert_eq!(
            plan_read(&m, 3 * CS + 5, 1),
            Err(StreamError::OutOfRange {
                offset: 3 * CS + 5,
                size: 3 * CS + 5
            })
        );
        assert_eq!(plan_read(&m, 0, 0), Err(StreamError::Empty));
    }
}
