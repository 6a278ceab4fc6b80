//! `/shoal/blocks/2.0.0` messages: [`MessageReader`] (with and without a
//! first-message limit) over any chunking. The encoding is canonical, so the
//! messages read re-encode to exactly the bytes they came from.

use shoal_proto::prefixed::{self, PrefixError};
use shoal_share::limits::{MAX_HELLO_LEN, MAX_WELCOME_LEN};
use shoal_share::wire::max_body_len;
use shoal_share::{Message, MessageReader, WireError, MAX_MESSAGE_LEN};

use crate::{assert_reader_memory, pieces, read_prefix, split_seed, MAX_PREFIX_LEN};

fn reader(first_limit: Option<usize>) -> MessageReader {
    match first_limit {
        Some(limit) => MessageReader::with_first_limit(limit),
        None => MessageReader::new(),
    }
}

pub(crate) fn read_all(
    first_limit: Option<usize>,
    pieces: &[&[u8]],
) -> (Vec<Message>, Option<WireError>) {
    prefixed::read_all(reader(first_limit), pieces)
}

fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out);
    out
}

pub fn check(data: &[u8]) {
    let (seed, stream) = split_seed(data);
    // The seed's top bits also pick the first-message limit.
    let first_limit = match seed >> 6 {
        1 => Some(MAX_HELLO_LEN),
        2 => Some(MAX_WELCOME_LEN),
        _ => None,
    };
    let cut = pieces(seed, stream);

    assert_reader_memory(
        "blocks MessageReader",
        reader(first_limit),
        &cut,
        MAX_MESSAGE_LEN + MAX_PREFIX_LEN,
    );

    let (messages, error) = read_all(first_limit, &cut);
    assert_eq!(
        read_all(first_limit, &[stream]),
        (messages.clone(), error.clone())
    );
    assert_eq!(
        read_all(first_limit, &pieces(1, stream)),
        (messages.clone(), error.clone())
    );

    // Canonical: the messages are, byte for byte, the front of the stream.
    let mut again = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let bytes = encode(message);
        let start = again.len();
        again.extend_from_slice(&bytes);
        let (body_len, prefix_len) = read_prefix(&bytes).expect("encode wrote a prefix");
        let body = bytes.len() - prefix_len;
        assert_eq!(body as u64, body_len);
        let ty = bytes[prefix_len];
        let max = max_body_len(ty).expect("a known type");
        assert!(body <= max, "type {ty:#04x}: {body} bytes over {max}");
        if i == 0 {
            if let Some(limit) = first_limit {
                assert!(body <= limit, "first message over the first limit");
            }
        }
        assert_eq!(&stream[start..again.len()], &bytes[..], "not canonical");
    }
    assert_eq!(read_all(None, &[&again]), (messages.clone(), None));

    // Errors name what was refused, and refusals respect the limits.
    match &error {
        Some(WireError::Prefix(PrefixError::TooLong { len, max })) => {
            let want = match (messages.is_empty(), first_limit) {
                (true, Some(limit)) => limit,
                _ => MAX_MESSAGE_LEN,
            };
            assert_eq!(*max, want);
            assert!(*len > *max as u64);
        }
        Some(WireError::TooLargeForType { ty, len, max }) => {
            assert_eq!(max_body_len(*ty), Some(*max));
            assert!(len > max);
        }
        _ => {}
    }
    // Errors are sticky.
    if let Some(error) = &error {
        let mut r = reader(first_limit);
        r.push(stream);
        while let Ok(Some(_)) = r.next_message() {}
        r.push(&[0x01, 0x02]);
        assert_eq!(r.next_message().as_ref(), Err(error));
        assert_eq!(r.next_message().as_ref(), Err(error));
    }
}
