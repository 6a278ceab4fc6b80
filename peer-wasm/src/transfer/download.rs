//! One download: open what is stored for the share (resume: the manifest
//! and the chunks that re-verify; a complete file is served at once), else
//! fetch the manifest (`ManifestFetch`: several holders at once, each with a
//! timeout, checked against the share id); then let the `Scheduler` decide
//! which chunk to ask whom for, verify what arrives, store it in OPFS,
//! announce it, and checkpoint the record of stored chunks now and then
//! (`shoal_share::resume`). Both machines are keyed by PeerId, so a ban
//! outlives the session it happened on.

use std::{rc::Rc, time::Duration};

use shoal_proto::vecmap::VecMap;

use futures::{
    channel::{mpsc, oneshot},
    future::LocalBoxFuture,
    stream::FuturesUnordered,
    FutureExt as _, StreamExt as _,
};
use futures_timer::Delay;
use libp2p::PeerId;
use shoal_share::{
    fetch::{FetchAction, FetchError, ManifestFetch},
    resume::{self, Checkpoints},
    Action, Bitfield, Config, Manifest, Message, Scheduler, Verdict,
};
use web_sys::File;
use web_time::Instant;

use crate::milestones::Milestone;

use super::{
    file_views, fill_view_header,
    store::WriteError,
    stored::{self, Opened},
    DlEvent, DownloadState, Share, SourceView, Store, TransferError, Transfers,
};

/// Chunk writes to OPFS in flight at once.
const MAX_WRITES: usize = 8;
/// Progress reaches the page at most this often.
const NOTIFY_EVERY: Duration = Duration::from_millis(100);
/// While stored chunks are re-verified, the page hears of it once per this
/// many chunks (a few times a second).
const CHECKING_NOTIFY_EVERY: u32 = 64;

pub async fn run(
    t: Transfers,
    share: Rc<Share>,
    mut rx: mpsc::Receiver<DlEvent>,
    done: oneshot::Sender<Result<File, TransferError>>,
    old: Option<Rc<Store>>,
) {
    // A finished download reopened for more files: its shared lock goes
    // first, so that this attempt takes the share's lock exclusive again.
    if let Some(lock) = old.as_ref().and_then(|s| s.lock()) {
        lock.release_now().await;
    }
    drop(old);
    let result = download(&t, &share, &mut rx).await;
    *share.download.borrow_mut() = None;
    // Streaming reads still waiting learn that nothing more comes.
    share.readers.borrow_mut().clear();
    if result.is_err() {
        abandon(&share).await;
        share.recorded.cancel();
    }
    {
        let mut view = share.view.borrow_mut();
        match &result {
            Ok(_) => view.state = DownloadState::Done,
            Err(e) => {
                view.state = DownloadState::Failed;
                view.error = Some(e.to_string());
            }
        }
    }
    match &result {
        Ok(file) => {
            *share.file.borrow_mut() = Some(file.clone());
            tracing::info!(share = %share.id, "download complete; seeding");
            if share.rewanted.take() {
                // Picked again after the loop's last turn: as for a finished
                // download (recorded, or reopened for the files not stored).
                let wanted = share.wanted.borrow().clone();
                let (t, id) = (t.clone(), share.id);
                wasm_bindgen_futures::spawn_local(async move {
                    let paths = wanted.map(|w| w.into_iter().collect());
                    if let Err(e) = t.want(&id, paths).await {
                        tracing::warn!(share = %id, "applying the files picked last failed: {e}");
                    }
                });
            } else {
                // Its last checkpoint recorded the picks, if any were asked for
                // (a file complete from disk needs none).
                share.recorded.written(share.recorded.snapshot());
            }
        }
        Err(e) => tracing::warn!(share = %share.id, "download failed: {e}"),
    }
    t.notify();
    let _ = done.send(result);
}

async fn download(
    t: &Transfers,
    share: &Rc<Share>,
    rx: &mut mpsc::Receiver<DlEvent>,
) -> Result<File, TransferError> {
    let checking = |m: &Manifest, done: u32, of: u32| {
        if done == 0 {
            let mut view = share.view.borrow_mut();
            fill_view_header(&mut view, m);
            view.state = DownloadState::Checking;
        }
        if done.is_multiple_of(CHECKING_NOTIFY_EVERY) || done == of {
            t.notify();
        }
    };
    let (manifest, have, store, bitfields) = match stored::open(&share.id, checking).await? {
        Opened::Complete {
            manifest,
            file,
            store,
        } => {
            let have = Bitfield::full(manifest.chunk_count());
            serve(share, manifest, have, Rc::new(store));
            return Ok(file);
        }
        Opened::Partial {
            manifest,
            have,
            picked,
            lock,
        } => {
            // A download that picked files goes on with them after a reload,
            // unless this call picks its own (every file included).
            if share.stored_picks.get() {
                *share.wanted.borrow_mut() = picked.map(|p| p.into_iter().collect());
            }
            let store = Store::open_data(&share.id, manifest.size(), lock).await;
            (manifest, have, store, VecMap::new())
        }
        Opened::New { lock } => {
            Store::warm();
            let (manifest, bitfields) = fetch_manifest(t, share, rx).await?;
            t.0.state.mark(Milestone::Manifest);
            let have = Bitfield::new(manifest.chunk_count());
            // The record (written by the page) and the data file (opened
            // by the worker) at once: both are on the way to the first chunk.
            let (created, store) = futures::join!(
                stored::create(&share.id, &manifest),
                Store::open_data(&share.id, manifest.size(), lock)
            );
            if let Err(e) = created {
                if let Ok(store) = store {
                    store.abandon().await;
                }
                return Err(write_error(e, &manifest, &have));
            }
            (manifest, have, store, bitfields)
        }
    };
    share.view.borrow_mut().error = None;
    let store = store.map_err(|e| write_error(e, &manifest, &have))?;
    t.0.state.mark(Milestone::DataOpen);
    let store = Rc::new(store);
    let count = manifest.chunk_count();
    share.view.borrow_mut().state = DownloadState::Downloading;
    // Tell everyone what we have (what was on disk and verified).
    serve(share, manifest.clone(), have.clone(), store.clone());
    t.notify();
    // Picks (this call's, or a reopened download's new ones, `None` for all
    // included) are on disk from the start: a reload before the first
    // checkpoint keeps them.
    if share.wanted.borrow().is_some() || share.recorded.is_waiting() {
        checkpoint(share, &store)
            .await
            .map_err(|e| write_error(e, &manifest, &have))?;
    }

    let mut config = Config::default();
    // Peers start on different chunks, so they have something to trade.
    config.seed = (js_sys::Math::random() * u64::MAX as f64) as u64;
    let mut sched = Scheduler::new(manifest.clone(), have, config)
        .map_err(|e| TransferError::Stopped(e.to_string()))?;
    // Of a share of files, only those the page picked (all by default).
    sched
        .set_wanted(share.wanted_chunks(&manifest))
        .map_err(|e| TransferError::Stopped(e.to_string()))?;
    for (peer, have) in bitfields {
        if have.len() == count && !t.is_banned(&share.id, &peer) {
            let _ = sched.peer_bitfield(peer, have);
        }
    }
    let epoch = Instant::now();
    let mut last_notify = epoch;
    let mut writes: FuturesUnordered<LocalBoxFuture<'_, Result<u32, WriteError>>> =
        FuturesUnordered::new();
    let mut checkpoints = Checkpoints::new(epoch.elapsed());
    let full = |e: WriteError| write_error(e, &manifest, &share.have.borrow());
    loop {
        let now = epoch.elapsed();
        if let Some(focus) = share.focus.borrow_mut().take() {
            sched.set_focus(Some(focus));
        }
        if share.rewanted.take() {
            let _ = sched.set_wanted(share.wanted_chunks(&manifest));
            update_view(share, &sched);
            t.notify();
            // The picks survive a reload from now on, not from the next
            // chunk stored (and `Node.want` resolves).
            checkpoint(share, &store).await.map_err(full)?;
        }
        if checkpoints.is_due(now) {
            checkpoint(share, &store).await.map_err(full)?;
            checkpoints.written(now);
        }
        while let Some(action) = sched.poll_action(now) {
            match action {
                Action::Request { peer, index } => {
                    if share.send_to_peer(&peer, &Message::Request(index)) {
                        t.0.state.mark(Milestone::FirstRequest);
                        *share.requested.borrow_mut().entry(peer).or_default() += 1;
                    } else {
                        // No session with it takes messages (it closed, or the
                        // peer stopped reading): it is gone for this download
                        // until a new session brings its bitfield again (its
                        // `Left` may still wait in the queue). Its requests go
                        // to others at once; a failed request would keep the
                        // peer's other requests outstanding until they time out.
                        sched.peer_left(&peer);
                    }
                }
                Action::Cancel { peer, index } => {
                    share.send_to_peer(&peer, &Message::Cancel(index));
                }
                Action::Store { index, bytes } => {
                    // Writes run side by side with the transfer; a chunk is
                    // announced (and served) once it is on disk.
                    if writes.len() >= MAX_WRITES {
                        if let Some(done) = writes.next().await {
                            stored(
                                t,
                                share,
                                &mut checkpoints,
                                epoch.elapsed(),
                                done.map_err(full)?,
                            );
                        }
                    }
                    let store = store.clone();
                    let offset = manifest.chunk_range(index).map_or(0, |r| r.start);
                    // Test-only switch: the disk is full from now on.
                    #[cfg(feature = "test-hooks")]
                    if t.write_must_fail() {
                        tracing::warn!(index, "test switch: writing a chunk fails (disk full)");
                        return Err(full(WriteError::Full));
                    }
                    writes.push(
                        async move { store.write(offset, &bytes).await.map(|()| index) }
                            .boxed_local(),
                    );
                }
                // Announced when its write completes (see `stored`).
                Action::Announce { .. } => {}
                Action::Ban { peer } => {
                    tracing::warn!(%peer, "peer sent a chunk that failed verification; banned");
                    // On the PeerId, for the life of the download: its
                    // sessions close, their streams are no longer read, and
                    // no new one is opened or accepted (`Admission`).
                    t.ban(share, peer);
                }
                Action::Done => {
                    while let Some(done) = writes.next().await {
                        stored(
                            t,
                            share,
                            &mut checkpoints,
                            epoch.elapsed(),
                            done.map_err(full)?,
                        );
                    }
                    update_view(share, &sched);
                    checkpoint(share, &store).await.map_err(full)?;
                    // From now on it is served from disk like a shared file
                    // (other tabs may serve it too).
                    let complete = Rc::new(store.complete().await?);
                    let file = complete.file(&manifest)?;
                    *share.store.borrow_mut() = Some(complete);
                    return Ok(file);
                }
                _ => {}
            }
        }
        if last_notify.elapsed() >= NOTIFY_EVERY {
            last_notify = Instant::now();
            update_view(share, &sched);
            t.notify();
        }
        let wait = sched
            .poll_timeout()
            .map(|d| d.saturating_sub(epoch.elapsed()))
            .unwrap_or(Duration::from_secs(1));
        let ev = futures::select! {
            done = writes.select_next_some() => {
                stored(t, share, &mut checkpoints, epoch.elapsed(), done.map_err(full)?);
                continue;
            }
            ev = rx.next() => ev,
            _ = Delay::new(wait.min(NOTIFY_EVERY)).fuse() => {
                sched.handle_timeout(epoch.elapsed());
                continue;
            }
        };
        let Some(ev) = ev else {
            return Err(TransferError::Stopped("the node stopped".into()));
        };
        match ev {
            DlEvent::Joined { peer, have } => {
                if t.is_banned(&share.id, &peer) {
                    share.close_peer(&peer);
                    continue;
                }
                t.0.state.mark(Milestone::Holder);
                // Incremental for a peer already joined: no rebuild.
                if let Err(e) = sched.peer_bitfield(peer, have) {
                    tracing::debug!(%peer, "bitfield ignored: {e}");
                }
            }
            DlEvent::Have { peer, index } => {
                let _ = sched.peer_has(&peer, index);
            }
            DlEvent::Chunk { peer, index, data } => {
                if let Verdict::Rejected { error, banned } =
                    sched.chunk_received(&peer, index, data, epoch.elapsed())
                {
                    tracing::warn!(%peer, index, banned, "chunk failed verification: {error}");
                }
            }
            DlEvent::Reject { peer, index } => sched.request_failed(&peer, index, epoch.elapsed()),
            DlEvent::Left { peer } => sched.peer_left(&peer),
            // Read at the top of the loop.
            DlEvent::Wanted | DlEvent::Focus => {}
            DlEvent::Unknown { .. } | DlEvent::Manifest { .. } => {}
        }
    }
}

/// Records on disk which chunks are stored, and which files are picked.
async fn checkpoint(share: &Share, store: &Store) -> Result<(), WriteError> {
    let snapshot = share.recorded.snapshot();
    let have = share.have.borrow().clone();
    store
        .checkpoint(&share.id, &have, share.picked_files().as_ref())
        .await?;
    share.recorded.written(snapshot);
    Ok(())
}

/// A chunk is on disk: from now on it is served, and the others hear of it.
/// A chunk is on disk: announced, served, and counted for the checkpoint.
fn stored(t: &Transfers, share: &Share, checkpoints: &mut Checkpoints, now: Duration, index: u32) {
    t.0.state.mark(Milestone::FirstChunk);
    let _ = share.have.borrow_mut().set(index);
    checkpoints.stored(now);
    share.broadcast(&Message::Have(index));
    share.wake_readers();
}

/// From now on `share` is served from `store`: what it has is announced to
/// every session.
fn serve(share: &Share, manifest: Manifest, have: Bitfield, store: Rc<Store>) {
    {
        let mut view = share.view.borrow_mut();
        fill_view_header(&mut view, &manifest);
        view.chunks_done = have.count_ones();
        view.bytes_done = resume::bytes_of(&manifest, &have);
        view.files = file_views(&manifest, &have, share.wanted.borrow().as_ref());
    }
    *share.store.borrow_mut() = Some(store);
    *share.have.borrow_mut() = have.clone();
    let bytes: Rc<[u8]> = manifest.encode().into();
    *share.manifest.borrow_mut() = Some(Rc::new((manifest, bytes)));
    share.broadcast(&Message::Bitfield(have));
}

/// What a failed write means for the page: a full disk says how much room
/// the rest of the download needs.
fn write_error(e: WriteError, manifest: &Manifest, have: &Bitfield) -> TransferError {
    match e {
        WriteError::Full => TransferError::StorageFull {
            needed_mib: resume::mib_ceil(resume::bytes_missing(manifest, have)),
        },
        WriteError::Failed(e) => e,
    }
}

/// A download that failed keeps what it stored for resume: the record
/// names the chunks on disk, the data file is closed and the lock let go.
async fn abandon(share: &Share) {
    let store = share.store.borrow_mut().take();
    let Some(store) = store else { return };
    let picked = share.picked_files();
    let have = std::mem::replace(&mut *share.have.borrow_mut(), Bitfield::new(0));
    if let Err(e) = store.checkpoint(&share.id, &have, picked.as_ref()).await {
        tracing::warn!(share = %share.id, "recording the stored chunks failed: {e:?}");
    }
    store.abandon().await;
}

/// Asks peers that hold the share for its manifest (`ManifestFetch`: a few
/// at once, each with a timeout) until one sends a manifest whose hash is
/// the share id. Returns it with the holders' latest bitfields.
async fn fetch_manifest(
    t: &Transfers,
    share: &Rc<Share>,
    rx: &mut mpsc::Receiver<DlEvent>,
) -> Result<(Manifest, VecMap<PeerId, Bitfield>), TransferError> {
    let mut fetch = ManifestFetch::new(share.id);
    let mut holders: VecMap<PeerId, Bitfield> = VecMap::new();
    loop {
        let now = t.now();
        while let Some(action) = fetch.poll_action(now) {
            match action {
                FetchAction::Ask(peer) => {
                    if !share.send_to_peer(&peer, &Message::GetManifest) {
                        fetch.holder_left(&peer);
                    }
                }
                // Its sessions end; a new one starts it over (it may answer
                // honestly then).
                FetchAction::Refuse(peer) => share.close_peer(&peer),
            }
        }
        let wait = fetch
            .poll_timeout()
            .map_or(Duration::from_secs(1), |d| d.saturating_sub(now));
        let ev = futures::select! {
            ev = rx.next() => ev,
            _ = Delay::new(wait).fuse() => {
                fetch.handle_timeout(t.now());
                continue;
            }
        };
        let Some(ev) = ev else {
            return Err(TransferError::Stopped("the node stopped".into()));
        };
        match ev {
            DlEvent::Joined { peer, have } => {
                if t.is_banned(&share.id, &peer) {
                    continue;
                }
                t.0.state.mark(Milestone::Holder);
                // A holder that had no manifest before may have one now.
                holders.insert(peer, have);
                fetch.holder_joined(peer);
            }
            DlEvent::Unknown { peer } => fetch.unknown(&peer, t.now()),
            DlEvent::Left { peer } => {
                holders.remove(&peer);
                fetch.holder_left(&peer);
            }
            DlEvent::Manifest { peer, bytes } => match fetch.manifest_received(&peer, &bytes) {
                Ok(m) => return Ok((m, holders)),
                Err(e @ FetchError::Mismatch(_)) => {
                    tracing::warn!(%peer, "{e}");
                    // Shown while looking on; cleared once a good one comes.
                    share.view.borrow_mut().error = Some(e.to_string());
                }
                Err(e) => tracing::debug!(%peer, "manifest ignored: {e}"),
            },
            _ => {}
        }
    }
}

fn update_view(share: &Share, sched: &Scheduler<PeerId>) {
    let progress = sched.progress();
    let mut by_peer: VecMap<String, SourceView> = VecMap::new();
    for (peer, stats) in &progress.peers {
        let key = peer.to_base58();
        let entry = by_peer.entry(key.clone()).or_insert_with(|| SourceView {
            peer_id: key,
            path: None,
            chunks: 0,
            bytes: 0,
            bad_chunks: 0,
            banned: false,
            requested: 0,
        });
        entry.chunks += stats.chunks_received;
        entry.bytes += stats.bytes_received;
        entry.bad_chunks += stats.bad_chunks;
        entry.banned |= stats.banned;
    }
    let mut view = share.view.borrow_mut();
    view.chunks_done = progress.chunks_done;
    view.chunks_total = progress.chunks_total;
    view.bytes_done = progress.bytes_done;
    view.bytes_total = progress.bytes_total;
    view.files = file_views(
        sched.manifest(),
        sched.have(),
        share.wanted.borrow().as_ref(),
    );
    for (peer, n) in share.requested.borrow().iter() {
        if let Some(src) = by_peer.get_mut(&peer.to_base58()) {
            src.requested = *n;
        }
    }
    let mut sources: Vec<SourceView> = by_peer.into_values().collect();
    sources.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    view.sources = sources;
}
