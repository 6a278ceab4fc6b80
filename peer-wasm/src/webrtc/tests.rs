//! The data-channel driver and the peer connection against the browser's own
//! WebRTC: two `RTCPeerConnection`s in one page, connected over loopback
//! (`make wasm-unit`, headless Chromium; the flags it needs are in
//! `peer-wasm/webdriver.json`). What decides the bytes is
//! `shoal_proto::frame`, tested natively; this checks the glue — events,
//! batching, the close handshake and resets on a real channel.
//!
//! The far end is either our driver too, or a bare `RTCDataChannel` that the
//! test reads and writes as a byte stream (`RawEnd`, in the inline JS), with
//! frames spelled out in bytes here, as js-libp2p puts them on the wire.
//! Nothing waits on a clock: every step awaits an event.

use std::{future::poll_fn, io};

use futures::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};
use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::{prelude::wasm_bindgen, JsCast as _};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{RtcDataChannel, RtcSdpType};

use super::{
    channel::Channel,
    pc::{PcEvent, PeerConnection},
    Error,
};

const FIN: [u8; 3] = [0x02, 0x08, 0x00];
const RESET: [u8; 3] = [0x02, 0x08, 0x02];
const FIN_ACK: [u8; 3] = [0x02, 0x08, 0x03];

#[wasm_bindgen(inline_js = r#"
const gathered = (pc) =>
  new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
const opened = (dc) =>
  new Promise((resolve, reject) => {
    if (dc.readyState === 'open') return resolve();
    dc.addEventListener('open', () => resolve());
    dc.addEventListener('close', () => reject(new Error('channel closed before it opened')));
  });

// Two connected peer connections and one open ordered channel between them,
// offer and answer exchanged whole once ICE gathering is complete (so no
// candidate can arrive before its description). Resolves to [a, b, dcA, dcB].
export async function channelPair(label) {
  const a = new RTCPeerConnection();
  const b = new RTCPeerConnection();
  const dcA = a.createDataChannel(label, { ordered: true });
  const dcB = new Promise((resolve) => { b.ondatachannel = (e) => resolve(e.channel); });
  await a.setLocalDescription();
  await gathered(a);
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await gathered(b);
  await a.setRemoteDescription(b.localDescription);
  const far = await dcB;
  await Promise.all([opened(dcA), opened(far)]);
  return [a, b, dcA, far];
}

// The far end as a byte stream: `take(n)` resolves to the next n bytes
// received, whatever the message boundaries; `closed` once the channel closes.
export class RawEnd {
  constructor(dc) {
    this.dc = dc;
    this.buf = new Uint8Array(0);
    this.want = null;
    dc.binaryType = 'arraybuffer';
    dc.onmessage = (e) => {
      const m = new Uint8Array(e.data);
      const all = new Uint8Array(this.buf.length + m.length);
      all.set(this.buf);
      all.set(m, this.buf.length);
      this.buf = all;
      this.serve();
    };
    this.closed = new Promise((resolve) => dc.addEventListener('close', () => resolve()));
  }
  serve() {
    if (this.want && this.buf.length >= this.want.n) {
      const { n, resolve } = this.want;
      this.want = null;
      const out = this.buf.slice(0, n);
      this.buf = this.buf.slice(n);
      resolve(out);
    }
  }
  take(n) {
    return new Promise((resolve) => { this.want = { n, resolve }; this.serve(); });
  }
  buffered() { return this.buf.length; }
  send(bytes) { this.dc.send(bytes.slice()); }
  whenClosed() { return this.closed; }
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = channelPair)]
    fn channel_pair(label: &str) -> Promise;

    type RawEnd;
    #[wasm_bindgen(constructor)]
    fn new(dc: &RtcDataChannel) -> RawEnd;
    #[wasm_bindgen(method)]
    fn take(this: &RawEnd, n: u32) -> Promise;
    #[wasm_bindgen(method)]
    fn buffered(this: &RawEnd) -> u32;
    #[wasm_bindgen(method)]
    fn send(this: &RawEnd, bytes: &[u8]);
    #[wasm_bindgen(method, js_name = whenClosed)]
    fn when_closed(this: &RawEnd) -> Promise;
}

impl RawEnd {
    async fn next(&self, n: usize) -> Vec<u8> {
        let got = JsFuture::from(self.take(n as u32)).await.unwrap();
        got.unchecked_into::<Uint8Array>().to_vec()
    }

    async fn closed(&self) {
        JsFuture::from(self.when_closed()).await.unwrap();
    }
}

/// Our driver on one end of a fresh channel, a bare channel on the other.
/// The peer connections are returned to keep them alive.
async fn driver_and_raw(label: &str) -> (Channel, RawEnd, Array) {
    let all: Array = JsFuture::from(channel_pair(label))
        .await
        .unwrap()
        .unchecked_into();
    let near: RtcDataChannel = all.get(2).unchecked_into();
    let far: RtcDataChannel = all.get(3).unchecked_into();
    (Channel::new(near), RawEnd::new(&far), all)
}

/// A data frame as js-libp2p encodes it (payload under 128 bytes).
fn data_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![(payload.len() + 2) as u8, 0x12, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

/// A data frame with a payload of 128..16384 bytes: two-byte varints.
fn big_data_frame(payload: &[u8]) -> Vec<u8> {
    fn varint(mut v: usize, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut body = vec![0x12];
    varint(payload.len(), &mut body);
    body.extend_from_slice(payload);
    let mut f = Vec::new();
    varint(body.len(), &mut f);
    f.extend_from_slice(&body);
    f
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    // xorshift: bytes that a shifted or repeated copy would not match.
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_write_is_one_data_frame_on_the_wire_and_frames_read_back() {
    let (mut ch, far, _pcs) = driver_and_raw("data").await;

    ch.write_all(b"hello").await.unwrap();
    assert_eq!(far.next(8).await, data_frame(b"hello"));

    far.send(&data_frame(b"world"));
    let mut buf = [0u8; 5];
    ch.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"world");
    assert_eq!(far.buffered(), 0, "nothing else was sent");
}

#[wasm_bindgen_test]
async fn a_large_message_split_as_js_libp2p_does_reads_back_whole() {
    let (mut ch, far, _pcs) = driver_and_raw("split").await;
    // 100 KiB in 16000-byte frames, each frame's length prefix and body sent
    // as two messages (js-libp2p's encoder yields them separately), then FIN.
    let payload = pattern(100 * 1024, 7);
    for part in payload.chunks(16000) {
        let frame = big_data_frame(part);
        let prefix_len = 2; // bodies of 128..16383 bytes
        far.send(&frame[..prefix_len]);
        far.send(&frame[prefix_len..]);
    }
    far.send(&FIN);

    let mut got = Vec::new();
    ch.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "the bytes read differ from those sent");
    // Our FIN_ACK answers the FIN.
    assert_eq!(far.next(3).await, FIN_ACK);
}

#[wasm_bindgen_test]
async fn fin_is_acknowledged_and_close_completes_on_fin_ack() {
    let (mut ch, far, _pcs) = driver_and_raw("close").await;
    // The far end finishes first: we read to the end and acknowledge.
    far.send(&data_frame(b"last"));
    far.send(&FIN);
    let mut rest = Vec::new();
    ch.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"last");
    assert_eq!(far.next(3).await, FIN_ACK);

    // Our half still writes, then closes: FIN, and close waits for FIN_ACK.
    ch.write_all(b"bye").await.unwrap();
    assert_eq!(far.next(6).await, data_frame(b"bye"));
    let mut closing = ch.close();
    assert!(
        futures::poll!(&mut closing).is_pending(),
        "close finished before FIN_ACK"
    );
    assert_eq!(far.next(3).await, FIN);
    far.send(&FIN_ACK);
    closing.await.unwrap();
    // Both halves closed and acknowledged: the driver closes the channel.
    far.closed().await;
    drop(ch);
    assert_eq!(far.buffered(), 0, "nothing after FIN");
}

#[wasm_bindgen_test]
async fn writes_after_close_fail() {
    let (mut ch, far, _pcs) = driver_and_raw("after-close").await;
    let closing = ch.close();
    let acked = async {
        assert_eq!(far.next(3).await, FIN);
        far.send(&FIN_ACK);
    };
    let (closed, ()) = futures::join!(closing, acked);
    closed.unwrap();
    let err = ch.write(b"late").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

#[wasm_bindgen_test]
async fn a_remote_reset_fails_the_read() {
    let (mut ch, far, _pcs) = driver_and_raw("reset-in").await;
    far.send(&data_frame(b"partial"));
    let mut buf = [0u8; 7];
    ch.read_exact(&mut buf).await.unwrap();
    far.send(&RESET);
    let err = ch.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}

#[wasm_bindgen_test]
async fn dropping_mid_stream_closes_the_channel() {
    let (mut ch, far, _pcs) = driver_and_raw("drop").await;
    ch.write_all(b"half").await.unwrap();
    assert_eq!(far.next(7).await, data_frame(b"half"));
    drop(ch);
    far.closed().await;
}

/// The last frames a driver sends before it closes the channel itself: the
/// RESET (and any data before it) when dropped mid-stream, and the FIN_ACK
/// that completes a stream whose write half was already closed. Chromium 156
/// discards messages still queued when `RTCDataChannel.close()` is called:
/// measured here, the dropped stream's 10 bytes were lost in 6 of 8 rounds
/// (the FIN_ACK arrived in all 8, being sent from the message handler). The
/// remote then sees a bare close instead of a RESET, and would wait out its
/// FIN_ACK timeout (10 s in js-libp2p) if that one went. So the driver
/// closes a channel only once its `bufferedAmount` is 0.
#[wasm_bindgen_test]
async fn the_last_frames_before_the_driver_closes_arrive() {
    let mut lost = Vec::new();
    for round in 0..8 {
        let (mut ch, far, _pcs) = driver_and_raw(&format!("last-{round}")).await;
        ch.write_all(b"half").await.unwrap();
        drop(ch);
        far.closed().await;
        if far.buffered() != 10 {
            lost.push(format!(
                "round {round}: RESET lost ({} of 10 bytes)",
                far.buffered()
            ));
        }

        let (mut ch, far, _pcs) = driver_and_raw(&format!("ack-{round}")).await;
        let closing = ch.close();
        let acked = async {
            assert_eq!(far.next(3).await, FIN);
            far.send(&FIN_ACK);
        };
        let (closed, ()) = futures::join!(closing, acked);
        closed.unwrap();
        far.send(&FIN);
        let mut rest = Vec::new();
        ch.read_to_end(&mut rest).await.unwrap();
        far.closed().await;
        if far.buffered() != 3 {
            lost.push(format!("round {round}: FIN_ACK lost"));
        }
    }
    assert!(lost.is_empty(), "{lost:?}");
}

/// Forwards `from`'s local candidates to `to` until `from` has gathered all.
async fn trickle(from: &PeerConnection, to: &PeerConnection) {
    loop {
        match poll_fn(|cx| from.poll_event(cx)).await {
            PcEvent::Candidate(Some(json)) => to.add_candidate(&json).await.unwrap(),
            PcEvent::Candidate(None) => break,
            PcEvent::State(_) => {}
        }
    }
}

/// Both ends ours: the offer/answer and trickled candidates go through
/// `PeerConnection` (its event queue, its inbound-channel queue).
#[wasm_bindgen_test]
async fn two_drivers_connect_and_move_a_mebibyte() {
    let a = PeerConnection::new(&[]).unwrap();
    let b = PeerConnection::new(&[]).unwrap();
    let mut ca = a.open_channel("stream").unwrap();

    let offer = a.create_offer().await.unwrap();
    a.set_local(RtcSdpType::Offer, &offer).await.unwrap();
    b.set_remote(RtcSdpType::Offer, &offer).await.unwrap();
    let answer = b.create_answer().await.unwrap();
    b.set_local(RtcSdpType::Answer, &answer).await.unwrap();
    a.set_remote(RtcSdpType::Answer, &answer).await.unwrap();
    futures::join!(trickle(&a, &b), trickle(&b, &a));

    let mut cb = poll_fn(|cx| b.poll_inbound(cx)).await;
    assert!(poll_fn(|cx| ca.poll_open_or_closed(cx)).await);
    assert!(poll_fn(|cx| cb.poll_open_or_closed(cx)).await);

    let payload = pattern(1024 * 1024, 11);
    let send = async {
        ca.write_all(&payload).await.unwrap();
        ca.close().await.unwrap();
    };
    let receive = async {
        let mut got = Vec::new();
        cb.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), got) = futures::join!(send, receive);
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "the bytes read differ from those sent");

    // B's half is still open: it can answer, and A reads it. (Closing it
    // too would have A send the last FIN_ACK just before closing the
    // channel: see `the_last_frames_before_the_driver_closes_arrive`.)
    cb.write_all(b"done").await.unwrap();
    let mut back = [0u8; 4];
    ca.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"done");
}

#[wasm_bindgen_test]
fn a_closed_peer_connection_refuses_a_channel_with_an_error() {
    let pc = PeerConnection::new(&[]).unwrap();
    pc.close();
    match pc.open_channel("late") {
        Err(Error::Js(message)) => assert!(!message.is_empty()),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a closed peer connection opened a channel"),
    }
    // Still usable after the exception: no borrow was left held.
    assert!(matches!(pc.open_channel("again"), Err(Error::Js(_))));
}

#[wasm_bindgen_test]
async fn closing_the_peer_connection_ends_its_channels_streams() {
    // `close()` fires no event on the channels; the streams must still end.
    let pc = PeerConnection::new(&[]).unwrap();
    let mut ch = pc.open_channel("never-open").unwrap();
    let mut buf = [0u8; 4];
    assert!(
        ch.read(&mut buf).now_or_never().is_none(),
        "read before open"
    );
    pc.close();
    assert!(!poll_fn(|cx| ch.poll_open_or_closed(cx)).await);
    let err = ch.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    let err = ch.write(b"x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}
