//! What the page can see of the node: the relay's state and the peers with
//! their paths and round-trip times. Written by the event loop, read by the
//! JS API; every change calls the page's `onChange` listeners.

use std::{cell::RefCell, collections::HashMap, rc::Rc, time::Duration};

use libp2p::{swarm::ConnectionId, PeerId};
use serde::Serialize;
use shoal_proto::vecmap::VecMap;

use crate::milestones::{self, Milestone, Milestones};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Direct,
    Relayed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayState {
    /// First connection, not up yet.
    Connecting,
    /// The connection was lost (or a reconnect attempt failed): retrying with
    /// backoff. Direct connections to peers keep working meanwhile.
    Reconnecting,
    Connected,
    Reserved,
    Failed,
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayView {
    pub state: RelayState,
    pub peer_id: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerView {
    pub peer_id: String,
    /// "direct" or "relayed".
    pub path: &'static str,
    pub rtt_ms: Option<f64>,
    /// Last WebRTC failure, if the peer is only relayed.
    pub error: Option<String>,
}

#[derive(Default)]
struct Peer {
    connections: VecMap<ConnectionId, (Path, Option<Duration>)>,
    webrtc_attempts: u32,
    webrtc_error: Option<String>,
}

impl Peer {
    /// The best path (direct over relayed) and its round-trip time.
    fn best(&self) -> Option<(Path, Option<Duration>)> {
        let path = if self.connections.values().any(|(p, _)| *p == Path::Direct) {
            Path::Direct
        } else if !self.connections.is_empty() {
            Path::Relayed
        } else {
            return None;
        };
        let rtt = self
            .connections
            .values()
            .filter(|(p, _)| *p == path)
            .find_map(|(_, r)| *r);
        Some((path, rtt))
    }
}

pub struct State {
    relay: RelayView,
    peers: VecMap<PeerId, Peer>,
}

impl State {
    pub fn relay_connected(&mut self) {
        self.relay.state = RelayState::Connected;
        self.relay.error = None;
    }
    pub fn relay_reserved(&mut self) {
        self.relay.state = RelayState::Reserved;
        self.relay.error = None;
    }
    /// A dial to the relay failed: `failed` before the first connection,
    /// `reconnecting` (with the error) after one was lost.
    pub fn relay_dial_failed(&mut self, error: String) {
        if self.relay.state == RelayState::Connecting || self.relay.state == RelayState::Failed {
            self.relay.state = RelayState::Failed;
        } else {
            self.relay.state = RelayState::Reconnecting;
        }
        self.relay.error = Some(error);
    }
    /// Connected, but without a relayed address (the reservation was refused
    /// or ended): others cannot reach this node until it gets one again.
    pub fn relay_reservation_refused(&mut self, error: String) {
        if self.relay.state == RelayState::Reserved {
            self.relay.state = RelayState::Connected;
        }
        self.relay.error = Some(error);
    }
    pub fn relay_lost(&mut self, error: Option<String>) {
        self.relay.state = RelayState::Reconnecting;
        self.relay.error = error;
    }
    pub fn set_stopped(&mut self) {
        self.relay.state = RelayState::Stopped;
        self.peers.clear();
    }

    pub fn connection_opened(&mut self, peer: PeerId, id: ConnectionId, path: Path) {
        let entry = self.peers.entry(peer).or_default();
        entry.connections.insert(id, (path, None));
        if path == Path::Direct {
            entry.webrtc_error = None;
        }
    }
    pub fn connection_closed(&mut self, peer: &PeerId, id: ConnectionId) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.connections.remove(&id);
            if entry.connections.is_empty() {
                self.peers.remove(peer);
            }
        }
    }
    pub fn rtt(&mut self, peer: &PeerId, id: ConnectionId, rtt: Duration) {
        if let Some(conn) = self
            .peers
            .get_mut(peer)
            .and_then(|p| p.connections.get_mut(&id))
        {
            conn.1 = Some(rtt);
        }
    }
    /// Counts an attempt and returns its number.
    pub fn begin_webrtc_attempt(&mut self, peer: &PeerId) -> u32 {
        let entry = self.peers.entry(*peer).or_default();
        entry.webrtc_attempts += 1;
        entry.webrtc_attempts
    }
    /// Records a failure and returns the attempts made so far.
    pub fn webrtc_failed(&mut self, peer: &PeerId, error: String) -> u32 {
        let entry = self.peers.entry(*peer).or_default();
        entry.webrtc_error = Some(error);
        entry.webrtc_attempts
    }
    pub fn peer_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| !p.connections.is_empty())
            .count()
    }

    /// Each connected peer's best path, by PeerId text.
    pub fn paths(&self) -> HashMap<String, &'static str> {
        self.peers()
            .into_iter()
            .map(|p| (p.peer_id, p.path))
            .collect()
    }

    pub fn relay(&self) -> RelayView {
        self.relay.clone()
    }
    pub fn peers(&self) -> Vec<PeerView> {
        self.peers
            .iter()
            .filter_map(|(id, p)| {
                let (path, rtt) = p.best()?;
                Some(PeerView {
                    peer_id: id.to_base58(),
                    path: match path {
                        Path::Direct => "direct",
                        Path::Relayed => "relayed",
                    },
                    rtt_ms: rtt.map(|d| d.as_secs_f64() * 1000.0),
                    error: if path == Path::Relayed {
                        p.webrtc_error.clone()
                    } else {
                        None
                    },
                })
            })
            .collect()
    }
}

/// The state plus the page's change listeners; cheap to clone.
#[derive(Clone)]
pub struct SharedState {
    inner: Rc<RefCell<State>>,
    listeners: Rc<RefCell<Vec<js_sys::Function>>>,
    milestones: Rc<RefCell<Milestones>>,
}

impl SharedState {
    pub fn new(relay_peer: &PeerId) -> Self {
        Self {
            inner: Rc::new(RefCell::new(State {
                relay: RelayView {
                    state: RelayState::Connecting,
                    peer_id: Some(relay_peer.to_base58()),
                    error: None,
                },
                peers: VecMap::new(),
            })),
            listeners: Rc::default(),
            milestones: Rc::default(),
        }
    }

    /// Notes that `m` happened now (the first time only); tells no one.
    pub fn mark(&self, m: Milestone) {
        self.mark_at(m, milestones::now());
    }

    /// The same for something that happened at `at` (`milestones::now()`).
    pub fn mark_at(&self, m: Milestone, at: f64) {
        self.milestones.borrow_mut().mark(m, at);
    }

    pub fn milestones(&self) -> Milestones {
        self.milestones.borrow().clone()
    }

    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.inner.borrow())
    }

    /// Changes the state, then tells the listeners.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.inner.borrow_mut());
        self.notify();
        out
    }

    /// Calls every listener.
    pub fn notify(&self) {
        // Listeners may read the state: no borrow is held here.
        let listeners = self.listeners.borrow().clone();
        for l in listeners {
            if let Err(e) = l.call0(&wasm_bindgen::JsValue::NULL) {
                tracing::warn!("an onChange listener threw: {e:?}");
            }
        }
    }

    pub fn add_listener(&self, f: js_sys::Function) {
        self.listeners.borrow_mut().push(f);
    }
}
