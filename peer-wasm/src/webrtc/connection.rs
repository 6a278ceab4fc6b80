//! A connected `RTCPeerConnection` as a libp2p [`StreamMuxer`]: every data
//! channel is one stream.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use send_wrapper::SendWrapper;

use super::{channel::Substream, pc::PeerConnection, Error};

/// The muxer. JS objects are not `Send`, but the wasm peer is single
/// threaded, so `SendWrapper` only asserts what is already true.
pub struct Connection {
    pc: SendWrapper<PeerConnection>,
}

impl Connection {
    pub fn new(pc: PeerConnection) -> Self {
        Self { pc: SendWrapper::new(pc) }
    }
}

impl StreamMuxer for Connection {
    type Substream = Substream;
    type Error = Error;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Poll::Ready(state) = this.pc.poll_terminal(cx) {
            return Poll::Ready(Err(Error::Closed(state)));
        }
        this.pc.poll_inbound(cx).map(|ch| Ok(Substream::new(ch)))
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Poll::Ready(state) = this.pc.poll_terminal(cx) {
            return Poll::Ready(Err(Error::Closed(state)));
        }
        // Streams use channels with an empty label, as the spec's peers do.
        Poll::Ready(Ok(Substream::new(this.pc.open_channel(""))))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.pc.close();
        Poll::Ready(Ok(()))
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        // `disconnected` may recover; only `failed` and `closed` end it.
        self.pc.poll_terminal(cx).map(|state| Err(Error::Closed(state)))
    }
}
