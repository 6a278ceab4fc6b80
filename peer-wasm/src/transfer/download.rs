//! One download: open what is stored for the share (resume: the manifest
//! and the chunks that re-verify; a complete file is served at once), else
//! find a peer with the manifest and check it against the share id; then
//! let the `Scheduler` decide which chunk to ask whom for, verify what
//! arrives, store it in OPFS, announce it, and checkpoint the record of
//! stored chunks now and then (`shoal_share::resume`).

use std::{collections::HashMap, rc::Rc, time::Duration};

use futures::{
    channel::{mpsc, oneshot},
    future::LocalBoxFuture,
    stream::FuturesUnordered,
    FutureExt as _, StreamExt as _,
};
use futures_timer::Delay;
use shoal_share::{
    resume::{self, Checkpoints},
    Action, Bitfield, Config, Manifest, Message, Scheduler, Verdict,
};
use web_sys::File;
use web_time::Instant;

use super::{
    fill_view_header,
    store::WriteError,
    stored::{self, Opened},
    DlEvent, Share, SourceView, Store, TransferError, Transfers,
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
) {
    let result = download(&t, &share, &mut rx).await;
    *share.download.borrow_mut() = None;
    if result.is_err() {
        abandon(&share).await;
    }
    {
        let mut view = share.view.borrow_mut();
        match &result {
            Ok(_) => view.state = "done",
            Err(e) => {
                view.state = "failed";
                view.error = Some(e.to_string());
            }
        }
    }
    match &result {
        Ok(file) => {
            *share.file.borrow_mut() = Some(file.clone());
            tracing::info!(share = %share.id, "download complete; seeding");
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
            view.state = "checking";
        }
        if done.is_multiple_of(CHECKING_NOTIFY_EVERY) || done == of {
            t.notify();
        }
    };
    let (manifest, have, lock, bitfields) = match stored::open(&share.id, checking).await? {
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
            lock,
        } => (manifest, have, lock, HashMap::new()),
        Opened::New { lock } => {
            let (manifest, bitfields) = fetch_manifest(share, rx).await?;
            let have = Bitfield::new(manifest.chunk_count());
            stored::create(&share.id, &manifest)
                .await
                .map_err(|e| write_error(e, &manifest, &have))?;
            (manifest, have, lock, bitfields)
        }
    };
    share.view.borrow_mut().error = None;
    let store = Store::open_data(&share.id, manifest.size(), lock)
        .await
        .map_err(|e| write_error(e, &manifest, &have))?;
    let store = Rc::new(store);
    let count = manifest.chunk_count();
    share.view.borrow_mut().state = "downloading";
    // Tell everyone what we have (what was on disk and verified).
    serve(share, manifest.clone(), have.clone(), store.clone());
    t.notify();

    let mut config = Config::default();
    // Peers start on different chunks, so they have something to trade.
    config.seed = (js_sys::Math::random() * u64::MAX as f64) as u64;
    let mut sched = Scheduler::new(manifest.clone(), have, config)
        .map_err(|e| TransferError::Stopped(e.to_string()))?;
    for (sid, have) in bitfields {
        if have.len() == count {
            let _ = sched.peer_joined(sid, have);
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
        if checkpoints.is_due(now) {
            checkpoint(share, &store).await.map_err(full)?;
            checkpoints.written(now);
        }
        while let Some(action) = sched.poll_action(now) {
            match action {
                Action::Request { peer, index } => {
                    let sent = share.send_to(peer, Message::Request(index));
                    if sent {
                        if let Some(who) = share.session_peers.borrow().get(&peer) {
                            *share.requested.borrow_mut().entry(*who).or_default() += 1;
                        }
                    } else {
                        sched.request_failed(&peer, index);
                    }
                }
                Action::Cancel { peer, index } => {
                    share.send_to(peer, Message::Cancel(index));
                }
                Action::Store { index, bytes } => {
                    // Writes run side by side with the transfer; a chunk is
                    // announced (and served) once it is on disk.
                    if writes.len() >= MAX_WRITES {
                        if let Some(done) = writes.next().await {
                            stored(
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
                    let who = share.session_peers.borrow().get(&peer).copied();
                    tracing::warn!(peer = ?who, "peer sent a chunk that failed verification; banned");
                    share.close_session(peer);
                    // The ban is on the peer, not on this one session: its
                    // other sessions close, and no new one joins (see `Joined`).
                    if let Some(who) = who {
                        share.banned.borrow_mut().insert(who);
                        let others: Vec<u64> = share
                            .sessions
                            .borrow()
                            .iter()
                            .filter(|(_, s)| s.peer == who)
                            .map(|(sid, _)| *sid)
                            .collect();
                        for sid in others {
                            share.close_session(sid);
                            sched.peer_left(&sid);
                        }
                    }
                }
                Action::Done => {
                    while let Some(done) = writes.next().await {
                        stored(
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
                stored(share, &mut checkpoints, epoch.elapsed(), done.map_err(full)?);
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
            DlEvent::Joined { sid, have } => {
                let banned = share
                    .session_peers
                    .borrow()
                    .get(&sid)
                    .is_some_and(|p| share.is_banned(p));
                if banned {
                    share.close_session(sid);
                    continue;
                }
                if let Err(e) = sched.peer_joined(sid, have) {
                    tracing::debug!(sid, "bitfield ignored: {e}");
                }
            }
            DlEvent::Have { sid, index } => {
                let _ = sched.peer_has(&sid, index);
            }
            DlEvent::Chunk { sid, index, data } => {
                if let Verdict::Rejected { error, banned } =
                    sched.chunk_received(&sid, index, data, epoch.elapsed())
                {
                    tracing::warn!(sid, index, banned, "chunk failed verification: {error}");
                }
            }
            DlEvent::Reject { sid, index } => sched.request_failed(&sid, index),
            DlEvent::Left { sid } => sched.peer_left(&sid),
            DlEvent::Unknown { .. } | DlEvent::Manifest { .. } => {}
        }
    }
}

/// Records on disk which chunks are stored.
async fn checkpoint(share: &Share, store: &Store) -> Result<(), WriteError> {
    let have = share.have.borrow().clone();
    store.checkpoint(&share.id, &have).await
}

/// A chunk is on disk: from now on it is served, and the others hear of it.
fn stored(share: &Share, checkpoints: &mut Checkpoints, now: Duration, index: u32) {
    let _ = share.have.borrow_mut().set(index);
    checkpoints.stored(now);
    share.broadcast(|| Message::Have(index));
}

/// From now on `share` is served from `store`: what it has is announced to
/// every session.
fn serve(share: &Share, manifest: Manifest, have: Bitfield, store: Rc<Store>) {
    {
        let mut view = share.view.borrow_mut();
        fill_view_header(&mut view, &manifest);
        view.chunks_done = have.count_ones();
        view.bytes_done = resume::bytes_of(&manifest, &have);
    }
    *share.store.borrow_mut() = Some(store);
    *share.have.borrow_mut() = have.clone();
    let bytes = manifest.encode();
    *share.manifest.borrow_mut() = Some(Rc::new((manifest, bytes)));
    share.broadcast(|| Message::Bitfield(have.clone()));
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
    let have = std::mem::replace(&mut *share.have.borrow_mut(), Bitfield::new(0));
    if let Err(e) = store.checkpoint(&share.id, &have).await {
        tracing::warn!(share = %share.id, "recording the stored chunks failed: {e:?}");
    }
    store.abandon().await;
}

/// Asks peers that hold the share for its manifest, one at a time, until one
/// sends a manifest whose hash is the share id.
async fn fetch_manifest(
    share: &Rc<Share>,
    rx: &mut mpsc::Receiver<DlEvent>,
) -> Result<(Manifest, HashMap<u64, Bitfield>), TransferError> {
    let mut holders: HashMap<u64, Bitfield> = HashMap::new();
    let mut refused: Vec<u64> = Vec::new();
    let mut asked: Option<u64> = None;
    loop {
        if asked.is_none() {
            if let Some(&sid) = holders.keys().find(|s| !refused.contains(s)) {
                if share.send_to(sid, Message::GetManifest) {
                    asked = Some(sid);
                } else {
                    refused.push(sid);
                    continue;
                }
            }
        }
        let Some(ev) = rx.next().await else {
            return Err(TransferError::Stopped("the node stopped".into()));
        };
        match ev {
            DlEvent::Joined { sid, have } => {
                // A holder that had no manifest before may have one now.
                refused.retain(|s| *s != sid);
                holders.insert(sid, have);
            }
            DlEvent::Unknown { sid } | DlEvent::Left { sid } => {
                if matches!(ev, DlEvent::Left { .. }) {
                    holders.remove(&sid);
                }
                refused.push(sid);
                if asked == Some(sid) {
                    asked = None;
                }
            }
            DlEvent::Manifest { sid, bytes } => {
                match Manifest::decode_verified(&bytes, &share.id) {
                    Ok(m) => return Ok((m, holders)),
                    Err(e) => {
                        tracing::warn!(
                            sid,
                            "a peer sent a manifest that does not match the link: {e}"
                        );
                        // Shown while looking on; cleared once a good one comes.
                        share.view.borrow_mut().error = Some(format!(
                            "a peer sent a manifest that does not match the link: {e}"
                        ));
                        refused.push(sid);
                        share.close_session(sid);
                        if asked == Some(sid) {
                            asked = None;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn update_view(share: &Share, sched: &Scheduler<u64>) {
    let progress = sched.progress();
    let peers = share.session_peers.borrow();
    let mut by_peer: HashMap<String, SourceView> = HashMap::new();
    for (sid, stats) in &progress.peers {
        let Some(peer) = peers.get(sid) else { continue };
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
    for (peer, n) in share.requested.borrow().iter() {
        if let Some(src) = by_peer.get_mut(&peer.to_base58()) {
            src.requested = *n;
        }
    }
    let mut sources: Vec<SourceView> = by_peer.into_values().collect();
    sources.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    view.sources = sources;
}
