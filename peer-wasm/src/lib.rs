//! The shoal peer: a rust-libp2p node that runs in the browser, joins a swarm
//! through the relay and connects to other browsers directly over WebRTC.
//!
//! # Layout
//! - [`api`]: the `Node` class the page imports (the JS contract).
//! - `node`: the Swarm (WebSocket + relay client + `/webrtc` transports;
//!   relay client, rendezvous, ping, stream behaviours) and its event
//!   loop, which drives the sans-IO path policy `shoal_proto::paths`.
//! - `transfer`: file sharing — shares, downloads, `/shoal/blocks/2.0.0`
//!   sessions, OPFS storage kept across reloads and shared by tabs under
//!   Web Locks (the wire format, handshake, session rules, admission,
//!   manifest fetch, scheduler and resume rules are sans-IO in `shoal_share`).
//! - `early`: what the page fetched and opened for the node before the
//!   wasm was ready (`/api/info`, the relay WebSocket).
//! - `types`: the TypeScript declarations of the JS API's values.
//! - `log`: `tracing` to the browser console.
//! - `milestones`: when the node first reached each stage of joining
//!   (`node.milestones()`, for the connect benchmark).
//! - `peer_limit`: `maxPeers`, denying connections to peers beyond it.
//! - `ws`: the WebSocket transport to the relay (why our own: see there).
//! - `state`: what the page sees — relay status, peers, paths, RTTs.
//! - `streams`: the transfer protocol's streams, each tied to its
//!   connection and path (direct preferred).
//! - `webrtc`: browser-to-browser `/webrtc` (libp2p WebRTC spec), which
//!   rust-libp2p lacks; the wire logic is sans-IO in `shoal_proto`.
//!
//! Codecs: none here. Every wire format (signaling, data-channel frames,
//! `/shoal/blocks`, manifests) is encoded and decoded in `shoal_proto` and
//! `shoal_share`, through their one varint and one length-prefixed reader;
//! drivers here only move bytes between those and the browser.
//!
//! Everything is browser-only: on other targets this crate is empty.

#![cfg(target_arch = "wasm32")]

pub mod api;
mod early;
#[cfg(feature = "test-hooks")]
mod echo;
mod log;
mod milestones;
mod node;
mod options;
mod peer_limit;
mod state;
mod streams;
mod transfer;
mod types;
mod webrtc;
mod ws;

pub use api::Node;

// `make wasm-unit`: the `#[wasm_bindgen_test]`s in this crate run in a page
// of headless Chromium (they need WebRTC, OPFS, WebSocket).
#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Routes `tracing` to the browser console, once.
fn init_logging() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        console_error_panic_hook::set_once();
        let _ = tracing::subscriber::set_global_default(log::ConsoleSubscriber::new(
            tracing::Level::INFO,
        ));
    });
}
