//! One `/shoal/blocks/2.0.0` stream between two peers about one share: the
//! IO around the sans-IO `shoal_share::session::Session`.
//!
//! The opener sends `Hello` (a proof of the share, never its id); the
//! acceptor answers for the share the proof matches — among those the
//! opener is not banned from and whose session limits have room — with
//! `Welcome`, or `Unknown` and closes. Once both proofs check out, each side
//! sends its bitfield. Then the reader feeds bytes to the machine: requests
//! are queued for the writer, which reads the chunk from the store and sends
//! it; everything about the remote's chunks goes to the share's download
//! task, if there is one. Only swarm members' streams are read at all.

use std::{rc::Rc, time::Duration};

use futures::{
    channel::{mpsc, oneshot},
    future::LocalBoxFuture,
    io::{ReadHalf, WriteHalf},
    AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _, SinkExt as _,
};
use futures_timer::Delay;
use libp2p::{PeerId, Stream};
use shoal_share::{
    admission::SessionId,
    encode_chunk_header, encode_manifest_header,
    handshake::Nonce,
    limits::HANDSHAKE_TIMEOUT,
    session::{CloseReason, Event, Session},
    Message, ShareId,
};

use crate::{state::Path, streams::PathStream};

use super::{
    outbox::{Out, Outbox},
    DlEvent, SessionHandle, Share, Ticket, Transfers,
};

const READ_BUF: usize = 64 * 1024;
/// How often an inbound stream from a peer not yet known as a member checks
/// again (the node looks the swarm's members up meanwhile).
const MEMBER_POLL: Duration = Duration::from_millis(200);

/// Why a session ended (for the log).
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("{0}")]
    Rules(#[from] CloseReason),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("closed by the remote")]
    RemoteClosed,
    #[error("closed by the remote mid-message")]
    RemoteClosedMidMessage,
    #[error("the peer is not a member of this swarm")]
    NotMember,
    #[error("its connection closed")]
    ConnectionGone,
    #[error("its outbox is full (a peer that does not read)")]
    Flooded,
    #[error("banned")]
    Banned,
    #[error("not admitted: {0}")]
    Refused(#[from] shoal_share::admission::Refusal),
    #[error("a second manifest on one session")]
    SecondManifest,
}

/// Answers a session another peer opened.
pub async fn accept(t: Transfers, peer: PeerId, stream: PathStream, ticket: Ticket) {
    let PathStream {
        path,
        gone,
        mut stream,
    } = stream;
    // Until the handshake is done, a closed connection ends the wait at
    // once: its stream's read may stay pending (see `ConnectionGone`).
    let member = futures::select! {
        m = wait_member(&t, &peer).fuse() => m,
        () = gone.clone().fuse() => {
            tracing::debug!(%peer, "session not read: {}", Ended::ConnectionGone);
            return;
        }
    };
    if !member {
        tracing::debug!(%peer, "session not read: {}", Ended::NotMember);
        return;
    }
    let mut machine = Session::accept(&t.local().to_bytes(), &peer.to_bytes(), t.now());
    let mut buf = vec![0u8; READ_BUF];
    let handshake = futures::select! {
        r = handshake_phase(&t, &peer, &mut machine, &mut stream, &mut buf).fuse() => r,
        () = gone.clone().fuse() => Err(Ended::ConnectionGone),
    };
    let share = match handshake {
        Ok(share) => share,
        Err(e) => {
            tracing::debug!(%peer, "session refused: {e}");
            let _ = stream.close().await;
            return;
        }
    };
    // The limits may have filled while the handshake ran: checked again.
    if let Err(e) = t.established(&ticket, share) {
        tracing::debug!(%peer, "session refused: {}", Ended::Refused(e));
        let _ = stream.close().await;
        return;
    }
    let Some(share) = t.share_by_id(&share) else {
        return;
    };
    let stream = PathStream { path, gone, stream };
    run(t, peer, share, stream, machine, ticket).await;
}

/// Opens a session for `share` on a fresh stream to `peer`.
pub async fn open(
    t: Transfers,
    peer: PeerId,
    share: Rc<Share>,
    stream: PathStream,
    ticket: Ticket,
) {
    let PathStream {
        path,
        gone,
        mut stream,
    } = stream;
    let mut nonce = [0u8; shoal_share::handshake::NONCE_LEN];
    if let Err(e) = getrandom::fill(&mut nonce) {
        tracing::warn!("no randomness for a session nonce: {e}");
        return;
    }
    let mut machine = Session::open(
        share.key.clone(),
        &t.local().to_bytes(),
        &peer.to_bytes(),
        Nonce(nonce),
        t.now(),
    );
    let mut buf = vec![0u8; READ_BUF];
    // A relayed connection closed for a direct one (the usual case while a
    // session is young) ends the handshake at once, so the session re-opens
    // on the direct path; its stream's read alone may stay pending until
    // the handshake timeout (10 s, measured in tests/bench/connect.mjs).
    let handshake = futures::select! {
        r = handshake_phase(&t, &peer, &mut machine, &mut stream, &mut buf).fuse() => r,
        () = gone.clone().fuse() => Err(Ended::ConnectionGone),
    };
    if let Err(e) = handshake {
        tracing::debug!(%peer, share = %share.id, "session not established: {e}");
        let _ = stream.close().await;
        // A peer without the share is not asked again until its paths
        // change; if it starts downloading the share, it opens a session.
        if !matches!(e, Ended::Rules(CloseReason::UnknownShare)) {
            t.session_ended(&share, peer);
        }
        return;
    }
    let stream = PathStream { path, gone, stream };
    run(t, peer, share, stream, machine, ticket).await;
}

/// Waits (at most the handshake timeout) until `peer` is known as a member
/// of the swarm, asking the node to look the members up (again every
/// [`MEMBER_POLL`], in case a lookup came before the peer registered).
/// Wakes as soon as a lookup names it.
async fn wait_member(t: &Transfers, peer: &PeerId) -> bool {
    let mut waited = Duration::ZERO;
    while !t.is_member(peer) {
        if waited >= HANDSHAKE_TIMEOUT {
            return false;
        }
        t.0.discover_wanted.set(true);
        let seen = std::future::poll_fn(|cx| {
            if t.is_member(peer) {
                return std::task::Poll::Ready(());
            }
            let mut waiters = t.0.member_waiters.borrow_mut();
            waiters.retain(|w| !w.will_wake(cx.waker()));
            waiters.push(cx.waker().clone());
            std::task::Poll::Pending
        });
        futures::select! {
            () = seen.fuse() => return true,
            () = Delay::new(MEMBER_POLL).fuse() => {}
        }
        waited += MEMBER_POLL;
    }
    true
}

/// Runs the handshake until both proofs check out; returns the share.
async fn handshake_phase(
    t: &Transfers,
    peer: &PeerId,
    machine: &mut Session,
    stream: &mut Stream,
    buf: &mut [u8],
) -> Result<ShareId, Ended> {
    loop {
        while let Some(msg) = machine.poll_transmit() {
            write_msg(stream, &msg).await?;
        }
        match machine.poll_event() {
            Some(Event::Hello) => {
                #[cfg(feature = "test-hooks")]
                if let Some(hello) = machine.hello() {
                    t.record_hello(hello);
                }
                #[cfg(feature = "test-hooks")]
                t.delay_hello().await;
                let keys = t.keys_for(peer);
                machine.answer(&keys);
                continue;
            }
            Some(Event::Established { share }) => {
                while let Some(msg) = machine.poll_transmit() {
                    write_msg(stream, &msg).await?;
                }
                return Ok(share);
            }
            Some(Event::Closed(reason)) => {
                while let Some(msg) = machine.poll_transmit() {
                    let _ = write_msg(stream, &msg).await;
                }
                return Err(reason.into());
            }
            // Nothing else comes before the session is established.
            Some(Event::Received(_)) => continue,
            None => {}
        }
        let wait = machine
            .poll_timeout()
            .map_or(HANDSHAKE_TIMEOUT, |d| d.saturating_sub(t.now()));
        futures::select! {
            n = stream.read(buf).fuse() => match n? {
                0 => return Err(Ended::RemoteClosed),
                n => machine.handle_input(&buf[..n]),
            },
            _ = Delay::new(wait).fuse() => machine.handle_timeout(t.now()),
        }
    }
}

async fn write_msg<W: futures::AsyncWrite + Unpin>(
    w: &mut W,
    msg: &Message,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    msg.encode(&mut buf);
    w.write_all(&buf).await?;
    w.flush().await
}

/// The established session. The stream's bytes are counted on the path of
/// its connection; the session ends when that connection closes, when the
/// rules are broken, or when it is closed here (a ban).
async fn run(
    t: Transfers,
    peer: PeerId,
    share: Rc<Share>,
    stream: PathStream,
    mut machine: Session,
    ticket: Ticket,
) {
    let PathStream { path, gone, stream } = stream;
    let sid = ticket.id();
    // Banned, or its share started over (a reopened download) while the
    // handshake ran: the stream closes unused.
    if t.is_banned(&share.id, &peer) || !t.is_live(sid) {
        return;
    }
    let (r, w) = stream.split();
    let outbox = Rc::new(Outbox::default());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    share.sessions.borrow_mut().insert(
        sid,
        SessionHandle {
            peer,
            outbox: outbox.clone(),
            stop: std::cell::RefCell::new(Some(stop_tx)),
            outstanding: std::cell::Cell::new(0),
            remote_complete: std::cell::Cell::new(false),
        },
    );
    tracing::debug!(%peer, sid, ?path, share = %share.id, "session up");
    let link = Link { peer, path };
    // Our bitfield first: the handshake is done, so the remote knows the share.
    outbox.send(&Message::Bitfield(share.have.borrow().clone()));
    // Test-only switches: a peer that floods `GetManifest` or `Bitfield`.
    #[cfg(feature = "test-hooks")]
    if machine.role() == shoal_share::session::Role::Opener {
        for _ in 0..t.manifest_flood() {
            if !outbox.send(&Message::GetManifest) {
                break;
            }
        }
        t.flood_bitfields(outbox.clone(), share.have.borrow().clone());
    }
    wasm_bindgen_futures::spawn_local(writer(t.clone(), link, share.clone(), w, outbox.clone()));
    // One sender per session, cloned once: the queue's bound holds.
    let events = share.download.borrow().clone();
    let mut ctx = Ctx {
        t: &t,
        link,
        sid,
        share: &share,
        outbox: &outbox,
        events,
        manifest_received: false,
    };
    let why = futures::select! {
        why = ctx.read_loop(r, &mut machine).fuse() => why,
        () = gone.fuse() => "its connection closed".to_owned(),
        _ = stop_rx.fuse() => "closed here".to_owned(),
    };
    tracing::debug!(%peer, sid, "session over: {why}");
    share.close_session(sid);
    outbox.close();
    // Left when no other established session carries this peer's traffic.
    let last = !share.sessions.borrow().values().any(|s| s.peer == peer);
    if last {
        ctx.event(DlEvent::Left { peer }).await;
    }
    drop(ticket);
    t.session_ended(&share, peer);
}

/// Who a session talks to, and over which path.
#[derive(Clone, Copy)]
struct Link {
    peer: PeerId,
    path: Path,
}

struct Ctx<'a> {
    t: &'a Transfers,
    link: Link,
    sid: SessionId,
    share: &'a Rc<Share>,
    outbox: &'a Outbox,
    events: Option<mpsc::Sender<DlEvent>>,
    manifest_received: bool,
}

impl Ctx<'_> {
    /// Waits while the download's queue is full: a flood slows its own
    /// session's reader, nothing else.
    async fn event(&mut self, ev: DlEvent) {
        if let Some(tx) = &mut self.events {
            if tx.send(ev).await.is_err() {
                // The download ended; the session goes on serving.
                self.events = None;
            }
        }
    }

    async fn read_loop(&mut self, mut r: ReadHalf<Stream>, machine: &mut Session) -> String {
        let mut buf = vec![0u8; super::session::READ_BUF];
        loop {
            while let Some(ev) = machine.poll_event() {
                let msg = match ev {
                    Event::Received(msg) => msg,
                    Event::Closed(reason) => return Ended::from(reason).to_string(),
                    Event::Hello | Event::Established { .. } => continue,
                };
                if let Err(e) = self.on_message(msg, machine).await {
                    return e.to_string();
                }
            }
            // A banned peer's bytes are not read any further.
            if self.t.is_banned(&self.share.id, &self.link.peer) {
                return Ended::Banned.to_string();
            }
            match r.read(&mut buf).await {
                Ok(0) if machine.has_partial() => return Ended::RemoteClosedMidMessage.to_string(),
                Ok(0) => return Ended::RemoteClosed.to_string(),
                Ok(n) => machine.handle_input(&buf[..n]),
                Err(e) => return Ended::Io(e).to_string(),
            }
        }
    }

    async fn on_message(&mut self, msg: Message, machine: &mut Session) -> Result<(), Ended> {
        let peer = self.link.peer;
        let ev = match msg {
            Message::Bitfield(have) => {
                if let Some(handle) = self.share.sessions.borrow().get(&self.sid) {
                    // A bitfield of no chunks is a peer still without the manifest.
                    handle
                        .remote_complete
                        .set(!have.is_empty() && have.is_full());
                }
                Some(DlEvent::Joined { peer, have })
            }
            Message::Unknown => Some(DlEvent::Unknown { peer }),
            Message::GetManifest => {
                // Test-only switch: a holder that never answers.
                #[cfg(feature = "test-hooks")]
                if self.t.silent_manifest() {
                    return Ok(());
                }
                let sent = match self.t.manifest_answer(self.share) {
                    Some(m) => {
                        machine.manifest_sent();
                        self.outbox.send_manifest(m.1.clone())
                    }
                    None => self.outbox.send(&Message::Unknown),
                };
                if !sent {
                    return Err(Ended::Flooded);
                }
                None
            }
            Message::Manifest(bytes) => {
                // One per session; and only while the download looks for one.
                if std::mem::replace(&mut self.manifest_received, true) {
                    return Err(Ended::SecondManifest);
                }
                self.share
                    .manifest
                    .borrow()
                    .is_none()
                    .then_some(DlEvent::Manifest { peer, bytes })
            }
            Message::Have(index) => Some(DlEvent::Have { peer, index }),
            Message::Request(index) => {
                #[cfg(feature = "test-hooks")]
                self.t
                    .0
                    .requests_received
                    .set(self.t.0.requests_received.get() + 1);
                // Flooding us with requests gets rejections, not memory.
                let queued = self.share.has_chunk(index) && self.outbox.serve(index);
                if !queued && !self.outbox.send(&Message::Reject(index)) {
                    return Err(Ended::Flooded);
                }
                None
            }
            Message::Chunk { index, data } => {
                self.t.count(peer, self.link.path, 0, data.len() as u64);
                // Only chunks this session asked for reach the download.
                self.answered()
                    .then_some(DlEvent::Chunk { peer, index, data })
            }
            Message::Reject(index) => self.answered().then_some(DlEvent::Reject { peer, index }),
            // Requests are served in order and quickly; a late cancel
            // costs one chunk at most.
            Message::Cancel(_) => None,
            // The machine never hands these over once established.
            Message::Hello { .. } | Message::Welcome(_) => None,
        };
        if let Some(ev) = ev {
            self.event(ev).await;
        }
        Ok(())
    }

    /// Counts an answer to one of this session's requests; false if none
    /// was outstanding.
    fn answered(&self) -> bool {
        let sessions = self.share.sessions.borrow();
        let Some(handle) = sessions.get(&self.sid) else {
            return false;
        };
        let n = handle.outstanding.get();
        handle.outstanding.set(n.saturating_sub(1));
        n > 0
    }
}

async fn writer(
    t: Transfers,
    link: Link,
    share: Rc<Share>,
    mut w: WriteHalf<Stream>,
    outbox: Rc<Outbox>,
) {
    let mut header = Vec::with_capacity(16);
    // A chunk whose read started while the one before it was sent.
    let mut ahead: Option<(u32, LocalBoxFuture<'static, Served>)> = None;
    while let Some(out) = std::future::poll_fn(|cx| outbox.poll_next(cx)).await {
        let result = match out {
            Out::Bytes(bytes) => {
                async {
                    w.write_all(&bytes).await?;
                    w.flush().await
                }
                .await
            }
            Out::Manifest(encoded) => {
                header.clear();
                encode_manifest_header(encoded.len(), &mut header);
                async {
                    w.write_all(&header).await?;
                    w.write_all(&encoded).await?;
                    w.flush().await
                }
                .await
            }
            Out::Serve(index) => match match ahead.take() {
                Some((next, read)) if next == index => read,
                _ => serve(&t, &share, index),
            }
            .await
            {
                #[cfg_attr(not(feature = "test-hooks"), allow(unused_mut))]
                Ok((mut message, header_len)) => {
                    // The next chunk is read while this one is sent: the
                    // channel does not run dry during a read.
                    if let Some(next) = outbox.next_serve() {
                        ahead = Some((next, serve(&t, &share, next)));
                    }
                    // Test-only switch (not in release builds): a peer that lies about its data.
                    #[cfg(feature = "test-hooks")]
                    if t.0.corrupt.get() {
                        if let Some(b) = message.get_mut(header_len) {
                            *b ^= 0xff;
                        }
                    }
                    let r = async {
                        w.write_all(&message).await?;
                        w.flush().await
                    }
                    .await;
                    if r.is_ok() {
                        let data = message.len() - header_len;
                        t.count(link.peer, link.path, data as u64, 0);
                    }
                    r
                }
                Err(e) => {
                    tracing::warn!(index, "cannot serve a chunk: {e}");
                    write_msg(&mut w, &Message::Reject(index)).await
                }
            },
        };
        if let Err(e) = result {
            tracing::debug!("session write failed: {e}");
            break;
        }
    }
    let _ = w.close().await;
}

/// A chunk's whole `Chunk` message and its header's length.
type Served = Result<(Vec<u8>, usize), super::TransferError>;

/// The whole `Chunk` message for chunk `index`, header and data in one
/// buffer (one write, so whole data-channel messages), and the header's
/// length. The read from the store starts now (see `Store::read_after`).
fn serve(
    #[cfg_attr(not(feature = "test-hooks"), allow(unused_variables))] t: &Transfers,
    share: &Share,
    index: u32,
) -> LocalBoxFuture<'static, Served> {
    let range = share.manifest().and_then(|m| m.0.chunk_range(index));
    let store = share.store.borrow().clone();
    let (Some(range), Some(store)) = (range, store) else {
        let missing = super::TransferError::Storage(format!("chunk {index} is not here"));
        return futures::future::ready(Err(missing)).boxed_local();
    };
    let len = (range.end - range.start) as u32;
    let mut header = Vec::with_capacity(16 + len as usize);
    encode_chunk_header(index, len as usize, &mut header);
    let header_len = header.len();
    let read = store.read_after(header, range.start, len);
    // Test-only switch: a slow sharer, so that a test can watch a download
    // in progress (the streaming test: playing before most of it is here).
    #[cfg(feature = "test-hooks")]
    let delay_ms = t.0.serve_delay_ms.get();
    async move {
        #[cfg(feature = "test-hooks")]
        if delay_ms > 0 {
            Delay::new(Duration::from_millis(u64::from(delay_ms))).await;
        }
        Ok((read.await?, header_len))
    }
    .boxed_local()
}
