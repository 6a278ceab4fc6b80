//! The `/webrtc-signaling/0.0.1` wire format: an unsigned varint length, then
//! protobuf `Message { optional Type type = 1; optional string data = 2; }`
//! with `Type { SDP_OFFER = 0; SDP_ANSWER = 1; ICE_CANDIDATE = 2; }`
//! (`message.proto` beside this file, mirrored by `pb::Message`).
//!
//! The decoder is stricter than protobuf where that makes a peer's mistake
//! visible instead of silent: an unknown `type` value is an error rather than
//! an unknown field, and an absent `type` is [`SignalingError::MissingType`]
//! rather than `SDP_OFFER` (the default), because we cannot know what the
//! sender meant. js-libp2p always sends the field.

use prost::Message as _;

use super::SignalingError;
use crate::prefixed::{Decode, Limit, PrefixedReader};

/// Largest message body accepted. An SDP is a few KB; js-libp2p has no cap,
/// so this only guards against a hostile peer.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The protobuf message of `message.proto`, written out for `prost` (see the
/// crate docs for why there is no build script).
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Message {
        /// `Type`, kept as `i32` so that an unknown value reaches our error.
        #[prost(int32, optional, tag = "1")]
        pub r#type: Option<i32>,
        /// `string` in the .proto; the same bytes on the wire. Read as bytes
        /// so that bad UTF-8 is [`super::SignalingError::InvalidUtf8`].
        #[prost(bytes = "vec", optional, tag = "2")]
        pub data: Option<Vec<u8>>,
    }
}

/// The protobuf `Type` of a signaling message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// `SDP_OFFER = 0`, sent by the dialer.
    SdpOffer,
    /// `SDP_ANSWER = 1`, sent by the answerer.
    SdpAnswer,
    /// `ICE_CANDIDATE = 2`, `data` is `JSON.stringify(RTCIceCandidateInit)`.
    IceCandidate,
}

impl MessageType {
    fn to_wire(self) -> i32 {
        match self {
            Self::SdpOffer => 0,
            Self::SdpAnswer => 1,
            Self::IceCandidate => 2,
        }
    }

    fn from_wire(value: i32) -> Option<Self> {
        match value {
            0 => Some(Self::SdpOffer),
            1 => Some(Self::SdpAnswer),
            2 => Some(Self::IceCandidate),
            _ => None,
        }
    }
}

/// One signaling message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: MessageType,
    pub data: Option<String>,
}

impl Message {
    /// The message with its length prefix, ready to write on the stream.
    ///
    /// Does not enforce [`MAX_MESSAGE_LEN`]: that limit protects the reader.
    pub fn encode(&self) -> Vec<u8> {
        pb::Message {
            // Always present, even for SDP_OFFER = 0: js rejects an offer
            // whose type is absent, and `optional` makes prost write it.
            r#type: Some(self.kind.to_wire()),
            data: self.data.clone().map(String::into_bytes),
        }
        .encode_length_delimited_to_vec()
    }

    /// Decodes a body, i.e. a message without its length prefix.
    pub fn decode(body: &[u8]) -> Result<Self, SignalingError> {
        let message = pb::Message::decode(body)?;
        let kind = message.r#type.ok_or(SignalingError::MissingType)?;
        // A negative value (ten bytes on the wire) reads as its 64-bit
        // two's complement, as it was sent.
        let kind = MessageType::from_wire(kind)
            .ok_or(SignalingError::UnknownType(i64::from(kind) as u64))?;
        let data = match message.data {
            Some(bytes) => Some(String::from_utf8(bytes).map_err(|_| SignalingError::InvalidUtf8)?),
            None => None,
        };
        Ok(Self { kind, data })
    }
}

/// Accumulates bytes read from the stream and yields whole messages.
///
/// A length prefix above [`MAX_MESSAGE_LEN`] is refused as soon as it is
/// read, before any of its body is kept. After an error the reader stays
/// failed: the stream cannot be resynchronised.
pub type MessageReader = PrefixedReader<Message>;

impl Decode for Message {
    type Error = SignalingError;
    const LIMIT: Limit = Limit::Body(MAX_MESSAGE_LEN);

    fn decode(body: &[u8]) -> Result<Self, SignalingError> {
        Message::decode(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefixed::PrefixError;
    use proptest::prelude::*;

    fn msg(kind: MessageType, data: Option<&str>) -> Message {
        Message {
            kind,
            data: data.map(str::to_owned),
        }
    }

    #[test]
    fn offer_vector() {
        let bytes = msg(MessageType::SdpOffer, Some("v=0")).encode();
        assert_eq!(bytes, [0x07, 0x08, 0x00, 0x12, 0x03, b'v', b'=', b'0']);
    }

    #[test]
    fn type_zero_without_data_is_still_encoded() {
        assert_eq!(
            msg(MessageType::SdpOffer, None).encode(),
            [0x02, 0x08, 0x00]
        );
    }

    #[test]
    fn ice_candidate_vector() {
        let json = r#"{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}"#;
        assert_eq!(json.len(), 90);
        let bytes = msg(MessageType::IceCandidate, Some(json)).encode();
        let mut expected = vec![94, 0x08, 0x02, 0x12, 90];
        expected.extend_from_slice(json.as_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn answer_with_two_byte_lengths() {
        let sdp = "a".repeat(200);
        let bytes = msg(MessageType::SdpAnswer, Some(&sdp)).encode();
        // body = 08 01 12 c8 01 + 200 bytes = 205 = 0xcd 0x01
        assert_eq!(&bytes[..7], &[0xcd, 0x01, 0x08, 0x01, 0x12, 0xc8, 0x01]);
        assert_eq!(bytes.len(), 207);
    }

    #[test]
    fn decode_errors() {
        assert_eq!(
            Message::decode(&[0x12, 0x00]),
            Err(SignalingError::MissingType)
        );
        assert_eq!(
            Message::decode(&[0x08, 0x03]),
            Err(SignalingError::UnknownType(3))
        );
        assert_eq!(
            Message::decode(&[0x08, 0x00, 0x12, 0x01, 0xff]),
            Err(SignalingError::InvalidUtf8)
        );
        assert!(matches!(
            Message::decode(&[0x08, 0x00, 0x12, 0x04, b'a']),
            Err(SignalingError::Protobuf(_))
        ));
        // js encodes a negative enum as a 10-byte varint: unknown, not a panic.
        let negative = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(
            Message::decode(&negative),
            Err(SignalingError::UnknownType(u64::MAX))
        );
        assert_eq!(Message::decode(&[]), Err(SignalingError::MissingType));
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let body = [
            0x18, 0x05, 0x08, 0x01, 0x25, 0, 0, 0, 0, 0x12, 0x01, b'x', 0x2a, 0x00,
        ];
        assert_eq!(
            Message::decode(&body),
            Ok(msg(MessageType::SdpAnswer, Some("x")))
        );
    }

    #[test]
    fn oversize_prefix_is_rejected_before_the_body() {
        let mut reader = MessageReader::new();
        let mut prefix = Vec::new();
        crate::varint::encode(MAX_MESSAGE_LEN as u64 + 1, &mut prefix);
        reader.push(&prefix);
        assert_eq!(
            reader.next_message(),
            Err(SignalingError::Prefix(PrefixError::TooLong {
                len: MAX_MESSAGE_LEN as u64 + 1,
                max: MAX_MESSAGE_LEN
            }))
        );
        reader.push(&vec![0u8; 1024]);
        assert!(!reader.has_partial());
    }

    #[test]
    fn largest_message_is_accepted() {
        let body_data = "a".repeat(MAX_MESSAGE_LEN - 1 - 1 - 1 - 3);
        let encoded = msg(MessageType::SdpOffer, Some(&body_data)).encode();
        assert_eq!(encoded.len(), 3 + MAX_MESSAGE_LEN);
        let mut reader = MessageReader::new();
        reader.push(&encoded);
        assert_eq!(
            reader
                .next_message()
                .expect("fits")
                .map(|m| m.data.map(|d| d.len())),
            Some(Some(body_data.len()))
        );
    }

    #[test]
    fn invalid_prefix() {
        let mut reader = MessageReader::new();
        reader.push(&[0x80, 0x00]);
        assert_eq!(
            reader.next_message(),
            Err(SignalingError::Prefix(PrefixError::Invalid))
        );
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let kind = prop_oneof![
            Just(MessageType::SdpOffer),
            Just(MessageType::SdpAnswer),
            Just(MessageType::IceCandidate)
        ];
        (kind, proptest::option::of(".{0,300}")).prop_map(|(kind, data)| Message { kind, data })
    }

    proptest! {
        #[test]
        fn round_trip_in_any_chunking(
            messages in proptest::collection::vec(arb_message(), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let stream: Vec<u8> = messages.iter().flat_map(Message::encode).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut reader = MessageReader::new();
            let mut decoded = Vec::new();
            let mut from = 0;
            for cut in cuts {
                reader.push(&stream[from..cut]);
                from = cut;
                while let Some(m) = reader.next_message().expect("valid stream") {
                    decoded.push(m);
                }
            }
            prop_assert_eq!(decoded, messages);
            prop_assert!(!reader.has_partial());
        }

        #[test]
        fn prefix_and_body_in_separate_pushes(message in arb_message()) {
            let bytes = message.encode();
            let (_, prefix_len) = crate::varint::decode(&bytes).expect("a valid prefix");
            let mut reader = MessageReader::new();
            reader.push(&bytes[..prefix_len]);
            prop_assert_eq!(reader.next_message(), Ok(None));
            reader.push(&bytes[prefix_len..]);
            prop_assert_eq!(reader.next_message(), Ok(Some(message)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6)) {
            let mut reader = MessageReader::new();
            for chunk in &chunks {
                reader.push(chunk);
                for _ in 0..chunk.len() + 1 {
                    if !matches!(reader.next_message(), Ok(Some(_))) {
                        break;
                    }
                }
            }
        }

        #[test]
        fn oversize_prefix_never_buffers(len in (MAX_MESSAGE_LEN as u64 + 1)..(1u64 << 62), junk in 0usize..4096) {
            let mut prefix = Vec::new();
            crate::varint::encode(len, &mut prefix);
            let mut reader = MessageReader::new();
            reader.push(&prefix);
            reader.push(&vec![0u8; junk]);
            prop_assert!(!reader.has_partial());
            let rejected = matches!(reader.next_message(), Err(SignalingError::Prefix(PrefixError::TooLong { .. })));
            prop_assert!(rejected);
        }
    }
}
