//! Encoding and decoding of single frames (`message.proto` beside this file,
//! mirrored by `pb::Message`), and [`FrameReader`], which cuts a byte stream
//! of any chunking into frames.
//!
//! An unknown flag value is an error, not an unknown field: a flag changes the
//! stream's state, so ignoring one would leave the peers disagreeing.

use prost::Message as _;

use super::{FrameError, MAX_FRAME_LEN};
use crate::prefixed::{Decode, Limit, PrefixedReader};

/// The protobuf message of `message.proto`, written out for `prost` (see the
/// crate docs for why there is no build script).
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Message {
        /// `Flag`, kept as `i32` so that an unknown value reaches our error.
        #[prost(int32, optional, tag = "1")]
        pub flag: Option<i32>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub message: Option<Vec<u8>>,
    }
}

/// The protobuf `Flag` of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `FIN = 0`: the sender will write no more.
    Fin,
    /// `STOP_SENDING = 1`: the sender will read no more.
    StopSending,
    /// `RESET_STREAM = 2`: abort both directions.
    Reset,
    /// `FIN_ACK = 3`: the sender received our FIN.
    FinAck,
}

impl Flag {
    fn to_wire(self) -> i32 {
        match self {
            Self::Fin => 0,
            Self::StopSending => 1,
            Self::Reset => 2,
            Self::FinAck => 3,
        }
    }

    fn from_wire(value: i32) -> Option<Self> {
        match value {
            0 => Some(Self::Fin),
            1 => Some(Self::StopSending),
            2 => Some(Self::Reset),
            3 => Some(Self::FinAck),
            _ => None,
        }
    }
}

/// One frame. Both fields may be set: the message is delivered before the
/// flag takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub flag: Option<Flag>,
    pub message: Option<Vec<u8>>,
}

impl Frame {
    /// A frame carrying only `flag`.
    pub fn flag(flag: Flag) -> Self {
        Self {
            flag: Some(flag),
            message: None,
        }
    }

    /// A frame carrying only `payload`.
    pub fn data(payload: Vec<u8>) -> Self {
        Self {
            flag: None,
            message: Some(payload),
        }
    }

    /// Appends the length prefix and body to `out`. A flag of 0 (FIN) is
    /// written explicitly. Keeping under [`MAX_FRAME_LEN`] is the caller's
    /// job (payloads of at most [`super::MAX_PAYLOAD`] always fit).
    ///
    /// Copies the payload once more than [`into_bytes`](Self::into_bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let pb = pb::Message {
            flag: self.flag.map(Flag::to_wire),
            message: self.message.clone(),
        };
        // prost fails only when the buffer cannot grow; a `Vec` always can.
        let _ = pb.encode_length_delimited(out);
    }

    /// The length prefix and body, moving the payload instead of copying it
    /// (the sending path).
    pub fn into_bytes(self) -> Vec<u8> {
        pb::Message {
            flag: self.flag.map(Flag::to_wire),
            message: self.message,
        }
        .encode_length_delimited_to_vec()
    }

    /// Prefix plus body length of the encoding. Measures a copy: not for
    /// the sending path.
    pub fn encoded_len(&self) -> usize {
        self.clone().into_bytes().len()
    }

    /// Decodes a body, i.e. a frame without its length prefix.
    pub fn decode(body: &[u8]) -> Result<Self, FrameError> {
        let pb = pb::Message::decode(body)?;
        let flag = match pb.flag {
            Some(value) => Some(
                Flag::from_wire(value).ok_or(FrameError::UnknownFlag(i64::from(value) as u64))?,
            ),
            None => None,
        };
        Ok(Self {
            flag,
            message: pb.message,
        })
    }
}

/// Reassembles frames from data-channel messages of any chunking.
///
/// A prefix announcing a frame over [`MAX_FRAME_LEN`] is refused as soon as it
/// is read, before any of its body is kept; the reader then stays failed.
pub type FrameReader = PrefixedReader<Frame>;

impl Decode for Frame {
    type Error = FrameError;
    const LIMIT: Limit = Limit::Whole(MAX_FRAME_LEN);

    fn decode(body: &[u8]) -> Result<Self, FrameError> {
        Frame::decode(body)
    }
}

impl FrameReader {
    /// The next whole frame; `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        self.next_message()
    }
}

#[cfg(test)]
mod tests {
    use super::super::MAX_PAYLOAD;
    use super::*;
    use crate::prefixed::PrefixError;
    use proptest::prelude::*;

    fn encode(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out.len(), frame.encoded_len());
        out
    }

    #[test]
    fn vectors() {
        assert_eq!(encode(&Frame::flag(Flag::Fin)), [0x02, 0x08, 0x00]);
        assert_eq!(encode(&Frame::flag(Flag::StopSending)), [0x02, 0x08, 0x01]);
        assert_eq!(encode(&Frame::flag(Flag::Reset)), [0x02, 0x08, 0x02]);
        assert_eq!(encode(&Frame::flag(Flag::FinAck)), [0x02, 0x08, 0x03]);
        assert_eq!(
            encode(&Frame::data(b"hello".to_vec())),
            [0x07, 0x12, 0x05, b'h', b'e', b'l', b'l', b'o']
        );
        assert_eq!(
            encode(&Frame {
                flag: Some(Flag::Fin),
                message: Some(b"x".to_vec())
            }),
            [0x05, 0x08, 0x00, 0x12, 0x01, b'x']
        );
        assert_eq!(
            encode(&Frame {
                flag: None,
                message: None
            }),
            [0x00]
        );
    }

    #[test]
    fn max_payload_is_exact() {
        assert_eq!(MAX_PAYLOAD, 16377);
        let full = Frame {
            flag: Some(Flag::Fin),
            message: Some(vec![7; MAX_PAYLOAD]),
        };
        assert_eq!(encode(&full).len(), MAX_FRAME_LEN);
        let over = Frame {
            flag: Some(Flag::Fin),
            message: Some(vec![7; MAX_PAYLOAD + 1]),
        };
        assert!(encode(&over).len() > MAX_FRAME_LEN);

        let mut reader = FrameReader::new();
        reader.push(&encode(&full));
        assert_eq!(reader.next_frame(), Ok(Some(full)));
        reader.push(&encode(&over));
        assert!(matches!(
            reader.next_frame(),
            Err(FrameError::Prefix(PrefixError::TooLong { .. }))
        ));
    }

    #[test]
    fn decode_errors() {
        assert_eq!(
            Frame::decode(&[0x08, 0x04]),
            Err(FrameError::UnknownFlag(4))
        );
        assert!(matches!(
            Frame::decode(&[0x12, 0x02, 0x00]),
            Err(FrameError::Protobuf(_))
        ));
        assert!(matches!(
            Frame::decode(&[0x0a, 0x00]),
            Err(FrameError::Protobuf(_))
        ));
        // Unknown fields are skipped.
        assert_eq!(
            Frame::decode(&[0x18, 0x01, 0x08, 0x03]),
            Ok(Frame::flag(Flag::FinAck))
        );
    }

    #[test]
    fn oversize_prefix_rejected_before_buffering() {
        let mut reader = FrameReader::new();
        // 16383-byte body + 2-byte prefix > 16384.
        reader.push(&[0xff, 0x7f]);
        reader.push(&[0u8; 1000]);
        assert!(!reader.has_partial());
        assert_eq!(
            reader.next_frame(),
            Err(FrameError::Prefix(PrefixError::TooLong {
                len: 16383,
                max: MAX_FRAME_LEN
            }))
        );
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let flag = proptest::option::of(prop_oneof![
            Just(Flag::Fin),
            Just(Flag::StopSending),
            Just(Flag::Reset),
            Just(Flag::FinAck)
        ]);
        let message = proptest::option::of(prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(any::<u8>(), MAX_PAYLOAD - 2..=MAX_PAYLOAD),
        ]);
        (flag, message).prop_map(|(flag, message)| Frame { flag, message })
    }

    proptest! {
        #[test]
        fn round_trip_in_any_chunking(
            frames in proptest::collection::vec(arb_frame(), 0..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut stream = Vec::new();
            for frame in &frames {
                frame.encode(&mut stream);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut reader = FrameReader::new();
            let mut decoded = Vec::new();
            let mut from = 0;
            for cut in cuts {
                reader.push(&stream[from..cut]);
                from = cut;
                while let Some(frame) = reader.next_frame().expect("valid stream") {
                    decoded.push(frame);
                }
            }
            prop_assert_eq!(decoded, frames);
        }

        #[test]
        fn prefix_and_body_as_two_messages(frame in arb_frame()) {
            let bytes = encode(&frame);
            let (_, prefix_len) = crate::varint::decode(&bytes).expect("a valid prefix");
            let mut reader = FrameReader::new();
            reader.push(&bytes[..prefix_len]);
            if bytes.len() > prefix_len {
                prop_assert_eq!(reader.next_frame(), Ok(None));
            }
            reader.push(&bytes[prefix_len..]);
            prop_assert_eq!(reader.next_frame(), Ok(Some(frame)));
            prop_assert_eq!(reader.next_frame(), Ok(None));
        }

        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6)) {
            let mut reader = FrameReader::new();
            for chunk in &chunks {
                reader.push(chunk);
                for _ in 0..chunk.len() + 1 {
                    if !matches!(reader.next_frame(), Ok(Some(_))) {
                        break;
                    }
                }
            }
        }

        #[test]
        fn oversize_prefix_never_buffers(len in (MAX_FRAME_LEN as u64 - 1)..(1u64 << 62), junk in 0usize..4096) {
            let mut prefix = Vec::new();
            crate::varint::encode(len, &mut prefix);
            let mut reader = FrameReader::new();
            reader.push(&prefix);
            reader.push(&vec![0u8; junk]);
            prop_assert!(!reader.has_partial());
            let rejected = matches!(reader.next_frame(), Err(FrameError::Prefix(PrefixError::TooLong { .. })));
            prop_assert!(rejected);
        }
    }
}
