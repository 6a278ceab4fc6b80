//! Resume: what a downloader keeps on disk, what it may trust when it comes
//! back, and what it may delete. Sans-IO: the peer's OPFS driver lists
//! names, reads and writes bytes, and asks this module what they mean.
//!
//! # Files
//!
//! Every stored share is three files in one directory ([`DIR`]), named by the
//! share id's text form:
//!
//! | file            | written                         | holds                                   |
//! |-----------------|---------------------------------|-----------------------------------------|
//! | `<id>.manifest` | once, before any chunk          | the manifest's canonical encoding       |
//! | `<id>.data`     | each verified chunk, at its offset | the file's bytes (holes where missing) |
//! | `<id>.have`     | at checkpoints, replaced whole  | a [`HaveRecord`]: the chunks on disk    |
//!
//! The manifest lets a link reopen without any peer holding it (it must
//! still hash to the id). A checkpoint flushes the data file first and then
//! replaces the `.have` file atomically, so the record never names a chunk
//! that was not flushed before it; a crash loses at most the chunks stored
//! since the last checkpoint ([`Checkpoints`] says when). The record is a
//! claim, not proof: every chunk it names is read back and verified with
//! BLAKE3 before it is served or counted ([`Recheck`]); one that fails is
//! fetched again.
//!
//! # `.have` encoding, versions 1 and 2
//!
//! | field    | bytes                    | rule                                  |
//! |----------|--------------------------|---------------------------------------|
//! | magic    | `53 48 48 56` (`"SHHV"`) |                                       |
//! | version  | 1 byte, `0x01` or `0x02` | other values: `UnsupportedVersion`    |
//! | bitfield | a [`Bitfield`] encoding  | its length must be the manifest's chunk count |
//! | picked   | version 2 only: a [`Bitfield`] encoding | its length must be the manifest's file count |
//!
//! Nothing may follow. Version 1 is a download of every file; version 2
//! also keeps which files of a share of files the page picked (bit `i`: the
//! manifest's file `i`, in its order), so that a reload goes on fetching only
//! those. A record of every file is always written as version 1.
//!
//! # Opening a stored share
//!
//! A tab takes the share's lock first (exclusive if no tab has it, else
//! shared while another serves the complete file); [`opening`] then decides:
//! fetch the manifest, continue the download, serve the file, or wait for
//! the tab that writes it.
//!
//! # What is deleted
//!
//! [`Inventory`] sorts a directory listing: a share with a manifest and a
//! data file is *stored* (kept until the user deletes it, partial or
//! complete); everything else — a data or `.have` file without a manifest, a
//! manifest without data, names this version does not write — is *stray*.
//! The driver deletes a stray file, or a stored share on request, only when
//! no tab holds that share's lock.

use shoal_proto::vecmap::VecMap;
use std::time::Duration;

use crate::bitfield::{Bitfield, BitfieldError};
use crate::manifest::{Manifest, ShareId};

/// The directory, in the origin's private file system, that holds every
/// stored share. No `-` in it: pages of earlier versions deleted every
/// `shoal-*` entry at start and must not touch this one.
pub const DIR: &str = "shoal";
/// Prefix of the single-file downloads earlier versions left in the root
/// directory; they cannot be resumed (no record) and are deleted.
pub const LEGACY_PREFIX: &str = "shoal-";

/// A checkpoint happens after this many chunks were stored since the last
/// one: with 256 KiB chunks a crash refetches at most 16 MiB, half a second
/// at the speeds BENCHMARKS.md measures. Each checkpoint flushes the data
/// file to disk and replaces the record while the download loop waits: at
/// 16 chunks that was 7 a second at 27 MB/s.
pub const CHECKPOINT_CHUNKS: u32 = 64;
/// …or this long after the last one if any chunk was stored since: slow
/// downloads lose at most this much work, and a checkpoint (a flush and one
/// small file replaced) costs a few milliseconds, so twice a second is cheap.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// The first bytes of a `.have` record.
pub const HAVE_MAGIC: &[u8; 4] = b"SHHV";
/// The `.have` encoding version of a download of every file.
pub const HAVE_VERSION: u8 = 1;
/// The `.have` encoding version that also lists the files picked.
pub const HAVE_VERSION_PICKED: u8 = 2;

/// One of a stored share's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    Manifest,
    Data,
    Have,
}

impl FileKind {
    const ALL: [FileKind; 3] = [FileKind::Manifest, FileKind::Data, FileKind::Have];

    fn suffix(self) -> &'static str {
        match self {
            FileKind::Manifest => ".manifest",
            FileKind::Data => ".data",
            FileKind::Have => ".have",
        }
    }
}

/// The name of `share`'s file of `kind` inside [`DIR`].
pub fn file_name(share: &ShareId, kind: FileKind) -> String {
    format!("{share}{}", kind.suffix())
}

/// Every file name a stored share may have, to delete it whole.
pub fn file_names(share: &ShareId) -> [String; 3] {
    FileKind::ALL.map(|kind| file_name(share, kind))
}

/// The share and kind a name in [`DIR`] stands for, if this version wrote it.
pub fn parse_file_name(name: &str) -> Option<(ShareId, FileKind)> {
    FileKind::ALL.into_iter().find_map(|kind| {
        let id = name.strip_suffix(kind.suffix())?.parse().ok()?;
        // Only the canonical (lower-case) spelling is ours.
        (file_name(&id, kind) == name).then_some((id, kind))
    })
}

/// Why a `.have` record was refused (the share then resumes from nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("not a shoal chunk record (bad magic)")]
    BadMagic,
    #[error("unsupported chunk record version {0}")]
    UnsupportedVersion(u8),
    #[error("chunk record: {0}")]
    Bitfield(#[from] BitfieldError),
    #[error("chunk record lists {actual} chunks, the manifest {expected}")]
    WrongLength { expected: u32, actual: u32 },
    #[error("chunk record picks from {bits} files, the manifest has {files} (or picks them all)")]
    WrongPicks { files: u32, bits: u32 },
}

/// The `.have` record: which chunks were on disk at the last checkpoint,
/// and which files were picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaveRecord {
    /// The chunks on disk, one bit per chunk of the manifest.
    pub have: Bitfield,
    /// Of a share of files, the files picked, one bit per file of the
    /// manifest; `None`: all of them.
    pub picked: Option<Bitfield>,
}

impl HaveRecord {
    /// The record of `have`, and of `picked` unless every file is picked
    /// (module docs).
    pub fn encode(have: &Bitfield, picked: Option<&Bitfield>) -> Vec<u8> {
        let picked = picked.filter(|p| !p.is_full());
        let mut out = Vec::with_capacity(HAVE_MAGIC.len() + 1 + 8 + have.len() as usize / 8);
        out.extend_from_slice(HAVE_MAGIC);
        match picked {
            None => {
                out.push(HAVE_VERSION);
                out.extend_from_slice(&have.encode());
            }
            Some(picked) => {
                out.push(HAVE_VERSION_PICKED);
                out.extend_from_slice(&have.encode());
                out.extend_from_slice(&picked.encode());
            }
        }
        out
    }

    /// Parses a record for a share of `chunk_count` chunks and `file_count`
    /// files, strictly.
    pub fn decode(bytes: &[u8], chunk_count: u32, file_count: u32) -> Result<Self, RecordError> {
        let rest = bytes
            .strip_prefix(HAVE_MAGIC.as_slice())
            .ok_or(RecordError::BadMagic)?;
        let (&version, rest) = rest
            .split_first()
            .ok_or(RecordError::Bitfield(BitfieldError::Truncated))?;
        let (have, picked) = match version {
            HAVE_VERSION => (Bitfield::decode(rest)?, None),
            HAVE_VERSION_PICKED => {
                let (have, rest) = Bitfield::decode_prefix(rest)?;
                (have, Some(Bitfield::decode(rest)?))
            }
            other => return Err(RecordError::UnsupportedVersion(other)),
        };
        if have.len() != chunk_count {
            return Err(RecordError::WrongLength {
                expected: chunk_count,
                actual: have.len(),
            });
        }
        if let Some(picked) = &picked {
            if picked.len() != file_count || picked.is_full() {
                return Err(RecordError::WrongPicks {
                    files: file_count,
                    bits: picked.len(),
                });
            }
        }
        Ok(Self { have, picked })
    }

    /// What a share resumes from: the record, or no chunks and every file
    /// if there is no record or it cannot be read (a bad record costs a
    /// refetch, not the download).
    pub fn claimed(bytes: Option<&[u8]>, manifest: &Manifest) -> Self {
        let count = manifest.chunk_count();
        bytes
            .and_then(|b| Self::decode(b, count, file_count(manifest)).ok())
            .unwrap_or_else(|| Self {
                have: Bitfield::new(count),
                picked: None,
            })
    }
}

/// The files of `manifest` (at most `MAX_FILES`, so it fits in a `u32`).
fn file_count(manifest: &Manifest) -> u32 {
    manifest.files().len() as u32
}

/// The files of `manifest` that `pick` selects, one bit per file in its
/// order: what a record keeps of the page's picks.
pub fn picked_files(manifest: &Manifest, mut pick: impl FnMut(&str) -> bool) -> Bitfield {
    let mut picked = Bitfield::new(file_count(manifest));
    for (i, file) in manifest.files().iter().enumerate() {
        if pick(file.path()) {
            // In range: one bit per file.
            let _ = picked.set(i as u32);
        }
    }
    picked
}

/// The paths of the files `picked` names (from a record that decoded for
/// this manifest: one bit per file).
pub fn picked_paths<'m>(
    manifest: &'m Manifest,
    picked: &'m Bitfield,
) -> impl Iterator<Item = &'m str> + 'm {
    manifest
        .files()
        .iter()
        .enumerate()
        .filter(|(i, _)| picked.get(*i as u32))
        .map(|(_, f)| f.path())
}

/// A directory listing, sorted into what to keep and what is stray.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Shares with a manifest and a data file: resumable or complete.
    pub stored: Vec<ShareId>,
    /// Names to delete (once no tab holds their share's lock), with the
    /// share they belong to when they are one of ours.
    pub stray: Vec<(String, Option<ShareId>)>,
}

impl Inventory {
    /// Sorts the names found in [`DIR`].
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut shares: VecMap<ShareId, Vec<(FileKind, &'a str)>> = VecMap::new();
        let mut inventory = Inventory::default();
        for name in names {
            match parse_file_name(name) {
                Some((id, kind)) => shares.entry(id).or_default().push((kind, name)),
                None => inventory.stray.push((name.to_owned(), None)),
            }
        }
        for (id, files) in shares {
            let has = |k| files.iter().any(|(kind, _)| *kind == k);
            if has(FileKind::Manifest) && has(FileKind::Data) {
                inventory.stored.push(id);
            } else {
                inventory
                    .stray
                    .extend(files.iter().map(|(_, name)| ((*name).to_owned(), Some(id))));
            }
        }
        inventory.stray.sort();
        inventory
    }
}

/// Re-verification of the chunks a record claims, before any is trusted:
/// the driver reads each chunk [`next_chunk`](Self::next_chunk) names, reports whether it
/// verified, and starts the download from [`into_have`](Self::into_have).
#[derive(Debug)]
pub struct Recheck {
    claimed: Vec<u32>,
    next: usize,
    have: Bitfield,
    failed: u32,
}

impl Recheck {
    /// Checks the chunks of `claimed` (a record for `manifest`).
    pub fn new(manifest: &Manifest, claimed: &Bitfield) -> Self {
        let count = manifest.chunk_count();
        Self {
            claimed: claimed.iter_ones().filter(|&i| i < count).collect(),
            next: 0,
            have: Bitfield::new(count),
            failed: 0,
        }
    }

    /// The next chunk to read and verify, in file order.
    pub fn next_chunk(&mut self) -> Option<u32> {
        let index = self.claimed.get(self.next).copied();
        self.next += usize::from(index.is_some());
        index
    }

    /// Chunk `index`, read from disk, is `bytes`: kept if it verifies.
    pub fn checked(&mut self, manifest: &Manifest, index: u32, bytes: &[u8]) -> bool {
        let ok = manifest.verify(index, bytes).is_ok() && self.have.set(index).is_ok();
        self.failed += u32::from(!ok);
        ok
    }

    /// Chunks checked so far, and how many were claimed.
    pub fn progress(&self) -> (u32, u32) {
        (self.next as u32, self.claimed.len() as u32)
    }

    /// Claimed chunks that failed verification (or could not be read).
    pub fn failed(&self) -> u32 {
        self.failed
    }

    /// The chunks that verified: what the download starts from.
    pub fn into_have(self) -> Bitfield {
        self.have
    }
}

/// When to checkpoint (module docs): fed with each stored chunk and `now`.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    since_last: u32,
    last: Duration,
}

impl Checkpoints {
    /// Starts counting at `now`.
    pub fn new(now: Duration) -> Self {
        Self {
            since_last: 0,
            last: now,
        }
    }

    /// A chunk reached the disk; true if a checkpoint is due now.
    pub fn stored(&mut self, now: Duration) -> bool {
        self.since_last += 1;
        self.is_due(now)
    }

    /// Whether a checkpoint is due at `now` (chunks stored since the last,
    /// and enough of them or enough time).
    pub fn is_due(&self, now: Duration) -> bool {
        self.since_last >= CHECKPOINT_CHUNKS
            || (self.since_last > 0 && now.saturating_sub(self.last) >= CHECKPOINT_INTERVAL)
    }

    /// When a checkpoint falls due with no further chunk, if one will.
    pub fn poll_timeout(&self) -> Option<Duration> {
        (self.since_last > 0).then(|| self.last + CHECKPOINT_INTERVAL)
    }

    /// A checkpoint was written at `now`.
    pub fn written(&mut self, now: Duration) {
        self.since_last = 0;
        self.last = now;
    }
}

/// The lock a tab got on a share before opening its files: exclusive (no
/// other tab has it) or shared (another tab serves the complete file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Exclusive,
    Shared,
}

/// What opening a stored share comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// No usable manifest: fetch it from peers and start from nothing.
    Fetch,
    /// Download the chunks that did not verify; the rest stay.
    Continue,
    /// Every chunk is on disk and verified: serve the file, download nothing.
    Serve,
    /// Another tab writes this share: this one must wait for it.
    Busy,
}

/// Decides [`Opening`] from the lock held, whether a manifest that hashes to
/// the share id was stored, and whether every chunk verified. Only an
/// exclusive holder writes; a shared holder may only serve a complete file.
pub fn opening(held: Held, manifest: bool, complete: bool) -> Opening {
    match (held, manifest, complete) {
        (_, true, true) => Opening::Serve,
        (Held::Exclusive, false, _) => Opening::Fetch,
        (Held::Exclusive, true, false) => Opening::Continue,
        (Held::Shared, _, _) => Opening::Busy,
    }
}

/// A stored share as the page lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredProgress {
    pub chunks_done: u32,
    pub chunks_total: u32,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

impl StoredProgress {
    /// What the record claims (unverified until the share is opened).
    pub fn of(manifest: &Manifest, have: &Bitfield) -> Self {
        Self {
            chunks_done: have.count_ones(),
            chunks_total: manifest.chunk_count(),
            bytes_done: bytes_of(manifest, have),
            bytes_total: manifest.size(),
        }
    }

    pub fn is_complete(&self) -> bool {
        self.chunks_done == self.chunks_total
    }
}

/// Bytes of the chunks in `have`.
pub fn bytes_of(manifest: &Manifest, have: &Bitfield) -> u64 {
    have.iter_ones()
        .filter_map(|i| manifest.chunk_len(i))
        .map(u64::from)
        .sum()
}

/// Bytes still to write for `manifest` when `have` is on disk: what a full
/// disk needs freed to finish.
pub fn bytes_missing(manifest: &Manifest, have: &Bitfield) -> u64 {
    manifest.size().saturating_sub(bytes_of(manifest, have))
}

/// `bytes` in whole MiB, rounded up (what a "storage full" message asks for).
pub fn mib_ceil(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ManifestBuilder;
    use crate::manifest::FileEntry;
    use proptest::prelude::*;

    const CHUNK: u32 = 16 * 1024;

    fn file(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn manifest_of(data: &[u8]) -> Manifest {
        let mut b = ManifestBuilder::new("f.bin", "", CHUNK).expect("valid");
        b.update(data).expect("fits");
        b.finish().expect("valid")
    }

    fn id(n: u8) -> ShareId {
        ShareId::from_bytes([n; 32])
    }

    #[test]
    fn names_round_trip_and_only_canonical_ones_parse() {
        let a = id(7);
        for kind in FileKind::ALL {
            let name = file_name(&a, kind);
            assert_eq!(parse_file_name(&name), Some((a, kind)));
            assert_eq!(parse_file_name(&name.to_uppercase()), None);
        }
        assert_eq!(file_names(&a).len(), 3);
        assert_eq!(parse_file_name("x.data"), None);
        assert_eq!(parse_file_name(&format!("{a}.data.crswap")), None);
        assert_eq!(parse_file_name(&format!("{a}")), None);
    }

    #[test]
    fn have_record_byte_exact() {
        let mut have = Bitfield::new(10);
        have.set(0).expect("in range");
        have.set(9).expect("in range");
        let bytes = HaveRecord::encode(&have, None);
        assert_eq!(bytes, [b'S', b'H', b'H', b'V', 1, 10, 0x80, 0x40]);
        let all = HaveRecord {
            have: have.clone(),
            picked: None,
        };
        assert_eq!(HaveRecord::decode(&bytes, 10, 1), Ok(all.clone()));
        assert_eq!(
            HaveRecord::decode(&bytes, 11, 1),
            Err(RecordError::WrongLength {
                expected: 11,
                actual: 10
            })
        );
        assert_eq!(
            HaveRecord::decode(b"SHHX\x01\x00", 0, 1),
            Err(RecordError::BadMagic)
        );
        assert_eq!(
            HaveRecord::decode(b"SHHV\x03\x00", 0, 1),
            Err(RecordError::UnsupportedVersion(3))
        );
        assert_eq!(
            HaveRecord::decode(b"SHHV", 0, 1),
            Err(RecordError::Bitfield(BitfieldError::Truncated))
        );
        assert!(HaveRecord::decode(&[bytes.as_slice(), &[0]].concat(), 10, 1).is_err());

        // Version 2: files 1 and 2 of 3 picked.
        let mut picked = Bitfield::new(3);
        picked.set(1).expect("in range");
        picked.set(2).expect("in range");
        let bytes = HaveRecord::encode(&have, Some(&picked));
        assert_eq!(bytes, [b'S', b'H', b'H', b'V', 2, 10, 0x80, 0x40, 3, 0x60]);
        let some = HaveRecord {
            have: have.clone(),
            picked: Some(picked),
        };
        assert_eq!(HaveRecord::decode(&bytes, 10, 3), Ok(some));
        assert_eq!(
            HaveRecord::decode(&bytes, 10, 4),
            Err(RecordError::WrongPicks { files: 4, bits: 3 })
        );
        assert!(HaveRecord::decode(&bytes[..bytes.len() - 1], 10, 3).is_err());
        assert!(HaveRecord::decode(&[bytes.as_slice(), &[0]].concat(), 10, 3).is_err());
        // Every file picked is version 1, and only that.
        assert_eq!(
            HaveRecord::encode(&have, Some(&Bitfield::full(3))),
            HaveRecord::encode(&have, None)
        );
        let full = [&bytes[..8], &[3, 0xe0]].concat();
        assert_eq!(
            HaveRecord::decode(&full, 10, 3),
            Err(RecordError::WrongPicks { files: 3, bits: 3 })
        );
    }

    #[test]
    fn a_missing_or_bad_record_resumes_from_nothing() {
        let m = manifest_of(&file(3 * CHUNK as usize));
        let nothing = HaveRecord {
            have: Bitfield::new(3),
            picked: None,
        };
        assert_eq!(HaveRecord::claimed(None, &m), nothing);
        assert_eq!(HaveRecord::claimed(Some(b"junk"), &m), nothing);
        let full = HaveRecord::encode(&Bitfield::full(3), None);
        assert_eq!(HaveRecord::claimed(Some(&full), &m).have, Bitfield::full(3));
        let other = HaveRecord::encode(&Bitfield::full(4), None);
        assert_eq!(HaveRecord::claimed(Some(&other), &m), nothing);
    }

    #[test]
    fn picks_are_kept_by_file_index_and_read_back_as_paths() {
        let files = vec![
            FileEntry::new("b/two.txt", 10),
            FileEntry::new("a/one.txt", u64::from(CHUNK)),
            FileEntry::new("c.txt", 0),
        ];
        let data = file(CHUNK as usize + 10);
        let mut b = ManifestBuilder::with_files("dir", files, CHUNK).expect("valid");
        b.update(&data).expect("fits");
        let m = b.finish().expect("valid");
        let picked = picked_files(&m, |p| p == "b/two.txt" || p == "c.txt");
        // The manifest's order is by path: a/one.txt, b/two.txt, c.txt.
        assert_eq!(picked.iter_ones().collect::<Vec<_>>(), [1, 2]);
        let record = HaveRecord::encode(&Bitfield::new(m.chunk_count()), Some(&picked));
        let back = HaveRecord::claimed(Some(&record), &m);
        let paths: Vec<&str> = picked_paths(&m, back.picked.as_ref().expect("picked")).collect();
        assert_eq!(paths, ["b/two.txt", "c.txt"]);
        // A record for other files is refused whole: nothing claimed, all picked.
        let other = HaveRecord::encode(&Bitfield::new(m.chunk_count()), Some(&Bitfield::new(2)));
        assert_eq!(HaveRecord::claimed(Some(&other), &m).picked, None);
    }

    #[test]
    fn inventory_keeps_complete_sets_and_strays_the_rest() {
        let (a, b, c, d) = (id(1), id(2), id(3), id(4));
        let names = [
            // a: stored, with a record; b: stored, no record yet.
            file_name(&a, FileKind::Manifest),
            file_name(&a, FileKind::Data),
            file_name(&a, FileKind::Have),
            file_name(&b, FileKind::Data),
            file_name(&b, FileKind::Manifest),
            // c: data and record but no manifest; d: manifest only.
            file_name(&c, FileKind::Data),
            file_name(&c, FileKind::Have),
            file_name(&d, FileKind::Manifest),
            // A swap file of an interrupted record write, and junk.
            format!("{a}.have.crswap"),
            "notes.txt".to_owned(),
        ];
        let inv = Inventory::from_names(names.iter().map(String::as_str));
        assert_eq!(inv.stored, [a, b]);
        let mut stray = vec![
            (file_name(&c, FileKind::Data), Some(c)),
            (file_name(&c, FileKind::Have), Some(c)),
            (file_name(&d, FileKind::Manifest), Some(d)),
            (format!("{a}.have.crswap"), None),
            ("notes.txt".to_owned(), None),
        ];
        stray.sort();
        assert_eq!(inv.stray, stray);
        assert_eq!(Inventory::from_names([]), Inventory::default());
    }

    #[test]
    fn recheck_keeps_only_chunks_that_verify() {
        let data = file(4 * CHUNK as usize + 100);
        let m = manifest_of(&data);
        let mut claimed = Bitfield::new(5);
        for i in [0, 2, 3, 4] {
            claimed.set(i).expect("in range");
        }
        let mut check = Recheck::new(&m, &claimed);
        assert_eq!(check.progress(), (0, 4));
        let mut seen = Vec::new();
        while let Some(i) = check.next_chunk() {
            seen.push(i);
            let range = m.chunk_range(i).expect("in range");
            let mut bytes = data[range.start as usize..range.end as usize].to_vec();
            if i == 3 {
                bytes[7] ^= 1; // torn or rotten on disk
            }
            assert_eq!(check.checked(&m, i, &bytes), i != 3);
        }
        assert_eq!(seen, [0, 2, 3, 4]);
        assert_eq!(check.progress(), (4, 4));
        assert_eq!(check.failed(), 1);
        let have = check.into_have();
        assert_eq!(have.iter_ones().collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(bytes_missing(&m, &have), 2 * u64::from(CHUNK));
        assert_eq!(StoredProgress::of(&m, &have).bytes_done, 2 * 16384 + 100);
        // A short read (a chunk past the data file's end) fails too.
        let mut check = Recheck::new(&m, &Bitfield::full(5));
        assert_eq!(check.next_chunk(), Some(0));
        assert!(!check.checked(&m, 0, &[]));
    }

    #[test]
    fn checkpoints_by_count_and_by_time() {
        let ms = Duration::from_millis;
        let mut cp = Checkpoints::new(ms(0));
        assert_eq!(cp.poll_timeout(), None);
        assert!(!cp.is_due(ms(10_000)), "nothing stored: nothing to write");
        for n in 1..CHECKPOINT_CHUNKS {
            assert!(!cp.stored(ms(u64::from(n))), "after {n} chunks");
        }
        assert_eq!(cp.poll_timeout(), Some(CHECKPOINT_INTERVAL));
        assert!(cp.stored(ms(20)));
        cp.written(ms(20));
        assert!(!cp.stored(ms(30)));
        assert!(!cp.is_due(ms(20) + CHECKPOINT_INTERVAL - ms(1)));
        assert!(cp.is_due(ms(20) + CHECKPOINT_INTERVAL));
    }

    #[test]
    fn opening_rules() {
        use Held::*;
        use Opening::*;
        // Nothing stored, or a manifest that does not hash to the id.
        assert_eq!(opening(Exclusive, false, false), Fetch);
        assert_eq!(opening(Shared, false, false), Busy);
        // Partly stored.
        assert_eq!(opening(Exclusive, true, false), Continue);
        assert_eq!(
            opening(Shared, true, false),
            Busy,
            "a shared holder never writes"
        );
        // Complete and verified: served by whoever opens it.
        assert_eq!(opening(Exclusive, true, true), Serve);
        assert_eq!(opening(Shared, true, true), Serve);
    }

    #[test]
    fn storage_full_message_numbers() {
        assert_eq!(mib_ceil(0), 0);
        assert_eq!(mib_ceil(1), 1);
        assert_eq!(mib_ceil(1024 * 1024), 1);
        assert_eq!(mib_ceil(1024 * 1024 + 1), 2);
        let m = manifest_of(&file(3 * CHUNK as usize));
        assert_eq!(bytes_missing(&m, &Bitfield::new(3)), 3 * u64::from(CHUNK));
        assert_eq!(bytes_missing(&m, &Bitfield::full(3)), 0);
        assert!(StoredProgress::of(&m, &Bitfield::full(3)).is_complete());
    }

    proptest! {
        #[test]
        fn have_round_trip(len in 0u32..300, picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..40)) {
            let mut have = Bitfield::new(len);
            if len > 0 {
                for p in &picks {
                    have.set(p.index(len as usize) as u32).expect("in range");
                }
            }
            let record = HaveRecord { have, picked: None };
            prop_assert_eq!(HaveRecord::decode(&HaveRecord::encode(&record.have, None), len, 1), Ok(record.clone()));
            // The same chunks with the first `files - 1` of `files` picked.
            let files = 1 + (len % 7);
            let mut picked = Bitfield::new(files);
            for i in 0..files - 1 {
                picked.set(i).expect("in range");
            }
            let bytes = HaveRecord::encode(&record.have, Some(&picked));
            prop_assert_eq!(HaveRecord::decode(&bytes, len, files), Ok(HaveRecord { have: record.have, picked: Some(picked) }));
        }

        #[test]
        fn arbitrary_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40), count in 0u32..100, files in 0u32..20) {
            if let Ok(record) = HaveRecord::decode(&bytes, count, files) {
                prop_assert_eq!(HaveRecord::encode(&record.have, record.picked.as_ref()), bytes);
            }
        }

        #[test]
        fn inventory_never_strays_a_stored_share(ids in proptest::collection::vec(0u8..6, 0..20), kinds in proptest::collection::vec(0usize..3, 0..20)) {
            let names: Vec<String> = ids.iter().zip(&kinds).map(|(i, k)| file_name(&id(*i), FileKind::ALL[*k])).collect();
            let inv = Inventory::from_names(names.iter().map(String::as_str));
            for s in &inv.stored {
                prop_assert!(inv.stray.iter().all(|(_, owner)| owner != &Some(*s)));
            }
            prop_assert_eq!(
                inv.stray.len() + names.iter().filter(|n| parse_file_name(n).is_some_and(|(i, _)| inv.stored.contains(&i))).count(),
                names.len()
            );
        }
    }
}
