//! Browser-to-browser `/webrtc` for rust-libp2p (the private-to-private
//! transport of the libp2p WebRTC spec, which rust-libp2p lacks: #4389).
//!
//! # Layout
//! - [`transport`]: the libp2p `Transport`. Listening on
//!   `<relay>/p2p-circuit/webrtc` accepts `/webrtc-signaling/0.0.1` streams;
//!   dialing `<relay>/p2p-circuit/webrtc/p2p/<peer>` opens one over the
//!   relayed connection to that peer. Signaling streams come and go through a
//!   `libp2p_stream::Control`, so no handler of our own is needed.
//! - [`signal`]: the driver of one signaling exchange (the state machine itself
//!   is `shoal_proto::signaling`, tested natively).
//! - [`pc`]: the `RTCPeerConnection` and its callbacks.
//! - [`connection`]: the connected peer connection as a `StreamMuxer`.
//! - [`channel`]: one data channel as a stream (framing in `shoal_proto::frame`).
//!
//! Trust: the SDP (with its DTLS fingerprint) travels over the relayed
//! connection, which Noise authenticates; the browser's DTLS handshake checks
//! that fingerprint. The remote PeerId is the dialed one, or the one on the
//! relayed connection the offer came in on.

mod channel;
mod connection;
mod pc;
mod signal;
mod transport;

use std::time::Duration;

pub use transport::Transport;

/// Settings of the `/webrtc` transport.
#[derive(Debug, Clone)]
pub struct Config {
    /// ICE servers: the relay's STUN and any its operator added.
    pub ice_servers: Vec<shoal_proto::info::IceServer>,
    /// Bound on one signaling exchange plus ICE. ICE that is blocked never
    /// reaches `failed` in Chromium, so this is what ends a hopeless dial.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("JavaScript error: {0}")]
    Js(String),
    #[error("signaling failed: {0}")]
    Signaling(shoal_proto::signaling::SignalingError),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("signaling stream: {0}")]
    Io(#[source] std::io::Error),
    #[error("could not open a signaling stream: {0}")]
    OpenStream(String),
    #[error("no WebRTC connection within {0:?}")]
    Timeout(Duration),
    #[error("peer connection {0:?}")]
    Closed(shoal_proto::signaling::PcState),
}

impl Error {
    fn js(value: wasm_bindgen::JsValue) -> Self {
        let text = value
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| value.as_string())
            .unwrap_or_else(|| format!("{value:?}"));
        Error::Js(text)
    }
}

use wasm_bindgen::JsCast as _;

#[cfg(test)]
mod tests;
