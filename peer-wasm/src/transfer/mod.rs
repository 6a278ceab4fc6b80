//! File sharing over `/shoal/blocks/2.0.0`: shares, downloads and the
//! sessions between peers.
//!
//! # Layout
//! - this file: [`Transfers`], the registry of shares (files this node serves,
//!   complete or not), swarm membership, session limits, and what the JS
//!   API calls.
//! - [`session`]: one stream per (peer, share), driving the sans-IO
//!   `shoal_share::session::Session` (handshake, message rules): serves
//!   requested chunks from the share's store and forwards everything else
//!   to the download.
//! - [`download`]: one task per download, driving the sans-IO
//!   `shoal_share::fetch::ManifestFetch` and `shoal_share::Scheduler`
//!   (rarest first, verification, bans), both keyed by PeerId.
//! - [`store`]: the sharer's `File`, or the downloader's OPFS files, and
//!   this tab's Web Lock on each.
//! - [`stored`]: shares kept on disk across page loads: resume, serve again,
//!   list, delete, clean up (rules in `shoal_share::resume`).
//! - [`stream`]: reads of a byte range while it downloads (play while
//!   downloading): they wait for verified, stored chunks, and steer the
//!   scheduler's focus (`shoal_share::stream`).
//!
//! A share of several files (manifest version 2) is one byte stream here
//! too: the sharer's store is a `Blob` of the files in the manifest's order
//! (it only refers to them), a downloader's data file holds them one after
//! the other, and the page slices each file out of the finished `File`.
//! [`Share`]'s `wanted` (the paths the page picked) narrows the scheduler
//! to the chunks of those files (`Scheduler::set_wanted`). Picking files
//! after a download finished here reopens it when they lack chunks: the new
//! attempt resumes from the chunks stored (`shoal_share::pick` decides).
//!
//! Sessions are opened by downloaders, to every connected peer that is a
//! member of the swarm (seen in its rendezvous namespace), over whichever
//! path exists (direct, or relayed until a direct one is made); inbound
//! sessions are read only from members too. The share id is never sent: the
//! handshake proves it (`shoal_share::handshake`). Then both sides send
//! their bitfields and announce new chunks as they get them, so every
//! downloader serves what it has at once.
//!
//! Who may have a session is decided by the sans-IO
//! `shoal_share::admission::Admission`, keyed by PeerId: swarm membership,
//! bans (per share, for the life of the page: a banned peer gets no new
//! session either way, its sessions close and their streams are no longer
//! read) and session limits (per peer, per share, per peer and share,
//! handshakes pending). Each admitted session holds a [`Ticket`] until it
//! ends. Every limit is named in `shoal_share::limits`.
//!
//! Path changes: when the relayed connection is closed because a direct one
//! is up, or a direct one dies and the relay carries on, the sessions on the
//! old connection end (told by `streams::ConnectionGone`: a relayed stream
//! whose connection this node closed is not always told by its reads), the download re-queues their requests (chunks already
//! stored stay), and new sessions open on the path that exists now. A path
//! change does not count against a peer: [`MAX_REOPENS`] bounds the sessions
//! re-opened *between* two path changes.

mod download;
#[cfg(feature = "test-hooks")]
pub mod hooks;
mod outbox;
mod reader;
mod recorded;
mod session;
mod store;
mod stored;
mod stream;
#[cfg(test)]
mod tests;

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};

use futures::channel::{mpsc, oneshot};
use libp2p::{PeerId, StreamProtocol};
use serde::Serialize;
use shoal_proto::vecmap::{VecMap, VecSet};
use shoal_share::{
    admission::{Admission, Refusal, SessionId},
    handshake::ShareKey,
    limits::DOWNLOAD_EVENT_QUEUE,
    pick::{self, PickError},
    resume, Bitfield, FileEntry, Manifest, ManifestBuilder, ShareId,
};
use web_sys::{Blob, File};
use web_time::Instant;

use crate::{
    state::{Path, SharedState},
    streams,
};
pub use store::Store;

/// Sessions re-opened to one peer while its connections stay the same, at
/// most (a peer whose sessions keep failing on a stable path is given up).
const MAX_REOPENS: u32 = 8;
/// Pause before re-opening a session after the first re-open.
const REOPEN_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

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
    /// A streaming read that cannot be served (see `stream`).
    #[error("cannot read: {0}")]
    Read(String),
}

/// Sent by sessions to their share's download task. Keyed by PeerId: two
/// sessions with one peer (one opened by each side) are one source.
#[derive(Debug)]
pub enum DlEvent {
    /// The remote's bitfield (empty until it has the manifest); sent again
    /// when it changes.
    Joined {
        peer: PeerId,
        have: Bitfield,
    },
    /// The remote cannot provide the manifest (yet).
    Unknown {
        peer: PeerId,
    },
    Manifest {
        peer: PeerId,
        bytes: Vec<u8>,
    },
    Have {
        peer: PeerId,
        index: u32,
    },
    Chunk {
        peer: PeerId,
        index: u32,
        data: Vec<u8>,
    },
    Reject {
        peer: PeerId,
        index: u32,
    },
    /// The last session with this peer about this share ended.
    Left {
        peer: PeerId,
    },
    /// The page changed which files it wants (`Share::wanted`, with
    /// `Share::rewanted` set): a wakeup only, so a full queue loses nothing.
    Wanted,
    /// A streaming read moved the focus (`Share::focus`).
    Focus,
}

struct SessionHandle {
    peer: PeerId,
    outbox: Rc<outbox::Outbox>,
    /// Dropped to stop the session's reader at once (a ban, a refusal).
    stop: RefCell<Option<oneshot::Sender<()>>>,
    /// Chunk requests sent on this session and not yet answered: a chunk
    /// that arrives when none is outstanding was not asked for, and is
    /// dropped here instead of queued for the download.
    outstanding: Cell<u32>,
    /// The remote announced every chunk (a seeder): it needs no `Have`.
    remote_complete: Cell<bool>,
}

impl SessionHandle {
    fn close(&self) {
        self.outbox.close();
        self.stop.borrow_mut().take();
    }
}

/// A verified manifest and its one shared encoding (what `GetManifest` is
/// answered with: the bytes are never copied per request).
type KnownManifest = Rc<(Manifest, Rc<[u8]>)>;

/// One shared file, complete (a share or finished download) or not.
pub struct Share {
    id: ShareId,
    /// The handshake key: what proofs are made with (the id never travels).
    key: ShareKey,
    manifest: RefCell<Option<KnownManifest>>,
    have: RefCell<Bitfield>,
    store: RefCell<Option<Rc<Store>>>,
    /// Established sessions, by their `Admission` id.
    sessions: RefCell<VecMap<SessionId, SessionHandle>>,
    download: RefCell<Option<mpsc::Sender<DlEvent>>>,
    view: RefCell<DownloadView>,
    /// The finished file, once there is one.
    file: RefCell<Option<File>>,
    /// Sessions re-opened per peer since its connections last changed.
    reopens: RefCell<VecMap<PeerId, u32>>,
    /// Chunk requests sent per peer (all its sessions).
    requested: RefCell<VecMap<PeerId, u32>>,
    /// The paths the page wants of a share of files; `None`: all of it.
    wanted: RefCell<Option<VecSet<String>>>,
    /// `wanted` changed while the download runs: its loop applies (and
    /// records) it at its next turn.
    rewanted: Cell<bool>,
    /// The download takes its picks from the record on disk (`Picks::Stored`).
    stored_picks: Cell<bool>,
    /// The chunks the latest streaming read wants first, until the download
    /// task hands them to its scheduler (`stream`).
    focus: RefCell<Option<std::ops::Range<u32>>>,
    /// Streaming reads waiting for chunks: the chunks each needs, and how
    /// to wake it once they are all stored (at most `MAX_STREAM_READS`).
    readers: RefCell<Vec<(std::ops::Range<u32>, oneshot::Sender<()>)>>,
    /// `Node.want` calls waiting for their picks to be on disk.
    recorded: recorded::Recorded,
}

/// The files a download starts with.
enum Picks {
    /// Those the caller named (`None`: every file).
    Given(Option<VecSet<String>>),
    /// The caller named none: those the record on disk keeps, if it keeps
    /// any (a download picked before a reload goes on with them), else all.
    Stored,
}

impl Picks {
    /// What `download(link, paths)` asks for.
    fn of_call(paths: Option<VecSet<String>>) -> Self {
        match paths {
            Some(paths) => Picks::Given(Some(paths)),
            None => Picks::Stored,
        }
    }
}

/// The chunks of the files at `paths` (all chunks for `None`).
fn wanted_chunks(manifest: &Manifest, paths: Option<&VecSet<String>>) -> Bitfield {
    match paths {
        None => Bitfield::full(manifest.chunk_count()),
        Some(paths) => manifest.wanted_chunks(|f| paths.contains(f.path())),
    }
}

/// What this page holds of `share` (`have`: its stored chunks), for `shoal_share::pick`.
fn holding<'a>(share: &Share, have: &'a Bitfield) -> pick::Holding<'a> {
    if share.download.borrow().is_some() {
        pick::Holding::Running
    } else if share.file.borrow().is_some() {
        pick::Holding::Finished { have }
    } else {
        pick::Holding::Nothing
    }
}

fn picked_err(e: PickError) -> TransferError {
    TransferError::Stopped(e.to_string())
}

impl Share {
    fn new(id: ShareId) -> Self {
        Self {
            id,
            key: ShareKey::new(&id),
            manifest: RefCell::default(),
            have: RefCell::new(Bitfield::new(0)),
            store: RefCell::default(),
            sessions: RefCell::default(),
            download: RefCell::default(),
            view: RefCell::new(DownloadView::new(&id)),
            file: RefCell::default(),
            reopens: RefCell::default(),
            requested: RefCell::default(),
            wanted: RefCell::default(),
            rewanted: Cell::new(false),
            stored_picks: Cell::new(false),
            focus: RefCell::default(),
            readers: RefCell::default(),
            recorded: recorded::Recorded::default(),
        }
    }

    /// The chunks of the files the page wants (all, by default).
    fn wanted_chunks(&self, manifest: &Manifest) -> Bitfield {
        wanted_chunks(manifest, self.wanted.borrow().as_ref())
    }

    /// A finished download's picks changed, all their chunks stored: the
    /// view's `wanted` flags follow at once, nothing is fetched, and the
    /// record on disk keeps them for a reload (a file not all there reopens
    /// with them) once this resolves.
    async fn keep_picks(&self, wanted: Option<VecSet<String>>) -> Result<(), store::WriteError> {
        *self.wanted.borrow_mut() = wanted;
        let Some(m) = self.manifest() else {
            return Ok(());
        };
        let have = self.have.borrow().clone();
        self.view.borrow_mut().files = file_views(&m.0, &have, self.wanted.borrow().as_ref());
        if have.is_full() {
            // A complete file keeps no record: every file is there.
            return Ok(());
        }
        let snapshot = self.recorded.snapshot();
        let picked = self.picked_files();
        store::write_record(&self.id, &have, picked.as_ref()).await?;
        self.recorded.written(snapshot);
        Ok(())
    }

    fn manifest(&self) -> Option<KnownManifest> {
        self.manifest.borrow().clone()
    }

    /// The files picked, one bit per file of the manifest, for the `.have`
    /// record; `None` when all are (or no manifest is known yet).
    fn picked_files(&self) -> Option<Bitfield> {
        let manifest = self.manifest()?;
        let wanted = self.wanted.borrow();
        let paths = wanted.as_ref()?;
        Some(resume::picked_files(&manifest.0, |p| paths.contains(p)))
    }

    fn has_chunk(&self, index: u32) -> bool {
        self.have.borrow().get(index)
    }

    /// Announces to every session of this share.
    fn broadcast(&self, msg: &shoal_share::Message) {
        // A seeder has every chunk: telling it of ours costs a data-channel
        // send per chunk for nothing (half of a downloader's sends).
        let for_seeders = !matches!(msg, shoal_share::Message::Have(_));
        for s in self.sessions.borrow().values() {
            if !for_seeders && s.remote_complete.get() {
                continue;
            }
            // A flooded queue means a stalled peer; it misses this note only.
            s.outbox.send(msg);
        }
    }

    /// Queues a message for `peer` on one of its sessions (the oldest);
    /// false if it has none that takes it.
    fn send_to_peer(&self, peer: &PeerId, msg: &shoal_share::Message) -> bool {
        let sessions = self.sessions.borrow();
        let mut mine: Vec<(&SessionId, &SessionHandle)> =
            sessions.iter().filter(|(_, s)| s.peer == *peer).collect();
        mine.sort_by_key(|(sid, _)| **sid);
        mine.into_iter().any(|(_, s)| {
            let sent = s.outbox.send(msg);
            if sent && matches!(msg, shoal_share::Message::Request(_)) {
                s.outstanding.set(s.outstanding.get() + 1);
            }
            sent
        })
    }

    fn close_session(&self, sid: SessionId) {
        if let Some(s) = self.sessions.borrow_mut().remove(&sid) {
            s.close();
        }
    }

    /// Closes every session with `peer` about this share.
    fn close_peer(&self, peer: &PeerId) {
        self.sessions.borrow_mut().retain(|_, s| {
            if s.peer == *peer {
                s.close();
            }
            s.peer != *peer
        });
    }
}

/// A session admitted by `Admission`, from the moment it is allowed until
/// it ends: dropping it tells the admission the session is over.
pub(super) struct Ticket {
    t: Transfers,
    id: SessionId,
}

impl Ticket {
    fn id(&self) -> SessionId {
        self.id
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.t.0.admission.borrow_mut().ended(self.id);
    }
}

/// Where a download is; serialized as `'looking'|'checking'|'downloading'|'done'|'failed'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadState {
    /// Looking for a peer with the manifest.
    Looking,
    /// Re-verifying the chunks stored earlier (resume), before using them.
    Checking,
    Downloading,
    Done,
    Failed,
}

/// A download as the page sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadView {
    pub share_id: String,
    pub name: Option<String>,
    pub size: Option<u64>,
    pub media_type: Option<String>,
    pub state: DownloadState,
    pub chunks_done: u32,
    pub chunks_total: u32,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub sources: Vec<SourceView>,
    pub error: Option<String>,
    /// A share of files (manifest version 2): each file, where it lies in
    /// the downloaded byte stream, and its progress. `None` for one file.
    pub files: Option<Vec<FileView>>,
}

/// One file of a share of files, as the page sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub path: String,
    pub size: u64,
    /// Where its bytes start in the share's byte stream (the `File` that
    /// `download` resolves to): `file.slice(offset, offset + size)`.
    pub offset: u64,
    pub chunks_done: u32,
    pub chunks_total: u32,
    /// Whether it is being fetched (`Node.want`).
    pub wanted: bool,
}

impl DownloadView {
    fn new(id: &ShareId) -> Self {
        Self {
            share_id: id.to_string(),
            name: None,
            size: None,
            media_type: None,
            state: DownloadState::Looking,
            chunks_done: 0,
            chunks_total: 0,
            bytes_done: 0,
            bytes_total: 0,
            sources: Vec::new(),
            error: None,
            files: None,
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
    local: PeerId,
    /// `now` for the sans-IO machines is the time since this instant.
    epoch: Instant,
    shares: RefCell<VecMap<ShareId, Rc<Share>>>,
    /// Connected peers (direct or relayed).
    usable: RefCell<VecSet<PeerId>>,
    /// Swarm membership (peers seen registered in this swarm's rendezvous
    /// namespace: the only ones sessions are opened to or accepted from),
    /// bans by PeerId and share, and session limits: sans-IO.
    admission: RefCell<Admission<PeerId, ShareId>>,
    /// An inbound session came from a peer not (yet) known as a member:
    /// the node should ask the relay for the swarm's members now.
    discover_wanted: Cell<bool>,
    /// Inbound sessions waiting for their peer to be seen as a member: woken
    /// by [`Transfers::member_seen`] (one per waiting session, which the
    /// admission limits bound).
    member_waiters: RefCell<Vec<std::task::Waker>>,
    uploaded: Cell<u64>,
    downloaded: Cell<u64>,
    /// Chunk bytes per peer, by the path of the session's connection.
    by_peer: RefCell<VecMap<PeerId, (PathBytes, PathBytes)>>,
    /// Test-only: serve corrupted chunks.
    #[cfg(feature = "test-hooks")]
    corrupt: Cell<bool>,
    /// Test-only: wait this long before sending each chunk (a slow sharer).
    #[cfg(feature = "test-hooks")]
    serve_delay_ms: Cell<u32>,
    /// Test-only: chunk requests received from other peers.
    #[cfg(feature = "test-hooks")]
    requests_received: Cell<u64>,
    /// Test-only: answer `GetManifest` with another share's manifest.
    #[cfg(feature = "test-hooks")]
    wrong_manifest: Cell<bool>,
    /// Test-only: chunk writes that succeed before every later one fails.
    #[cfg(feature = "test-hooks")]
    writes_left: Cell<Option<u32>>,
    /// Test-only: the hostile-peer switches.
    #[cfg(feature = "test-hooks")]
    hooks: hooks::Hooks,
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
        local: PeerId,
        state: SharedState,
        origin: String,
        swarm: String,
    ) -> Self {
        Self(Rc::new(Inner {
            control,
            local,
            epoch: Instant::now(),
            shares: RefCell::default(),
            usable: RefCell::default(),
            admission: RefCell::default(),
            discover_wanted: Cell::new(false),
            member_waiters: RefCell::default(),
            uploaded: Cell::new(0),
            downloaded: Cell::new(0),
            by_peer: RefCell::default(),
            #[cfg(feature = "test-hooks")]
            corrupt: Cell::new(false),
            #[cfg(feature = "test-hooks")]
            serve_delay_ms: Cell::new(0),
            #[cfg(feature = "test-hooks")]
            requests_received: Cell::new(0),
            #[cfg(feature = "test-hooks")]
            wrong_manifest: Cell::new(false),
            #[cfg(feature = "test-hooks")]
            writes_left: Cell::new(None),
            #[cfg(feature = "test-hooks")]
            hooks: hooks::Hooks::default(),
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
                // Over a limit the stream is dropped (reset) unread.
                let admitted = this.0.admission.borrow_mut().accept(inc.peer);
                match admitted {
                    Ok(id) => {
                        let ticket = this.ticket(id);
                        wasm_bindgen_futures::spawn_local(session::accept(
                            this.clone(),
                            inc.peer,
                            inc.stream,
                            ticket,
                        ));
                    }
                    Err(e) => tracing::debug!(peer = %inc.peer, "session refused: {e}"),
                }
            }
        });
    }

    fn ticket(&self, id: SessionId) -> Ticket {
        Ticket {
            t: self.clone(),
            id,
        }
    }

    fn is_banned(&self, share: &ShareId, peer: &PeerId) -> bool {
        self.0.admission.borrow().is_banned(share, peer)
    }

    /// Bans `peer` from `share` for the life of this node: its sessions
    /// about it close (their readers stop) and none is admitted again.
    fn ban(&self, share: &Share, peer: PeerId) {
        let close = self.0.admission.borrow_mut().ban(share.id, peer);
        for id in close {
            share.close_session(id);
        }
        share.close_peer(&peer);
    }

    /// An accepted session's handshake named `share`: whether it may go on.
    fn established(&self, ticket: &Ticket, share: ShareId) -> Result<(), Refusal> {
        self.0
            .admission
            .borrow_mut()
            .established(ticket.id(), share)
    }

    /// Time since start, for the sans-IO machines.
    fn now(&self) -> std::time::Duration {
        self.0.epoch.elapsed()
    }

    fn local(&self) -> PeerId {
        self.0.local
    }

    /// The handshake keys of the shares `peer` may open a session about
    /// now: not banned from them, and under the session limits.
    fn keys_for(&self, peer: &PeerId) -> Vec<ShareKey> {
        let admission = self.0.admission.borrow();
        self.0
            .shares
            .borrow()
            .values()
            .filter(|s| admission.may_join(peer, &s.id))
            .map(|s| s.key.clone())
            .collect()
    }

    /// `peer` was seen registered in this swarm: sessions with it are
    /// allowed, and running downloads open one if it is connected.
    pub fn member_seen(&self, peer: PeerId) {
        if !self.0.admission.borrow_mut().member_seen(peer) {
            return;
        }
        for waker in self.0.member_waiters.take() {
            waker.wake();
        }
        if self.0.usable.borrow().contains(&peer) {
            self.open_for_downloads(peer);
        }
    }

    fn is_member(&self, peer: &PeerId) -> bool {
        self.0.admission.borrow().is_member(peer)
    }

    /// Whether someone asked for the swarm's members to be looked up now
    /// (and clears the request).
    pub fn take_discover_request(&self) -> bool {
        self.0.discover_wanted.replace(false)
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

    fn share_by_id(&self, id: &ShareId) -> Option<Rc<Share>> {
        self.0.shares.borrow().get(id).cloned()
    }

    #[cfg(feature = "test-hooks")]
    pub fn set_corrupt(&self, on: bool) {
        self.0.corrupt.set(on);
    }

    #[cfg(feature = "test-hooks")]
    pub fn set_serve_delay(&self, ms: u32) {
        self.0.serve_delay_ms.set(ms);
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
        let media_type: String = blob
            .type_()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        let builder = ManifestBuilder::new(&name, &media_type, shoal_share::chunk_size_for(size))?;
        self.share_stream(blob, builder).await
    }

    /// Shares several files under `name` (manifest version 2): the list is
    /// checked and sorted, and the files' bytes are hashed as one stream in
    /// that order, read from a `Blob` that only refers to them (never whole
    /// in memory, like a single file).
    pub async fn share_files(
        &self,
        name: String,
        files: Vec<(String, Blob)>,
    ) -> Result<String, TransferError> {
        let entries = files
            .iter()
            .map(|(path, blob)| FileEntry::new(path.clone(), blob.size() as u64))
            .collect();
        let size = files.iter().map(|(_, b)| b.size() as u64).sum();
        let builder =
            ManifestBuilder::with_files(&name, entries, shoal_share::chunk_size_for(size))?;
        // Paths are unique once checked: each names one of the blobs.
        let mut by_path: VecMap<String, Blob> = files.into_iter().collect();
        let parts = js_sys::Array::new();
        for entry in builder.files() {
            if let Some(blob) = by_path.remove(entry.path()) {
                parts.push(&blob);
            }
        }
        let stream = Blob::new_with_blob_sequence(&parts)
            .map_err(|e| TransferError::Storage(store::describe(&e)))?;
        self.share_stream(stream, builder).await
    }

    async fn share_stream(
        &self,
        blob: Blob,
        mut builder: ManifestBuilder,
    ) -> Result<String, TransferError> {
        let size = blob.size() as u64;
        let chunk_size = builder.chunk_size();
        let mut reader = reader::BlobReader::new(&blob);
        let count = shoal_share::chunk_count(size, chunk_size);
        for index in 0..count {
            let range = shoal_share::chunk_range(size, chunk_size, index).unwrap_or(0..0);
            let bytes = reader.next((range.end - range.start) as u32).await?;
            builder
                .push_chunk(bytes)
                .map_err(|e| TransferError::Storage(e.to_string()))?;
        }
        drop(reader);
        let store = Store::Blob(blob);
        let manifest = builder.finish()?;
        let id = manifest.share_id();
        let share = Rc::new(Share::new(id));
        *share.have.borrow_mut() = Bitfield::full(manifest.chunk_count());
        {
            let mut view = share.view.borrow_mut();
            view.state = DownloadState::Done;
            fill_view_header(&mut view, &manifest);
        }
        let name = manifest.name().to_owned();
        let bytes: Rc<[u8]> = manifest.encode().into();
        *share.manifest.borrow_mut() = Some(Rc::new((manifest, bytes)));
        *share.store.borrow_mut() = Some(Rc::new(store));
        self.0.shares.borrow_mut().insert(id, share);
        tracing::info!(share = %id, %name, size, "sharing");
        self.notify();
        Ok(self.link(&id))
    }

    /// Fetches only the files at `paths` of a share of files (all of it
    /// when `None`), from now on; the download's `Done` comes when they are
    /// stored. While it downloads, or once it finished here: picking files
    /// whose chunks are not all stored reopens it (`shoal_share::pick`).
    /// Resolves once the picks are recorded on disk (a reload keeps them).
    pub async fn want(
        &self,
        id: &ShareId,
        paths: Option<Vec<String>>,
    ) -> Result<(), TransferError> {
        let share = self
            .share_by_id(id)
            .ok_or_else(|| TransferError::Stopped(PickError::NotDownloading.to_string()))?;
        let wanted: Option<VecSet<String>> = paths.map(|p| p.into_iter().collect());
        // No manifest yet means a running download, which applies `wanted`
        // once it has one: the picked chunks matter only to a finished one.
        let picked = share.manifest().map_or_else(
            || Bitfield::new(0),
            |m| wanted_chunks(&m.0, wanted.as_ref()),
        );
        let have = share.have.borrow().clone();
        let ask = pick::Ask::Want { picked: &picked };
        let next = pick::next(ask, holding(&share, &have)).map_err(picked_err)?;
        let recorded = match next {
            pick::Next::Rewant => {
                *share.wanted.borrow_mut() = wanted;
                // Named now: not the ones on disk (if its record is still to be read).
                share.stored_picks.set(false);
                share.rewanted.set(true);
                let recorded = share.recorded.wait();
                // The loop applies them and records them at its next turn;
                // a full queue wakes it anyway.
                if let Some(tx) = share.download.borrow_mut().as_mut() {
                    let _ = tx.try_send(DlEvent::Wanted);
                }
                Some(recorded)
            }
            pick::Next::Ready => {
                let kept = share.keep_picks(wanted).await;
                self.notify();
                return kept.map_err(|e| match e {
                    store::WriteError::Full => TransferError::Storage(
                        "the disk is full: the files picked were not recorded".into(),
                    ),
                    store::WriteError::Failed(e) => e,
                });
            }
            pick::Next::Reopen { missing } => {
                tracing::info!(share = %id, missing, "more files picked; reopening the download");
                // Its outcome shows in `downloads()`; `download(link)` gives the File after.
                drop(self.reopen(&share, wanted));
                // The new attempt records its picks once its store is open.
                self.share_by_id(id).map(|s| s.recorded.wait())
            }
            pick::Next::Start => None,
        };
        self.notify();
        match recorded {
            Some(recorded) => recorded.await.map_err(|_| {
                TransferError::Stopped(
                    "the download stopped before the files picked were recorded".into(),
                )
            }),
            None => Ok(()),
        }
    }

    fn link(&self, id: &ShareId) -> String {
        shoal_share::make_link(&self.0.origin, &self.0.swarm, id)
    }

    /// Fetches the file behind `link` from every peer that has it; of a
    /// share of files, only the files at `wanted` if given (see `want`).
    /// A download that finished here resolves at once, unless `wanted`
    /// names files not all stored: then it reopens for their chunks.
    pub async fn download(
        &self,
        link: &str,
        wanted: Option<Vec<String>>,
    ) -> Result<File, TransferError> {
        let id = shoal_share::parse_link(link)?;
        let wanted: Option<VecSet<String>> = wanted.map(|p| p.into_iter().collect());
        let done = match self.share_by_id(&id) {
            None => self.start(id, Picks::of_call(wanted), None),
            Some(share) => {
                let have = share.have.borrow().clone();
                let picked = match (&wanted, share.manifest()) {
                    (Some(_), Some(m)) => Some(wanted_chunks(&m.0, wanted.as_ref())),
                    _ => None,
                };
                let ask = pick::Ask::Download {
                    picked: picked.as_ref(),
                };
                match pick::next(ask, holding(&share, &have)).map_err(picked_err)? {
                    pick::Next::Ready => {
                        let file = share.file.borrow().clone();
                        if let Some(file) = file {
                            if wanted.is_some() {
                                let kept = share.keep_picks(wanted).await;
                                if let Err(e) = kept {
                                    tracing::warn!(share = %id, "recording the files picked failed: {e:?}");
                                }
                                self.notify();
                            }
                            return Ok(file);
                        }
                        self.start(id, Picks::of_call(wanted), None)
                    }
                    pick::Next::Reopen { missing } => {
                        tracing::info!(share = %id, missing, "more files picked; reopening the download");
                        self.reopen(&share, wanted)
                    }
                    pick::Next::Start | pick::Next::Rewant => {
                        let store = share.store.borrow().clone();
                        let complete = share.have.borrow().is_full();
                        if let (Some(m), Some(store), true) = (share.manifest(), store, complete) {
                            return store.file(&m.0);
                        }
                        // A download that failed earlier: start it again (it resumes
                        // from what is on disk), on new sessions (the old ones belong to the old attempt).
                        self.end_sessions(&share);
                        self.start(id, Picks::of_call(wanted), None)
                    }
                }
            }
        };
        match done.await {
            Ok(result) => result,
            Err(_) => Err(TransferError::Stopped("the node stopped".into())),
        }
    }

    /// Ends every session of `share` at once, not when their tasks notice: a
    /// new attempt opens sessions to the same peers right away. Handshakes
    /// still in progress end too (a session opened moments ago, by a
    /// download that finished at once from disk, would refuse the new
    /// attempt's: `AlreadyOpen`); their tasks stop once they see it
    /// ([`Transfers::is_live`]).
    fn end_sessions(&self, share: &Share) {
        // The established ones among them are in `share.sessions` too.
        let ended = self.0.admission.borrow_mut().end_share(&share.id);
        for sid in ended {
            share.close_session(sid);
        }
    }

    /// Whether session `sid` is still admitted (see `end_sessions`).
    fn is_live(&self, sid: SessionId) -> bool {
        self.0.admission.borrow().is_live(sid)
    }

    /// A download that finished here fetches more: it stops serving the
    /// finished file (whose lock the new attempt takes again) and starts
    /// over, resuming from the chunks stored.
    fn reopen(
        &self,
        share: &Rc<Share>,
        wanted: Option<VecSet<String>>,
    ) -> oneshot::Receiver<Result<File, TransferError>> {
        let old = share.store.borrow_mut().take();
        share.file.borrow_mut().take();
        self.end_sessions(share);
        let done = self.start(share.id, Picks::Given(wanted), old);
        // `Node.want` calls still waiting wait for the new attempt's record.
        if let Some(new) = self.share_by_id(&share.id) {
            share.recorded.hand_over(&new.recorded);
        }
        done
    }

    /// Starts (or resumes) the download of `id`; `old`, the store of a
    /// finished download of it, lets go of its lock first.
    fn start(
        &self,
        id: ShareId,
        picks: Picks,
        old: Option<Rc<Store>>,
    ) -> oneshot::Receiver<Result<File, TransferError>> {
        let share = Rc::new(Share::new(id));
        match picks {
            Picks::Given(wanted) => *share.wanted.borrow_mut() = wanted,
            Picks::Stored => share.stored_picks.set(true),
        }
        // Each session clones the sender once: the queue holds at most
        // this many events plus one per session (sessions are bounded).
        let (tx, rx) = mpsc::channel(DOWNLOAD_EVENT_QUEUE);
        *share.download.borrow_mut() = Some(tx);
        self.0.shares.borrow_mut().insert(id, share.clone());
        tracing::info!(share = %id, "download started");
        let peers: Vec<PeerId> = self.0.usable.borrow().iter().copied().collect();
        for peer in peers {
            self.open_session(&share, peer);
        }
        self.notify();
        let (done_tx, done_rx) = oneshot::channel();
        wasm_bindgen_futures::spawn_local(download::run(
            self.clone(),
            share.clone(),
            rx,
            done_tx,
            old,
        ));
        done_rx
    }

    fn open_session(&self, share: &Rc<Share>, peer: PeerId) {
        let admitted = self.0.admission.borrow_mut().open(peer, share.id);
        let ticket = match admitted {
            Ok(id) => self.ticket(id),
            Err(e) => {
                tracing::trace!(%peer, "no session opened: {e}");
                return;
            }
        };
        let control = self.0.control.clone();
        let this = self.clone();
        let share = share.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let opened = control.open_stream(peer).await;
            match opened {
                Ok(stream) => session::open(this, peer, share, stream, ticket).await,
                Err(e) => {
                    drop(ticket);
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
        if !self.is_member(&peer) {
            // Connected before this node saw it in the swarm (it dialed us
            // after its own discovery): look the members up now.
            self.0.discover_wanted.set(true);
        }
        self.paths_changed(&peer);
        self.open_for_downloads(peer);
    }

    /// Opens a session to `peer` for every running download (where allowed).
    fn open_for_downloads(&self, peer: PeerId) {
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
        // The first re-open since the peer's paths changed is at once: that
        // is a session whose relayed connection closed for a direct one
        // (waiting here delayed a joining page's first chunk by 500 ms).
        // Later ones wait, so a session that keeps failing does not spin.
        let pause = if attempts == 1 {
            std::time::Duration::ZERO
        } else {
            REOPEN_PAUSE
        };
        wasm_bindgen_futures::spawn_local(async move {
            if !pause.is_zero() {
                futures_timer::Delay::new(pause).await;
            }
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
        self.0.usable.borrow().contains(peer) && self.is_member(peer)
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
                    || s.view.borrow().state == DownloadState::Failed
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

/// Each file's progress from the chunks stored, for a share of files.
fn file_views(
    manifest: &Manifest,
    have: &Bitfield,
    wanted: Option<&VecSet<String>>,
) -> Option<Vec<FileView>> {
    if !manifest.has_paths() {
        return None;
    }
    let views = manifest
        .files()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let chunks = manifest.file_chunks(i);
            FileView {
                path: f.path().to_owned(),
                size: f.size(),
                offset: f.offset(),
                chunks_done: chunks.clone().filter(|&c| have.get(c)).count() as u32,
                chunks_total: chunks.len() as u32,
                wanted: wanted.is_none_or(|w| w.contains(f.path())),
            }
        })
        .collect();
    Some(views)
}

fn fill_view_header(view: &mut DownloadView, manifest: &Manifest) {
    view.name = Some(manifest.name().to_owned());
    view.size = Some(manifest.size());
    view.media_type = Some(manifest.media_type().to_owned());
    view.chunks_total = manifest.chunk_count();
    view.bytes_total = manifest.size();
}
