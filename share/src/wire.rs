//! `/shoal/blocks/2.0.0`: the messages two peers exchange about one share.
//!
//! # Sessions
//!
//! One libp2p stream carries one session: a pair of peers and one share.
//! The share id is never sent (see [`crate::handshake`]): the opener sends
//! [`Message::Hello`] with a nonce and a proof that it knows the id; the
//! acceptor answers [`Message::Welcome`] with its own proof and then its
//! [`Message::Bitfield`] if it holds that share, or [`Message::Unknown`] and
//! closes. The opener checks the acceptor's proof before it sends its own
//! bitfield. After that both sides may send any message at any time: ask
//! for the manifest, announce chunks, request, serve, refuse and cancel
//! chunks. [`crate::session`] enforces these rules.
//!
//! # Encoding
//!
//! Each message is an unsigned varint (minimal LEB128) body length, then the
//! body: one type byte and the fields below. Indices are varints that must
//! fit in a `u32`. Bitfields use their own encoding ([`crate::bitfield`]).
//! "Rest" fields run to the end of the body; every other message must end
//! right after its last field.
//!
//! | type   | message       | fields                                  | longest body |
//! |--------|---------------|-----------------------------------------|--------------|
//! | `0x00` | `Hello`       | nonce (16 bytes), proof (32 bytes)      | 49           |
//! | `0x01` | `Bitfield`    | bitfield (rest)                         | 32,771       |
//! | `0x02` | `Unknown`     | —                                       | 1            |
//! | `0x03` | `GetManifest` | —                                       | 1            |
//! | `0x04` | `Manifest`    | encoded manifest (rest)                 | 8 MiB + 1    |
//! | `0x05` | `Have`        | index                                   | 6            |
//! | `0x06` | `Request`     | index                                   | 6            |
//! | `0x07` | `Chunk`       | index, data (rest)                      | 16 MiB + 64  |
//! | `0x08` | `Reject`      | index                                   | 6            |
//! | `0x09` | `Cancel`      | index                                   | 6            |
//! | `0x0a` | `Welcome`     | proof (32 bytes)                        | 33           |
//!
//! [`MessageReader`] (`shoal_proto`'s one length-prefixed reader, with
//! [`Message`]'s [`Decode`] rules) checks a body's announced length against
//! its type's limit as soon as the type byte arrives, before buffering the
//! body, and
//! can hold the first message of a stream to a smaller limit (no larger
//! than a `Hello`). The limits live in [`crate::limits`].
//!
//! For example `Request(300)` is `03 06 ac 02`. Like manifests and bitfields,
//! every message has exactly one encoding. Unknown types are errors, not
//! skipped: a new message means a new protocol version.

use crate::bitfield::{Bitfield, BitfieldError};
use crate::handshake::{Nonce, Proof, NONCE_LEN, PROOF_LEN};
pub use crate::limits::MAX_MESSAGE_LEN;
use crate::limits::{
    MAX_BITFIELD_LEN, MAX_HELLO_LEN, MAX_INDEX_MESSAGE_LEN, MAX_MANIFEST_MESSAGE_LEN,
    MAX_WELCOME_LEN,
};
use crate::manifest::{MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_ENCODED_LEN};
use shoal_proto::prefixed::{Decode, Limit, PrefixError, PrefixedReader};
use shoal_proto::varint;

/// The libp2p protocol id of this wire format. Version 2: the share id no
/// longer travels in `Hello` (version 1 sent it to every peer).
pub const PROTOCOL: &str = "/shoal/blocks/2.0.0";

// Every message this crate can produce fits.
const _: () = assert!(1 + varint::MAX_LEN + (MAX_CHUNK_SIZE as usize) <= MAX_MESSAGE_LEN);
// (A manifest's body is its type byte and the manifest.)
const _: () = assert!(MAX_ENCODED_LEN < MAX_MESSAGE_LEN);
const _: () = assert!(1 + varint::MAX_LEN + (MAX_CHUNKS as usize).div_ceil(8) <= MAX_BITFIELD_LEN);
const _: () = assert!(MAX_HELLO_LEN == 1 + NONCE_LEN + PROOF_LEN);

const HELLO: u8 = 0x00;
const BITFIELD: u8 = 0x01;
const UNKNOWN: u8 = 0x02;
const GET_MANIFEST: u8 = 0x03;
const MANIFEST: u8 = 0x04;
const HAVE: u8 = 0x05;
const REQUEST: u8 = 0x06;
const CHUNK: u8 = 0x07;
const REJECT: u8 = 0x08;
const CANCEL: u8 = 0x09;
const WELCOME: u8 = 0x0a;

/// The longest body a message of type `ty` may have; `None` for an unknown
/// type.
pub fn max_body_len(ty: u8) -> Option<usize> {
    Some(match ty {
        HELLO => MAX_HELLO_LEN,
        WELCOME => MAX_WELCOME_LEN,
        BITFIELD => MAX_BITFIELD_LEN,
        UNKNOWN | GET_MANIFEST => 1,
        MANIFEST => MAX_MANIFEST_MESSAGE_LEN,
        HAVE | REQUEST | REJECT | CANCEL => MAX_INDEX_MESSAGE_LEN,
        CHUNK => MAX_MESSAGE_LEN,
        _ => return None,
    })
}

/// One message of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The opener's first message: a fresh nonce and a proof that it knows
    /// the share id ([`crate::handshake`]).
    Hello { nonce: Nonce, proof: Proof },
    /// The acceptor's answer to `Hello` when it holds the share: its own
    /// proof, bound to the same nonce and PeerIds.
    Welcome(Proof),
    /// "I hold this share, and these chunks": right after the handshake, or
    /// sent again later, e.g. once the manifest has arrived.
    Bitfield(Bitfield),
    /// "I do not hold this share"; the sender then closes the stream.
    Unknown,
    /// Asks for the encoded manifest.
    GetManifest,
    /// The encoded manifest, to be checked against the share id.
    Manifest(Vec<u8>),
    /// The sender now has chunk `index`.
    Have(u32),
    /// Asks for chunk `index`.
    Request(u32),
    /// Chunk `index`, to be checked against the manifest.
    Chunk { index: u32, data: Vec<u8> },
    /// The sender cannot serve chunk `index` now.
    Reject(u32),
    /// Withdraws a request for chunk `index`.
    Cancel(u32),
}

impl Message {
    /// Appends the length-prefixed message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Everything but a trailing "rest" field goes into `head`, so the
        // length prefix can be written before it without a second pass.
        let mut head = Vec::with_capacity(1 + varint::MAX_LEN);
        let owned_rest;
        let rest: &[u8] = match self {
            Self::Hello { nonce, proof } => {
                head.push(HELLO);
                head.extend_from_slice(&nonce.0);
                head.extend_from_slice(proof.as_bytes());
                &[]
            }
            Self::Welcome(proof) => {
                head.push(WELCOME);
                head.extend_from_slice(proof.as_bytes());
                &[]
            }
            Self::Bitfield(have) => {
                head.push(BITFIELD);
                owned_rest = have.encode();
                &owned_rest
            }
            Self::Unknown => {
                head.push(UNKNOWN);
                &[]
            }
            Self::GetManifest => {
                head.push(GET_MANIFEST);
                &[]
            }
            Self::Manifest(bytes) => {
                head.push(MANIFEST);
                bytes
            }
            Self::Have(index) => indexed(HAVE, *index, &mut head),
            Self::Request(index) => indexed(REQUEST, *index, &mut head),
            Self::Chunk { index, data } => {
                indexed(CHUNK, *index, &mut head);
                data
            }
            Self::Reject(index) => indexed(REJECT, *index, &mut head),
            Self::Cancel(index) => indexed(CANCEL, *index, &mut head),
        };
        out.reserve(varint::MAX_LEN + head.len() + rest.len());
        write_head(&head, rest.len(), out);
        out.extend_from_slice(rest);
    }
}

/// Appends everything of a [`Message::Chunk`] but its data: the length
/// prefix, the type byte and the index.
///
/// A driver serving a chunk writes this header and then the chunk's bytes
/// straight from storage, instead of copying them into a [`Message`] first;
/// the receiver cannot tell the difference. `data_len` must be the exact
/// number of bytes that follow, and at most [`MAX_CHUNK_SIZE`], or the
/// receiver rejects the message.
pub fn encode_chunk_header(index: u32, data_len: usize, out: &mut Vec<u8>) {
    let mut head = Vec::with_capacity(1 + varint::MAX_LEN);
    indexed(CHUNK, index, &mut head);
    write_head(&head, data_len, out);
}

/// Appends everything of a [`Message::Manifest`] but the manifest: the
/// length prefix and the type byte. A driver answering `GetManifest` writes
/// this and then the manifest's bytes from the one shared copy it keeps,
/// instead of copying them into a [`Message`] per request.
pub fn encode_manifest_header(manifest_len: usize, out: &mut Vec<u8>) {
    write_head(&[MANIFEST], manifest_len, out);
}

/// Pushes a type byte and an index; returns the (empty) rest.
fn indexed(ty: u8, index: u32, head: &mut Vec<u8>) -> &'static [u8] {
    head.push(ty);
    varint::encode(u64::from(index), head);
    &[]
}

fn write_head(head: &[u8], rest_len: usize, out: &mut Vec<u8>) {
    // A usize always fits in a u64 on the targets Rust supports.
    varint::encode((head.len() + rest_len) as u64, out);
    out.extend_from_slice(head);
}

/// Why the byte stream of a session was refused. Every error ends the
/// session: the stream cannot be trusted from that point on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The length prefix is invalid, or over [`MAX_MESSAGE_LEN`] (or the
    /// first-message limit).
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    #[error("message of type {ty:#04x} and {len} bytes is longer than the {max} its type allows")]
    TooLargeForType { ty: u8, len: usize, max: usize },
    #[error("empty message: no type byte")]
    Empty,
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    #[error("message of type {ty:#04x} ends early")]
    Truncated { ty: u8 },
    #[error("{len} bytes follow the fields of a message of type {ty:#04x}")]
    TrailingBytes { ty: u8, len: usize },
    #[error("malformed varint in message of type {ty:#04x}")]
    BadVarint { ty: u8 },
    #[error("chunk index {0} does not fit in 32 bits")]
    IndexTooLarge(u64),
    #[error("bad bitfield: {0}")]
    Bitfield(#[from] BitfieldError),
}

/// Reassembles [`Message`]s from the bytes of a stream, however they were cut.
///
/// The one length-prefixed reader of every shoal wire format
/// ([`PrefixedReader`]): a length prefix over [`MAX_MESSAGE_LEN`] (or over
/// the first-message limit, see
/// [`with_first_limit`](PrefixedReader::with_first_limit)) is refused as soon
/// as it is read, and a body longer than its type allows ([`max_body_len`])
/// as soon as its type byte is read, before a byte more of it is kept.
/// Memory grows with the bytes that actually arrive, not with what a prefix
/// announces. Once an error is returned the reader is failed: it drops
/// further input and returns the same error again. Messages that were whole
/// before the bad one are still returned first, in order.
pub type MessageReader = PrefixedReader<Message>;

impl Decode for Message {
    type Error = WireError;
    const LIMIT: Limit = Limit::Body(MAX_MESSAGE_LEN);

    fn decode(body: &[u8]) -> Result<Self, WireError> {
        decode_body(body)
    }

    fn check_head(ty: u8, len: usize) -> Result<(), WireError> {
        match max_body_len(ty) {
            None => Err(WireError::UnknownType(ty)),
            Some(max) if len > max => Err(WireError::TooLargeForType { ty, len, max }),
            Some(_) => Ok(()),
        }
    }
}

fn decode_body(body: &[u8]) -> Result<Message, WireError> {
    let (&ty, fields) = body.split_first().ok_or(WireError::Empty)?;
    let message = match ty {
        HELLO => {
            let (nonce, rest) = fields
                .split_first_chunk::<NONCE_LEN>()
                .ok_or(WireError::Truncated { ty })?;
            let (proof, rest) = rest
                .split_first_chunk::<PROOF_LEN>()
                .ok_or(WireError::Truncated { ty })?;
            end(ty, rest)?;
            Message::Hello {
                nonce: Nonce(*nonce),
                proof: Proof::from_bytes(*proof),
            }
        }
        WELCOME => {
            let (proof, rest) = fields
                .split_first_chunk::<PROOF_LEN>()
                .ok_or(WireError::Truncated { ty })?;
            end(ty, rest)?;
            Message::Welcome(Proof::from_bytes(*proof))
        }
        BITFIELD => Message::Bitfield(Bitfield::decode(fields)?),
        UNKNOWN => {
            end(ty, fields)?;
            Message::Unknown
        }
        GET_MANIFEST => {
            end(ty, fields)?;
            Message::GetManifest
        }
        MANIFEST => Message::Manifest(fields.to_vec()),
        HAVE => Message::Have(only_index(ty, fields)?),
        REQUEST => Message::Request(only_index(ty, fields)?),
        CHUNK => {
            let (index, data) = index(ty, fields)?;
            Message::Chunk {
                index,
                data: data.to_vec(),
            }
        }
        REJECT => Message::Reject(only_index(ty, fields)?),
        CANCEL => Message::Cancel(only_index(ty, fields)?),
        other => return Err(WireError::UnknownType(other)),
    };
    Ok(message)
}

/// Reads an index from the front of `fields`; returns it and what follows.
fn index(ty: u8, fields: &[u8]) -> Result<(u32, &[u8]), WireError> {
    let (value, n) = varint::decode(fields).map_err(|e| match e {
        varint::Error::Insufficient => WireError::Truncated { ty },
        _ => WireError::BadVarint { ty },
    })?;
    let index = u32::try_from(value).map_err(|_| WireError::IndexTooLarge(value))?;
    Ok((index, &fields[n..]))
}

fn only_index(ty: u8, fields: &[u8]) -> Result<u32, WireError> {
    let (index, rest) = index(ty, fields)?;
    end(ty, rest)?;
    Ok(index)
}

fn end(ty: u8, rest: &[u8]) -> Result<(), WireError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(WireError::TrailingBytes {
            ty,
            len: rest.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(message: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        message.encode(&mut out);
        out
    }

    /// Decodes `bytes` as exactly one message.
    fn decode_one(bytes: &[u8]) -> Result<Message, WireError> {
        let mut reader = MessageReader::new();
        reader.push(bytes);
        let message = reader.next_message()?.expect("a whole message");
        assert_eq!(reader.next_message(), Ok(None));
        assert!(!reader.has_partial());
        Ok(message)
    }

    fn hello() -> Message {
        Message::Hello {
            nonce: Nonce([0x11; NONCE_LEN]),
            proof: Proof::from_bytes([0x22; PROOF_LEN]),
        }
    }

    #[test]
    fn byte_exact_vectors() {
        let mut some = Bitfield::new(10);
        some.set(0).expect("in range");
        some.set(9).expect("in range");
        let mut hello_bytes = vec![0x31, 0x00];
        hello_bytes.extend_from_slice(&[0x11; 16]);
        hello_bytes.extend_from_slice(&[0x22; 32]);
        let mut welcome = vec![0x21, 0x0a];
        welcome.extend_from_slice(&[0x33; 32]);

        let vectors: Vec<(Message, Vec<u8>)> = vec![
            (hello(), hello_bytes),
            (Message::Welcome(Proof::from_bytes([0x33; 32])), welcome),
            (
                Message::Bitfield(some),
                vec![0x04, 0x01, 10, 0b1000_0000, 0b0100_0000],
            ),
            (
                Message::Bitfield(Bitfield::full(10)),
                vec![0x04, 0x01, 10, 0xff, 0b1100_0000],
            ),
            (Message::Unknown, vec![0x01, 0x02]),
            (Message::GetManifest, vec![0x01, 0x03]),
            (
                Message::Manifest(b"SHOAL".to_vec()),
                vec![0x06, 0x04, b'S', b'H', b'O', b'A', b'L'],
            ),
            (Message::Manifest(Vec::new()), vec![0x01, 0x04]),
            (Message::Have(0), vec![0x02, 0x05, 0x00]),
            (Message::Request(300), vec![0x03, 0x06, 0xac, 0x02]),
            (
                Message::Chunk {
                    index: 1,
                    data: b"abc".to_vec(),
                },
                vec![0x05, 0x07, 0x01, b'a', b'b', b'c'],
            ),
            (
                Message::Reject(u32::MAX),
                vec![0x06, 0x08, 0xff, 0xff, 0xff, 0xff, 0x0f],
            ),
            (Message::Cancel(127), vec![0x02, 0x09, 0x7f]),
        ];
        for (message, bytes) in vectors {
            assert_eq!(encode(&message), bytes, "{message:?}");
            assert_eq!(decode_one(&bytes), Ok(message));
        }
    }

    #[test]
    fn encode_appends() {
        let mut out = vec![0xee];
        Message::Have(1).encode(&mut out);
        assert_eq!(out, [0xee, 0x02, 0x05, 0x01]);
    }

    #[test]
    fn rejected_bodies() {
        let mut hello_48 = vec![48, 0x00];
        hello_48.extend_from_slice(&[0; 47]);
        let mut hello_50 = vec![50, 0x00];
        hello_50.extend_from_slice(&[0; 49]);
        let mut welcome_34 = vec![34, 0x0a];
        welcome_34.extend_from_slice(&[0; 33]);
        let cases: Vec<(Vec<u8>, WireError)> = vec![
            (vec![0x00], WireError::Empty),
            (vec![0x01, 0x0b], WireError::UnknownType(0x0b)),
            (vec![0x01, 0xff], WireError::UnknownType(0xff)),
            (
                vec![0x02, 0x02, 0x00],
                WireError::TooLargeForType {
                    ty: 0x02,
                    len: 2,
                    max: 1,
                },
            ),
            (
                vec![0x03, 0x03, 0x00, 0x00],
                WireError::TooLargeForType {
                    ty: 0x03,
                    len: 3,
                    max: 1,
                },
            ),
            (
                vec![0x03, 0x05, 0x01, 0x00],
                WireError::TrailingBytes { ty: 0x05, len: 1 },
            ),
            (vec![0x01, 0x06], WireError::Truncated { ty: 0x06 }),
            (vec![0x02, 0x06, 0x80], WireError::Truncated { ty: 0x06 }),
            (vec![0x01, 0x07], WireError::Truncated { ty: 0x07 }),
            (
                vec![0x03, 0x08, 0x80, 0x00],
                WireError::BadVarint { ty: 0x08 },
            ),
            (
                vec![0x06, 0x09, 0x80, 0x80, 0x80, 0x80, 0x10],
                WireError::IndexTooLarge(1 << 32),
            ),
            (
                vec![0x05, 0x00, 1, 2, 3, 4],
                WireError::Truncated { ty: 0x00 },
            ),
            (hello_48, WireError::Truncated { ty: 0x00 }),
            (
                hello_50,
                WireError::TooLargeForType {
                    ty: 0x00,
                    len: 50,
                    max: 49,
                },
            ),
            (
                welcome_34,
                WireError::TooLargeForType {
                    ty: 0x0a,
                    len: 34,
                    max: 33,
                },
            ),
            (
                vec![0x07, 0x05, 1, 2, 3, 4, 5, 6],
                WireError::TooLargeForType {
                    ty: 0x05,
                    len: 7,
                    max: 6,
                },
            ),
            (
                vec![0x04, 0x01, 0x01, 0x80, 0x00],
                WireError::Bitfield(BitfieldError::TrailingBytes(1)),
            ),
            (
                vec![0x03, 0x01, 0x01, 0xc0],
                WireError::Bitfield(BitfieldError::SpareBitsSet),
            ),
            (vec![0x80, 0x00], WireError::Prefix(PrefixError::Invalid)),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode_one(&bytes), Err(error), "{bytes:02x?}");
        }
    }

    #[test]
    fn errors_are_sticky_and_come_after_earlier_messages() {
        let mut stream = encode(&Message::Have(7));
        let oversize = MAX_MESSAGE_LEN as u64 + 1;
        varint::encode(oversize, &mut stream);
        stream.extend_from_slice(&[0x07; 100]);
        let mut reader = MessageReader::new();
        reader.push(&stream);
        assert!(reader.buffered() <= 3 + varint::MAX_LEN);
        assert_eq!(reader.next_message(), Ok(Some(Message::Have(7))));
        let error = WireError::Prefix(PrefixError::TooLong {
            len: oversize,
            max: MAX_MESSAGE_LEN,
        });
        assert_eq!(reader.next_message(), Err(error.clone()));
        reader.push(&encode(&Message::Have(8)));
        assert!(reader.buffered() == 0);
        assert_eq!(reader.next_message(), Err(error));

        // A bad body fails the reader too, even if good messages follow.
        let mut stream = vec![0x01, 0x03];
        stream.extend_from_slice(&[0x03, 0x05, 0x01, 0x00]);
        Message::Have(8).encode(&mut stream);
        let mut reader = MessageReader::new();
        reader.push(&stream);
        let bad = WireError::TrailingBytes { ty: 0x05, len: 1 };
        assert_eq!(reader.next_message(), Ok(Some(Message::GetManifest)));
        assert_eq!(reader.next_message(), Err(bad.clone()));
        assert_eq!(reader.next_message(), Err(bad));
        assert!(reader.buffered() == 0);
    }

    #[test]
    fn largest_message_is_accepted() {
        // Body: type, 5-byte index, data — exactly MAX_MESSAGE_LEN.
        let data = vec![0x5a; MAX_MESSAGE_LEN - 6];
        let message = Message::Chunk {
            index: u32::MAX,
            data,
        };
        let bytes = encode(&message);
        assert_eq!(bytes.len(), 4 + MAX_MESSAGE_LEN);
        assert_eq!(decode_one(&bytes), Ok(message));

        let mut over = Vec::new();
        varint::encode(MAX_MESSAGE_LEN as u64 + 1, &mut over);
        over.push(CHUNK);
        assert_eq!(
            decode_one(&over),
            Err(WireError::Prefix(PrefixError::TooLong {
                len: MAX_MESSAGE_LEN as u64 + 1,
                max: MAX_MESSAGE_LEN,
            }))
        );
    }

    #[test]
    fn first_message_is_held_to_its_limit() {
        // A first message longer than a hello is refused at its prefix.
        let mut reader = MessageReader::with_first_limit(crate::limits::MAX_HELLO_LEN);
        reader.push(&encode(&Message::Bitfield(Bitfield::full(1000))));
        assert!(reader.buffered() <= 2);
        assert_eq!(
            reader.next_message(),
            Err(WireError::Prefix(PrefixError::TooLong {
                len: 128,
                max: crate::limits::MAX_HELLO_LEN
            }))
        );
        // A hello passes, and then larger messages do too.
        let mut reader = MessageReader::with_first_limit(crate::limits::MAX_HELLO_LEN);
        let mut stream = encode(&hello());
        let big = Message::Bitfield(Bitfield::full(1000));
        big.encode(&mut stream);
        reader.push(&stream);
        assert_eq!(reader.next_message(), Ok(Some(hello())));
        assert_eq!(reader.next_message(), Ok(Some(big)));
    }

    #[test]
    fn oversized_body_for_its_type_is_refused_before_buffering() {
        // A `Have` announced at 1 MiB: refused at its type byte.
        let mut stream = Vec::new();
        varint::encode(1 << 20, &mut stream);
        stream.push(HAVE);
        stream.extend_from_slice(&[0; 4096]);
        let mut reader = MessageReader::new();
        reader.push(&stream);
        assert!(reader.buffered() == 0);
        assert_eq!(
            reader.next_message(),
            Err(WireError::TooLargeForType {
                ty: HAVE,
                len: 1 << 20,
                max: 6
            })
        );
        // An unknown type is refused at its type byte too.
        let mut reader = MessageReader::new();
        reader.push(&[0x7f, 0x42, 0, 0, 0]);
        assert_eq!(reader.next_message(), Err(WireError::UnknownType(0x42)));
    }

    #[test]
    fn the_table_of_longest_bodies_holds() {
        let table = [
            (HELLO, 49),
            (BITFIELD, 32_771),
            (UNKNOWN, 1),
            (GET_MANIFEST, 1),
            (MANIFEST, 8 * 1024 * 1024 + 1),
            (HAVE, 6),
            (REQUEST, 6),
            (CHUNK, 16 * 1024 * 1024 + 64),
            (REJECT, 6),
            (CANCEL, 6),
            (WELCOME, 33),
        ];
        for (ty, max) in table {
            assert_eq!(max_body_len(ty), Some(max), "type {ty:#04x}");
        }
        assert_eq!(max_body_len(0x0b), None);
    }

    #[test]
    fn manifest_header_then_bytes_equals_manifest() {
        let bytes = b"SHOAL manifest".to_vec();
        let mut split = Vec::new();
        encode_manifest_header(bytes.len(), &mut split);
        split.extend_from_slice(&bytes);
        assert_eq!(split, encode(&Message::Manifest(bytes)));
    }

    #[test]
    fn partial_message_is_reported() {
        let bytes = encode(&Message::Request(300));
        let mut reader = MessageReader::new();
        reader.push(&bytes[..1]);
        assert!(reader.has_partial());
        assert_eq!(reader.next_message(), Ok(None));
        reader.push(&bytes[1..3]);
        assert_eq!(reader.next_message(), Ok(None));
        reader.push(&bytes[3..]);
        assert!(!reader.has_partial());
        assert_eq!(reader.next_message(), Ok(Some(Message::Request(300))));
    }

    fn arb_bitfield() -> impl Strategy<Value = Bitfield> {
        (
            0u32..200,
            proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        )
            .prop_map(|(len, picks)| {
                let mut field = Bitfield::new(len);
                if len > 0 {
                    for p in picks {
                        field.set(p.index(len as usize) as u32).expect("in range");
                    }
                }
                field
            })
    }

    fn arb_index() -> impl Strategy<Value = u32> {
        prop_oneof![0u32..300, any::<u32>()]
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
        prop_oneof![
            (any::<[u8; 16]>(), any::<[u8; 32]>()).prop_map(|(nonce, proof)| Message::Hello {
                nonce: Nonce(nonce),
                proof: Proof::from_bytes(proof),
            }),
            any::<[u8; 32]>().prop_map(|p| Message::Welcome(Proof::from_bytes(p))),
            arb_bitfield().prop_map(Message::Bitfield),
            Just(Message::Unknown),
            Just(Message::GetManifest),
            bytes().prop_map(Message::Manifest),
            arb_index().prop_map(Message::Have),
            arb_index().prop_map(Message::Request),
            (arb_index(), bytes()).prop_map(|(index, data)| Message::Chunk { index, data }),
            arb_index().prop_map(Message::Reject),
            arb_index().prop_map(Message::Cancel),
        ]
    }

    /// Cuts `bytes` at the given points (in any order, repeats allowed).
    fn pieces<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
    }

    /// Feeds `bytes` in pieces, reading after each; stops at the first error.
    fn read_all(bytes: &[u8], cuts: &[prop::sample::Index]) -> (Vec<Message>, Option<WireError>) {
        shoal_proto::prefixed::read_all(MessageReader::new(), &pieces(bytes, cuts))
    }

    /// What decoded must be exactly the front of what was sent.
    fn assert_canonical_prefix(messages: &[Message], bytes: &[u8]) -> Result<(), TestCaseError> {
        let mut again = Vec::new();
        for message in messages {
            message.encode(&mut again);
        }
        prop_assert!(again.len() <= bytes.len());
        prop_assert_eq!(&again[..], &bytes[..again.len()]);
        Ok(())
    }

    proptest! {
        #[test]
        fn round_trip_any_chunking(
            messages in proptest::collection::vec(arb_message(), 1..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut stream = Vec::new();
            for message in &messages {
                message.encode(&mut stream);
            }
            let (decoded, error) = read_all(&stream, &cuts);
            prop_assert_eq!(error, None);
            prop_assert_eq!(decoded, messages);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let (decoded, _) = read_all(&bytes, &cuts);
            assert_canonical_prefix(&decoded, &bytes)?;
        }

        #[test]
        fn mutated_streams_never_panic(
            messages in proptest::collection::vec(arb_message(), 1..6),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut stream = Vec::new();
            for message in &messages {
                message.encode(&mut stream);
            }
            for (at, byte) in edits {
                let i = at.index(stream.len());
                stream[i] = byte;
            }
            let (decoded, _) = read_all(&stream, &cuts);
            assert_canonical_prefix(&decoded, &stream)?;
        }

        #[test]
        fn oversize_prefix_rejected_without_buffering(
            len in (MAX_MESSAGE_LEN as u64 + 1)..=u64::MAX,
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut stream = Vec::new();
            varint::encode(len, &mut stream);
            stream.extend_from_slice(&body);
            let mut reader = MessageReader::new();
            for piece in pieces(&stream, &cuts) {
                reader.push(piece);
                // Never more than an unfinished prefix is held.
                prop_assert!(reader.buffered() < varint::MAX_LEN);
            }
            prop_assert_eq!(
                reader.next_message(),
                Err(WireError::Prefix(PrefixError::TooLong { len, max: MAX_MESSAGE_LEN }))
            );
            prop_assert!(reader.buffered() == 0);
        }

        #[test]
        fn chunk_header_then_data_equals_chunk(
            index in arb_index(),
            data in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut split = Vec::new();
            encode_chunk_header(index, data.len(), &mut split);
            split.extend_from_slice(&data);
            prop_assert_eq!(split, encode(&Message::Chunk { index, data }));
        }
    }
}
