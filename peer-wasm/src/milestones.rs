//! When this node first reached each stage of joining a swarm, for the
//! connect benchmark (`node.milestones()`, `tests/bench/connect.mjs`): the
//! page can see some stages itself (`relay()`, `peers()`), but not when the
//! relay connection's handshakes ended, when the swarm's members were found,
//! or when a chunk was verified. Each is the page's `performance.now()` (ms
//! since navigation start) the first time it happened, and never changes
//! after; recording one is a clock read, so release builds keep it.

use serde::Serialize;

/// A stage, in the order a joining page usually reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// `Node.start` was called.
    Start,
    /// The relay's `/api/info` answered.
    InfoFetched,
    /// The Swarm runs; the relay dial starts now.
    RelayDial,
    /// WebSocket, Noise and Yamux to the relay are done.
    RelayConnected,
    /// The relay accepted our circuit reservation.
    Reserved,
    /// The rendezvous registration was accepted.
    Registered,
    /// A discovery answer named another member of the swarm.
    Discovered,
    /// A relayed connection to another peer is up (either side dialed).
    PeerRelayed,
    /// A `/webrtc` attempt started: our dial, or a peer's signaling stream.
    WebrtcStart,
    /// A direct connection to another peer is up.
    Direct,
    /// A download's session with a peer holding the share was up.
    Holder,
    /// A download received and verified the share's manifest.
    Manifest,
    /// A download's data file was open for writing.
    DataOpen,
    /// A download asked a peer for its first chunk.
    FirstRequest,
    /// A download verified and stored its first chunk.
    FirstChunk,
}

/// `performance.now()` of each stage's first time, `null` until then.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Milestones {
    start: Option<f64>,
    info_fetched: Option<f64>,
    relay_dial: Option<f64>,
    relay_connected: Option<f64>,
    reserved: Option<f64>,
    registered: Option<f64>,
    discovered: Option<f64>,
    peer_relayed: Option<f64>,
    webrtc_start: Option<f64>,
    direct: Option<f64>,
    holder: Option<f64>,
    manifest: Option<f64>,
    data_open: Option<f64>,
    first_request: Option<f64>,
    first_chunk: Option<f64>,
}

impl Milestones {
    /// Records `m` at `now` unless it was reached before.
    pub fn mark(&mut self, m: Milestone, now: f64) {
        let slot = match m {
            Milestone::Start => &mut self.start,
            Milestone::InfoFetched => &mut self.info_fetched,
            Milestone::RelayDial => &mut self.relay_dial,
            Milestone::RelayConnected => &mut self.relay_connected,
            Milestone::Reserved => &mut self.reserved,
            Milestone::Registered => &mut self.registered,
            Milestone::Discovered => &mut self.discovered,
            Milestone::PeerRelayed => &mut self.peer_relayed,
            Milestone::WebrtcStart => &mut self.webrtc_start,
            Milestone::Direct => &mut self.direct,
            Milestone::Holder => &mut self.holder,
            Milestone::Manifest => &mut self.manifest,
            Milestone::DataOpen => &mut self.data_open,
            Milestone::FirstRequest => &mut self.first_request,
            Milestone::FirstChunk => &mut self.first_chunk,
        };
        slot.get_or_insert(now);
    }
}

/// The page's clock: ms since navigation start.
pub fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}
