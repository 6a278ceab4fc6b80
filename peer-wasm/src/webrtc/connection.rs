//! A connected `RTCPeerConnection` as a libp2p [`StreamMuxer`]: every data
//! channel is one stream.
//!
//! The connection ends when the browser reports `failed` or `closed`, when
//! its SCTP association closes (the remote closed its side), or when
//! it stays out of `connected` for longer than [`Liveness::GRACE`]
//! (Chromium may report `disconnected` and never `failed`; see
//! `shoal_proto::signaling::Liveness`). Ending it closes every stream on it,
//! so transfers move to the relayed path at once instead of stalling.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::FutureExt as _;
use futures_timer::Delay;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use send_wrapper::SendWrapper;
use shoal_proto::signaling::{Liveness, PcState};
use web_time::Instant;

use super::{channel::Substream, pc::PeerConnection, Error};

/// The muxer. JS objects are not `Send`, but the wasm peer is single
/// threaded, so `SendWrapper` only asserts what is already true.
pub struct Connection {
    pc: SendWrapper<PeerConnection>,
    liveness: Liveness,
    epoch: Instant,
    /// Armed while the connection is out of `connected`.
    timer: Option<SendWrapper<Delay>>,
}

impl Connection {
    pub fn new(mut pc: PeerConnection) -> Self {
        pc.watch_sctp();
        Self {
            pc: SendWrapper::new(pc),
            liveness: Liveness::new(Liveness::GRACE),
            epoch: Instant::now(),
            timer: None,
        }
    }

    /// Ready with the state that ended the connection, once it has ended.
    fn poll_dead(&mut self, cx: &mut Context<'_>) -> Poll<PcState> {
        let now = self.epoch.elapsed();
        // A closed SCTP association means the remote closed its side: no
        // need to wait for ICE to notice.
        let state = if self.pc.sctp_closed() {
            PcState::Closed
        } else {
            self.pc.state()
        };
        self.pc.register_state_waker(cx);
        self.liveness.handle_state(state, now);
        self.liveness.handle_timeout(now);
        if let Some(dead) = self.liveness.dead() {
            match dead {
                PcState::Disconnected => {
                    tracing::warn!(
                        "direct connection {state:?} for {:?}; closing it",
                        Liveness::GRACE
                    );
                }
                _ => tracing::info!("direct connection {dead:?}"),
            }
            return Poll::Ready(dead);
        }
        match self.liveness.poll_timeout() {
            Some(at) => {
                let timer = self
                    .timer
                    .get_or_insert_with(|| SendWrapper::new(Delay::new(at.saturating_sub(now))));
                if timer.poll_unpin(cx).is_ready() {
                    self.timer = None;
                    cx.waker().wake_by_ref();
                }
            }
            None => self.timer = None,
        }
        Poll::Pending
    }
}

impl StreamMuxer for Connection {
    type Substream = Substream;
    type Error = Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Poll::Ready(state) = this.poll_dead(cx) {
            return Poll::Ready(Err(Error::Closed(state)));
        }
        this.pc.poll_inbound(cx).map(|ch| Ok(Substream::new(ch)))
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Poll::Ready(state) = this.poll_dead(cx) {
            return Poll::Ready(Err(Error::Closed(state)));
        }
        // Streams use channels with an empty label, as the spec's peers do.
        Poll::Ready(this.pc.open_channel("").map(Substream::new))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.pc.close();
        Poll::Ready(Ok(()))
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        self.get_mut()
            .poll_dead(cx)
            .map(|state| Err(Error::Closed(state)))
    }
}
