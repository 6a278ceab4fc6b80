//! One `/shoal/blocks/1.0.0` stream between two peers about one share.
//!
//! The reader decodes messages: requests are queued for the writer, which
//! reads the chunk from the store and sends it; everything about the
//! remote's chunks goes to the share's download task, if there is one. The
//! opener starts with `Hello`; the acceptor answers with its bitfield, or
//! with `Unknown` and closes.

use std::{rc::Rc, time::Duration};

use futures::{
    io::{ReadHalf, WriteHalf},
    AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _,
};
use futures_timer::Delay;
use libp2p::{PeerId, Stream};
use shoal_share::{encode_chunk_header, Bitfield, Message, MessageReader};

use crate::{state::Path, streams::PathStream};

use super::{
    outbox::{Out, Outbox},
    DlEvent, SessionHandle, Share, Transfers,
};
/// The acceptor waits this long for `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const READ_BUF: usize = 64 * 1024;

/// Answers a session another peer opened.
pub async fn accept(t: Transfers, sid: u64, peer: PeerId, stream: PathStream) {
    let PathStream {
        path,
        gone,
        mut stream,
    } = stream;
    let mut reader = MessageReader::new();
    let mut buf = vec![0u8; READ_BUF];
    let first = futures::select! {
        m = next_message(&mut stream, &mut reader, &mut buf).fuse() => m,
        _ = Delay::new(HELLO_TIMEOUT).fuse() => Err("no Hello in time".to_owned()),
    };
    let (share_id, remote_have) = match first {
        Ok(Some(Message::Hello { share, have })) => (share, have),
        Ok(other) => {
            tracing::debug!(%peer, "session did not start with Hello: {other:?}");
            return;
        }
        Err(e) => {
            tracing::debug!(%peer, "session failed before Hello: {e}");
            return;
        }
    };
    let Some(share) = t.share_by_id(&share_id) else {
        // Not ours (or no such share): say so without telling what we hold.
        let _ = write_msg(&mut stream, &Message::Unknown).await;
        let _ = stream.close().await;
        return;
    };
    let have = share.have.borrow().clone();
    if write_msg(&mut stream, &Message::Bitfield(have))
        .await
        .is_err()
    {
        return;
    }
    let stream = PathStream { path, gone, stream };
    run(t, sid, peer, share, stream, reader, Some(remote_have)).await;
}

/// Opens a session for `share` on a fresh stream to `peer`.
pub async fn open(t: Transfers, sid: u64, peer: PeerId, share: Rc<Share>, mut stream: PathStream) {
    let have = share.have.borrow().clone();
    if write_msg(
        &mut stream.stream,
        &Message::Hello {
            share: share.id,
            have,
        },
    )
    .await
    .is_err()
    {
        return;
    }
    run(t, sid, peer, share, stream, MessageReader::new(), None).await;
}

async fn next_message(
    stream: &mut Stream,
    reader: &mut MessageReader,
    buf: &mut [u8],
) -> Result<Option<Message>, String> {
    loop {
        if let Some(m) = reader.next_message().map_err(|e| e.to_string())? {
            return Ok(Some(m));
        }
        let n = stream.read(buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        reader.push(&buf[..n]);
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

/// The stream's bytes are counted on the path of its connection; the
/// session ends when that connection closes.
async fn run(
    t: Transfers,
    sid: u64,
    peer: PeerId,
    share: Rc<Share>,
    stream: PathStream,
    mut reader: MessageReader,
    remote_have: Option<Bitfield>,
) {
    let PathStream { path, gone, stream } = stream;
    let (r, w) = stream.split();
    let outbox = Rc::new(Outbox::default());
    share.sessions.borrow_mut().insert(
        sid,
        SessionHandle {
            peer,
            outbox: outbox.clone(),
        },
    );
    share.session_peers.borrow_mut().insert(sid, peer);
    tracing::debug!(%peer, sid, ?path, share = %share.id, "session up");
    let link = Link { peer, path };
    wasm_bindgen_futures::spawn_local(writer(t.clone(), link, share.clone(), w, outbox.clone()));
    if let Some(have) = remote_have {
        share.dl_event(DlEvent::Joined { sid, have }).await;
    }
    let why = futures::select! {
        why = read_loop(&t, link, sid, &share, r, &mut reader, &outbox).fuse() => why,
        () = gone.fuse() => "its connection closed".to_owned(),
    };
    tracing::debug!(%peer, sid, "session over: {why}");
    share.close_session(sid);
    outbox.close();
    share.dl_event(DlEvent::Left { sid }).await;
    t.session_ended(&share, peer);
}

/// Who a session talks to, and over which path.
#[derive(Clone, Copy)]
struct Link {
    peer: PeerId,
    path: Path,
}

async fn read_loop(
    t: &Transfers,
    link: Link,
    sid: u64,
    share: &Rc<Share>,
    mut r: ReadHalf<Stream>,
    reader: &mut MessageReader,
    outbox: &Outbox,
) -> String {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        loop {
            let msg = match reader.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => return format!("bad message: {e}"),
            };
            let ev = match msg {
                Message::Hello { .. } => return "a second Hello".into(),
                Message::Bitfield(have) => Some(DlEvent::Joined { sid, have }),
                Message::Unknown => Some(DlEvent::Unknown { sid }),
                Message::GetManifest => {
                    let reply = match t.manifest_answer(share) {
                        Some(m) => Message::Manifest(m.1.clone()),
                        None => Message::Unknown,
                    };
                    if !outbox.send(reply) {
                        return "writer gone".into();
                    }
                    None
                }
                Message::Manifest(bytes) => Some(DlEvent::Manifest { sid, bytes }),
                Message::Have(index) => Some(DlEvent::Have { sid, index }),
                Message::Request(index) => {
                    #[cfg(feature = "test-hooks")]
                    t.0.requests_received.set(t.0.requests_received.get() + 1);
                    // Flooding us with requests gets rejections, not memory.
                    let queued = share.has_chunk(index) && outbox.serve(index);
                    if !queued && !outbox.send(Message::Reject(index)) {
                        return "writer gone or flooded".into();
                    }
                    None
                }
                Message::Chunk { index, data } => {
                    t.count(link.peer, link.path, 0, data.len() as u64);
                    Some(DlEvent::Chunk { sid, index, data })
                }
                Message::Reject(index) => Some(DlEvent::Reject { sid, index }),
                // Requests are served in order and quickly; a late cancel
                // costs one chunk at most.
                Message::Cancel(_) => None,
            };
            if let Some(ev) = ev {
                share.dl_event(ev).await;
            }
        }
        match r.read(&mut buf).await {
            Ok(0) => return "closed by the remote".into(),
            Ok(n) => reader.push(&buf[..n]),
            Err(e) => return format!("read error: {e}"),
        }
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
    while let Some(out) = std::future::poll_fn(|cx| outbox.poll_next(cx)).await {
        let result = match out {
            Out::Msg(msg) => write_msg(&mut w, &msg).await,
            Out::Serve(index) => match serve(&t, &share, index).await {
                #[cfg_attr(not(feature = "test-hooks"), allow(unused_mut))]
                Ok(mut data) => {
                    // Test-only switch (not in release builds): a peer that lies about its data.
                    #[cfg(feature = "test-hooks")]
                    if t.0.corrupt.get() {
                        if let Some(b) = data.first_mut() {
                            *b ^= 0xff;
                        }
                    }
                    header.clear();
                    encode_chunk_header(index, data.len(), &mut header);
                    let r = async {
                        w.write_all(&header).await?;
                        w.write_all(&data).await?;
                        w.flush().await
                    }
                    .await;
                    if r.is_ok() {
                        t.count(link.peer, link.path, data.len() as u64, 0);
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

async fn serve(_t: &Transfers, share: &Share, index: u32) -> Result<Vec<u8>, super::TransferError> {
    let missing = || super::TransferError::Storage(format!("chunk {index} is not here"));
    let manifest = share.manifest().ok_or_else(missing)?;
    let range = manifest.0.chunk_range(index).ok_or_else(missing)?;
    let store = share.store.borrow().clone().ok_or_else(missing)?;
    store
        .read(range.start, (range.end - range.start) as u32)
        .await
}
