//! The rendezvous wire format (`/rendezvous/1.0.0`, libp2p spec): one
//! varint-length-prefixed protobuf `Message` per request and per answer.
//! Pure functions from decoded messages to [`Request`]s and from answers back
//! to messages; signed peer records are checked here.
//!
//! ```text
//! Message { type = 1, register = 2, registerResponse = 3, unregister = 4,
//!           discover = 5, discoverResponse = 6 }
//! Register { ns = 1 (string), signedPeerRecord = 2 (bytes), ttl = 3 (u64) }
//! RegisterResponse { status = 1, statusText = 2, ttl = 3 }
//! Unregister { ns = 1, id = 2 }
//! Discover { ns = 1, limit = 2 (u64), cookie = 3 (bytes) }
//! DiscoverResponse { registrations = 1 (Register*), cookie = 2, status = 3, statusText = 4 }
//! ```

use libp2p::core::{PeerRecord, SignedEnvelope};

use super::registry::{Form, Page, Refusal, SignedRecord};
use crate::limits;

/// The protobuf messages of the spec's `rpc.proto` (proto2, all optional).
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Message {
        #[prost(int32, optional, tag = "1")]
        pub r#type: Option<i32>,
        #[prost(message, optional, tag = "2")]
        pub register: Option<Register>,
        #[prost(message, optional, tag = "3")]
        pub register_response: Option<RegisterResponse>,
        #[prost(message, optional, tag = "4")]
        pub unregister: Option<Unregister>,
        #[prost(message, optional, tag = "5")]
        pub discover: Option<Discover>,
        #[prost(message, optional, tag = "6")]
        pub discover_response: Option<DiscoverResponse>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Register {
        #[prost(string, optional, tag = "1")]
        pub ns: Option<String>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub signed_peer_record: Option<Vec<u8>>,
        #[prost(uint64, optional, tag = "3")]
        pub ttl: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RegisterResponse {
        #[prost(int32, optional, tag = "1")]
        pub status: Option<i32>,
        #[prost(string, optional, tag = "2")]
        pub status_text: Option<String>,
        #[prost(uint64, optional, tag = "3")]
        pub ttl: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Unregister {
        #[prost(string, optional, tag = "1")]
        pub ns: Option<String>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub id: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Discover {
        #[prost(string, optional, tag = "1")]
        pub ns: Option<String>,
        #[prost(uint64, optional, tag = "2")]
        pub limit: Option<u64>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub cookie: Option<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DiscoverResponse {
        #[prost(message, repeated, tag = "1")]
        pub registrations: Vec<Register>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub cookie: Option<Vec<u8>>,
        #[prost(int32, optional, tag = "3")]
        pub status: Option<i32>,
        #[prost(string, optional, tag = "4")]
        pub status_text: Option<String>,
    }
}

/// `Message.type` values.
pub mod kind {
    pub const REGISTER: i32 = 0;
    pub const REGISTER_RESPONSE: i32 = 1;
    pub const UNREGISTER: i32 = 2;
    pub const DISCOVER: i32 = 3;
    pub const DISCOVER_RESPONSE: i32 = 4;
}

/// A request as the registry takes it. A REGISTER whose record failed its
/// checks is still a register (answered with a REGISTER_RESPONSE error).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Register {
        namespace: String,
        record: Result<SignedRecord, Refusal>,
        ttl: Option<u64>,
    },
    Unregister {
        namespace: String,
    },
    Discover {
        namespace: Option<String>,
        cookie: Option<Vec<u8>>,
        limit: Option<u64>,
    },
}

/// Which answer a request needs: a request that cannot be parsed at all
/// still gets one of the right kind when its type is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Register,
    Discover,
    /// UNREGISTER has no answer; unknown types are answered by closing.
    None,
}

/// Parses a decoded message as a request.
pub fn parse(msg: proto::Message) -> Result<Request, (AnswerKind, Refusal)> {
    match msg.r#type {
        Some(kind::REGISTER) => {
            let reg = msg.register.ok_or((
                AnswerKind::Register,
                Refusal::Malformed("REGISTER without body"),
            ))?;
            let namespace = reg.ns.ok_or((
                AnswerKind::Register,
                Refusal::ForeignNamespace(String::new()),
            ))?;
            let record = match reg.signed_peer_record {
                Some(bytes) => verify_record(bytes),
                None => Err(Refusal::BadRecord("no signed peer record")),
            };
            Ok(Request::Register {
                namespace,
                record,
                ttl: reg.ttl,
            })
        }
        Some(kind::UNREGISTER) => {
            let namespace = msg.unregister.and_then(|u| u.ns).ok_or((
                AnswerKind::None,
                Refusal::Malformed("UNREGISTER without namespace"),
            ))?;
            Ok(Request::Unregister { namespace })
        }
        Some(kind::DISCOVER) => {
            let d = msg.discover.ok_or((
                AnswerKind::Discover,
                Refusal::Malformed("DISCOVER without body"),
            ))?;
            Ok(Request::Discover {
                namespace: d.ns,
                cookie: d.cookie,
                limit: d.limit,
            })
        }
        _ => Err((AnswerKind::None, Refusal::Malformed("not a request"))),
    }
}

/// Checks a signed peer record in either envelope form: size, signature,
/// that the signer is the peer the record names, and its address count.
pub fn verify_record(bytes: Vec<u8>) -> Result<SignedRecord, Refusal> {
    if bytes.len() > limits::RENDEZVOUS_MAX_RECORD {
        return Err(Refusal::RecordTooLarge {
            size: bytes.len(),
            limit: limits::RENDEZVOUS_MAX_RECORD,
        });
    }
    let envelope = SignedEnvelope::from_protobuf_encoding(&bytes)
        .map_err(|_| Refusal::BadRecord("not a signed envelope"))?;
    // Each form has its own signature domain; only the matching one verifies.
    let (record, form) = match PeerRecord::from_signed_envelope(envelope.clone()) {
        Ok(record) => (record, Form::Legacy),
        Err(_) => match PeerRecord::from_signed_envelope_interop(envelope) {
            Ok(record) => (record, Form::Standard),
            Err(_) => return Err(Refusal::BadRecord("no valid signed peer record")),
        },
    };
    let count = record.addresses().len();
    if count > limits::RENDEZVOUS_MAX_ADDRS {
        return Err(Refusal::TooManyAddresses {
            count,
            limit: limits::RENDEZVOUS_MAX_ADDRS,
        });
    }
    Ok(SignedRecord {
        peer: record.peer_id(),
        form,
        envelope: bytes,
    })
}

fn status_text(refusal: &Refusal) -> Option<String> {
    Some(refusal.to_string())
}

/// REGISTER_RESPONSE: the granted TTL or the refusal.
pub fn register_response(answer: Result<u64, &Refusal>) -> proto::Message {
    let body = match answer {
        Ok(ttl) => proto::RegisterResponse {
            status: Some(0),
            status_text: None,
            ttl: Some(ttl),
        },
        Err(refusal) => proto::RegisterResponse {
            status: Some(refusal.status() as i32),
            status_text: status_text(refusal),
            ttl: None,
        },
    };
    proto::Message {
        r#type: Some(kind::REGISTER_RESPONSE),
        register_response: Some(body),
        ..Default::default()
    }
}

/// DISCOVER_RESPONSE: a page of registrations or the refusal.
pub fn discover_response(answer: Result<Page, &Refusal>) -> proto::Message {
    let body = match answer {
        Ok(page) => proto::DiscoverResponse {
            registrations: page
                .registrations
                .into_iter()
                .map(|f| proto::Register {
                    ns: Some(f.namespace),
                    signed_peer_record: Some(f.envelope),
                    ttl: Some(f.ttl),
                })
                .collect(),
            cookie: Some(page.cookie.to_bytes()),
            status: Some(0),
            status_text: None,
        },
        Err(refusal) => proto::DiscoverResponse {
            registrations: Vec::new(),
            cookie: None,
            status: Some(refusal.status() as i32),
            status_text: status_text(refusal),
        },
    };
    proto::Message {
        r#type: Some(kind::DISCOVER_RESPONSE),
        discover_response: Some(body),
        ..Default::default()
    }
}

/// The status code of a response, for tests and logs.
pub fn status_of(msg: &proto::Message) -> Option<i32> {
    msg.register_response
        .as_ref()
        .and_then(|r| r.status)
        .or_else(|| msg.discover_response.as_ref().and_then(|r| r.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;
    use libp2p::Multiaddr;
    use prost::Message as _;

    fn addr() -> Multiaddr {
        "/ip4/127.0.0.1/tcp/8080/ws".parse().expect("addr")
    }

    fn register_msg(ns: &str, envelope: Vec<u8>, ttl: Option<u64>) -> proto::Message {
        proto::Message {
            r#type: Some(kind::REGISTER),
            register: Some(proto::Register {
                ns: Some(ns.into()),
                signed_peer_record: Some(envelope),
                ttl,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn both_envelope_forms_verify() {
        let key = Keypair::generate_ed25519();
        let legacy = PeerRecord::new(&key, vec![addr()]).expect("sign");
        let standard = PeerRecord::new_interop(&key, vec![addr()]).expect("sign");
        for (record, form) in [(legacy, Form::Legacy), (standard, Form::Standard)] {
            let bytes = record.into_signed_envelope().into_protobuf_encoding();
            let checked = verify_record(bytes.clone()).expect("valid");
            assert_eq!(checked.form, form);
            assert_eq!(checked.peer, key.public().to_peer_id());
            assert_eq!(checked.envelope, bytes);
        }
    }

    #[test]
    fn tampered_fat_and_crowded_records_are_refused() {
        let key = Keypair::generate_ed25519();
        let mut bytes = PeerRecord::new(&key, vec![addr()])
            .expect("sign")
            .into_signed_envelope()
            .into_protobuf_encoding();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // the signature's last byte
        assert!(matches!(verify_record(bytes), Err(Refusal::BadRecord(_))));
        assert!(matches!(
            verify_record(vec![0u8; limits::RENDEZVOUS_MAX_RECORD + 1]),
            Err(Refusal::RecordTooLarge { .. })
        ));
        assert!(matches!(
            verify_record(b"junk".to_vec()),
            Err(Refusal::BadRecord(_))
        ));
        let many: Vec<Multiaddr> = (0..=limits::RENDEZVOUS_MAX_ADDRS as u16)
            .map(|p| format!("/ip4/10.0.0.1/tcp/{p}").parse().expect("addr"))
            .collect();
        let crowded = PeerRecord::new(&key, many)
            .expect("sign")
            .into_signed_envelope()
            .into_protobuf_encoding();
        assert!(matches!(
            verify_record(crowded),
            Err(Refusal::TooManyAddresses { .. })
        ));
    }

    /// What rust-libp2p's client sends is what this module reads, and the
    /// answers are what that client decodes (its codec, byte for byte).
    #[test]
    fn interoperates_with_rust_libp2p_codec() {
        use asynchronous_codec::{BytesMut, Decoder, Encoder};
        let key = Keypair::generate_ed25519();
        let record = PeerRecord::new(&key, vec![addr()]).expect("sign");
        let envelope = record.to_signed_envelope().into_protobuf_encoding();
        let msg = register_msg("shoal/x", envelope.clone(), Some(300));
        let request = parse(msg.clone()).expect("parse");
        match request {
            Request::Register {
                namespace,
                record,
                ttl,
            } => {
                assert_eq!(namespace, "shoal/x");
                assert_eq!(ttl, Some(300));
                assert_eq!(record.expect("record").form, Form::Legacy);
            }
            other => panic!("{other:?}"),
        }
        // An answer decodes as what the stock client reads.
        let page = Page {
            registrations: vec![super::super::registry::Found {
                namespace: "shoal/x".into(),
                envelope,
                ttl: 120,
            }],
            cookie: super::super::registry::Cookie {
                seq: 7,
                namespace: "shoal/x".into(),
            },
        };
        let mut buf = BytesMut::new();
        let mut codec = prost_codec::Codec::<proto::Message, proto::Message>::new(1 << 20);
        codec
            .encode(discover_response(Ok(page)), &mut buf)
            .expect("encode");
        let back = codec.decode(&mut buf).expect("decode").expect("whole");
        let resp = back.discover_response.expect("discover response");
        assert_eq!(resp.status, Some(0));
        assert_eq!(resp.registrations.len(), 1);
        let envelope = SignedEnvelope::from_protobuf_encoding(
            resp.registrations[0]
                .signed_peer_record
                .as_deref()
                .expect("record"),
        )
        .expect("envelope");
        assert_eq!(
            PeerRecord::from_signed_envelope(envelope)
                .expect("legacy")
                .peer_id(),
            key.public().to_peer_id()
        );
        assert_eq!(resp.cookie.as_deref().map(|c| c.len()), Some(8 + 7));
    }

    #[test]
    fn refusals_carry_status_codes() {
        let r = register_response(Err(&Refusal::ForeignNamespace("x".into())));
        assert_eq!(status_of(&r), Some(100));
        assert_eq!(r.r#type, Some(kind::REGISTER_RESPONSE));
        let d = discover_response(Err(&Refusal::NamespaceRequired));
        assert_eq!(status_of(&d), Some(100));
        assert_eq!(
            status_of(&register_response(Err(&Refusal::PeerFull(4)))),
            Some(400)
        );
        assert_eq!(status_of(&register_response(Ok(300))), Some(0));
        // Round trip through bytes.
        let bytes = d.encode_to_vec();
        assert_eq!(proto::Message::decode(bytes.as_slice()).expect("decode"), d);
    }

    #[test]
    fn malformed_requests_say_which_answer_they_need() {
        let no_body = proto::Message {
            r#type: Some(kind::DISCOVER),
            ..Default::default()
        };
        assert_eq!(parse(no_body).map_err(|e| e.0), Err(AnswerKind::Discover));
        let answer = proto::Message {
            r#type: Some(kind::DISCOVER_RESPONSE),
            ..Default::default()
        };
        assert_eq!(parse(answer).map_err(|e| e.0), Err(AnswerKind::None));
        let missing = register_msg("shoal/x", Vec::new(), None);
        match parse(missing).expect("a register") {
            Request::Register { record, .. } => assert!(record.is_err()),
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Ok(msg) = proto::Message::decode(bytes.as_slice()) {
                let _ = parse(msg);
            }
            let _ = verify_record(bytes);
        }
    }
}
