//! Chunking: fixed-size pieces of a file, each named by its BLAKE3 hash.
//!
//! Chunk `i` covers bytes `[i * chunk_size, min((i + 1) * chunk_size, size))`
//! of the file; every chunk is `chunk_size` long except possibly the last.
//! A chunk hash is plain BLAKE3 of the chunk's bytes (`b3sum` of a chunk cut
//! out with `dd` gives the same value), so a downloader can check each chunk
//! on arrival, before it has the rest of the file.
//!
//! [`ManifestBuilder`] hashes a file as a stream, so a sharer never holds more
//! than one BLAKE3 state in memory, however large the file.

use std::fmt;
use std::ops::Range;

use crate::manifest::{self, FileEntry, Manifest, ManifestError, MAX_CHUNKS, MAX_CHUNK_SIZE};

/// Chunk size for new shares: 256 KiB.
///
/// Transport does not force either choice: libp2p streams over WebRTC are
/// cut into messages of at most 16 KiB of payload (well under the browsers'
/// 256 KiB data-channel cap), so a chunk is 16 or 64 frames plus a few dozen
/// bytes of request and response header, overhead that is negligible either
/// way. 256 KiB wins on swarming: a peer can serve a chunk only once it has
/// all of it and verified it, so smaller chunks spread through a swarm
/// sooner; a chunk that fails verification wastes 256 KiB rather than 1 MiB;
/// and each in-flight response is buffered whole in the tab until it
/// verifies, so 4 requests × N peers × chunk size is memory the page holds.
///
/// What it costs: 32 bytes of manifest per chunk, so a 4 GiB file has 16,384
/// chunks and a 512 KiB manifest (1 MiB chunks: 128 KiB). [`chunk_size_for`]
/// doubles the chunk size for files large enough that the manifest would pass
/// 2 MiB.
///
/// Hashing speed does not decide it: BLAKE3's rate per byte is the same at
/// both sizes. `cargo test -p shoal-share --release --lib -- --ignored
/// --nocapture blake3_throughput` on the 2-core x86_64 dev machine (AVX-512,
/// picked at run time): 256 KiB ≈ 4.6 GiB/s (53 µs a chunk), 1 MiB ≈ 4.5 GiB/s.
/// The same blake3 1.8.7 built for wasm32 (portable code, no SIMD) and run
/// in Node 20 did 0.45–0.65 GiB/s at both sizes, under 0.6 ms a 256 KiB
/// chunk, so verifying keeps up with any WebRTC link; with blake3's
/// `wasm32_simd` feature and `+simd128` it was ~1–1.4 GiB/s.
pub const DEFAULT_CHUNK_SIZE: u32 = 256 * 1024;

/// Files whose manifest would list more chunks than this get larger chunks
/// from [`chunk_size_for`]: 2^16 hashes is a 2 MiB manifest.
const PREFERRED_MAX_CHUNKS: u64 = 1 << 16;

/// A chunk's BLAKE3 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkHash([u8; 32]);

impl ChunkHash {
    /// Wraps raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw hash bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Lower-case hex, as `b3sum` prints it.
impl fmt::Display for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkHash({self})")
    }
}

/// Hashes one chunk.
pub fn hash_chunk(bytes: &[u8]) -> ChunkHash {
    ChunkHash(*blake3::hash(bytes).as_bytes())
}

/// How many chunks a file of `size` bytes has: `ceil(size / chunk_size)`.
///
/// A `chunk_size` of 0 chunks nothing and yields 0; no valid manifest has it.
pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
    if chunk_size == 0 {
        return 0;
    }
    size.div_ceil(u64::from(chunk_size))
}

/// Byte range of chunk `index` within a file of `size` bytes, or `None` if
/// the file has no such chunk.
pub fn chunk_range(size: u64, chunk_size: u32, index: u64) -> Option<Range<u64>> {
    if index >= chunk_count(size, chunk_size) {
        return None;
    }
    let start = index.checked_mul(u64::from(chunk_size))?;
    let end = start.saturating_add(u64::from(chunk_size)).min(size);
    Some(start..end)
}

/// The chunk size a sharer should use for a file of `size` bytes:
/// [`DEFAULT_CHUNK_SIZE`], doubled until the manifest lists at most 65,536
/// chunks (2 MiB of hashes) or the chunk size reaches the 16 MiB maximum.
///
/// Past 1 TiB the chunk count grows again; the builder refuses files that
/// need more than [`MAX_CHUNKS`] (a little under 4 TiB).
pub fn chunk_size_for(size: u64) -> u32 {
    let mut chunk_size = DEFAULT_CHUNK_SIZE;
    while chunk_size < MAX_CHUNK_SIZE && chunk_count(size, chunk_size) > PREFERRED_MAX_CHUNKS {
        chunk_size *= 2;
    }
    chunk_size
}

/// Why a chunk failed [`Manifest::verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The manifest has no chunk with this index.
    #[error("chunk {index} does not exist (the file has {count} chunks)")]
    NoSuchChunk { index: u32, count: u32 },
    /// The chunk is not as long as the manifest says.
    #[error("chunk {index} is {actual} bytes, expected {expected}")]
    WrongLength {
        index: u32,
        expected: u32,
        actual: usize,
    },
    /// The bytes do not hash to the manifest's chunk hash.
    #[error("chunk {index} does not match its hash")]
    HashMismatch { index: u32 },
}

/// Why [`ManifestBuilder`] refused input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `push_chunk` got an empty slice; only a zero-length file has no
    /// chunks, and it gets them by pushing nothing.
    #[error("empty chunk")]
    EmptyChunk,
    /// `push_chunk` got more than one chunk's worth of bytes.
    #[error("chunk of {len} bytes is longer than the chunk size {chunk_size}")]
    ChunkTooLong { len: usize, chunk_size: u32 },
    /// `push_chunk` after a short chunk: only the last chunk may be short.
    #[error("a chunk followed a short chunk; only the last chunk may be short")]
    AfterShortChunk,
    /// The file would need more than [`MAX_CHUNKS`] chunks at this size.
    #[error("file too large: more than {max} chunks of {chunk_size} bytes", max = MAX_CHUNKS)]
    TooManyChunks { chunk_size: u32 },
}

/// Builds a [`Manifest`] from a file's bytes, fed in order.
///
/// Feed bytes with [`update`](Self::update) in slices of any length, or whole
/// chunks with [`push_chunk`](Self::push_chunk), then call
/// [`finish`](Self::finish). Only one chunk's hashing state is held at a time.
/// A call that returns an error consumed none of its input.
#[derive(Debug, Clone)]
pub struct ManifestBuilder {
    name: String,
    media_type: String,
    chunk_size: u32,
    chunks: Vec<ChunkHash>,
    hasher: blake3::Hasher,
    /// Bytes of the current, unfinished chunk hashed so far.
    pending: u32,
    size: u64,
    /// For a share of several files: the list, in canonical order.
    files: Option<Vec<FileEntry>>,
}

impl ManifestBuilder {
    /// Starts a manifest. Name, media type and chunk size are checked now, so
    /// a bad name fails before any hashing (rules in [`crate::manifest`]).
    pub fn new(
        name: impl Into<String>,
        media_type: impl Into<String>,
        chunk_size: u32,
    ) -> Result<Self, ManifestError> {
        let name = name.into();
        let media_type = media_type.into();
        manifest::validate_name(name.as_bytes())?;
        manifest::validate_media_type(media_type.as_bytes())?;
        manifest::validate_chunk_size(u64::from(chunk_size))?;
        Ok(Self {
            name,
            media_type,
            chunk_size,
            chunks: Vec::new(),
            hasher: blake3::Hasher::new(),
            pending: 0,
            size: 0,
            files: None,
        })
    }

    /// Starts a manifest of several files (version 2). The list is checked
    /// and sorted now (rules in [`crate::manifest`]); feed the files' bytes
    /// one after the other in the order of [`files`](Self::files).
    pub fn with_files(
        name: impl Into<String>,
        files: Vec<FileEntry>,
        chunk_size: u32,
    ) -> Result<Self, ManifestError> {
        let files = FileEntry::canonical_order(files)?;
        let mut builder = Self::new(name, "", chunk_size)?;
        builder.files = Some(files);
        Ok(builder)
    }

    /// The files to feed, in order (empty for a single file).
    pub fn files(&self) -> &[FileEntry] {
        self.files.as_deref().unwrap_or(&[])
    }

    /// Bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Feeds the next `data.len()` bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), BuildError> {
        let new_size = self.size.saturating_add(data.len() as u64);
        if chunk_count(new_size, self.chunk_size) > u64::from(MAX_CHUNKS) {
            return Err(BuildError::TooManyChunks {
                chunk_size: self.chunk_size,
            });
        }
        self.size = new_size;
        while !data.is_empty() {
            let room = (self.chunk_size - self.pending) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.hasher.update(now);
            // `now.len() <= room <= chunk_size`, which is a u32.
            self.pending += now.len() as u32;
            if self.pending == self.chunk_size {
                self.finish_chunk();
            }
            data = rest;
        }
        Ok(())
    }

    /// Feeds exactly one chunk. Every chunk must be `chunk_size` long except
    /// the last, which may be shorter but not empty.
    pub fn push_chunk(&mut self, chunk: &[u8]) -> Result<(), BuildError> {
        if chunk.is_empty() {
            return Err(BuildError::EmptyChunk);
        }
        if chunk.len() > self.chunk_size as usize {
            return Err(BuildError::ChunkTooLong {
                len: chunk.len(),
                chunk_size: self.chunk_size,
            });
        }
        if self.pending != 0 {
            return Err(BuildError::AfterShortChunk);
        }
        self.update(chunk)
    }

    /// Hashes the short last chunk, if any, and returns the manifest.
    pub fn finish(mut self) -> Result<Manifest, ManifestError> {
        if self.pending > 0 {
            self.finish_chunk();
        }
        if let Some(files) = self.files {
            let expected: u64 = files.iter().map(FileEntry::size).sum();
            if expected != self.size {
                return Err(ManifestError::SizeMismatch {
                    expected,
                    actual: self.size,
                });
            }
            return Manifest::with_files(self.name, files, self.chunk_size, self.chunks);
        }
        Manifest::new(
            self.name,
            self.media_type,
            self.size,
            self.chunk_size,
            self.chunks,
        )
    }

    fn finish_chunk(&mut self) {
        self.chunks
            .push(ChunkHash(*self.hasher.finalize().as_bytes()));
        self.hasher.reset();
        self.pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hello_hash_matches_blake3_reference() {
        // `printf hello | b3sum`
        assert_eq!(
            hash_chunk(b"hello").to_string(),
            "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
        );
        // The empty input's hash from the BLAKE3 test vectors.
        assert_eq!(
            hash_chunk(b"").to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn counts_and_ranges() {
        assert_eq!(chunk_count(0, 16), 0);
        assert_eq!(chunk_count(1, 16), 1);
        assert_eq!(chunk_count(16, 16), 1);
        assert_eq!(chunk_count(17, 16), 2);
        assert_eq!(chunk_count(u64::MAX, 1 << 14), 1 << 50);
        assert_eq!(chunk_count(5, 0), 0);
        assert_eq!(chunk_range(40, 16, 0), Some(0..16));
        assert_eq!(chunk_range(40, 16, 2), Some(32..40));
        assert_eq!(chunk_range(40, 16, 3), None);
        assert_eq!(chunk_range(0, 16, 0), None);
        assert_eq!(
            chunk_range(u64::MAX, 1 << 24, (1 << 40) - 1),
            Some(u64::MAX - (1 << 24) + 1..u64::MAX)
        );
    }

    #[test]
    fn chunk_size_grows_only_for_huge_files() {
        assert_eq!(chunk_size_for(0), DEFAULT_CHUNK_SIZE);
        assert_eq!(chunk_size_for(4 << 30), DEFAULT_CHUNK_SIZE);
        assert_eq!(chunk_size_for(16 << 30), DEFAULT_CHUNK_SIZE);
        assert_eq!(chunk_size_for((16 << 30) + 1), 2 * DEFAULT_CHUNK_SIZE);
        assert_eq!(chunk_size_for(u64::MAX), MAX_CHUNK_SIZE);
    }

    #[test]
    fn builder_rejects_misuse_without_consuming() {
        let mut b = ManifestBuilder::new("f", "", 1 << 14).expect("valid");
        assert_eq!(b.push_chunk(&[]), Err(BuildError::EmptyChunk));
        assert_eq!(
            b.push_chunk(&vec![0; (1 << 14) + 1]),
            Err(BuildError::ChunkTooLong {
                len: (1 << 14) + 1,
                chunk_size: 1 << 14
            })
        );
        b.push_chunk(&[1; 10]).expect("short last chunk");
        assert_eq!(b.push_chunk(&[1; 10]), Err(BuildError::AfterShortChunk));
        assert_eq!(b.size(), 10);
        let m = b.finish().expect("valid");
        assert_eq!(m.size(), 10);
        assert_eq!(m.chunks(), &[hash_chunk(&[1; 10])]);

        let mut b = ManifestBuilder::new("f", "", 1 << 14).expect("valid");
        let too_big = u64::from(MAX_CHUNKS) * (1 << 14) + 1;
        b.size = too_big - 1; // pretend the file so far was fed
        assert_eq!(
            b.update(&[0, 0]),
            Err(BuildError::TooManyChunks {
                chunk_size: 1 << 14
            })
        );
        assert_eq!(b.size(), too_big - 1);
    }

    #[test]
    fn builder_rejects_bad_header_up_front() {
        assert!(ManifestBuilder::new("a/b", "", DEFAULT_CHUNK_SIZE).is_err());
        assert!(ManifestBuilder::new("ok", "text/\u{7f}", DEFAULT_CHUNK_SIZE).is_err());
        assert!(ManifestBuilder::new("ok", "", 1000).is_err());
    }

    proptest! {
        /// Any way of slicing the input gives the manifest that whole chunks give.
        #[test]
        fn builder_is_independent_of_slicing(
            data in proptest::collection::vec(any::<u8>(), 0..70_000),
            cuts in proptest::collection::vec(0usize..70_000, 0..8),
        ) {
            let chunk_size = 1 << 14;
            let mut by_chunk = ManifestBuilder::new("f.bin", "application/octet-stream", chunk_size).expect("valid");
            for chunk in data.chunks(chunk_size as usize) {
                by_chunk.push_chunk(chunk).expect("in order");
            }
            let by_chunk = by_chunk.finish().expect("valid");

            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut sliced = ManifestBuilder::new("f.bin", "application/octet-stream", chunk_size).expect("valid");
            let mut at = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                sliced.update(&data[at..cut]).expect("fits");
                at = cut;
            }
            let sliced = sliced.finish().expect("valid");
            prop_assert_eq!(&sliced, &by_chunk);
            prop_assert_eq!(by_chunk.size(), data.len() as u64);
            for (i, chunk) in data.chunks(chunk_size as usize).enumerate() {
                prop_assert_eq!(by_chunk.verify(i as u32, chunk), Ok(()));
            }
        }

        /// Flipping any bit, or changing the length, of a chunk fails verification.
        #[test]
        fn any_corrupted_chunk_fails_verify(
            data in proptest::collection::vec(any::<u8>(), 1..40_000),
            pick in any::<prop::sample::Index>(),
            bit in 0u8..8,
            truncate in any::<bool>(),
        ) {
            let chunk_size = 1 << 14;
            let mut b = ManifestBuilder::new("f", "", chunk_size).expect("valid");
            b.update(&data).expect("fits");
            let m = b.finish().expect("valid");
            let at = pick.index(data.len());
            let index = (at / chunk_size as usize) as u32;
            let range = m.chunk_range(index).expect("exists");
            let mut chunk = data[range.start as usize..range.end as usize].to_vec();
            if truncate {
                chunk.pop();
                let is_length_error = matches!(m.verify(index, &chunk), Err(VerifyError::WrongLength { .. }));
                prop_assert!(is_length_error);
            } else {
                chunk[at % chunk_size as usize] ^= 1 << bit;
                prop_assert_eq!(m.verify(index, &chunk), Err(VerifyError::HashMismatch { index }));
            }
        }
    }

    /// Measures BLAKE3 at both candidate chunk sizes; the figures are quoted
    /// on [`DEFAULT_CHUNK_SIZE`]. Run in release:
    /// `cargo test -p shoal-share --release -- --ignored --nocapture blake3_throughput`
    #[test]
    #[ignore = "benchmark; run by hand in release mode"]
    #[cfg(not(target_arch = "wasm32"))]
    fn blake3_throughput() {
        use std::time::Instant;
        const TOTAL: usize = 1 << 30;
        for chunk_size in [256 * 1024, 1024 * 1024] {
            let chunk: Vec<u8> = (0..chunk_size).map(|i| (i * 31 % 251) as u8).collect();
            let mut sink = 0u8;
            let start = Instant::now();
            for _ in 0..TOTAL / chunk_size {
                sink ^= hash_chunk(&chunk).as_bytes()[0];
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "chunk {:>4} KiB: {:.2} GiB/s, {:.1} µs/chunk (sink {sink})",
                chunk_size / 1024,
                TOTAL as f64 / secs / f64::from(1u32 << 30),
                secs * 1e6 / (TOTAL / chunk_size) as f64,
            );
        }
    }
}
