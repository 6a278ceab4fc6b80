//! The relay's rendezvous server: reading a request off a stream with its
//! [`Codec`] (length prefix, size limit, protobuf), [`parse`] into a
//! [`Request`], signed peer record checks, discovery cookies, and the answer
//! to a refusal.

use futures::executor::block_on;
use futures::io::Cursor;
use libp2p::request_response::Codec as _;
use prost::Message as _;
use shoal_relay::limits::{RENDEZVOUS_MAX_RECORD, RENDEZVOUS_MAX_REQUEST};
use shoal_relay::rendezvous::behaviour::Codec;
use shoal_relay::rendezvous::protocol::{
    kind, parse, proto, register_response, status_of, verify_record, AnswerKind, Request,
};
use shoal_relay::rendezvous::registry::{Cookie, Refusal};
use shoal_relay::rendezvous::PROTOCOL;

use crate::read_prefix;

pub fn check(data: &[u8]) {
    // As the relay reads a request: one length-prefixed message.
    let read = block_on(Codec.read_request(&PROTOCOL, &mut Cursor::new(data)))
        .expect("read_request hands errors on inside");
    if let Ok(message) = read {
        let (len, _) = read_prefix(data).expect("a message came from a valid prefix");
        assert!(
            len <= RENDEZVOUS_MAX_REQUEST as u64,
            "read a {len}-byte request"
        );
        check_message(message);
    }
    // The bytes as a bare protobuf body, to reach `parse` more often.
    if let Ok(message) = proto::Message::decode(data) {
        check_message(message);
    }
    if let Ok(cookie) = Cookie::from_bytes(data) {
        assert_eq!(cookie.to_bytes(), data);
    }
}

fn check_message(message: proto::Message) {
    // prost round trip.
    let bytes = message.encode_to_vec();
    assert_eq!(proto::Message::decode(&bytes[..]).as_ref(), Ok(&message));

    match parse(message.clone()) {
        Ok(Request::Register {
            namespace,
            record,
            ttl,
        }) => {
            assert_eq!(message.r#type, Some(kind::REGISTER));
            let register = message.register.expect("a body");
            assert_eq!(register.ns.as_ref(), Some(&namespace));
            assert_eq!(register.ttl, ttl);
            let envelope = register.signed_peer_record;
            match (&record, envelope) {
                (Ok(checked), Some(bytes)) => {
                    assert_eq!(checked.envelope, bytes, "the envelope is kept verbatim");
                    assert!(bytes.len() <= RENDEZVOUS_MAX_RECORD);
                    assert_eq!(verify_record(bytes).as_ref(), Ok(checked));
                }
                (Err(refusal), _) => check_refusal(refusal),
                (Ok(_), None) => panic!("a record from nothing"),
            }
        }
        Ok(Request::Unregister { namespace }) => {
            assert_eq!(message.r#type, Some(kind::UNREGISTER));
            assert_eq!(message.unregister.and_then(|u| u.ns), Some(namespace));
        }
        Ok(Request::Discover {
            namespace,
            cookie,
            limit,
        }) => {
            assert_eq!(message.r#type, Some(kind::DISCOVER));
            let discover = message.discover.expect("a body");
            assert_eq!((discover.ns, discover.limit), (namespace, limit));
            if let Some(Ok(parsed)) = cookie.as_deref().map(Cookie::from_bytes) {
                assert_eq!(Some(parsed.to_bytes()), cookie);
            }
        }
        Err((answer, refusal)) => {
            let want = match message.r#type {
                Some(kind::REGISTER) => AnswerKind::Register,
                Some(kind::DISCOVER) => AnswerKind::Discover,
                _ => AnswerKind::None,
            };
            assert_eq!(answer, want);
            check_refusal(&refusal);
        }
    }
}

/// A refusal answers with its own status, in a message that decodes.
fn check_refusal(refusal: &Refusal) {
    let answer = register_response(Err(refusal));
    assert_eq!(status_of(&answer), Some(refusal.status() as i32));
    let bytes = answer.encode_to_vec();
    assert_eq!(proto::Message::decode(&bytes[..]).as_ref(), Ok(&answer));
}
