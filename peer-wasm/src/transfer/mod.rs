//! File sharing over `/shoal/blocks/1.0.0`: shares, downloads and the
//! sessions between peers.
//!
//! # Layout
//! - this file: [`Transfers`], the registry of shares (files this node serves,
//!   complete or not) and what the JS API calls.
//! - [`session`]: one stream per (peer, share): serves requested chunks from
//!   the share's store and forwards everything else to the download.
//! - [`download`]: one task per download, driving the sans-IO
//!   `shoal_share::Scheduler` (rarest first, verification, bans).
//! - [`store`]: the sharer's `File`, or the downloader's OPFS files, and
//!   this tab's Web Lock on each.
//! - [`stored`]: shares kept on disk across page loads: resume, serve again,
//!   list, delete, clean up (rules in `shoal_share::resume`).
//!
//! Sessions are opened by downloaders, to every connected peer, over
//! whichever path exists (direct, or relayed until a direct one is made);
//! the peer answers with its bitfield and both sides announce new chunks as
//! they get them, so every downloader serves what it has at once.
//!
//! Path changes: when the relayed connection is closed because a direct one
//! is up, or a direct one dies and the relay carries on, the sessions on the
//! old connection end (told by `streams::ConnectionGone`: a relayed stream
//! whose connection this node closed is not always told by its reads), the download re-queues their requests (chunks already
//! stored stay), and new sessions open on the path that exists now. A path
//! change does not count against a peer: [`MAX_REOPENS`] bounds the sessions
//! re-opened *between* two path changes.

mod download;
mod outbox;
mod session;
mod store;
mod stored;

use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, HashMap, HashSet},
    rc::Rc,
};

use futures::channel::{mpsc, oneshot};
use libp2p::{PeerId, StreamProtocol};
use serde::Serialize;
use shoal_share::{Bitfield, Manifest, ManifestBuilder, ShareId};
use web_sys::{Blob, File};

use crate::{
    state::{Path, SharedState},
    streams,
};
pub use store::Store;

/// Sessions a download may have waiting on a slow download task.
const EVENT_QUEUE: usize = 256;
/// Sessions re-opened to one peer while its connections stay the same, at
/// most (a peer whose sessions keep failing on a stable path is given up).
const MAX_REOPENS: u32 = 8;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    #[error("bad link: {0}")]
    Link(#[from] shoal_share::LinkError),
    #[error("cannot share this file: {0}")]
    Manifest(#[from] shoal_share::ManifestError),
    #[error("storage: {0}")]
    Storage(String),
    /// The disk or the origin's quota is full; what is stored is kept for resume.
    #[error("storage full: {needed_mib} MiB free needed")]
    StorageFull { needed_mib: u64 },
    /// Another tab of this browser is downloading this share (or holds it).
    #[error("this file is in use in another tab of this browser")]
    InUse,
    #[error("download stopped: {0}")]
    Stopped(String),
}

/// Sent by sessions to their share's download task.
#[derive(Debug)]
pub enum DlEvent {
    /// The remote holds the share; its chunks (empty until it has the manifest).
    Joined {
        sid: u64,
        have: Bitfield,
    },
    /// The remote cannot provide the manifest (or the share).
    Unknown {
        sid: u64,
    },
    Manifest {
        sid: u64,
        bytes: Vec<u8>,
    },
    Have {
        sid: u64,
        index: u32,
    },
    Chunk {
        sid: u64,
        index: u32,
        data: Vec<u8>,
    },
    Reject {
        sid: u64,
        index: u32,
    },
    Left {
        sid: u64,
    },
}

struct SessionHandle {
    peer: PeerId,
    outbox: Rc<outbox::Outbox>,
}

/// A verified manifest and its encoding (what `GetManifest` is answered with).
type KnownManifest = Rc<(Manifest, Vec<u8>)>;

/// One shared file, complete (a share or finished download) or not.
pub struct Share {
    id: ShareId,
    manifest: RefCell<Option<KnownManifest>>,
    have: RefCell<Bitfield>,
    store: RefCell<Option<Rc<Store>>>,
    sessions: RefCell<HashMap<u64, SessionHandle>>,
    /// Every session's peer, kept after it ends, to attribute chunks.
    session_peers: RefCell<HashMap<u64, PeerId>>,
    download: RefCell<Option<mpsc::Sender<DlEvent>>>,
    view: RefCell<DownloadView>,
    /// The finished file, once there is one.
    file: RefCell<Option<File>>,
    /// Sessions re-opened per peer since its connections last changed.
    reopens: RefCell<HashMap<PeerId, u32>>,
    /// Peers that sent a bad chunk of this share: no session is opened to
    /// them again, and their sessions never join the download.
    banned: RefCell<HashSet<PeerId>>,
    /// Chunk requests sent per peer (all its sessions).
    requested: RefCell<HashMap<PeerId, u32>>,
}

impl Share {
    fn new(id: ShareId) -> Self {
        Self {
            id,
            manifest: RefCell::default(),
            have: RefCell::new(Bitfield::new(0)),
            store: RefCell::default(),
            sessions: RefCell::default(),
            session_peers: RefCell::default(),
            download: RefCell::default(),
            view: RefCell::new(DownloadView::new(&id)),
            file: RefCell::default(),
            reopens: RefCell::default(),
            banned: RefCell::default(),
            requested: RefCell::default(),
        }
    }

    fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.borrow().contains(peer)
    }

    fn manifest(&self) -> Option<KnownManifest> {
        self.manifest.borrow().clone()
    }

    fn has_chunk(&self, index: u32) -> bool {
        self.have.borrow().get(index)
    }

    /// Announces to every session of this share.
    fn broadcast(&self, msg: impl Fn() -> shoal_share::Message) {
        for s in self.sessions.borrow().values() {
            // A flooded queue means a stalled peer; it misses this note only.
            s.outbox.send(msg());
        }
    }

    /// Queues a control message for one session; false if it is gone.
    fn send_to(&self, sid: u64, msg: shoal_share::Message) -> bool {
        self.sessions
            .borrow()
            .get(&sid)
            .is_some_and(|s| s.outbox.send(msg))
    }

    fn close_session(&self, sid: u64) {
        if let Some(s) = self.sessions.borrow_mut().remove(&sid) {
            s.outbox.close();
        }
    }

    async fn dl_event(&self, ev: DlEvent) {
        let tx = self.download.borrow().clone();
        if let Some(mut tx) = tx {
            use futures::SinkExt as _;
            let _ = tx.send(ev).await;
        }
    }
}

/// A download as the page sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadView {
    pub share_id: String,
    pub name: Option<String>,
    pub size: Option<u64>,
    pub media_type: Option<String>,
    /// "looking" (for the manifest), "checking" (re-verifying the chunks
    /// stored earlier), "downloading", "done" or "failed".
    pub state: &'static str,
    pub chunks_done: u32,
    pub chunks_total: u32,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub sources: Vec<SourceView>,
    pub error: Option<String>,
}

impl DownloadView {
    fn new(id: &ShareId) -> Self {
        Self {
            share_id: id.to_string(),
            name: None,
            size: None,
            media_type: None,
            state: "looking",
            chunks_done: 0,
            chunks_total: 0,
            bytes_done: 0,
            bytes_total: 0,
            sources: Vec::new(),
            error: None,
        }
    }
}

/// Chunks received from one peer during a download.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    pub peer_id: String,
    /// "direct" or "relayed" now, or null once disconnected.
    pub path: Option<&'static str>,
    pub chunks: u32,
    pub bytes: u64,
    pub bad_chunks: u32,
    pub banned: bool,
    /// Chunk requests sent to this peer.
    pub requested: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareView {
    pub share_id: String,
    pub name: String,
    pub size: u64,
    pub media_type: String,
    pub link: String,
    /// Whether this node holds every chunk.
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Chunk bytes sent to other peers since start.
    pub uploaded: u64,
    /// Chunk bytes received from other peers since start (verified or not).
    pub downloaded: u64,
    /// The same per peer, split by the path of the connection each session ran on.
    pub peers: Vec<PeerStats>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStats {
    pub peer_id: String,
    pub direct: PathBytes,
    pub relayed: PathBytes,
}

/// Chunk bytes over one path: `up` sent, `down` received.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PathBytes {
    pub up: u64,
    pub down: u64,
}

struct Inner {
    control: streams::Control,
    shares: RefCell<BTreeMap<ShareId, Rc<Share>>>,
    /// Connected peers (direct or relayed): sessions may be opened to them.
    usable: RefCell<HashSet<PeerId>>,
    next_session: Cell<u64>,
    uploaded: Cell<u64>,
    downloaded: Cell<u64>,
    /// Chunk bytes per peer, by the path of the session's connection.
    by_peer: RefCell<BTreeMap<PeerId, (PathBytes, PathBytes)>>,
    /// Test-only: serve corrupted chunks.
    #[cfg(feature = "test-hooks")]
    corrupt: Cell<bool>,
    /// Test-only: chunk requests received from other peers.
    #[cfg(feature = "test-hooks")]
    requests_received: Cell<u64>,
    /// Test-only: answer `GetManifest` with another share's manifest.
    #[cfg(feature = "test-hooks")]
    wrong_manifest: Cell<bool>,
    /// Test-only: chunk writes that succeed before every later one fails.
    #[cfg(feature = "test-hooks")]
    writes_left: Cell<Option<u32>>,
    state: SharedState,
    origin: String,
    swarm: String,
}

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct Transfers(Rc<Inner>);

pub fn protocol() -> StreamProtocol {
    StreamProtocol::new(shoal_share::PROTOCOL)
}

impl Transfers {
    pub fn new(
        control: streams::Control,
        state: SharedState,
        origin: String,
        swarm: String,
    ) -> Self {
        Self(Rc::new(Inner {
            control,
            shares: RefCell::default(),
            usable: RefCell::default(),
            next_session: Cell::new(0),
            uploaded: Cell::new(0),
            downloaded: Cell::new(0),
            by_peer: RefCell::default(),
            #[cfg(feature = "test-hooks")]
            corrupt: Cell::new(false),
            #[cfg(feature = "test-hooks")]
            requests_received: Cell::new(0),
            #[cfg(feature = "test-hooks")]
            wrong_manifest: Cell::new(false),
            #[cfg(feature = "test-hooks")]
            writes_left: Cell::new(None),
            state,
            origin,
            swarm,
        }))
    }

    /// Accepts sessions from other peers until the node stops.
    pub fn start_accepting(&self) {
        let mut incoming = self.0.control.accept();
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            use futures::StreamExt as _;
            while let Some(inc) = incoming.next().await {
                let sid = this.next_sid();
                wasm_bindgen_futures::spawn_local(session::accept(
                    this.clone(),
                    sid,
                    inc.peer,
                    inc.stream,
                ));
            }
        });
    }

    /// Counts chunk bytes moved with `peer` over `path`.
    fn count(&self, peer: PeerId, path: Path, up: u64, down: u64) {
        self.0.uploaded.set(self.0.uploaded.get() + up);
        self.0.downloaded.set(self.0.downloaded.get() + down);
        let mut by_peer = self.0.by_peer.borrow_mut();
        let (direct, relayed) = by_peer.entry(peer).or_default();
        let bytes = match path {
            Path::Direct => direct,
            Path::Relayed => relayed,
        };
        bytes.up += up;
        bytes.down += down;
    }

    fn next_sid(&self) -> u64 {
        let sid = self.0.next_session.get();
        self.0.next_session.set(sid + 1);
        sid
    }

    fn share_by_id(&self, id: &ShareId) -> Option<Rc<Share>> {
        self.0.shares.borrow().get(id).cloned()
    }

    #[cfg(feature = "test-hooks")]
    pub fn set_corrupt(&self, on: bool) {
        self.0.corrupt.set(on);
    }

    #[cfg(feature = "test-hooks")]
    pub fn requests_received(&self) -> u64 {
        self.0.requests_received.get()
    }

    #[cfg(feature = "test-hooks")]
    pub fn set_wrong_manifest(&self, on: bool) {
        self.0.wrong_manifest.set(on);
    }

    #[cfg(feature = "test-hooks")]
    pub fn set_fail_writes_after(&self, writes: Option<u32>) {
        self.0.writes_left.set(writes);
    }

    /// Test-only: whether the next chunk write must fail (and counts it).
    #[cfg(feature = "test-hooks")]
    fn write_must_fail(&self) -> bool {
        match self.0.writes_left.get() {
            Some(0) => true,
            Some(n) => {
                self.0.writes_left.set(Some(n - 1));
                false
            }
            None => false,
        }
    }

    /// The manifest to answer `GetManifest` about `share` with: its own, or
    /// (test-only switch) another share's, which cannot match the link.
    fn manifest_answer(&self, share: &Share) -> Option<KnownManifest> {
        #[cfg(feature = "test-hooks")]
        if self.0.wrong_manifest.get() {
            let other = self
                .0
                .shares
                .borrow()
                .values()
                .filter(|s| s.id != share.id)
                .find_map(|s| s.manifest());
            if other.is_some() {
                return other;
            }
        }
        share.manifest()
    }

    fn notify(&self) {
        self.0.state.notify();
    }

    /// Hashes `blob` chunk by chunk (never whole in memory) and serves it.
    pub async fn share(&self, blob: Blob, name: String) -> Result<String, TransferError> {
        let size = blob.size() as u64;
        let chunk_size = shoal_share::chunk_size_for(size);
        let media_type: String = blob
            .type_()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        let mut builder = ManifestBuilder::new(&name, &media_type, chunk_size)?;
        let store = Store::Blob(blob);
        let count = shoal_share::chunk_count(size, chunk_size);
        for index in 0..count {
            let range = shoal_share::chunk_range(size, chunk_size, index).unwrap_or(0..0);
            let bytes = store
                .read(range.start, (range.end - range.start) as u32)
                .await?;
            builder
                .push_chunk(&bytes)
                .map_err(|e| TransferError::Storage(e.to_string()))?;
        }
        let manifest = builder.finish()?;
        let id = manifest.share_id();
        let share = Rc::new(Share::new(id));
        *share.have.borrow_mut() = Bitfield::full(manifest.chunk_count());
        {
            let mut view = share.view.borrow_mut();
            view.state = "done";
            fill_view_header(&mut view, &manifest);
        }
        let bytes = manifest.encode();
        *share.manifest.borrow_mut() = Some(Rc::new((manifest, bytes)));
        *share.store.borrow_mut() = Some(Rc::new(store));
        self.0.shares.borrow_mut().insert(id, share);
        tracing::info!(share = %id, %name, size, "sharing");
        self.notify();
        Ok(self.link(&id))
    }

    fn link(&self, id: &ShareId) -> String {
        shoal_share::make_link(&self.0.origin, &self.0.swarm, id)
    }

    /// Fetches the file behind `link` from every peer that has it.
    pub async fn download(&self, link: &str) -> Result<File, TransferError> {
        let id = shoal_share::parse_link(link)?;
        if let Some(share) = self.share_by_id(&id) {
            if let Some(file) = share.file.borrow().clone() {
                return Ok(file);
            }
            if share.download.borrow().is_some() {
                return Err(TransferError::Stopped(
                    "this download is already running".into(),
                ));
            }
            let store = share.store.borrow().clone();
            let complete = share.have.borrow().is_full();
            if let (Some(m), Some(store), true) = (share.manifest(), store, complete) {
                return store.file(&m.0);
            }
            // A download that failed earlier: start it again (it resumes
            // from what is on disk).
        }
        let share = Rc::new(Share::new(id));
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        *share.download.borrow_mut() = Some(tx);
        self.0.shares.borrow_mut().insert(id, share.clone());
        tracing::info!(share = %id, "download started");
        let peers: Vec<PeerId> = self.0.usable.borrow().iter().copied().collect();
        for peer in peers {
            self.open_session(&share, peer);
        }
        self.notify();
        let (done_tx, done_rx) = oneshot::channel();
        wasm_bindgen_futures::spawn_local(download::run(self.clone(), share.clone(), rx, done_tx));
        match done_rx.await {
            Ok(result) => result,
            Err(_) => Err(TransferError::Stopped("the node stopped".into())),
        }
    }

    fn open_session(&self, share: &Rc<Share>, peer: PeerId) {
        if share.is_banned(&peer) || share.sessions.borrow().values().any(|s| s.peer == peer) {
            return;
        }
        let sid = self.next_sid();
        let control = self.0.control.clone();
        let this = self.clone();
        let share = share.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match control.open_stream(peer).await {
                Ok(stream) => session::open(this, sid, peer, share, stream).await,
                Err(e) => {
                    // E.g. picked a connection that was dying: try again
                    // (within the re-open budget) on what is left.
                    tracing::debug!(%peer, "cannot open a transfer session: {e}");
                    this.session_ended(&share, peer);
                }
            }
        });
    }

    /// `peer` can be used for transfers now (a connection to it, of either
    /// path, was just made): open sessions for every running download.
    pub fn peer_usable(&self, peer: PeerId) {
        self.0.usable.borrow_mut().insert(peer);
        self.paths_changed(&peer);
        let downloading: Vec<Rc<Share>> = self
            .0
            .shares
            .borrow()
            .values()
            .filter(|s| s.download.borrow().is_some())
            .cloned()
            .collect();
        for share in downloading {
            self.open_session(&share, peer);
        }
    }

    /// A session ended: if the download still runs and the peer is still
    /// reachable, open a new one (the stream may have been on a relayed
    /// connection that was closed once the direct one came up).
    fn session_ended(&self, share: &Rc<Share>, peer: PeerId) {
        if share.download.borrow().is_none() || !self.is_usable(&peer) {
            return;
        }
        let attempts = {
            let mut reopens = share.reopens.borrow_mut();
            let n = reopens.entry(peer).or_insert(0);
            *n += 1;
            *n
        };
        if attempts > MAX_REOPENS {
            return;
        }
        let this = self.clone();
        let share = share.clone();
        wasm_bindgen_futures::spawn_local(async move {
            futures_timer::Delay::new(std::time::Duration::from_millis(500)).await;
            if share.download.borrow().is_some() && this.is_usable(&peer) {
                this.open_session(&share, peer);
            }
        });
    }

    pub fn peer_gone(&self, peer: &PeerId) {
        self.0.usable.borrow_mut().remove(peer);
        self.paths_changed(peer);
    }

    /// A connection to `peer` opened or closed: sessions that end now ended
    /// because of the path, not the peer, so its re-open budget starts over.
    fn paths_changed(&self, peer: &PeerId) {
        for share in self.0.shares.borrow().values() {
            share.reopens.borrow_mut().remove(peer);
        }
    }

    fn is_usable(&self, peer: &PeerId) -> bool {
        self.0.usable.borrow().contains(peer)
    }

    pub fn downloads(&self) -> Vec<DownloadView> {
        let paths = self.0.state.read(|s| s.paths());
        self.0
            .shares
            .borrow()
            .values()
            .filter(|s| {
                s.file.borrow().is_some()
                    || s.download.borrow().is_some()
                    || s.view.borrow().state == "failed"
            })
            .map(|s| {
                let mut v = s.view.borrow().clone();
                for src in &mut v.sources {
                    src.path = paths.get(&src.peer_id).copied();
                }
                v
            })
            .collect()
    }

    pub fn shares(&self) -> Vec<ShareView> {
        self.0
            .shares
            .borrow()
            .values()
            .filter_map(|s| {
                let m = s.manifest()?;
                Some(ShareView {
                    share_id: s.id.to_string(),
                    name: m.0.name().to_owned(),
                    size: m.0.size(),
                    media_type: m.0.media_type().to_owned(),
                    link: self.link(&s.id),
                    complete: s.have.borrow().is_full(),
                })
            })
            .collect()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            uploaded: self.0.uploaded.get(),
            downloaded: self.0.downloaded.get(),
            peers: self
                .0
                .by_peer
                .borrow()
                .iter()
                .map(|(peer, (direct, relayed))| PeerStats {
                    peer_id: peer.to_base58(),
                    direct: *direct,
                    relayed: *relayed,
                })
                .collect(),
        }
    }
}

fn fill_view_header(view: &mut DownloadView, manifest: &Manifest) {
    view.name = Some(manifest.name().to_owned());
    view.size = Some(manifest.size());
    view.media_type = Some(manifest.media_type().to_owned());
    view.chunks_total = manifest.chunk_count();
    view.bytes_total = manifest.size();
}
