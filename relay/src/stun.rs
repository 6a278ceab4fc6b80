//! A STUN binding server (RFC 8489, formerly 5389): browsers behind NATs ask
//! it, as an ICE `stun:` server, which address and port their packets come
//! from (their server-reflexive candidate).
//!
//! # Layout
//! - [`answer`] is the whole protocol, sans-IO: one datagram and its source
//!   address in, the response datagram (or a [`Refusal`]) out.
//! - [`bind`] and [`serve`] are the thin UDP driver around it, counting what
//!   it does in [`StunStats`].
//!
//! # What is answered
//! Only a Binding request gets an answer: a Binding success response with
//! the request's transaction id, XOR-MAPPED-ADDRESS set to the source
//! address, and FINGERPRINT. Anything else — junk, responses, indications,
//! other methods, a broken or oversized message — is dropped and counted.
//! Unknown attributes in a Binding request are ignored rather than answered
//! with a 420 error: ICE agents add their own (PRIORITY, ICE-CONTROLLED) and
//! nothing here authenticates or needs them. There is no SOFTWARE attribute:
//! every byte of a response is reflection amplification for a spoofed source.
//!
//! Parsing and encoding are done by `stun_codec`; a fresh decoder is made per
//! datagram because one that has failed keeps its broken state.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytecodec::{DecodeExt, EncodeExt, ErrorKind};
use prometheus_client::metrics::counter::Counter;
use stun_codec::rfc5389::attributes::{Fingerprint, XorMappedAddress};
use stun_codec::rfc5389::methods::BINDING;
use stun_codec::rfc5389::Attribute;
use stun_codec::{Message, MessageClass, MessageDecoder, MessageEncoder};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{debug, info};

pub use crate::limits::MAX_STUN_DATAGRAM as MAX_REQUEST_LEN;

/// Pause after a receive error that is not about one peer, so that a socket
/// stuck in an error state cannot spin the loop.
const RECV_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Why a datagram got no answer. Expected on a public UDP port: logged at
/// debug level and counted, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("datagram of {len} bytes is over the {MAX_REQUEST_LEN}-byte limit")]
    Oversized { len: usize },
    #[error("datagram of {len} bytes ends inside a STUN message")]
    Truncated { len: usize },
    #[error("not a STUN message: {reason}")]
    Malformed { reason: String },
    #[error("STUN {class} for method {method:#05x} has a broken attribute: {reason}")]
    BadAttribute {
        class: Class,
        method: u16,
        reason: String,
    },
    #[error("STUN {class} for method {method:#05x} is not a Binding request")]
    NotBindingRequest { class: Class, method: u16 },
    #[error("cannot encode the Binding response: {reason}")]
    Encode { reason: String },
}

/// Errors of the UDP driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    #[error("cannot listen for STUN on udp://{addr}: {reason}")]
    Bind { addr: SocketAddr, reason: io::Error },
}

/// The class of a STUN message (RFC 8489 §5), as reported in a [`Refusal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

impl From<MessageClass> for Class {
    fn from(class: MessageClass) -> Self {
        match class {
            MessageClass::Request => Self::Request,
            MessageClass::Indication => Self::Indication,
            MessageClass::SuccessResponse => Self::SuccessResponse,
            MessageClass::ErrorResponse => Self::ErrorResponse,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Request => "request",
            Self::Indication => "indication",
            Self::SuccessResponse => "success response",
            Self::ErrorResponse => "error response",
        })
    }
}

/// Answers one datagram received from `from`: a Binding request yields the
/// encoded Binding success response that tells `from` its own address.
pub fn answer(request: &[u8], from: SocketAddr) -> Result<Vec<u8>, Refusal> {
    if request.len() > MAX_REQUEST_LEN {
        return Err(Refusal::Oversized { len: request.len() });
    }
    let decoded = MessageDecoder::<Attribute>::new()
        .decode_from_bytes(request)
        .map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEos => Refusal::Truncated { len: request.len() },
            _ => Refusal::Malformed {
                reason: first_line(&e),
            },
        })?;
    // A header that promises more attributes than the datagram holds
    // decodes as a broken message too; call that what it is.
    let request = decoded.map_err(|broken| match broken.error().kind() {
        ErrorKind::UnexpectedEos | ErrorKind::IncompleteDecoding => {
            Refusal::Truncated { len: request.len() }
        }
        _ => Refusal::BadAttribute {
            class: broken.class().into(),
            method: broken.method().as_u16(),
            reason: first_line(broken.error()),
        },
    })?;
    if request.class() != MessageClass::Request || request.method() != BINDING {
        return Err(Refusal::NotBindingRequest {
            class: request.class().into(),
            method: request.method().as_u16(),
        });
    }

    let mut response = Message::<Attribute>::new(
        MessageClass::SuccessResponse,
        BINDING,
        request.transaction_id(),
    );
    response.add_attribute(XorMappedAddress::new(reflexive(from)));
    let fingerprint = Fingerprint::new(&response).map_err(|e| Refusal::Encode {
        reason: first_line(&e),
    })?;
    response.add_attribute(fingerprint);
    MessageEncoder::<Attribute>::new()
        .encode_into_bytes(response)
        .map_err(|e| Refusal::Encode {
            reason: first_line(&e),
        })
}

/// The address to report for `from`. A dual-stack socket sees IPv4 peers as
/// `::ffff:a.b.c.d`; they must learn their IPv4 address, or ICE would pair
/// an IPv6 candidate that does not exist.
fn reflexive(from: SocketAddr) -> SocketAddr {
    SocketAddr::new(from.ip().to_canonical(), from.port())
}

/// bytecodec errors print their whole trackable history (file:line per
/// frame); the first line says what went wrong.
fn first_line(e: &impl fmt::Display) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().to_owned()
}

/// What the server has done since it started; shared with whoever reports it.
#[derive(Debug, Default)]
pub struct StunStats {
    answered: Counter,
    refused: Counter,
    io_errors: Counter,
}

/// A copy of [`StunStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StunStatsSnapshot {
    /// Binding requests answered.
    pub answered: u64,
    /// Datagrams dropped as not a valid Binding request.
    pub refused: u64,
    /// Failed receives and sends.
    pub io_errors: u64,
}

impl StunStats {
    /// Counts into the relay's metrics (`/metrics`, `shoal_relay_stun`).
    pub fn new(metrics: &crate::metrics::Metrics) -> Self {
        let counter = |outcome| {
            metrics
                .stun
                .get_or_create(&crate::metrics::Outcome { outcome })
                .clone()
        };
        Self {
            answered: counter("answered"),
            refused: counter("refused"),
            io_errors: counter("io_error"),
        }
    }

    pub fn snapshot(&self) -> StunStatsSnapshot {
        StunStatsSnapshot {
            answered: self.answered.get(),
            refused: self.refused.get(),
            io_errors: self.io_errors.get(),
        }
    }

    fn count(counter: &Counter) {
        counter.inc();
    }
}

/// Binds the STUN socket; returns it with its real address (the port when
/// `addr` used port 0).
pub async fn bind(addr: SocketAddr) -> Result<(UdpSocket, SocketAddr), StunError> {
    let socket = UdpSocket::bind(addr)
        .await
        .map_err(|reason| StunError::Bind { addr, reason })?;
    let local = socket
        .local_addr()
        .map_err(|reason| StunError::Bind { addr, reason })?;
    Ok((socket, local))
}

/// Answers Binding requests on `socket` until `stop` turns true (or its
/// sender is dropped). One datagram at a time through one fixed buffer:
/// answering is a few microseconds of work, so there is nothing to spawn.
pub async fn serve(socket: UdpSocket, stats: Arc<StunStats>, mut stop: watch::Receiver<bool>) {
    match socket.local_addr() {
        Ok(addr) => info!("stun listening on udp://{addr}"),
        Err(e) => info!("stun listening on udp (address unknown: {e})"),
    }
    // One byte over the limit, so that an oversized datagram is seen as such
    // rather than silently truncated to an acceptable length.
    let mut buf = [0u8; MAX_REQUEST_LEN + 1];
    loop {
        let received = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, from) = match received {
            Ok(received) => received,
            Err(e) => {
                StunStats::count(&stats.io_errors);
                debug!("stun receive failed: {e}");
                // ICMP errors from an earlier send (reported on some
                // platforms) are about one peer; anything else may persist.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                ) {
                    tokio::time::sleep(RECV_ERROR_BACKOFF).await;
                }
                continue;
            }
        };
        let Some(datagram) = buf.get(..len) else {
            continue;
        };
        match answer(datagram, from) {
            Ok(response) => match socket.send_to(&response, from).await {
                Ok(_) => StunStats::count(&stats.answered),
                Err(e) => {
                    StunStats::count(&stats.io_errors);
                    debug!("stun answer to {from} failed: {e}");
                }
            },
            Err(refusal) => {
                StunStats::count(&stats.refused);
                debug!("stun refused {len} bytes from {from}: {refusal}");
            }
        }
    }
    info!("stun stopped");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use stun_codec::TransactionId;

    use super::*;

    /// RFC 5769 §2.1 sample request: Binding, SOFTWARE, PRIORITY,
    /// ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT.
    const RFC5769_REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
        0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e,
        0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
        0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
        0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5,
        0x7a, 0x3b, 0xcf,
    ];
    const RFC5769_TRANSACTION_ID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    /// The source addresses of RFC 5769 §2.2 and §2.3 ...
    fn rfc5769_v4() -> SocketAddr {
        SocketAddr::new(Ipv4Addr::new(192, 0, 2, 1).into(), 32853)
    }
    fn rfc5769_v6() -> SocketAddr {
        let ip = Ipv6Addr::new(0x2001, 0xdb8, 0x1234, 0x5678, 0x11, 0x2233, 0x4455, 0x6677);
        SocketAddr::new(ip.into(), 32853)
    }
    /// ... and the XOR-MAPPED-ADDRESS attributes those sample responses carry.
    const RFC5769_XOR_V4: [u8; 12] = [
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    ];
    const RFC5769_XOR_V6: [u8; 24] = [
        0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1,
        0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    ];

    fn header(message_type: u16, len: u16, id: [u8; 12]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(20);
        bytes.extend_from_slice(&message_type.to_be_bytes());
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&0x2112_a442_u32.to_be_bytes());
        bytes.extend_from_slice(&id);
        bytes
    }

    /// Decodes a response with the codec (which checks its FINGERPRINT).
    fn decode_response(bytes: &[u8]) -> Message<Attribute> {
        MessageDecoder::<Attribute>::new()
            .decode_from_bytes(bytes)
            .unwrap()
            .unwrap()
    }

    fn mapped(response: &Message<Attribute>) -> SocketAddr {
        assert_eq!(response.class(), MessageClass::SuccessResponse);
        assert_eq!(response.method(), BINDING);
        assert!(response.get_attribute::<Fingerprint>().is_some());
        response
            .get_attribute::<XorMappedAddress>()
            .unwrap()
            .address()
    }

    #[test]
    fn rfc5769_request_gets_byte_exact_v4_response() {
        let bytes = answer(&RFC5769_REQUEST, rfc5769_v4()).unwrap();
        // Header (length: 12 address + 8 fingerprint), then the sample
        // response's XOR-MAPPED-ADDRESS, then FINGERPRINT.
        assert_eq!(bytes.len(), 20 + 12 + 8);
        assert_eq!(bytes[..20], header(0x0101, 20, RFC5769_TRANSACTION_ID));
        assert_eq!(bytes[20..32], RFC5769_XOR_V4);
        assert_eq!(bytes[32..36], [0x80, 0x28, 0x00, 0x04]);

        let response = decode_response(&bytes);
        assert_eq!(
            response.transaction_id(),
            TransactionId::new(RFC5769_TRANSACTION_ID)
        );
        assert_eq!(mapped(&response), rfc5769_v4());
    }

    #[test]
    fn rfc5769_request_gets_byte_exact_v6_response() {
        let bytes = answer(&RFC5769_REQUEST, rfc5769_v6()).unwrap();
        assert_eq!(bytes.len(), 20 + 24 + 8);
        assert_eq!(bytes[..20], header(0x0101, 32, RFC5769_TRANSACTION_ID));
        assert_eq!(bytes[20..44], RFC5769_XOR_V6);
        assert_eq!(bytes[44..48], [0x80, 0x28, 0x00, 0x04]);

        let response = decode_response(&bytes);
        assert_eq!(
            response.transaction_id(),
            TransactionId::new(RFC5769_TRANSACTION_ID)
        );
        assert_eq!(mapped(&response), rfc5769_v6());
    }

    #[test]
    fn bare_binding_request_is_answered() {
        // What a browser sends to a `stun:` server: a header and nothing else.
        let id = [7; 12];
        let bytes = answer(&header(0x0001, 0, id), rfc5769_v4()).unwrap();
        let response = decode_response(&bytes);
        assert_eq!(response.transaction_id(), TransactionId::new(id));
        assert_eq!(mapped(&response), rfc5769_v4());
    }

    #[test]
    fn v4_mapped_source_is_reported_as_v4() {
        let from = SocketAddr::new(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped().into(), 32853);
        let bytes = answer(&RFC5769_REQUEST, from).unwrap();
        assert_eq!(mapped(&decode_response(&bytes)), rfc5769_v4());
        assert_eq!(bytes[20..32], RFC5769_XOR_V4);
    }

    #[test]
    fn junk_is_malformed_or_truncated() {
        let from = rfc5769_v4();
        assert_eq!(answer(&[], from), Err(Refusal::Truncated { len: 0 }));
        for junk in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &[0xff; 20][..],
            &[0; 20][..], // zero magic cookie
        ] {
            assert!(
                matches!(answer(junk, from), Err(Refusal::Malformed { .. })),
                "{junk:?}: {:?}",
                answer(junk, from)
            );
        }
    }

    #[test]
    fn every_prefix_of_a_request_is_refused() {
        for len in 0..RFC5769_REQUEST.len() {
            let refusal = answer(&RFC5769_REQUEST[..len], rfc5769_v4()).unwrap_err();
            assert!(
                matches!(
                    refusal,
                    Refusal::Truncated { .. } | Refusal::Malformed { .. }
                ),
                "prefix of {len} bytes: {refusal:?}"
            );
        }
        // A header promising attributes that never come.
        assert_eq!(
            answer(&header(0x0001, 8, [1; 12]), rfc5769_v4()),
            Err(Refusal::Truncated { len: 20 })
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = header(0x0001, 0, [1; 12]);
        bytes.extend_from_slice(&[0; 4]);
        assert!(matches!(
            answer(&bytes, rfc5769_v4()),
            Err(Refusal::Malformed { .. })
        ));
    }

    #[test]
    fn other_classes_and_methods_are_refused() {
        let from = rfc5769_v4();
        for (message_type, class, method) in [
            (0x0011, Class::Indication, 0x001),
            (0x0101, Class::SuccessResponse, 0x001),
            (0x0111, Class::ErrorResponse, 0x001),
            (0x0003, Class::Request, 0x003),    // TURN Allocate
            (0x0016, Class::Indication, 0x006), // TURN Send
        ] {
            assert_eq!(
                answer(&header(message_type, 0, [2; 12]), from),
                Err(Refusal::NotBindingRequest { class, method }),
                "{message_type:#06x}"
            );
        }
        // Our own answer is not answered: two servers cannot ping-pong.
        let response = answer(&RFC5769_REQUEST, from).unwrap();
        assert_eq!(
            answer(&response, from),
            Err(Refusal::NotBindingRequest {
                class: Class::SuccessResponse,
                method: 0x001
            })
        );
    }

    #[test]
    fn bad_fingerprint_is_refused() {
        let mut bytes = RFC5769_REQUEST;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            answer(&bytes, rfc5769_v4()),
            Err(Refusal::BadAttribute {
                class: Class::Request,
                method: 0x001,
                ..
            })
        ));
    }

    #[test]
    fn oversized_datagram_is_refused() {
        // A well-formed Binding request padded with an unknown
        // comprehension-optional attribute, one byte over the limit.
        let value_len = MAX_REQUEST_LEN + 1 - 20 - 4;
        let mut bytes = header(0x0001, (4 + value_len) as u16, [3; 12]);
        bytes.extend_from_slice(&0x8fff_u16.to_be_bytes());
        bytes.extend_from_slice(&(value_len as u16).to_be_bytes());
        bytes.resize(MAX_REQUEST_LEN + 1, 0);
        assert_eq!(
            answer(&bytes, rfc5769_v4()),
            Err(Refusal::Oversized {
                len: MAX_REQUEST_LEN + 1
            })
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..=MAX_REQUEST_LEN + 8),
            v6 in any::<bool>(),
        ) {
            let from = if v6 { rfc5769_v6() } else { rfc5769_v4() };
            if let Ok(response) = answer(&bytes, from) {
                prop_assert_eq!(mapped(&decode_response(&response)), from);
            }
        }
    }

    /// A source address of either family.
    fn any_source() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            any::<(Ipv4Addr, u16)>().prop_map(|(ip, port)| SocketAddr::new(ip.into(), port)),
            any::<(Ipv6Addr, u16)>().prop_map(|(ip, port)| SocketAddr::new(ip.into(), port)),
        ]
    }

    proptest! {
        #[test]
        fn any_binding_request_is_answered(id in any::<[u8; 12]>(), from in any_source()) {
            let response = decode_response(&answer(&header(0x0001, 0, id), from).unwrap());
            prop_assert_eq!(response.transaction_id(), TransactionId::new(id));
            prop_assert_eq!(mapped(&response), reflexive(from));
        }

        /// Valid requests with bytes flipped, cut short or extended: the
        /// inputs most likely to reach deep into the decoder.
        #[test]
        fn mutated_requests_never_panic(
            bare in any::<bool>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..8),
            cut in any::<prop::sample::Index>(),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
            from in any_source(),
        ) {
            let mut bytes = if bare {
                header(0x0001, 0, [5; 12])
            } else {
                RFC5769_REQUEST.to_vec()
            };
            for (at, mask) in flips {
                let at = at.index(bytes.len());
                bytes[at] ^= mask;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend_from_slice(&tail);
            if let Ok(response) = answer(&bytes, from) {
                let response = decode_response(&response);
                let id = response.transaction_id();
                prop_assert_eq!(&id.as_bytes()[..], &bytes[8..20]);
                prop_assert_eq!(mapped(&response), reflexive(from));
            }
        }
    }

    #[tokio::test]
    async fn serve_answers_over_udp_and_stops() {
        let (socket, server) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_ne!(server.port(), 0);
        let stats = Arc::new(StunStats::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(socket, stats.clone(), stop_rx));

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client_addr = client.local_addr().unwrap();
        client.send_to(b"junk", server).await.unwrap();
        let id = [9; 12];
        client
            .send_to(&header(0x0001, 0, id), server)
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let (len, source) =
            tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(source, server);
        let response = decode_response(&buf[..len]);
        assert_eq!(response.transaction_id(), TransactionId::new(id));
        assert_eq!(mapped(&response), client_addr);

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        // The junk was sent first, and one socket serves datagrams in order.
        assert_eq!(
            stats.snapshot(),
            StunStatsSnapshot {
                answered: 1,
                refused: 1,
                io_errors: 0
            }
        );
    }

    #[tokio::test]
    async fn bind_error_names_the_address() {
        let (_socket, taken) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let err = bind(taken).await.unwrap_err();
        assert!(err.to_string().contains(&format!("udp://{taken}")), "{err}");
    }
}
