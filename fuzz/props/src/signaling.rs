//! `/webrtc-signaling/0.0.1` messages: [`MessageReader`] over any chunking,
//! and [`Message`] re-encoding.

use crate::{assert_reader_memory, pieces, read_prefix, split_seed, MAX_PREFIX_LEN};
use shoal_proto::prefixed::{self, PrefixError};
use shoal_proto::signaling::{Message, MessageReader, SignalingError, MAX_MESSAGE_LEN};

/// What a driver gets from a stream: the messages up to the first error.
fn read_all(pieces: &[&[u8]]) -> (Vec<Message>, Option<SignalingError>) {
    prefixed::read_all(MessageReader::new(), pieces)
}

pub fn check(data: &[u8]) {
    let (seed, stream) = split_seed(data);
    let cut = pieces(seed, stream);

    // Memory follows what arrived, never what a prefix announces.
    assert_reader_memory(
        "signaling MessageReader",
        MessageReader::new(),
        &cut,
        MAX_MESSAGE_LEN + MAX_PREFIX_LEN,
    );

    // The same messages and error however the stream was cut.
    let (messages, error) = read_all(&cut);
    assert_eq!(read_all(&[stream]), (messages.clone(), error.clone()));
    assert_eq!(
        read_all(&pieces(1, stream)),
        (messages.clone(), error.clone())
    );

    match &error {
        Some(SignalingError::Prefix(PrefixError::TooLong { len, max })) => {
            assert_eq!(*max, MAX_MESSAGE_LEN);
            assert!(*len > *max as u64, "{len} refused under the limit");
        }
        Some(
            SignalingError::Prefix(PrefixError::Invalid)
            | SignalingError::Protobuf(_)
            | SignalingError::MissingType
            | SignalingError::UnknownType(_)
            | SignalingError::InvalidUtf8,
        )
        | None => {}
        Some(other) => panic!("a decoder returned a state-machine error: {other:?}"),
    }
    // A bad prefix fails the reader for good.
    if let Some(e @ SignalingError::Prefix(_)) = &error {
        let mut reader = MessageReader::new();
        reader.push(stream);
        let first = loop {
            match reader.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the error went away"),
                Err(error) => break error,
            }
        };
        assert_eq!(&first, e);
        reader.push(b"\x00\x08\x00");
        assert_eq!(reader.next_message().as_ref(), Err(e));
    }

    // decode → encode → decode is the identity, and fits the limit.
    for message in &messages {
        let bytes = message.encode();
        let (body_len, prefix_len) = read_prefix(&bytes).expect("encode wrote a prefix");
        assert_eq!(bytes.len() as u64, prefix_len as u64 + body_len);
        assert!(body_len <= MAX_MESSAGE_LEN as u64);
        assert_eq!(Message::decode(&bytes[prefix_len..]).as_ref(), Ok(message));
        assert_eq!(read_all(&[&bytes]), (vec![message.clone()], None));
    }
}
