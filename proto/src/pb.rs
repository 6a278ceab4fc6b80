//! Hand-written protobuf and length-prefix plumbing shared by the two libp2p
//! WebRTC wire formats (signaling messages and data-channel frames).
//!
//! Both messages have the same shape, which is all this module knows about:
//! field 1 is an enum (wire type 0, tag `0x08`) and field 2 is a string or
//! bytes (wire type 2, tag `0x12`). Every message travels behind an unsigned
//! varint length prefix ([`crate::varint`]).
//!
//! It lives under `signaling` only because the crate's top level belongs to
//! others; [`crate::frame`] uses it too.

use crate::varint;

/// Field 1, wire type 0 (varint).
const TAG_KIND: u8 = 0x08;
/// Field 2, wire type 2 (length-delimited).
const TAG_DATA: u8 = 0x12;

/// A protobuf varint is at most 10 bytes (64 bits in 7-bit groups).
const MAX_PB_VARINT: usize = 10;

/// Why a protobuf body did not decode. Each wire format maps it into its own
/// public error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PbError {
    /// A field or varint runs past the end of the body.
    Truncated,
    /// A varint longer than 10 bytes.
    InvalidVarint,
    /// Field number 0 or above 2^29 - 1.
    InvalidFieldNumber,
    /// Wire types 3 and 4 (deprecated groups) and 6, 7 (undefined).
    UnsupportedWireType(u8),
    /// A known field sent with a wire type other than its own.
    WrongWireType { field: u32, wire_type: u8 },
}

/// Why a length prefix was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixError {
    /// Not a valid (minimal, at most 9 bytes) unsigned varint.
    Invalid,
    /// Announces more than the limit allows; `len` is the announced body size.
    TooLong { len: u64 },
}

/// The two known fields of a decoded body, borrowed from it. Repeated
/// occurrences follow protobuf's rule for singular fields: the last one wins.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub(crate) kind: Option<u64>,
    pub(crate) data: Option<&'a [u8]>,
}

/// Length of the body [`encode_prefixed`] writes.
fn body_len(kind: Option<u8>, data_len: Option<usize>) -> usize {
    let kind_len = kind.map_or(0, |k| 1 + varint_len(u64::from(k)));
    let data_len = data_len.map_or(0, |n| 1 + varint_len(n as u64) + n);
    kind_len + data_len
}

/// Length of prefix plus body for a message with these fields.
pub(crate) fn prefixed_len(kind: Option<u8>, data_len: Option<usize>) -> usize {
    let body = body_len(kind, data_len);
    varint_len(body as u64) + body
}

/// Appends the length prefix and the body. A present field 1 is written even
/// when it is 0 (proto2 `optional` keeps presence; js-libp2p reads an absent
/// signaling type as "not an offer").
pub(crate) fn encode_prefixed(kind: Option<u8>, data: Option<&[u8]>, out: &mut Vec<u8>) {
    let body = body_len(kind, data.map(<[u8]>::len));
    out.reserve(varint_len(body as u64) + body);
    varint::encode(body as u64, out);
    if let Some(kind) = kind {
        out.push(TAG_KIND);
        varint::encode(u64::from(kind), out);
    }
    if let Some(data) = data {
        out.push(TAG_DATA);
        varint::encode(data.len() as u64, out);
        out.extend_from_slice(data);
    }
}

/// Decodes a body (without its length prefix), skipping unknown fields of
/// wire types 0, 1, 2 and 5.
pub(crate) fn decode_body(body: &[u8]) -> Result<Fields<'_>, PbError> {
    let mut fields = Fields::default();
    let mut pos = 0;
    while pos < body.len() {
        let key = read_varint(body, &mut pos)?;
        let wire_type = (key & 0x7) as u8;
        let field = key >> 3;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(PbError::InvalidFieldNumber);
        }
        // Checked above: fits in 29 bits.
        let field = field as u32;
        match (field, wire_type) {
            (1, 0) => fields.kind = Some(read_varint(body, &mut pos)?),
            (2, 2) => fields.data = Some(read_delimited(body, &mut pos)?),
            (1 | 2, _) => return Err(PbError::WrongWireType { field, wire_type }),
            (_, 0) => {
                read_varint(body, &mut pos)?;
            }
            (_, 1) => skip(body, &mut pos, 8)?,
            (_, 2) => {
                read_delimited(body, &mut pos)?;
            }
            (_, 5) => skip(body, &mut pos, 4)?,
            (_, other) => return Err(PbError::UnsupportedWireType(other)),
        }
    }
    Ok(fields)
}

fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Protobuf varints differ from [`crate::varint`]: they may take 10 bytes
/// (negative enum values do) and encoders are not required to be minimal.
fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, PbError> {
    let mut value = 0u64;
    for i in 0..MAX_PB_VARINT {
        let byte = *buf.get(*pos + i).ok_or(PbError::Truncated)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *pos += i + 1;
            return Ok(value);
        }
    }
    Err(PbError::InvalidVarint)
}

fn read_delimited<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], PbError> {
    let len = read_varint(buf, pos)?;
    let remaining = buf.len() - *pos;
    if len > remaining as u64 {
        return Err(PbError::Truncated);
    }
    // Checked above: no larger than the buffer.
    let len = len as usize;
    let bytes = &buf[*pos..*pos + len];
    *pos += len;
    Ok(bytes)
}

fn skip(buf: &[u8], pos: &mut usize, len: usize) -> Result<(), PbError> {
    if buf.len() - *pos < len {
        return Err(PbError::Truncated);
    }
    *pos += len;
    Ok(())
}

/// How large a message [`PrefixedReader`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The body alone, not counting the prefix.
    Body(usize),
    /// Prefix and body together.
    Whole(usize),
}

/// Splits a byte stream into length-prefixed bodies.
///
/// Each prefix is checked as soon as its bytes arrive, in [`push`](Self::push):
/// a prefix over the limit stops the reader before any of that body is kept,
/// so at most one body under the limit is ever partly buffered. Bodies that
/// arrived before a bad prefix are still handed out, then the error, for ever.
#[derive(Debug)]
pub(crate) struct PrefixedReader {
    buf: Vec<u8>,
    /// Where the next unread message starts.
    start: usize,
    /// Everything in `buf[start..scanned]` is whole messages with valid prefixes.
    scanned: usize,
    limit: Limit,
    failed: Option<PrefixError>,
}

impl PrefixedReader {
    pub(crate) fn new(limit: Limit) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            limit,
            failed: None,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        self.scan();
    }

    /// Bytes of an unfinished message held (after all whole ones are read).
    pub(crate) fn has_partial(&self) -> bool {
        self.buf.len() > self.scanned
    }

    fn scan(&mut self) {
        loop {
            let rest = &self.buf[self.scanned..];
            let (len, prefix_len) = match varint::decode(rest) {
                varint::Decoded::Value(len, prefix_len) => (len, prefix_len),
                varint::Decoded::Incomplete => return,
                varint::Decoded::Invalid => return self.fail(PrefixError::Invalid),
            };
            let (counted, max) = match self.limit {
                Limit::Body(max) => (len, max),
                Limit::Whole(max) => (len.saturating_add(prefix_len as u64), max),
            };
            if counted > max as u64 {
                return self.fail(PrefixError::TooLong { len });
            }
            // Bounded by the limit above, so it fits in usize.
            let whole = prefix_len + len as usize;
            if rest.len() < whole {
                return;
            }
            self.scanned += whole;
        }
    }

    fn fail(&mut self, error: PrefixError) {
        self.buf.truncate(self.scanned);
        self.failed = Some(error);
    }

    /// The next whole body, `None` if more bytes are needed.
    pub(crate) fn next_body(&mut self) -> Result<Option<&[u8]>, PrefixError> {
        if self.start == self.scanned {
            return match self.failed {
                Some(error) => Err(error),
                None => Ok(None),
            };
        }
        match varint::decode(&self.buf[self.start..self.scanned]) {
            varint::Decoded::Value(len, prefix_len) => {
                let body_start = self.start + prefix_len;
                // `scan` checked that the whole body is within `scanned`.
                let body_end = body_start + len as usize;
                self.start = body_end;
                Ok(Some(&self.buf[body_start..body_end]))
            }
            // Unreachable: `scan` validated this prefix. Fail closed anyway.
            varint::Decoded::Incomplete | varint::Decoded::Invalid => {
                self.fail(PrefixError::Invalid);
                self.start = self.scanned;
                Err(PrefixError::Invalid)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_len_matches_encoder() {
        for v in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            varint::encode(v, &mut out);
            assert_eq!(varint_len(v), out.len(), "{v}");
        }
    }

    #[test]
    fn skips_unknown_fields_of_every_supported_wire_type() {
        let body = [
            0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x01, // field 3 varint, 10 bytes
            0x21, 1, 2, 3, 4, 5, 6, 7, 8, // field 4 fixed64
            0x2a, 0x02, 0xaa, 0xbb, // field 5 bytes
            0x35, 1, 2, 3, 4, // field 6 fixed32
            0x08, 0x02, // field 1 = 2
            0x12, 0x01, b'x', // field 2 = "x"
            0x80, 0x01, 0x00, // field 16 varint (two-byte key)
        ];
        let fields = decode_body(&body).expect("decodes");
        assert_eq!(
            fields,
            Fields {
                kind: Some(2),
                data: Some(b"x")
            }
        );
    }

    #[test]
    fn rejects_bad_bodies() {
        assert_eq!(decode_body(&[0x08]), Err(PbError::Truncated));
        assert_eq!(decode_body(&[0x12, 0x05, 1]), Err(PbError::Truncated));
        assert_eq!(decode_body(&[0x21, 1, 2]), Err(PbError::Truncated));
        assert_eq!(decode_body(&[0x35, 1]), Err(PbError::Truncated));
        assert_eq!(decode_body(&[0x00, 0x00]), Err(PbError::InvalidFieldNumber));
        assert_eq!(decode_body(&[0x1b]), Err(PbError::UnsupportedWireType(3)));
        assert_eq!(
            decode_body(&[0x0a, 0x00]),
            Err(PbError::WrongWireType {
                field: 1,
                wire_type: 2
            })
        );
        assert_eq!(
            decode_body(&[0x10, 0x00]),
            Err(PbError::WrongWireType {
                field: 2,
                wire_type: 0
            })
        );
        assert_eq!(
            decode_body(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(PbError::InvalidVarint)
        );
    }

    #[test]
    fn last_occurrence_wins() {
        let fields = decode_body(&[0x08, 0x01, 0x08, 0x02, 0x12, 0x00]).expect("decodes");
        assert_eq!(
            fields,
            Fields {
                kind: Some(2),
                data: Some(b"")
            }
        );
    }

    #[test]
    fn reader_refuses_oversize_prefix_and_keeps_earlier_bodies() {
        let mut reader = PrefixedReader::new(Limit::Body(4));
        reader.push(&[0x01, 0xaa, 0x05]);
        assert_eq!(reader.buf.len(), 2, "the oversize prefix is not kept");
        reader.push(&[0u8; 64]);
        assert_eq!(
            reader.buf.len(),
            2,
            "nothing more is buffered after the error"
        );
        assert_eq!(reader.next_body(), Ok(Some(&[0xaa][..])));
        assert_eq!(reader.next_body(), Err(PrefixError::TooLong { len: 5 }));
        assert_eq!(reader.next_body(), Err(PrefixError::TooLong { len: 5 }));
    }

    #[test]
    fn whole_limit_counts_the_prefix() {
        let mut reader = PrefixedReader::new(Limit::Whole(4));
        reader.push(&[0x03, 1, 2, 3]);
        assert_eq!(reader.next_body(), Ok(Some(&[1, 2, 3][..])));
        reader.push(&[0x04]);
        assert_eq!(reader.next_body(), Err(PrefixError::TooLong { len: 4 }));
    }

    proptest! {
        #[test]
        fn decode_body_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_body(&bytes);
        }

        #[test]
        fn body_round_trip(kind in proptest::option::of(0u8..4), data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300))) {
            let mut out = Vec::new();
            encode_prefixed(kind, data.as_deref(), &mut out);
            prop_assert_eq!(out.len(), prefixed_len(kind, data.as_ref().map(Vec::len)));
            let mut reader = PrefixedReader::new(Limit::Body(1024));
            reader.push(&out);
            let body = reader.next_body().expect("valid").expect("whole");
            let fields = decode_body(body).expect("decodes");
            prop_assert_eq!(fields, Fields { kind: kind.map(u64::from), data: data.as_deref() });
        }
    }
}
