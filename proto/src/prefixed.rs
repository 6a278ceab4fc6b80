//! The one length-prefixed reader: signaling messages, data-channel frames and
//! `/shoal/blocks` messages all travel as an unsigned varint ([`crate::varint`])
//! body length, then the body. [`PrefixedReader`] cuts a byte stream of any
//! chunking into bodies.
//!
//! Each prefix is checked against the limit as soon as its bytes arrive, in
//! [`push`](PrefixedReader::push): a prefix over the limit fails the reader
//! before any of that body is kept, so memory follows the bytes that arrive
//! under the limit, never what a prefix announces. A caller may also check a
//! body's first byte as soon as it arrives ([`push_checked`](PrefixedReader::push_checked);
//! `/shoal/blocks` limits each message type). Bodies that were whole before a
//! bad prefix are still handed out in order, then the error, for ever: a
//! stream cannot be resynchronised.
//!
//! `asynchronous-codec`'s `Framed` with `unsigned-varint`'s `UviBytes` (what
//! `prost-codec` builds on) would do the cutting, but it is an async reader:
//! the state machines here are fed bytes, not streams. And a data-channel
//! frame's limit counts its prefix ([`Limit::Whole`]), which `UviBytes`
//! cannot express.

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
    #[error("a {len}-byte message exceeds the limit of {max} bytes")]
    TooLong { len: u64, max: usize },
    /// Not a minimal unsigned varint of at most 10 bytes.
    #[error("invalid length prefix")]
    Invalid,
}

/// Splits a byte stream into length-prefixed bodies (see the module docs).
///
/// `E` is the error of the wire format on top: any [`PrefixError`] converts
/// into it, and [`push_checked`](Self::push_checked) and
/// [`fail_now`](Self::fail_now) may fail the reader with its own errors.
#[derive(Debug)]
pub struct PrefixedReader<E = PrefixError> {
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
    failed: Option<E>,
}

impl<E: From<PrefixError> + Clone> PrefixedReader<E> {
    pub fn new(limit: Limit) -> Self {
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

    /// A reader whose first message may have a body of at most `first_body`
    /// bytes (a handshake message, from a peer that has proved nothing yet).
    pub fn with_first_limit(limit: Limit, first_body: usize) -> Self {
        Self {
            first_limit: Some(first_body),
            ..Self::new(limit)
        }
    }

    /// Appends bytes read from the stream, in any chunking.
    pub fn push(&mut self, bytes: &[u8]) {
        self.push_checked(bytes, |_, _| Ok(()));
    }

    /// Like [`push`](Self::push), and `check(first body byte, body length)`
    /// runs once per non-empty message as soon as that byte arrives, before
    /// the rest of the body is kept; an error fails the reader.
    pub fn push_checked(
        &mut self,
        bytes: &[u8],
        mut check: impl FnMut(u8, usize) -> Result<(), E>,
    ) {
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        if let Err(error) = self.scan(&mut check) {
            self.buf.truncate(self.scanned);
            self.failed = Some(error);
        }
    }

    fn scan(&mut self, check: &mut impl FnMut(u8, usize) -> Result<(), E>) -> Result<(), E> {
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
                    Some(&head) => check(head, len)?,
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

    /// The next whole body; `Ok(None)` if more bytes are needed. After an
    /// error, the same error for ever.
    pub fn next_body(&mut self) -> Result<Option<&[u8]>, E> {
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
        Ok(Some(&self.buf[body_start..body_end]))
    }

    /// Fails the reader at once (a body that did not decode), dropping all
    /// it holds; returns `error` for the caller to pass on.
    pub fn fail_now(&mut self, error: E) -> E {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reader(limit: Limit) -> PrefixedReader {
        PrefixedReader::new(limit)
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
        assert_eq!(reader.next_body(), Ok(Some(&[0xaa][..])));
        let error = PrefixError::TooLong { len: 5, max: 4 };
        assert_eq!(reader.next_body(), Err(error.clone()));
        assert_eq!(reader.next_body(), Err(error));
        assert_eq!(reader.buffered(), 0);
    }

    #[test]
    fn whole_limit_counts_the_prefix() {
        let mut reader = reader(Limit::Whole(4));
        reader.push(&[0x03, 1, 2, 3]);
        assert_eq!(reader.next_body(), Ok(Some(&[1, 2, 3][..])));
        reader.push(&[0x04]);
        assert_eq!(
            reader.next_body(),
            Err(PrefixError::TooLong { len: 4, max: 4 })
        );
    }

    #[test]
    fn first_limit_holds_only_the_first_message() {
        let mut reader = PrefixedReader::<PrefixError>::with_first_limit(Limit::Body(100), 2);
        reader.push(&[0x02, 1, 2, 0x05, 1, 2, 3, 4, 5]);
        assert_eq!(reader.next_body(), Ok(Some(&[1, 2][..])));
        assert_eq!(reader.next_body(), Ok(Some(&[1, 2, 3, 4, 5][..])));
        let mut reader = PrefixedReader::<PrefixError>::with_first_limit(Limit::Body(100), 2);
        reader.push(&[0x03]);
        assert_eq!(
            reader.next_body(),
            Err(PrefixError::TooLong { len: 3, max: 2 })
        );
    }

    #[test]
    fn head_check_runs_before_the_body_is_kept() {
        let mut reader = reader(Limit::Body(1 << 20));
        let mut calls = 0;
        let mut check = |head: u8, len: usize| {
            calls += 1;
            if head == 0xee && len > 2 {
                Err(PrefixError::Invalid)
            } else {
                Ok(())
            }
        };
        reader.push_checked(&[0x02, 0xee], &mut check);
        reader.push_checked(&[0x00, 0x00, 0x80, 0x80, 0x01, 0xee], &mut check);
        reader.push_checked(&[0u8; 4096], &mut check);
        assert_eq!(
            calls, 2,
            "once per non-empty message, the empty one has no head"
        );
        assert_eq!(reader.buffered(), 4, "the refused message is not kept");
        assert_eq!(reader.next_body(), Ok(Some(&[0xee, 0x00][..])));
        assert_eq!(reader.next_body(), Ok(Some(&[][..])));
        assert_eq!(reader.next_body(), Err(PrefixError::Invalid));
    }

    #[test]
    fn invalid_prefixes() {
        for bytes in [&[0x80, 0x00][..], &[0xff; 10][..]] {
            let mut reader = reader(Limit::Body(usize::MAX));
            reader.push(bytes);
            assert_eq!(
                reader.next_body(),
                Err(PrefixError::Invalid),
                "{bytes:02x?}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip_in_any_chunking(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
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
                while let Some(body) = reader.next_body().expect("valid stream") {
                    decoded.push(body.to_vec());
                }
            }
            prop_assert_eq!(decoded, bodies);
            prop_assert!(!reader.has_partial());
        }

        #[test]
        fn oversize_prefix_never_buffers(len in 65u64..=u64::MAX, junk in 0usize..4096) {
            let mut prefix = Vec::new();
            varint::encode(len, &mut prefix);
            let mut reader = reader(Limit::Body(64));
            reader.push(&prefix);
            reader.push(&vec![0u8; junk]);
            prop_assert_eq!(reader.buffered(), 0);
            prop_assert_eq!(reader.next_body(), Err(PrefixError::TooLong { len, max: 64 }));
        }
    }
}
