//! Test-only switches for the hostile-peer end-to-end tests (cargo feature
//! `test-hooks`; never in `make build`/`make run`): a node that records the
//! `Hello`s strangers send it and replays them to others, one that floods
//! `GetManifest`, one that never answers it, one that opens many sessions
//! whose first message announces far more than a `Hello`, one slow to
//! answer a `Hello`.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};

use futures::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};
use futures_timer::Delay;
use libp2p::PeerId;
use shoal_share::{
    handshake::{Nonce, Proof},
    limits::{HANDSHAKE_TIMEOUT, MAX_WELCOME_LEN},
    Bitfield, Message, MessageReader,
};

use super::{outbox::Outbox, Transfers};

#[derive(Default)]
pub struct Hooks {
    /// Every `Hello` received: what a stranger learns from a downloader.
    hellos_seen: RefCell<Vec<(Nonce, Proof)>>,
    /// `GetManifest`s to send on every session this node opens.
    manifest_flood: Cell<u32>,
    /// Never answer `GetManifest`.
    silent_manifest: Cell<bool>,
    /// Copies of our bitfield to send on every session this node opens.
    bitfield_flood: Cell<u32>,
    /// How many of those were queued, on all sessions together.
    bitfields_flooded: Cell<u64>,
    /// Milliseconds to wait before answering each `Hello` (a slow
    /// acceptor: the opener's handshake stays in progress that long).
    hello_delay_ms: Cell<u32>,
}

/// What a replayed `Hello` got back.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayOutcome {
    Welcome,
    Unknown,
    Other,
    Closed,
    Error,
}

impl Transfers {
    pub(super) fn hooks(&self) -> &Hooks {
        &self.0.hooks
    }

    pub(super) fn record_hello(&self, hello: (Nonce, Proof)) {
        self.hooks().hellos_seen.borrow_mut().push(hello);
    }

    /// The `Hello`s received so far, each as hex of nonce ‖ proof.
    pub fn hellos_seen(&self) -> Vec<String> {
        self.hooks()
            .hellos_seen
            .borrow()
            .iter()
            .map(|(n, p)| hex(n.0.iter().chain(p.as_bytes())))
            .collect()
    }

    pub fn set_manifest_flood(&self, n: u32) {
        self.hooks().manifest_flood.set(n);
    }

    pub(super) fn manifest_flood(&self) -> u32 {
        self.hooks().manifest_flood.get()
    }

    pub fn set_bitfield_flood(&self, n: u32) {
        self.hooks().bitfield_flood.set(n);
    }

    pub fn bitfields_flooded(&self) -> u64 {
        self.hooks().bitfields_flooded.get()
    }

    /// Queues `bitfield_flood` copies of `have` on a session's outbox, as
    /// fast as the outbox takes them, until the session closes.
    pub(super) fn flood_bitfields(&self, outbox: Rc<Outbox>, have: Bitfield) {
        let n = self.hooks().bitfield_flood.get();
        if n == 0 {
            return;
        }
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let msg = Message::Bitfield(have);
            let mut sent = 0;
            while sent < n && !outbox.is_closed() {
                if outbox.send(&msg) {
                    sent += 1;
                    let flooded = &this.hooks().bitfields_flooded;
                    flooded.set(flooded.get() + 1);
                } else {
                    // Full: the writer drains it.
                    Delay::new(Duration::from_millis(2)).await;
                }
            }
        });
    }

    pub fn set_hello_delay(&self, ms: u32) {
        self.hooks().hello_delay_ms.set(ms);
    }

    /// Waits the `Hello` delay, if one is set.
    pub(super) async fn delay_hello(&self) {
        let ms = self.hooks().hello_delay_ms.get();
        if ms > 0 {
            Delay::new(Duration::from_millis(ms.into())).await;
        }
    }

    pub fn set_silent_manifest(&self, on: bool) {
        self.hooks().silent_manifest.set(on);
    }

    pub(super) fn silent_manifest(&self) -> bool {
        self.hooks().silent_manifest.get()
    }

    /// Sends each recorded `Hello`, as this node, to `peer` on a fresh
    /// stream, and reports the first answer to each.
    pub async fn replay_hellos(&self, peer: PeerId) -> Vec<ReplayOutcome> {
        let hellos = self.hooks().hellos_seen.borrow().clone();
        let mut out = Vec::new();
        for (nonce, proof) in hellos {
            out.push(self.replay_one(peer, nonce, proof).await);
        }
        out
    }

    /// Sends a well-formed `Hello` with a random nonce and proof to `peer`
    /// on a fresh stream (a guess at a share), and reports the answer: a
    /// swarm member that holds no such share answers `Unknown`.
    pub async fn random_hello(&self, peer: PeerId) -> ReplayOutcome {
        let mut bytes =
            [0u8; shoal_share::handshake::NONCE_LEN + shoal_share::handshake::PROOF_LEN];
        if getrandom::fill(&mut bytes).is_err() {
            return ReplayOutcome::Error;
        }
        let (n, p) = bytes.split_at(shoal_share::handshake::NONCE_LEN);
        let (Ok(n), Ok(p)) = (n.try_into(), p.try_into()) else {
            return ReplayOutcome::Error;
        };
        self.replay_one(peer, Nonce(n), Proof::from_bytes(p)).await
    }

    async fn replay_one(&self, peer: PeerId, nonce: Nonce, proof: Proof) -> ReplayOutcome {
        let Ok(stream) = self.0.control.open_stream(peer).await else {
            return ReplayOutcome::Error;
        };
        let mut stream = stream.stream;
        let mut bytes = Vec::new();
        Message::Hello { nonce, proof }.encode(&mut bytes);
        if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
            return ReplayOutcome::Error;
        }
        let mut reader = MessageReader::with_first_limit(MAX_WELCOME_LEN);
        let mut buf = [0u8; 256];
        let answer = async {
            loop {
                match reader.next_message() {
                    Ok(Some(Message::Welcome(_))) => return ReplayOutcome::Welcome,
                    Ok(Some(Message::Unknown)) => return ReplayOutcome::Unknown,
                    Ok(Some(_)) | Err(_) => return ReplayOutcome::Other,
                    Ok(None) => {}
                }
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return ReplayOutcome::Closed,
                    Ok(n) => reader.push(&buf[..n]),
                }
            }
        };
        let outcome = futures::select! {
            o = answer.fuse() => o,
            _ = Delay::new(HANDSHAKE_TIMEOUT).fuse() => ReplayOutcome::Closed,
        };
        let _ = stream.close().await;
        outcome
    }
}

/// What [`Transfers::raw_flood`] saw.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FloodReport {
    /// Streams opened.
    pub opened: u32,
    /// Streams that could not be opened.
    pub refused: u32,
    /// Opened streams the other side closed or reset within the wait.
    pub closed: u32,
}

impl Transfers {
    /// Opens `streams` sessions to `peer` at once; on each, sends a length
    /// prefix announcing `announce` bytes and then `send` zero bytes, and
    /// waits up to `wait_ms` for the other side to close it.
    pub async fn raw_flood(
        &self,
        peer: PeerId,
        streams: u32,
        announce: u64,
        send: u32,
        wait_ms: u32,
    ) -> FloodReport {
        let one = |_| async move {
            let Ok(stream) = self.0.control.open_stream(peer).await else {
                return (false, false);
            };
            let mut stream = stream.stream;
            let mut bytes = Vec::new();
            shoal_proto::varint::encode(announce, &mut bytes);
            bytes.resize(bytes.len() + send as usize, 0);
            let closed = async {
                if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
                    return true;
                }
                let mut buf = [0u8; 64];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return true,
                        Ok(_) => {}
                    }
                }
            };
            let wait = std::time::Duration::from_millis(u64::from(wait_ms));
            let closed = futures::select! {
                c = closed.fuse() => c,
                _ = Delay::new(wait).fuse() => false,
            };
            (true, closed)
        };
        let results = futures::future::join_all((0..streams).map(one)).await;
        let mut report = FloodReport::default();
        for (opened, closed) in results {
            if opened {
                report.opened += 1;
                report.closed += u32::from(closed);
            } else {
                report.refused += 1;
            }
        }
        report
    }
}

/// Hex of a share id's bytes (tests compare it with what went on the wire).
pub fn share_id_hex(link: &str) -> Result<String, shoal_share::LinkError> {
    Ok(hex(shoal_share::parse_link(link)?.as_bytes()))
}

fn hex<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> String {
    bytes.into_iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of the wasm module's linear memory (it only grows: a high-water
/// mark of what the tab's Rust side has used).
pub fn memory_bytes() -> f64 {
    use wasm_bindgen::JsCast as _;
    let Ok(memory) = wasm_bindgen::memory().dyn_into::<js_sys::WebAssembly::Memory>() else {
        return 0.0;
    };
    memory
        .buffer()
        .dyn_into::<js_sys::ArrayBuffer>()
        .map_or(0.0, |b| f64::from(b.byte_length()))
}
