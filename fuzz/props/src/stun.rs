//! The relay's STUN Binding server ([`answer`]): parsing is `stun_codec`'s;
//! what is ours is which datagrams get an answer and what it says. An answer
//! is a Binding success response to the request's transaction, telling the
//! sender its own address (IPv4 for an IPv4-mapped source), with a
//! FINGERPRINT, and never larger than a fixed size.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bytecodec::DecodeExt;
use shoal_relay::stun::{answer, Refusal, MAX_REQUEST_LEN};
use stun_codec::rfc5389::attributes::{Fingerprint, XorMappedAddress};
use stun_codec::rfc5389::methods::BINDING;
use stun_codec::rfc5389::Attribute;
use stun_codec::{MessageClass, MessageDecoder};

/// Header (20) + XOR-MAPPED-ADDRESS for IPv6 (24) + FINGERPRINT (8).
const MAX_ANSWER_LEN: usize = 52;

pub fn check(data: &[u8]) {
    let v4 = SocketAddr::new(Ipv4Addr::new(192, 0, 2, 1).into(), 32853);
    let v6 = SocketAddr::new(
        Ipv6Addr::new(0x2001, 0xdb8, 0x1234, 0x5678, 0x11, 0x2233, 0x4455, 0x6677).into(),
        32853,
    );
    let mapped = SocketAddr::new(Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped().into(), 9);
    let unmapped = SocketAddr::new(Ipv4Addr::new(203, 0, 113, 7).into(), 9);

    let first = answer(data, v4);
    for (from, reported) in [(v4, v4), (v6, v6), (mapped, unmapped)] {
        let result = answer(data, from);
        // Whether a datagram is answered does not depend on who sent it.
        assert_eq!(result.is_ok(), first.is_ok());
        match result {
            Ok(bytes) => check_answer(data, &bytes, reported),
            Err(Refusal::Oversized { len }) => {
                assert_eq!(len, data.len());
                assert!(len > MAX_REQUEST_LEN);
            }
            Err(Refusal::Truncated { len }) => assert_eq!(len, data.len()),
            Err(Refusal::Encode { reason }) => panic!("could not encode an answer: {reason}"),
            Err(_) => assert!(data.len() <= MAX_REQUEST_LEN),
        }
    }
    if first.is_ok() {
        assert!(data.len() <= MAX_REQUEST_LEN);
    }
}

fn check_answer(request: &[u8], bytes: &[u8], reported: SocketAddr) {
    assert!(bytes.len() <= MAX_ANSWER_LEN, "{}-byte answer", bytes.len());
    let response = MessageDecoder::<Attribute>::new()
        .decode_from_bytes(bytes)
        .expect("the answer decodes")
        .expect("the answer's attributes decode");
    assert_eq!(response.class(), MessageClass::SuccessResponse);
    assert_eq!(response.method(), BINDING);
    assert_eq!(
        response.transaction_id().as_bytes(),
        &request[8..20],
        "answer to another transaction"
    );
    assert!(response.get_attribute::<Fingerprint>().is_some());
    let address = response
        .get_attribute::<XorMappedAddress>()
        .expect("XOR-MAPPED-ADDRESS")
        .address();
    assert_eq!(address, reported);
}
