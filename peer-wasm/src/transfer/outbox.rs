//! What one session's writer sends next: control messages (requests, haves,
//! rejects, the manifest) always before chunk data, so a peer's request is
//! never stuck behind megabytes of chunks going the other way, and the reader
//! never waits on the writer (two peers that both upload would otherwise wait
//! on each other until their requests time out).
//!
//! Bounded by bytes, not messages ([`MAX_OUTBOX_BYTES`]): control messages
//! are encoded when queued and counted; the manifest is queued as the one
//! shared copy of its encoding (never copied per request); chunks are queued
//! as indices and read from storage only when written.

use std::{
    cell::RefCell,
    collections::VecDeque,
    rc::Rc,
    task::{Context, Poll, Waker},
};

use shoal_share::{
    limits::{MAX_OUTBOX_BYTES, MAX_SERVE_QUEUE},
    Message,
};

/// Control messages merged into one write at most (one data-channel message).
const MAX_MERGED: usize = 64 * 1024;

/// The next thing to write.
#[derive(Debug)]
pub enum Out {
    /// An encoded control message.
    Bytes(Vec<u8>),
    /// The encoded manifest (shared), to be sent as a `Manifest` message.
    Manifest(Rc<[u8]>),
    /// Read chunk `index` from the store and send it.
    Serve(u32),
}

#[derive(Default)]
struct Inner {
    control: VecDeque<Out>,
    /// Bytes held in `control` (the manifest's are shared, not counted).
    control_bytes: usize,
    serve: VecDeque<u32>,
    closed: bool,
    waker: Option<Waker>,
}

#[derive(Default)]
pub struct Outbox(RefCell<Inner>);

impl Outbox {
    fn push(&self, f: impl FnOnce(&mut Inner) -> bool) -> bool {
        let mut inner = self.0.borrow_mut();
        if inner.closed || !f(&mut inner) {
            return false;
        }
        if let Some(w) = inner.waker.take() {
            w.wake();
        }
        true
    }

    /// Queues a control message; false if the session is closed or its
    /// queue holds [`MAX_OUTBOX_BYTES`] already (a peer that does not read).
    pub fn send(&self, msg: &Message) -> bool {
        self.push(|i| {
            let mut bytes = Vec::new();
            msg.encode(&mut bytes);
            i.control_bytes + bytes.len() <= MAX_OUTBOX_BYTES && {
                i.control_bytes += bytes.len();
                i.control.push_back(Out::Bytes(bytes));
                true
            }
        })
    }

    /// Queues the manifest (its one shared encoding).
    pub fn send_manifest(&self, encoded: Rc<[u8]>) -> bool {
        self.push(|i| {
            i.control.push_back(Out::Manifest(encoded));
            true
        })
    }

    /// Queues chunk `index` to be served; false if too many are queued.
    pub fn serve(&self, index: u32) -> bool {
        self.push(|i| {
            i.serve.len() < MAX_SERVE_QUEUE && {
                i.serve.push_back(index);
                true
            }
        })
    }

    /// The chunk that will be served next, once the control messages
    /// queued before it are written; it stays queued.
    pub fn next_serve(&self) -> Option<u32> {
        self.0.borrow().serve.front().copied()
    }

    /// Whether the session closed (nothing more is queued).
    #[cfg(feature = "test-hooks")]
    pub fn is_closed(&self) -> bool {
        self.0.borrow().closed
    }

    /// The writer finishes what is queued and closes its side.
    pub fn close(&self) {
        let mut inner = self.0.borrow_mut();
        inner.closed = true;
        inner.control.clear();
        inner.control_bytes = 0;
        inner.serve.clear();
        if let Some(w) = inner.waker.take() {
            w.wake();
        }
    }

    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Out>> {
        let mut inner = self.0.borrow_mut();
        if let Some(out) = inner.control.pop_front() {
            let Out::Bytes(mut bytes) = out else {
                return Poll::Ready(Some(out));
            };
            // Control messages queued together leave as one write, so one
            // data-channel message: each `send()` is a hop to the browser's
            // WebRTC thread (a downloader's Have and next Request, say).
            while let Some(Out::Bytes(next)) = inner.control.front() {
                if bytes.len() + next.len() > MAX_MERGED {
                    break;
                }
                bytes.extend_from_slice(next);
                inner.control.pop_front();
            }
            inner.control_bytes -= bytes.len();
            return Poll::Ready(Some(Out::Bytes(bytes)));
        }
        if let Some(index) = inner.serve.pop_front() {
            return Poll::Ready(Some(Out::Serve(index)));
        }
        if inner.closed {
            return Poll::Ready(None);
        }
        inner.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
