//! The one length-prefixed reader: signaling messages, data-channel frames and
//! `/shoal/blocks` messages all travel as an unsigned varint ([`crate::varint`])
//! body length, then the body. [`PrefixedReader`] cuts a byte stream of any
//! chunking into bodies.
//!
//! Each prefix is checked against the limit as soon as its bytes arrive, in
//! [`push`](PrefixedReader::push): a prefix over the limit fails the reader
//! before any of that body is kept, so memory follows the bytes that arrive
//! under the limit, never what a prefix announces. A message type may also
//! check a body's first byte as soon as it arrives ([`Decode::check_head`]:
//! `/shoal/blocks` limits each message type). Bodies that were whole before a
//! bad prefix are still handed out in order, then the error, for ever: a
//! stream cannot be resynchronised.
//!
//! `asynchronous-codec`'s `Framed` with `unsigned-varint`'s `UviBytes` (what
//! `prost-codec` builds on) would do the cutting, but it is an async reader:
//! the state machines here are fed bytes, not streams. And a data-channel
//! frame's limit counts its prefix ([`Limit::Whole`]), which `UviBytes`
//! cannot express.

use std::fmt;

use crate::varint;

/// How large a message the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The body alone, not counting the prefix.
    Body(usize),
    /// Prefix and body together.
    Whole(usize),
}

/// Why a length prefix was refused: the decode error every length-prefixed
/// wire format shares.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The prefix announces a body of `len` bytes; the limit is `max`.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLong { len: u64, max: usize },
    /// Not a minimal unsigned varint of at most 10 bytes.
    #[error("invalid length prefix")]
    Invalid,
}

/// A message type that travels behind a length prefix: what
/// [`PrefixedReader`] yields.
pub trait Decode: Sized {
    /// The wire format's error; a refused prefix converts into it.
    type Error: From<PrefixError> + Clone;

    /// The limit [`PrefixedReader::new`] applies to every message.
    const LIMIT: Limit;

    /// Decodes one body (the bytes after the prefix).
    fn decode(body: &[u8]) -> Result<Self, Self::Error>;

    /// Runs as soon as the first byte of a non-empty body arrives, before
    /// the rest is kept; `len` is the body length the prefix announced.
    fn check_head(first: u8, len: usize) -> Result<(), Self::Error> {
        let _ = (first, len);
        Ok(())
    }
}

/// Cuts a byte stream into length-prefixed `T`s (see the module docs).
///
/// Once an error is returned the reader is failed, whether a prefix was
/// refused or a body did not decode: it drops further input and returns the
/// same error again. Messages that were whole before a refused prefix or
/// head are still returned first, in order.
pub struct PrefixedReader<T: Decode> {
    buf: Vec<u8>,
    /// Where the next unread message starts.
    start: usize,
    /// `buf[start..scanned]` is whole messages with checked prefixes;
    /// `buf[scanned..]` is the start of the next one.
    scanned: usize,
    /// Whether the first body byte of the message at `scanned` was checked.
    head_checked: bool,
    limit: Limit,
    /// A smaller body limit for the first message only, until it is whole.
    first_limit: Option<usize>,
    failed: Option<T::Error>,
}

impl<T: Decode> fmt::Debug for PrefixedReader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefixedReader")
            .field("buffered", &self.buf.len())
            .field("unread", &(self.scanned - self.start))
            .field("limit", &self.limit)
            .field("first_limit", &self.first_limit)
            .field("failed", &self.failed.is_some())
            .finish()
    }
}

impl<T: Decode> Default for PrefixedReader<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Decode> PrefixedReader<T> {
    /// A reader with `T`'s limit.
    pub fn new() -> Self {
        Self::with_limit(T::LIMIT)
    }

    /// A reader with another limit than `T`'s.
    pub fn with_limit(limit: Limit) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            head_checked: false,
            limit,
            first_limit: None,
            failed: None,
        }
    }

    /// A reader whose first message may have a body of at most `limit`
    /// bytes: a stream's first message is a handshake message, and nothing
    /// larger is buffered from a peer that has proved nothing yet.
    pub fn with_first_limit(limit: usize) -> Self {
        Self {
            first_limit: Some(limit),
            ..Self::new()
        }
    }

    /// Appends bytes read from the stream, in any chunking.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        if let Err(error) = self.scan() {
            self.buf.truncate(self.scanned);
            self.failed = Some(error);
        }
    }

    fn scan(&mut self) -> Result<(), T::Error> {
        loop {
            let rest = &self.buf[self.scanned..];
            let (len, prefix_len) = match varint::decode(rest) {
                Ok(decoded) => decoded,
                Err(varint::Error::Insufficient) => return Ok(()),
                Err(_) => return Err(PrefixError::Invalid.into()),
            };
            let (counted, max) = match (self.first_limit, self.limit) {
                (Some(max), _) | (None, Limit::Body(max)) => (len, max),
                (None, Limit::Whole(max)) => (len.saturating_add(prefix_len as u64), max),
            };
            if counted > max as u64 {
                return Err(PrefixError::TooLong { len, max }.into());
            }
            // Bounded by the limit above, so it fits in a usize.
            let len = len as usize;
            let available = rest.len() - prefix_len;
            if !self.head_checked && len > 0 {
                match rest.get(prefix_len) {
                    Some(&head) => T::check_head(head, len)?,
                    None => return Ok(()),
                }
                self.head_checked = true;
            }
            if available < len {
                return Ok(());
            }
            self.scanned += prefix_len + len;
            self.head_checked = false;
            self.first_limit = None;
        }
    }

    /// The next whole message; `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<T>, T::Error> {
        if self.start == self.scanned {
            return match &self.failed {
                Some(error) => {
                    let error = error.clone();
                    Err(self.fail_now(error))
                }
                None => Ok(None),
            };
        }
        let Ok((len, prefix_len)) = varint::decode(&self.buf[self.start..self.scanned]) else {
            // Unreachable: `push` checked this prefix. Fail closed anyway.
            return Err(self.fail_now(PrefixError::Invalid.into()));
        };
        let body_start = self.start + prefix_len;
        // `push` checked that the whole body lies before `scanned`.
        let body_end = body_start + len as usize;
        self.start = body_end;
        T::decode(&self.buf[body_start..body_end])
            .map(Some)
            .map_err(|error| self.fail_now(error))
    }

    /// Fails at once, dropping everything buffered.
    fn fail_now(&mut self, error: T::Error) -> T::Error {
        self.buf = Vec::new();
        self.start = 0;
        self.scanned = 0;
        self.failed = Some(error.clone());
        error
    }

    /// Whether part of a message is buffered: if the stream ends now, it
    /// ended mid-message.
    pub fn has_partial(&self) -> bool {
        self.buf.len() > self.scanned
    }

    /// Bytes held, read or not.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Feeds `pieces` to `reader` in order and takes every whole message after
/// each, as a driver of the reader does: the messages read before the first
/// error, and that error (`None` if the stream ended without one). For tests
/// and the fuzz properties (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub fn read_all<T: Decode>(
    mut reader: PrefixedReader<T>,
    pieces: &[&[u8]],
) -> (Vec<T>, Option<T::Error>) {
    let mut messages = Vec::new();
    for piece in pieces {
        reader.push(piece);
        loop {
            match reader.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => return (messages, Some(error)),
            }
        }
    }
    (messages, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A body as it came; a first byte of `0xee` refuses bodies over 2 bytes,
    /// one of `0xdd` does not decode.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Raw(Vec<u8>);

    impl Decode for Raw {
        type Error = PrefixError;
        const LIMIT: Limit = Limit::Body(64);

        fn decode(body: &[u8]) -> Result<Self, PrefixError> {
            match body.first() {
                Some(0xdd) => Err(PrefixError::Invalid),
                _ => Ok(Self(body.to_vec())),
            }
        }

        fn check_head(first: u8, len: usize) -> Result<(), PrefixError> {
            if first == 0xee && len > 2 {
                Err(PrefixError::TooLong {
                    len: len as u64,
                    max: 2,
                })
            } else {
                Ok(())
            }
        }
    }

    fn reader(limit: Limit) -> PrefixedReader<Raw> {
        PrefixedReader::with_limit(limit)
    }

    fn raw(bytes: &[u8]) -> Option<Raw> {
        Some(Raw(bytes.to_vec()))
    }

    #[test]
    fn refuses_oversize_prefix_and_keeps_earlier_bodies() {
        let mut reader = reader(Limit::Body(4));
        reader.push(&[0x01, 0xaa, 0x05]);
        assert_eq!(reader.buffered(), 2, "the oversize prefix is not kept");
        reader.push(&[0u8; 64]);
        assert_eq!(
            reader.buffered(),
            2,
            "nothing more is buffered after the error"
        );
        assert_eq!(reader.next_message(), Ok(raw(&[0xaa])));
        let error = PrefixError::TooLong { len: 5, max: 4 };
        assert_eq!(reader.next_message(), Err(error.clone()));
        assert_eq!(reader.next_message(), Err(error));
        assert_eq!(reader.buffered(), 0);
    }

    #[test]
    fn limits() {
        let too_long = |len, max| Err(PrefixError::TooLong { len, max });
        type Read = Result<Option<Raw>, PrefixError>;
        let cases: Vec<(PrefixedReader<Raw>, &[u8], Vec<Read>)> = vec![
            // A whole limit counts the prefix: 1 + 3 bytes fit in 4, 1 + 4 do not.
            (
                reader(Limit::Whole(4)),
                &[0x03, 1, 2, 3, 0x04],
                vec![Ok(raw(&[1, 2, 3])), too_long(4, 4)],
            ),
            // The first-message limit holds the first message only.
            (
                PrefixedReader::with_first_limit(2),
                &[0x02, 1, 2, 0x05, 1, 2, 3, 4, 5],
                vec![Ok(raw(&[1, 2])), Ok(raw(&[1, 2, 3, 4, 5])), Ok(None)],
            ),
            (
                PrefixedReader::with_first_limit(2),
                &[0x03],
                vec![too_long(3, 2)],
            ),
        ];
        for (mut reader, stream, expected) in cases {
            reader.push(stream);
            for want in expected {
                assert_eq!(reader.next_message(), want, "{stream:02x?}");
            }
        }
    }

    #[test]
    fn head_check_runs_before_the_body_is_kept() {
        let mut reader = reader(Limit::Body(1 << 20));
        reader.push(&[0x02, 0xee]);
        reader.push(&[0x00, 0x00, 0x80, 0x80, 0x01, 0xee]);
        reader.push(&[0u8; 4096]);
        assert_eq!(reader.buffered(), 4, "the refused message is not kept");
        assert_eq!(reader.next_message(), Ok(raw(&[0xee, 0x00])));
        assert_eq!(reader.next_message(), Ok(raw(&[])));
        let error = PrefixError::TooLong { len: 16384, max: 2 };
        assert_eq!(reader.next_message(), Err(error));
    }

    #[test]
    fn a_body_that_does_not_decode_fails_the_reader() {
        let mut reader = reader(Limit::Body(64));
        reader.push(&[0x01, 0xdd, 0x01, 0xaa]);
        assert_eq!(reader.next_message(), Err(PrefixError::Invalid));
        assert_eq!(reader.buffered(), 0);
        reader.push(&[0x01, 0xaa]);
        assert_eq!(reader.next_message(), Err(PrefixError::Invalid));
    }

    #[test]
    fn invalid_prefixes() {
        for bytes in [&[0x80, 0x00][..], &[0xff; 10][..]] {
            let mut reader = reader(Limit::Body(usize::MAX));
            reader.push(bytes);
            assert_eq!(
                reader.next_message(),
                Err(PrefixError::Invalid),
                "{bytes:02x?}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip_in_any_chunking(
            bodies in proptest::collection::vec(proptest::collection::vec(0u8..0xdd, 0..300), 0..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut stream = Vec::new();
            for body in &bodies {
                varint::encode(body.len() as u64, &mut stream);
                stream.extend_from_slice(body);
            }
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            at.push(stream.len());
            at.sort_unstable();
            let mut reader = reader(Limit::Body(300));
            let mut decoded = Vec::new();
            let mut from = 0;
            for cut in at {
                reader.push(&stream[from..cut]);
                from = cut;
                while let Some(Raw(body)) = reader.next_message().expect("valid stream") {
                    decoded.push(body);
                }
            }
            prop_assert_eq!(decoded, bodies);
            prop_assert!(!reader.has_partial());
        }

        #[test]
        fn oversize_prefix_never_buffers(len in 65u64..=u64::MAX, junk in 0usize..4096) {
            let mut prefix = Vec::new();
            varint::encode(len, &mut prefix);
            let mut reader = PrefixedReader::<Raw>::new();
            reader.push(&prefix);
            reader.push(&vec![0u8; junk]);
            prop_assert_eq!(reader.buffered(), 0);
            prop_assert_eq!(reader.next_message(), Err(PrefixError::TooLong { len, max: 64 }));
        }

        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6)) {
            let mut reader = reader(Limit::Whole(32));
            for chunk in &chunks {
                reader.push(chunk);
                while let Ok(Some(_)) = reader.next_message() {}
            }
        }
    }
}
