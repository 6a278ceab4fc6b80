//! What one session's writer sends next: control messages (requests, haves,
//! rejects, the manifest) always before chunk data, so a peer's request is
//! never stuck behind megabytes of chunks going the other way, and the reader
//! never waits on the writer (two peers that both upload would otherwise wait
//! on each other until their requests time out).

use std::{
    cell::RefCell,
    collections::VecDeque,
    task::{Context, Poll, Waker},
};

use shoal_share::Message;

/// Control messages queued at most; past this, new ones are refused (the
/// caller drops a `Have` or fails a request).
const MAX_CONTROL: usize = 8192;
/// Chunks a peer may have asked for and not yet received. Far above what a
/// well-behaved downloader keeps in flight; past it, requests are rejected.
pub const MAX_SERVE: usize = 64;

/// The next thing to write.
#[derive(Debug)]
pub enum Out {
    Msg(Message),
    /// Read chunk `index` from the store and send it.
    Serve(u32),
}

#[derive(Default)]
struct Inner {
    control: VecDeque<Message>,
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

    /// Queues a control message; false if the session is closed or flooded.
    pub fn send(&self, msg: Message) -> bool {
        self.push(|i| {
            i.control.len() < MAX_CONTROL && {
                i.control.push_back(msg);
                true
            }
        })
    }

    /// Queues chunk `index` to be served; false if too many are queued.
    pub fn serve(&self, index: u32) -> bool {
        self.push(|i| {
            i.serve.len() < MAX_SERVE && {
                i.serve.push_back(index);
                true
            }
        })
    }

    /// The writer finishes what is queued and closes its side.
    pub fn close(&self) {
        let mut inner = self.0.borrow_mut();
        inner.closed = true;
        inner.control.clear();
        inner.serve.clear();
        if let Some(w) = inner.waker.take() {
            w.wake();
        }
    }

    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Out>> {
        let mut inner = self.0.borrow_mut();
        if let Some(msg) = inner.control.pop_front() {
            return Poll::Ready(Some(Out::Msg(msg)));
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
