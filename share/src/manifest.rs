//! The manifest: what a share is, and its id.
//!
//! # Encoding, version 1
//!
//! All integers are unsigned LEB128 varints in their shortest form (a
//! non-minimal varint is an error), so every manifest has exactly one
//! encoding and `encode(decode(b)) == b` for every `b` that decodes.
//!
//! | field        | bytes                                  | rule                                   |
//! |--------------|----------------------------------------|----------------------------------------|
//! | magic        | `53 48 4f 41 4c` (`"SHOAL"`)           |                                        |
//! | version      | 1 byte, `0x01`                         | `0x02`: below; others `UnsupportedVersion` |
//! | name         | varint length, then UTF-8 bytes        | 1..=1024 bytes; rules below            |
//! | media type   | varint length, then ASCII bytes        | 0..=255 bytes of `0x20..=0x7e`; empty = unknown |
//! | size         | varint                                 | file length in bytes                   |
//! | chunk size   | varint                                 | power of two in 16 KiB..=16 MiB        |
//! | chunk count  | varint                                 | `== ceil(size / chunk size)`, ≤ [`MAX_CHUNKS`] |
//! | chunk hashes | count × 32 bytes                       | BLAKE3 of each chunk, in order         |
//!
//! Nothing may follow the last hash, and the whole encoding is at most
//! [`MAX_ENCODED_LEN`] (8 MiB) long. A future version changes the version
//! byte; decoders reject versions they do not know rather than guess.
//!
//! The [`ShareId`] is BLAKE3 of this encoding. Because the encoding is
//! canonical, the id names the manifest, not just one spelling of it.
//!
//! # Names
//!
//! Names are checked, never rewritten: a name that breaks a rule is an error
//! for the sharer to see, so the name a downloader gets is byte-for-byte the
//! one that was hashed. A name must be non-empty and may not contain
//! - control characters (`char::is_control`: U+0000–U+001F, U+007F–U+009F),
//!   which terminals and logs interpret;
//! - `/` or `\`, and may not be `.` or `..`: a name is one path component, so
//!   a downloader can hand it to a save dialog without splitting it;
//! - the bidirectional embedding, override and isolate characters
//!   (U+202A–U+202E, U+2066–U+2069), which can make `cod.exe` display as
//!   `exe.doc`: the UI shows names as text, so what it shows must be what
//!   the bytes say.
//!
//! Everything else is allowed: names are UTF-8 and any script is fine.
//!
//! # Encoding, version 2: several files
//!
//! A share of several files (a folder, or a handful picked at once) is one
//! byte stream: the files' bytes concatenated in list order, cut into chunks
//! exactly like a single file (BitTorrent-style: a chunk may span file
//! boundaries, and an empty file takes no bytes). Chunks, hashes, the
//! scheduler and storage see only that stream; [`FileEntry::range`] says
//! where each file lies in it.
//!
//! | field        | bytes                                  | rule                                   |
//! |--------------|----------------------------------------|----------------------------------------|
//! | magic        | `53 48 4f 41 4c` (`"SHOAL"`)           |                                        |
//! | version      | 1 byte, `0x02`                         |                                        |
//! | name         | varint length, then UTF-8 bytes        | the share's name; rules as version 1   |
//! | file count   | varint                                 | 1..=[`MAX_FILES`]                      |
//! | files        | per file: varint path length, UTF-8 path bytes, varint size | path rules below; sorted |
//! | chunk size   | varint                                 | as version 1                           |
//! | chunk count  | varint                                 | `== ceil(sum of sizes / chunk size)`   |
//! | chunk hashes | count × 32 bytes                       | BLAKE3 of each chunk of the stream     |
//!
//! Nothing may follow the last hash, the whole is at most
//! [`MAX_ENCODED_LEN`], and the sizes may not overflow a `u64` together.
//! There is no media type: the page guesses one from each file's extension.
//!
//! # Paths
//!
//! A path is relative, its components separated by `/`, at most
//! [`MAX_PATH_LEN`] bytes. Each component follows the name rules above (so
//! no `\`, control or bidi override character, no `.` or `..`) and is at
//! most [`MAX_COMPONENT_LEN`] bytes; no component is empty (no leading,
//! trailing or doubled `/`). Files are listed in strictly increasing byte
//! order of their paths, which makes the encoding unique and rules out
//! duplicates; and no path is also a directory of another (`a` and `a/b`),
//! which no file system could hold. Like names, paths are checked, never
//! rewritten; [`FileEntry::canonical_order`] sorts a sharer's list.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::bitfield::Bitfield;
use crate::chunk::{self, ChunkHash, VerifyError};
pub use crate::limits::{MAX_COMPONENT_LEN, MAX_FILES, MAX_PATH_LEN};
use shoal_proto::varint;

/// The first bytes of every encoded manifest.
pub const MAGIC: &[u8; 5] = b"SHOAL";
/// The encoding version of a single file's manifest.
pub const VERSION: u8 = 1;
/// The encoding version of a manifest of several files with paths.
pub const VERSION_FILES: u8 = 2;
/// Longest name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 255;
/// Smallest chunk size: 16 KiB, one libp2p frame's payload.
pub const MIN_CHUNK_SIZE: u32 = 16 * 1024;
/// Largest chunk size: 16 MiB, so a chunk fits comfortably in a tab's memory.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Longest encoded manifest: 8 MiB.
pub const MAX_ENCODED_LEN: usize = 8 * 1024 * 1024;
/// Bytes reserved for everything but the hashes; at least [`MAX_HEADER_LEN`].
const HEADER_RESERVE: usize = 2048;
/// Longest possible header: magic, version, name and media type with their
/// lengths, and size, chunk size and count at their largest.
const MAX_HEADER_LEN: usize = 5 + 1 + 2 + MAX_NAME_LEN + 2 + MAX_MEDIA_TYPE_LEN + 6 + 4 + 3;
/// Most chunks a manifest may list: as many hashes as fit in
/// [`MAX_ENCODED_LEN`] beside the longest header (262,080; with 256 KiB
/// chunks, files up to ~64 GiB).
pub const MAX_CHUNKS: u32 = ((MAX_ENCODED_LEN - HEADER_RESERVE) / 32) as u32;

const _: () = assert!(MAX_HEADER_LEN <= HEADER_RESERVE);

/// Why a manifest was refused, by [`Manifest::new`] or [`Manifest::decode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("manifest is {len} bytes, more than the {max} allowed", max = MAX_ENCODED_LEN)]
    TooLarge { len: usize },
    #[error("not a shoal manifest (bad magic)")]
    BadMagic,
    #[error("unsupported manifest version {0}")]
    UnsupportedVersion(u8),
    #[error("manifest ends early")]
    Truncated,
    #[error("malformed varint in manifest")]
    BadVarint,
    #[error("{0} bytes follow the last chunk hash")]
    TrailingBytes(usize),
    #[error("name is empty")]
    NameEmpty,
    #[error("name is {len} bytes, more than {max}", max = MAX_NAME_LEN)]
    NameTooLong { len: u64 },
    #[error("name is not UTF-8")]
    NameNotUtf8,
    #[error("name contains the forbidden character {ch:?}")]
    NameForbiddenChar { ch: char },
    #[error("name may not be \".\" or \"..\"")]
    NameReserved,
    #[error("media type is {len} bytes, more than {max}", max = MAX_MEDIA_TYPE_LEN)]
    MediaTypeTooLong { len: u64 },
    #[error("media type has a byte outside printable ASCII")]
    MediaTypeInvalid,
    #[error("chunk size {0} is not a power of two between 16 KiB and 16 MiB")]
    BadChunkSize(u64),
    #[error("manifest lists {actual} chunks, but size and chunk size need {expected}")]
    ChunkCountMismatch { expected: u64, actual: u64 },
    #[error("{count} chunks is more than the {max} a manifest may list", max = MAX_CHUNKS)]
    TooManyChunks { count: u64 },
    #[error("manifest does not hash to the share id it was fetched for")]
    ShareIdMismatch,
    #[error("a share of files lists no file")]
    NoFiles,
    #[error("{count} files is more than the {max} a share may list", max = MAX_FILES)]
    TooManyFiles { count: u64 },
    #[error("path of file {index}: {error}")]
    BadPath { index: u32, error: PathError },
    #[error("file {index} is listed out of order (paths must be sorted by bytes)")]
    PathsOutOfOrder { index: u32 },
    #[error("file {index} has the same path as the one before it")]
    DuplicatePath { index: u32 },
    #[error("file {index}'s path is also a directory of another file's path")]
    FileIsDirectory { index: u32 },
    #[error("the files' sizes add up to more than 2^64 bytes")]
    SizeOverflow,
    #[error("the files add up to {expected} bytes, but {actual} were hashed")]
    SizeMismatch { expected: u64, actual: u64 },
}

/// Why a file's path was refused (module docs, "Paths").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path is {len} bytes, more than {max}", max = MAX_PATH_LEN)]
    TooLong { len: u64 },
    #[error("path is not UTF-8")]
    NotUtf8,
    #[error("path starts with \"/\"")]
    Absolute,
    #[error("path has an empty component (a doubled or trailing \"/\")")]
    EmptyComponent,
    #[error("path has a \".\" or \"..\" component")]
    DotComponent,
    #[error("path component is {len} bytes, more than {max}", max = MAX_COMPONENT_LEN)]
    ComponentTooLong { len: usize },
    #[error("path contains the forbidden character {ch:?}")]
    ForbiddenChar { ch: char },
}

/// One file of a share: its path and size, and where its bytes lie in the
/// share's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    path: String,
    size: u64,
    offset: u64,
}

impl FileEntry {
    /// A file of `size` bytes at `path`; its offset is set when a manifest
    /// is assembled.
    pub fn new(path: impl Into<String>, size: u64) -> Self {
        Self {
            path: path.into(),
            size,
            offset: 0,
        }
    }
    /// Relative path, `/`-separated (module docs, "Paths").
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Where the file starts in the share's byte stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The file's bytes within the share's byte stream.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.size
    }

    /// Checks a sharer's list and sorts it into the order a manifest lists
    /// files in (strictly increasing bytes of the path), which is also the
    /// order their bytes must be hashed in.
    pub fn canonical_order(mut files: Vec<FileEntry>) -> Result<Vec<FileEntry>, ManifestError> {
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        validate_files(&mut files)?;
        Ok(files)
    }
}

/// Describes one shared file: its name, size and media type, and how to check
/// each chunk. Always valid: every constructor checks the rules above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    version: u8,
    name: String,
    size: u64,
    media_type: String,
    chunk_size: u32,
    chunks: Vec<ChunkHash>,
    /// Version 1: one entry, `name` at offset 0. Version 2: as listed.
    files: Vec<FileEntry>,
}

impl Manifest {
    /// Checks and assembles a manifest. Most callers want
    /// [`ManifestBuilder`](crate::ManifestBuilder), which computes `chunks`.
    pub fn new(
        name: String,
        media_type: String,
        size: u64,
        chunk_size: u32,
        chunks: Vec<ChunkHash>,
    ) -> Result<Self, ManifestError> {
        validate_name(name.as_bytes())?;
        validate_media_type(media_type.as_bytes())?;
        validate_chunk_size(u64::from(chunk_size))?;
        validate_chunk_count(size, chunk_size, chunks.len() as u64)?;
        Ok(Self {
            version: VERSION,
            files: vec![FileEntry::new(name.clone(), size)],
            name,
            size,
            media_type,
            chunk_size,
            chunks,
        })
    }

    /// Checks and assembles a manifest of several files (version 2):
    /// `files` in canonical order ([`FileEntry::canonical_order`]), `chunks`
    /// the hashes of their concatenated bytes. Most callers want
    /// [`ManifestBuilder::with_files`](crate::ManifestBuilder::with_files).
    pub fn with_files(
        name: String,
        files: Vec<FileEntry>,
        chunk_size: u32,
        chunks: Vec<ChunkHash>,
    ) -> Result<Self, ManifestError> {
        validate_name(name.as_bytes())?;
        let mut files = files;
        let size = validate_files(&mut files)?;
        validate_chunk_size(u64::from(chunk_size))?;
        validate_chunk_count(size, chunk_size, chunks.len() as u64)?;
        let m = Self {
            version: VERSION_FILES,
            name,
            size,
            media_type: String::new(),
            chunk_size,
            chunks,
            files,
        };
        let len = m.encoded_len();
        if len > MAX_ENCODED_LEN {
            return Err(ManifestError::TooLarge { len });
        }
        Ok(m)
    }

    /// Encoding version: [`VERSION`] for one file, [`VERSION_FILES`] for several.
    pub fn version(&self) -> u8 {
        self.version
    }
    /// The files and where each lies in the byte stream: one, named
    /// [`name`](Self::name), for a version 1 manifest.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }
    /// Whether this is a share of files with paths (version 2), even of one.
    pub fn has_paths(&self) -> bool {
        self.version == VERSION_FILES
    }
    /// The chunks that hold bytes of file `index` (none for an empty file).
    pub fn file_chunks(&self, index: usize) -> Range<u32> {
        let Some(file) = self.files.get(index) else {
            return 0..0;
        };
        if file.size == 0 {
            return 0..0;
        }
        let cs = u64::from(self.chunk_size);
        // Both below `chunk_count`, which is a u32.
        let first = (file.offset / cs) as u32;
        let last = ((file.offset + file.size - 1) / cs) as u32;
        first..last + 1
    }
    /// The chunks to fetch for the files `pick` selects: those holding any
    /// byte of them. Give it to [`Scheduler::set_wanted`](crate::Scheduler::set_wanted).
    pub fn wanted_chunks(&self, mut pick: impl FnMut(&FileEntry) -> bool) -> Bitfield {
        let mut wanted = Bitfield::new(self.chunk_count());
        for (i, file) in self.files.iter().enumerate() {
            if pick(file) {
                for chunk in self.file_chunks(i) {
                    // In range: `file_chunks` is within the chunk count.
                    let _ = wanted.set(chunk);
                }
            }
        }
        wanted
    }
    /// Share name: one path component, checked as described in the module
    /// docs; for version 2 the folder's (or a chosen) name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Length in bytes of the share's byte stream (all files together).
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Media type as the sharer's browser reported it; empty if unknown.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }
    /// Bytes per chunk (the last may be shorter).
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }
    /// Chunk hashes in file order.
    pub fn chunks(&self) -> &[ChunkHash] {
        &self.chunks
    }
    /// Number of chunks (at most [`MAX_CHUNKS`], so it fits in a `u32`).
    pub fn chunk_count(&self) -> u32 {
        self.chunks.len() as u32
    }

    /// Byte range of chunk `index` within the file.
    pub fn chunk_range(&self, index: u32) -> Option<Range<u64>> {
        chunk::chunk_range(self.size, self.chunk_size, u64::from(index))
    }

    /// Length of chunk `index`.
    pub fn chunk_len(&self, index: u32) -> Option<u32> {
        // A chunk is at most `chunk_size` long, which is a u32.
        self.chunk_range(index).map(|r| (r.end - r.start) as u32)
    }

    /// Checks that `bytes` is chunk `index`: its length, then its hash.
    pub fn verify(&self, index: u32, bytes: &[u8]) -> Result<(), VerifyError> {
        let (Some(expected_hash), Some(expected_len)) =
            (self.chunks.get(index as usize), self.chunk_len(index))
        else {
            return Err(VerifyError::NoSuchChunk {
                index,
                count: self.chunk_count(),
            });
        };
        if bytes.len() != expected_len as usize {
            return Err(VerifyError::WrongLength {
                index,
                expected: expected_len,
                actual: bytes.len(),
            });
        }
        if chunk::hash_chunk(bytes) != *expected_hash {
            return Err(VerifyError::HashMismatch { index });
        }
        Ok(())
    }

    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_HEADER_LEN + 32 * self.chunks.len());
        out.extend_from_slice(MAGIC);
        out.push(self.version);
        varint::encode(self.name.len() as u64, &mut out);
        out.extend_from_slice(self.name.as_bytes());
        if self.version == VERSION_FILES {
            varint::encode(self.files.len() as u64, &mut out);
            for file in &self.files {
                varint::encode(file.path.len() as u64, &mut out);
                out.extend_from_slice(file.path.as_bytes());
                varint::encode(file.size, &mut out);
            }
        } else {
            varint::encode(self.media_type.len() as u64, &mut out);
            out.extend_from_slice(self.media_type.as_bytes());
            varint::encode(self.size, &mut out);
        }
        varint::encode(u64::from(self.chunk_size), &mut out);
        varint::encode(self.chunks.len() as u64, &mut out);
        for hash in &self.chunks {
            out.extend_from_slice(hash.as_bytes());
        }
        out
    }

    fn encoded_len(&self) -> usize {
        // Bytes of a varint: 7 bits each.
        let vl = |n: u64| (64 - n.leading_zeros()).max(1).div_ceil(7) as usize;
        let mut len = MAGIC.len() + 1 + vl(self.name.len() as u64) + self.name.len();
        if self.version == VERSION_FILES {
            len += vl(self.files.len() as u64);
            for file in &self.files {
                len += vl(file.path.len() as u64) + file.path.len() + vl(file.size);
            }
        } else {
            len += vl(self.media_type.len() as u64) + self.media_type.len() + vl(self.size);
        }
        len + vl(u64::from(self.chunk_size)) + vl(self.chunks.len() as u64) + 32 * self.chunks.len()
    }

    /// Decodes and checks an encoded manifest. Strict: anything [`encode`]
    /// would not have produced is an error, including trailing bytes.
    ///
    /// [`encode`]: Self::encode
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(ManifestError::TooLarge { len: bytes.len() });
        }
        let mut r = Reader { buf: bytes };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(ManifestError::BadMagic);
        }
        let version = r.take(1)?[0];
        if version != VERSION && version != VERSION_FILES {
            return Err(ManifestError::UnsupportedVersion(version));
        }

        let name_len = r.varint()?;
        if name_len > MAX_NAME_LEN as u64 {
            return Err(ManifestError::NameTooLong { len: name_len });
        }
        let name = r.take(name_len as usize)?;
        validate_name(name)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| ManifestError::NameNotUtf8)?;

        let (media_type, size, files) = if version == VERSION_FILES {
            let mut files = r.files()?;
            let size = validate_files(&mut files)?;
            (String::new(), size, files)
        } else {
            let (media_type, size) = r.media_type_and_size()?;
            let files = vec![FileEntry::new(name.clone(), size)];
            (media_type, size, files)
        };
        let chunk_size = validate_chunk_size(r.varint()?)?;
        let count = r.varint()?;
        validate_chunk_count(size, chunk_size, count)?;
        // `count <= MAX_CHUNKS`, so this neither overflows nor over-allocates.
        let hash_bytes = count as usize * 32;
        if r.buf.len() < hash_bytes {
            return Err(ManifestError::Truncated);
        }
        if r.buf.len() > hash_bytes {
            return Err(ManifestError::TrailingBytes(r.buf.len() - hash_bytes));
        }
        let chunks = r
            .buf
            .chunks_exact(32)
            .map(|h| {
                let mut raw = [0; 32];
                raw.copy_from_slice(h);
                ChunkHash::from_bytes(raw)
            })
            .collect();
        Ok(Self {
            version,
            name,
            size,
            media_type,
            chunk_size,
            chunks,
            files,
        })
    }

    /// Decodes a manifest fetched for `id`, refusing it unless its bytes hash
    /// to `id`. This is how a downloader should take a manifest from a peer.
    pub fn decode_verified(bytes: &[u8], id: &ShareId) -> Result<Self, ManifestError> {
        if ShareId::of_encoded(bytes) != *id {
            return Err(ManifestError::ShareIdMismatch);
        }
        Self::decode(bytes)
    }

    /// BLAKE3 of [`encode`](Self::encode).
    pub fn share_id(&self) -> ShareId {
        ShareId::of_encoded(&self.encode())
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ManifestError> {
        if self.buf.len() < n {
            return Err(ManifestError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, ManifestError> {
        match varint::decode(self.buf) {
            Ok((value, n)) => {
                self.buf = &self.buf[n..];
                Ok(value)
            }
            Err(varint::Error::Insufficient) => Err(ManifestError::Truncated),
            Err(_) => Err(ManifestError::BadVarint),
        }
    }

    /// Version 1's media type and file size.
    fn media_type_and_size(&mut self) -> Result<(String, u64), ManifestError> {
        let media_len = self.varint()?;
        if media_len > MAX_MEDIA_TYPE_LEN as u64 {
            return Err(ManifestError::MediaTypeTooLong { len: media_len });
        }
        let media_type = self.take(media_len as usize)?;
        validate_media_type(media_type)?;
        let media_type =
            String::from_utf8(media_type.to_vec()).map_err(|_| ManifestError::MediaTypeInvalid)?;
        Ok((media_type, self.varint()?))
    }

    /// Version 2's file list, each path checked on its own (the list as a
    /// whole by `validate_files`).
    fn files(&mut self) -> Result<Vec<FileEntry>, ManifestError> {
        let count = self.varint()?;
        if count == 0 {
            return Err(ManifestError::NoFiles);
        }
        if count > u64::from(MAX_FILES) {
            return Err(ManifestError::TooManyFiles { count });
        }
        // `count <= MAX_FILES`: a small allocation whatever the input.
        let mut files = Vec::with_capacity(count as usize);
        for index in 0..count as u32 {
            let bad = |error| ManifestError::BadPath { index, error };
            let len = self.varint()?;
            if len > MAX_PATH_LEN as u64 {
                return Err(bad(PathError::TooLong { len }));
            }
            let path = self.take(len as usize)?;
            validate_path(path).map_err(bad)?;
            let path = String::from_utf8(path.to_vec()).map_err(|_| bad(PathError::NotUtf8))?;
            let size = self.varint()?;
            files.push(FileEntry::new(path, size));
        }
        Ok(files)
    }
}

/// Checks one path on its own (module docs, "Paths").
pub fn validate_path(path: &[u8]) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong {
            len: path.len() as u64,
        });
    }
    let path = std::str::from_utf8(path).map_err(|_| PathError::NotUtf8)?;
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    for component in path.split('/') {
        if component.len() > MAX_COMPONENT_LEN {
            return Err(PathError::ComponentTooLong {
                len: component.len(),
            });
        }
        match validate_name(component.as_bytes()) {
            Ok(()) => {}
            Err(ManifestError::NameEmpty) => return Err(PathError::EmptyComponent),
            Err(ManifestError::NameReserved) => return Err(PathError::DotComponent),
            Err(ManifestError::NameForbiddenChar { ch }) => {
                return Err(PathError::ForbiddenChar { ch })
            }
            // Length and UTF-8 were checked above for the whole path.
            Err(_) => return Err(PathError::NotUtf8),
        }
    }
    Ok(())
}

/// Checks a list of files as a whole: a count in 1..=MAX_FILES, each path
/// valid, strictly increasing order, no file that is another's directory,
/// sizes that add up; sets each file's offset and returns the total size.
fn validate_files(files: &mut [FileEntry]) -> Result<u64, ManifestError> {
    if files.is_empty() {
        return Err(ManifestError::NoFiles);
    }
    if files.len() > MAX_FILES as usize {
        return Err(ManifestError::TooManyFiles {
            count: files.len() as u64,
        });
    }
    let mut offset = 0u64;
    for (index, file) in files.iter_mut().enumerate() {
        // `index < MAX_FILES`, a u32.
        let index = index as u32;
        validate_path(file.path.as_bytes())
            .map_err(|error| ManifestError::BadPath { index, error })?;
        file.offset = offset;
        offset = offset
            .checked_add(file.size)
            .ok_or(ManifestError::SizeOverflow)?;
    }
    for (index, pair) in files.windows(2).enumerate() {
        let index = index as u32 + 1;
        match pair[0].path.as_bytes().cmp(pair[1].path.as_bytes()) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => return Err(ManifestError::DuplicatePath { index }),
            std::cmp::Ordering::Greater => return Err(ManifestError::PathsOutOfOrder { index }),
        }
    }
    // A file that is also a directory: some path's proper prefix ending
    // before a `/` is itself a listed path. Sorted, so a binary search each.
    for file in files.iter() {
        for (at, _) in file.path.match_indices('/') {
            let dir = &file.path.as_bytes()[..at];
            if let Ok(index) = files.binary_search_by(|f| f.path.as_bytes().cmp(dir)) {
                return Err(ManifestError::FileIsDirectory {
                    index: index as u32,
                });
            }
        }
    }
    Ok(offset)
}

pub(crate) fn validate_name(name: &[u8]) -> Result<(), ManifestError> {
    if name.is_empty() {
        return Err(ManifestError::NameEmpty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ManifestError::NameTooLong {
            len: name.len() as u64,
        });
    }
    let name = std::str::from_utf8(name).map_err(|_| ManifestError::NameNotUtf8)?;
    if name == "." || name == ".." {
        return Err(ManifestError::NameReserved);
    }
    if let Some(ch) = name.chars().find(|&c| {
        c.is_control()
            || c == '/'
            || c == '\\'
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }) {
        return Err(ManifestError::NameForbiddenChar { ch });
    }
    Ok(())
}

pub(crate) fn validate_media_type(media_type: &[u8]) -> Result<(), ManifestError> {
    if media_type.len() > MAX_MEDIA_TYPE_LEN {
        return Err(ManifestError::MediaTypeTooLong {
            len: media_type.len() as u64,
        });
    }
    if !media_type.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(ManifestError::MediaTypeInvalid);
    }
    Ok(())
}

pub(crate) fn validate_chunk_size(chunk_size: u64) -> Result<u32, ManifestError> {
    if chunk_size.is_power_of_two()
        && (u64::from(MIN_CHUNK_SIZE)..=u64::from(MAX_CHUNK_SIZE)).contains(&chunk_size)
    {
        Ok(chunk_size as u32)
    } else {
        Err(ManifestError::BadChunkSize(chunk_size))
    }
}

fn validate_chunk_count(size: u64, chunk_size: u32, count: u64) -> Result<(), ManifestError> {
    let expected = chunk::chunk_count(size, chunk_size);
    if expected > u64::from(MAX_CHUNKS) {
        return Err(ManifestError::TooManyChunks { count: expected });
    }
    if count != expected {
        return Err(ManifestError::ChunkCountMismatch {
            expected,
            actual: count,
        });
    }
    Ok(())
}

/// A share's id: BLAKE3 of its encoded manifest.
///
/// Text form (for share links): the 32 bytes in RFC 4648 base32, lower case,
/// unpadded — 52 characters of `a-z2-7`. Parsing also takes upper case, and
/// rejects a last character whose 4 unused low bits are not zero, so each id
/// has one lower-case spelling.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareId([u8; 32]);

/// Length of a [`ShareId`]'s text form.
pub const SHARE_ID_TEXT_LEN: usize = 52;
/// RFC 4648 base32, lower case, without padding (the `base32` crate).
const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648Lower { padding: false };

impl ShareId {
    /// Wraps raw id bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw id bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id of an encoded manifest, without decoding it.
    pub fn of_encoded(encoded: &[u8]) -> Self {
        Self(*blake3::hash(encoded).as_bytes())
    }
}

impl fmt::Display for ShareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(BASE32, &self.0))
    }
}

impl fmt::Debug for ShareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareId({self})")
    }
}

/// Why a string is not a [`ShareId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareIdParseError {
    #[error("share id must be {SHARE_ID_TEXT_LEN} characters, got {0} bytes")]
    WrongLength(usize),
    #[error("share id contains {0:?}, which is not base32")]
    InvalidChar(char),
    #[error("share id's last character has non-zero padding bits")]
    NonCanonical,
}

impl FromStr for ShareId {
    type Err = ShareIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != SHARE_ID_TEXT_LEN {
            return Err(ShareIdParseError::WrongLength(s.len()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !matches!(c.to_ascii_lowercase(), 'a'..='z' | '2'..='7'))
        {
            return Err(ShareIdParseError::InvalidChar(c));
        }
        let lower = s.to_ascii_lowercase();
        let bytes: [u8; 32] = base32::decode(BASE32, &lower)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(ShareIdParseError::NonCanonical)?;
        // 52 characters carry 260 bits: the last one's 4 unused low bits
        // must be zero, so that each id has one spelling.
        if base32::encode(BASE32, &bytes) != lower {
            return Err(ShareIdParseError::NonCanonical);
        }
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::hash_chunk;
    use proptest::prelude::*;

    fn tiny() -> Manifest {
        // 20000 bytes in 16 KiB chunks: 2 chunks, the second 3616 bytes.
        Manifest::new(
            "hi.txt".into(),
            "text/plain".into(),
            20_000,
            MIN_CHUNK_SIZE,
            vec![
                ChunkHash::from_bytes([0x11; 32]),
                ChunkHash::from_bytes([0x22; 32]),
            ],
        )
        .expect("valid")
    }

    #[test]
    fn byte_exact_vector() {
        let m = tiny();
        let mut expected = Vec::new();
        expected.extend_from_slice(b"SHOAL");
        expected.push(0x01);
        expected.push(6);
        expected.extend_from_slice(b"hi.txt");
        expected.push(10);
        expected.extend_from_slice(b"text/plain");
        expected.extend_from_slice(&[0xa0, 0x9c, 0x01]); // 20000
        expected.extend_from_slice(&[0x80, 0x80, 0x01]); // 16384
        expected.push(2);
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[0x22; 32]);
        assert_eq!(m.encode(), expected);
        assert_eq!(m.encode().len(), 95);
        assert_eq!(Manifest::decode(&expected), Ok(m.clone()));
        let id = m.share_id();
        assert_eq!(id.as_bytes(), blake3::hash(&expected).as_bytes());
        // Cross-checked with Python's `blake3` package and `base64.b32encode`.
        assert_eq!(
            ChunkHash::from_bytes(*id.as_bytes()).to_string(),
            "bcdc5a2b03cad87e6c3ae6022702a4d3b196f0d743ebe69bd6523b24d25d2621"
        );
        assert_eq!(
            id.to_string(),
            "xtofukydzlmh43b24ybcoave2oyzn4gxipv6ng6wki5sjus5eyqq"
        );
        assert_eq!(id.to_string().parse::<ShareId>(), Ok(id));
    }

    #[test]
    fn empty_file_has_no_chunks() {
        let m =
            Manifest::new("empty".into(), String::new(), 0, MIN_CHUNK_SIZE, vec![]).expect("valid");
        assert_eq!(m.chunk_count(), 0);
        assert_eq!(Manifest::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn verify_checks_index_length_and_hash() {
        let data = vec![7u8; 20_000];
        let m = Manifest::new(
            "x".into(),
            String::new(),
            20_000,
            MIN_CHUNK_SIZE,
            vec![hash_chunk(&data[..16_384]), hash_chunk(&data[16_384..])],
        )
        .expect("valid");
        assert_eq!(m.verify(0, &data[..16_384]), Ok(()));
        assert_eq!(m.verify(1, &data[16_384..]), Ok(()));
        assert_eq!(
            m.verify(2, &[]),
            Err(VerifyError::NoSuchChunk { index: 2, count: 2 })
        );
        assert_eq!(
            m.verify(1, &data[..16_384]),
            Err(VerifyError::WrongLength {
                index: 1,
                expected: 3616,
                actual: 16_384
            })
        );
        let mut bad = data[16_384..].to_vec();
        bad[0] ^= 1;
        assert_eq!(
            m.verify(1, &bad),
            Err(VerifyError::HashMismatch { index: 1 })
        );
    }

    #[test]
    fn names_are_checked_not_rewritten() {
        for (name, err) in [
            ("", ManifestError::NameEmpty),
            (".", ManifestError::NameReserved),
            ("..", ManifestError::NameReserved),
            ("a/b", ManifestError::NameForbiddenChar { ch: '/' }),
            ("a\\b", ManifestError::NameForbiddenChar { ch: '\\' }),
            ("a\nb", ManifestError::NameForbiddenChar { ch: '\n' }),
            ("a\u{0}b", ManifestError::NameForbiddenChar { ch: '\0' }),
            (
                "a\u{85}b",
                ManifestError::NameForbiddenChar { ch: '\u{85}' },
            ),
            (
                "cod\u{202e}cod.exe",
                ManifestError::NameForbiddenChar { ch: '\u{202e}' },
            ),
        ] {
            assert_eq!(validate_name(name.as_bytes()), Err(err), "{name:?}");
        }
        assert_eq!(validate_name(&[0xff]), Err(ManifestError::NameNotUtf8));
        assert_eq!(
            validate_name(&[b'a'; 1025]),
            Err(ManifestError::NameTooLong { len: 1025 })
        );
        for ok in [
            "a",
            "...",
            ".hidden",
            "Привет мир.pdf",
            "日本語 ファイル",
            "a b",
            &"é".repeat(512),
        ] {
            assert_eq!(validate_name(ok.as_bytes()), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn decode_rejects_each_broken_field() {
        let good = tiny().encode();
        let cases: Vec<(Vec<u8>, ManifestError)> = vec![
            (b"SHOAM".to_vec(), ManifestError::BadMagic),
            (
                [b"SHOAL".as_slice(), &[3]].concat(),
                ManifestError::UnsupportedVersion(3),
            ),
            (good[..good.len() - 1].to_vec(), ManifestError::Truncated),
            (
                [good.as_slice(), &[0]].concat(),
                ManifestError::TrailingBytes(1),
            ),
            (
                [b"SHOAL\x01\x80\x00".as_slice()].concat(),
                ManifestError::BadVarint,
            ),
            (
                [b"SHOAL\x01\x00".as_slice()].concat(),
                ManifestError::NameEmpty,
            ),
            (
                [b"SHOAL\x01\x81\x08".as_slice()].concat(),
                ManifestError::NameTooLong { len: 1025 },
            ),
            (
                [b"SHOAL\x01\x01/".as_slice()].concat(),
                ManifestError::NameForbiddenChar { ch: '/' },
            ),
            (
                [b"SHOAL\x01\x01a\x01\x09".as_slice()].concat(),
                ManifestError::MediaTypeInvalid,
            ),
            // size 0, chunk size 1000
            (
                [b"SHOAL\x01\x01a\x00\x00\xe8\x07\x00".as_slice()].concat(),
                ManifestError::BadChunkSize(1000),
            ),
            // size 1, chunk size 16 KiB, zero chunks
            (
                [b"SHOAL\x01\x01a\x00\x01\x80\x80\x01\x00".as_slice()].concat(),
                ManifestError::ChunkCountMismatch {
                    expected: 1,
                    actual: 0,
                },
            ),
            (
                vec![0; MAX_ENCODED_LEN + 1],
                ManifestError::TooLarge {
                    len: MAX_ENCODED_LEN + 1,
                },
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(Manifest::decode(&bytes), Err(err));
        }
        // A size needing more than MAX_CHUNKS chunks is refused before any
        // hash is read or allocated.
        let mut huge = b"SHOAL\x01\x01a\x00".to_vec();
        varint::encode(u64::MAX, &mut huge);
        varint::encode(u64::from(MIN_CHUNK_SIZE), &mut huge);
        varint::encode(1 << 50, &mut huge);
        assert_eq!(
            Manifest::decode(&huge),
            Err(ManifestError::TooManyChunks { count: 1 << 50 })
        );
    }

    #[test]
    fn largest_manifest_fits_the_cap() {
        let chunk_size = MAX_CHUNK_SIZE;
        let size = u64::from(MAX_CHUNKS) * u64::from(chunk_size);
        let m = Manifest::new(
            "n".repeat(MAX_NAME_LEN),
            "t".repeat(MAX_MEDIA_TYPE_LEN),
            size,
            chunk_size,
            vec![ChunkHash::from_bytes([0; 32]); MAX_CHUNKS as usize],
        )
        .expect("valid");
        let encoded = m.encode();
        assert!(encoded.len() <= MAX_ENCODED_LEN, "{}", encoded.len());
        assert!(encoded.len() - 32 * MAX_CHUNKS as usize <= MAX_HEADER_LEN);
        assert_eq!(Manifest::decode(&encoded).map(|d| d == m), Ok(true));
        let one_more = Manifest::new("n".into(), String::new(), size + 1, chunk_size, vec![]);
        assert_eq!(
            one_more,
            Err(ManifestError::TooManyChunks {
                count: u64::from(MAX_CHUNKS) + 1
            })
        );
    }

    #[test]
    fn decode_verified_checks_the_id() {
        let m = tiny();
        let bytes = m.encode();
        assert_eq!(Manifest::decode_verified(&bytes, &m.share_id()), Ok(m));
        assert_eq!(
            Manifest::decode_verified(&bytes, &ShareId::from_bytes([0; 32])),
            Err(ManifestError::ShareIdMismatch)
        );
    }

    #[test]
    fn share_id_text_form() {
        let zero = ShareId::from_bytes([0; 32]);
        assert_eq!(zero.to_string(), "a".repeat(52));
        let ones = ShareId::from_bytes([0xff; 32]);
        // 51 full groups, then one data bit and four zero bits: 0b10000 = 'q'.
        assert_eq!(ones.to_string(), format!("{}q", "7".repeat(51)));
        assert_eq!(ones.to_string().to_uppercase().parse(), Ok(ones));
        assert_eq!(
            format!("{}r", "7".repeat(51)).parse::<ShareId>(),
            Err(ShareIdParseError::NonCanonical)
        );
        assert_eq!(
            "abc".parse::<ShareId>(),
            Err(ShareIdParseError::WrongLength(3))
        );
        assert_eq!(
            format!("{}1", "a".repeat(51)).parse::<ShareId>(),
            Err(ShareIdParseError::InvalidChar('1'))
        );
        // Multi-byte characters count as their UTF-8 length and never panic.
        assert!(format!("{}é", "a".repeat(50)).parse::<ShareId>().is_err());
    }

    /// Three files, 20000 + 0 + 13000 bytes in 16 KiB chunks: chunk 0 is
    /// `a/x`'s start, chunk 1 spans `a/x`, the empty `a/y` and `b`, chunk 2
    /// is the rest of `b` (33000 bytes).
    fn tree() -> Manifest {
        let files = FileEntry::canonical_order(vec![
            FileEntry::new("b", 13_000),
            FileEntry::new("a/y", 0),
            FileEntry::new("a/x", 20_000),
        ])
        .expect("valid");
        Manifest::with_files(
            "dir".into(),
            files,
            MIN_CHUNK_SIZE,
            vec![
                ChunkHash::from_bytes([0x11; 32]),
                ChunkHash::from_bytes([0x22; 32]),
                ChunkHash::from_bytes([0x33; 32]),
            ],
        )
        .expect("valid")
    }

    #[test]
    fn byte_exact_vector_v2() {
        let m = tree();
        let mut expected = Vec::new();
        expected.extend_from_slice(b"SHOAL");
        expected.push(0x02);
        expected.push(3);
        expected.extend_from_slice(b"dir");
        expected.push(3); // files
        expected.push(3);
        expected.extend_from_slice(b"a/x");
        expected.extend_from_slice(&[0xa0, 0x9c, 0x01]); // 20000
        expected.push(3);
        expected.extend_from_slice(b"a/y");
        expected.push(0);
        expected.push(1);
        expected.extend_from_slice(b"b");
        expected.extend_from_slice(&[0xc8, 0x65]); // 13000
        expected.extend_from_slice(&[0x80, 0x80, 0x01]); // 16384
        expected.push(3);
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[0x22; 32]);
        expected.extend_from_slice(&[0x33; 32]);
        assert_eq!(m.encode(), expected);
        assert_eq!(m.encoded_len(), expected.len());
        assert_eq!(Manifest::decode(&expected), Ok(m.clone()));
        assert_eq!(m.version(), VERSION_FILES);
        assert!(m.has_paths());
        assert_eq!(m.size(), 33_000);
        let ranges: Vec<_> = m.files().iter().map(|f| (f.path(), f.range())).collect();
        assert_eq!(
            ranges,
            [
                ("a/x", 0..20_000),
                ("a/y", 20_000..20_000),
                ("b", 20_000..33_000)
            ]
        );
        assert_eq!(m.file_chunks(0), 0..2);
        assert_eq!(m.file_chunks(1), 0..0);
        assert_eq!(m.file_chunks(2), 1..3);
        assert_eq!(m.file_chunks(3), 0..0);
        let only_b = m.wanted_chunks(|f| f.path() == "b");
        assert_eq!(only_b.iter_ones().collect::<Vec<_>>(), [1, 2]);
        let only_y = m.wanted_chunks(|f| f.path() == "a/y");
        assert_eq!(only_y.count_ones(), 0);
        // Version 1 still reads as one file named like the share.
        let v1 = tiny();
        assert!(!v1.has_paths());
        assert_eq!(v1.files(), [FileEntry::new("hi.txt", 20_000)]);
        assert_eq!(v1.file_chunks(0), 0..2);
        assert_eq!(v1.encoded_len(), v1.encode().len());
    }

    /// A version 2 encoding of `files` (paths and sizes as given, unchecked)
    /// in 16 KiB chunks, with zero hashes.
    fn raw_v2(files: &[(&str, u64)]) -> Vec<u8> {
        let mut out = b"SHOAL\x02\x01n".to_vec();
        varint::encode(files.len() as u64, &mut out);
        let mut total = 0u64;
        for (path, size) in files {
            varint::encode(path.len() as u64, &mut out);
            out.extend_from_slice(path.as_bytes());
            varint::encode(*size, &mut out);
            total = total.saturating_add(*size);
        }
        varint::encode(u64::from(MIN_CHUNK_SIZE), &mut out);
        let count = chunk::chunk_count(total, MIN_CHUNK_SIZE).min(4);
        varint::encode(count, &mut out);
        out.extend(std::iter::repeat_n(0u8, 32 * count as usize));
        out
    }

    #[test]
    fn hostile_paths_are_refused_on_build_and_decode() {
        let long_component = "c".repeat(MAX_COMPONENT_LEN + 1);
        let long_path = ["d"; MAX_PATH_LEN / 2 + 1].join("/");
        let cases: Vec<(&str, PathError)> = vec![
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("a//b", PathError::EmptyComponent),
            ("a/", PathError::EmptyComponent),
            ("../x", PathError::DotComponent),
            ("a/../../x", PathError::DotComponent),
            ("./x", PathError::DotComponent),
            ("a/.", PathError::DotComponent),
            ("a\\..\\x", PathError::ForbiddenChar { ch: '\\' }),
            ("C:\\x", PathError::ForbiddenChar { ch: '\\' }),
            ("a/b\nc", PathError::ForbiddenChar { ch: '\n' }),
            ("a\u{0}", PathError::ForbiddenChar { ch: '\0' }),
            (
                "x/cod\u{202e}fdp.exe",
                PathError::ForbiddenChar { ch: '\u{202e}' },
            ),
            ("x/\u{2066}a", PathError::ForbiddenChar { ch: '\u{2066}' }),
            (
                &long_component,
                PathError::ComponentTooLong {
                    len: MAX_COMPONENT_LEN + 1,
                },
            ),
            (
                &long_path,
                PathError::TooLong {
                    len: long_path.len() as u64,
                },
            ),
        ];
        for (path, error) in cases {
            let err = ManifestError::BadPath { index: 0, error };
            assert_eq!(
                FileEntry::canonical_order(vec![FileEntry::new(path, 1)]),
                Err(err.clone()),
                "{path:?}"
            );
            // The same path in an encoding, as a peer would send it.
            assert_eq!(
                Manifest::decode(&raw_v2(&[(path, 1)])),
                Err(err),
                "{path:?}"
            );
        }
        let not_utf8 = b"SHOAL\x02\x01n\x01\x01\xff\x00\x80\x80\x01\x00";
        assert_eq!(
            Manifest::decode(not_utf8),
            Err(ManifestError::BadPath {
                index: 0,
                error: PathError::NotUtf8
            })
        );
        assert_eq!(
            Manifest::decode(b"SHOAL\x02\x01n\x00"),
            Err(ManifestError::NoFiles)
        );
        for ok in ["a", "a/b/c", "Привет/мир.txt", ".hidden/...", "a b/日本語"] {
            assert_eq!(validate_path(ok.as_bytes()), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn file_lists_are_checked_as_a_whole() {
        let list = |paths: &[&str]| {
            FileEntry::canonical_order(paths.iter().map(|p| FileEntry::new(*p, 1)).collect())
        };
        assert_eq!(list(&[]), Err(ManifestError::NoFiles));
        assert_eq!(
            list(&["a", "a"]),
            Err(ManifestError::DuplicatePath { index: 1 })
        );
        assert_eq!(
            list(&["a/b", "a"]),
            Err(ManifestError::FileIsDirectory { index: 0 })
        );
        assert_eq!(
            list(&["x/a", "x/a!", "x/a/b"]),
            Err(ManifestError::FileIsDirectory { index: 0 })
        );
        assert!(list(&["a!", "a/b", "a.txt", "ab"]).is_ok());
        let many: Vec<String> = (0..=MAX_FILES).map(|i| format!("{i:05}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            list(&many),
            Err(ManifestError::TooManyFiles {
                count: u64::from(MAX_FILES) + 1
            })
        );

        // Decoding refuses what building would have refused or sorted.
        for (files, err) in [
            (
                vec![("b", 1), ("a", 1)],
                ManifestError::PathsOutOfOrder { index: 1 },
            ),
            (
                vec![("a", 1), ("a", 1)],
                ManifestError::DuplicatePath { index: 1 },
            ),
            (
                vec![("a", 1), ("a/b", 1)],
                ManifestError::FileIsDirectory { index: 0 },
            ),
            (vec![("a", u64::MAX), ("b", 1)], ManifestError::SizeOverflow),
        ] {
            assert_eq!(Manifest::decode(&raw_v2(&files)), Err(err), "{files:?}");
        }
        let mut too_many = b"SHOAL\x02\x01n".to_vec();
        varint::encode(u64::from(MAX_FILES) + 1, &mut too_many);
        assert_eq!(
            Manifest::decode(&too_many),
            Err(ManifestError::TooManyFiles {
                count: u64::from(MAX_FILES) + 1
            })
        );
        // Unsorted input to the checked constructor is an error, not sorted
        // silently: the bytes were hashed in the given order.
        assert_eq!(
            Manifest::with_files(
                "n".into(),
                vec![FileEntry::new("b", 0), FileEntry::new("a", 0)],
                MIN_CHUNK_SIZE,
                vec![]
            ),
            Err(ManifestError::PathsOutOfOrder { index: 1 })
        );
        // Paths that make the manifest larger than the cap (9000 × ~3.8 KB).
        let deep = vec!["p".repeat(MAX_COMPONENT_LEN - 5); 15].join("/");
        let long: Vec<FileEntry> = (0..9000)
            .map(|i| FileEntry::new(format!("{i:04}/{deep}"), 0))
            .collect();
        let long = FileEntry::canonical_order(long).expect("valid paths");
        assert!(matches!(
            Manifest::with_files("n".into(), long, MIN_CHUNK_SIZE, vec![]),
            Err(ManifestError::TooLarge { .. })
        ));
    }

    fn arb_component() -> impl Strategy<Value = String> {
        "[^/\\\\\\p{Cc}\u{202a}-\u{202e}\u{2066}-\u{2069}]{1,12}"
            .prop_filter("reserved names", |c| c != "." && c != "..")
            .prop_filter("long", |c| c.len() <= MAX_COMPONENT_LEN)
    }

    fn arb_tree_manifest() -> impl Strategy<Value = Manifest> {
        (
            arb_component(),
            proptest::collection::vec(
                (
                    proptest::collection::vec(arb_component(), 1..4),
                    0u64..40_000,
                ),
                1..12,
            ),
            14u32..=15,
        )
            .prop_filter_map("a file is another's directory", |(name, files, log2)| {
                let mut seen = std::collections::BTreeMap::new();
                for (components, size) in files {
                    seen.insert(components.join("/"), size);
                }
                let files = FileEntry::canonical_order(
                    seen.into_iter()
                        .map(|(p, s)| FileEntry::new(p, s))
                        .collect(),
                )
                .ok()?;
                let chunk_size = 1u32 << log2;
                let size = files.iter().map(FileEntry::size).sum();
                let count = chunk::chunk_count(size, chunk_size);
                let chunks = (0..count).map(|i| hash_chunk(&i.to_le_bytes())).collect();
                Some(
                    Manifest::with_files(name, files, chunk_size, chunks)
                        .expect("strategy makes valid manifests"),
                )
            })
    }

    fn arb_manifest() -> impl Strategy<Value = Manifest> {
        (
            "[^/\\\\\\p{Cc}\u{202a}-\u{202e}\u{2066}-\u{2069}]{1,40}",
            "[ -~]{0,40}",
            14u32..=16,
            0u64..200_000,
        )
            .prop_filter("reserved names", |(name, ..)| name != "." && name != "..")
            .prop_map(|(name, media_type, log2, size)| {
                let chunk_size = 1u32 << log2;
                let count = chunk::chunk_count(size, chunk_size);
                let chunks = (0..count).map(|i| hash_chunk(&i.to_le_bytes())).collect();
                Manifest::new(name, media_type, size, chunk_size, chunks)
                    .expect("strategy makes valid manifests")
            })
    }

    proptest! {
        #[test]
        fn round_trip(m in arb_manifest()) {
            let bytes = m.encode();
            prop_assert_eq!(Manifest::decode(&bytes), Ok(m.clone()));
            prop_assert_eq!(ShareId::of_encoded(&bytes), m.share_id());
        }

        #[test]
        fn round_trip_v2(m in arb_tree_manifest()) {
            let bytes = m.encode();
            prop_assert_eq!(bytes.len(), m.encoded_len());
            prop_assert_eq!(Manifest::decode(&bytes), Ok(m.clone()));
            prop_assert_eq!(ShareId::of_encoded(&bytes), m.share_id());
            // Files tile the byte stream in order, and their chunks cover them.
            let mut end = 0;
            for (i, file) in m.files().iter().enumerate() {
                prop_assert_eq!(file.offset(), end);
                end += file.size();
                let chunks = m.file_chunks(i);
                if file.size() > 0 {
                    let first = m.chunk_range(chunks.start).expect("in range");
                    let last = m.chunk_range(chunks.end - 1).expect("in range");
                    prop_assert!(first.start <= file.offset() && file.offset() < first.end);
                    prop_assert!(last.start < file.range().end && file.range().end <= last.end);
                } else {
                    prop_assert!(chunks.is_empty());
                }
            }
            prop_assert_eq!(end, m.size());
        }

        /// A hostile component anywhere in a path is refused, on build and
        /// on decode, with the same typed error.
        #[test]
        fn hostile_paths_are_refused(
            before in proptest::collection::vec(arb_component(), 0..3),
            bad in prop_oneof![
                Just(String::new()),
                Just(".".to_owned()),
                Just("..".to_owned()),
                "[a-z]{0,3}[\\\\\\p{Cc}\u{202a}-\u{202e}\u{2066}-\u{2069}][a-z]{0,3}",
                Just("x".repeat(MAX_COMPONENT_LEN + 1)),
            ],
            after in proptest::collection::vec(arb_component(), 0..3),
            absolute in any::<bool>(),
        ) {
            let mut path = before.join("/");
            if !before.is_empty() {
                path.push('/');
            }
            path.push_str(&bad);
            for c in &after {
                path.push('/');
                path.push_str(c);
            }
            if absolute {
                path.insert(0, '/');
            }
            let built = FileEntry::canonical_order(vec![FileEntry::new(path.clone(), 3)]);
            let Err(err @ ManifestError::BadPath { index: 0, .. }) = built else {
                return Err(TestCaseError::fail(format!("{path:?} was taken")));
            };
            prop_assert_eq!(Manifest::decode(&raw_v2(&[(path.as_str(), 3)])), Err(err));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(m) = Manifest::decode(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }

        #[test]
        fn arbitrary_tails_after_a_good_header_never_panic(
            name in "[a-z]{1,8}",
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = b"SHOAL\x01".to_vec();
            varint::encode(name.len() as u64, &mut bytes);
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(&tail);
            if let Ok(m) = Manifest::decode(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }

        /// Changing any one byte either makes the manifest invalid or makes a
        /// different manifest with a different id: the encoding is canonical,
        /// so no corruption decodes to something that re-encodes to the original.
        #[test]
        fn single_byte_corruption_is_rejected_or_changes_the_id(
            m in prop_oneof![arb_manifest(), arb_tree_manifest()],
            pick in any::<prop::sample::Index>(),
            new in any::<u8>(),
        ) {
            let mut bytes = m.encode();
            let at = pick.index(bytes.len());
            prop_assume!(bytes[at] != new);
            bytes[at] = new;
            if let Ok(corrupt) = Manifest::decode(&bytes) {
                prop_assert_ne!(&corrupt, &m);
                prop_assert_ne!(corrupt.share_id(), m.share_id());
                prop_assert_eq!(corrupt.encode(), bytes);
            }
        }

        #[test]
        fn share_id_text_round_trip(raw in any::<[u8; 32]>()) {
            let id = ShareId::from_bytes(raw);
            let text = id.to_string();
            prop_assert_eq!(text.len(), SHARE_ID_TEXT_LEN);
            prop_assert_eq!(text.parse::<ShareId>(), Ok(id));
        }

        #[test]
        fn share_id_parse_never_panics(s in "\\PC{0,60}") {
            if let Ok(id) = s.parse::<ShareId>() {
                prop_assert_eq!(id.to_string(), s.to_lowercase());
            }
        }
    }
}
