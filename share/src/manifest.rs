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
//! | version      | 1 byte, `0x01`                         | other values: `UnsupportedVersion`     |
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

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::chunk::{self, ChunkHash, VerifyError};
use shoal_proto::varint;

/// The first bytes of every encoded manifest.
pub const MAGIC: &[u8; 5] = b"SHOAL";
/// The encoding version this crate writes and reads.
pub const VERSION: u8 = 1;
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
            name,
            size,
            media_type,
            chunk_size,
            chunks,
        })
    }

    /// Encoding version (currently always [`VERSION`]).
    pub fn version(&self) -> u8 {
        self.version
    }
    /// File name: one path component, checked as described in the module docs.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// File length in bytes.
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
        varint::encode(self.media_type.len() as u64, &mut out);
        out.extend_from_slice(self.media_type.as_bytes());
        varint::encode(self.size, &mut out);
        varint::encode(u64::from(self.chunk_size), &mut out);
        varint::encode(self.chunks.len() as u64, &mut out);
        for hash in &self.chunks {
            out.extend_from_slice(hash.as_bytes());
        }
        out
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
        if version != VERSION {
            return Err(ManifestError::UnsupportedVersion(version));
        }

        let name_len = r.varint()?;
        if name_len > MAX_NAME_LEN as u64 {
            return Err(ManifestError::NameTooLong { len: name_len });
        }
        let name = r.take(name_len as usize)?;
        validate_name(name)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| ManifestError::NameNotUtf8)?;

        let media_len = r.varint()?;
        if media_len > MAX_MEDIA_TYPE_LEN as u64 {
            return Err(ManifestError::MediaTypeTooLong { len: media_len });
        }
        let media_type = r.take(media_len as usize)?;
        validate_media_type(media_type)?;
        let media_type =
            String::from_utf8(media_type.to_vec()).map_err(|_| ManifestError::MediaTypeInvalid)?;

        let size = r.varint()?;
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
/// RFC 4648 base32 without padding; decoding takes either case and checks
/// that unused trailing bits are zero (writes upper case: lowered in `Display`).
const BASE32: data_encoding::Encoding = data_encoding::BASE32_NOPAD_NOCASE;

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
        let mut text = BASE32.encode(&self.0);
        text.make_ascii_lowercase();
        f.write_str(&text)
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
        let mut out = [0u8; 32];
        match BASE32.decode_mut(s.as_bytes(), &mut out) {
            Ok(_) => Ok(Self(out)),
            Err(partial) => Err(match partial.error.kind {
                // The four unused low bits of the last character are not zero.
                data_encoding::DecodeKind::Trailing => ShareIdParseError::NonCanonical,
                // Every character before `position` is ASCII base32, so
                // `position` starts a character.
                _ => ShareIdParseError::InvalidChar(
                    s.get(partial.error.position..)
                        .and_then(|rest| rest.chars().next())
                        .unwrap_or(char::REPLACEMENT_CHARACTER),
                ),
            }),
        }
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
                [b"SHOAL".as_slice(), &[2]].concat(),
                ManifestError::UnsupportedVersion(2),
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
            m in arb_manifest(),
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
