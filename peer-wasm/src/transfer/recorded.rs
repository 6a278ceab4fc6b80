//! Waiting until a share's `.have` record on disk holds the picks of a
//! `Node.want` call, so that a reload right after it keeps them.
//!
//! Whoever writes the record (a download's checkpoint, or `keep_picks` for
//! a finished one) takes a [`Snapshot`] before it reads what it writes, and
//! reports it once written ([`Recorded::written`]); a record whose snapshot
//! was taken before a `want` call may hold the picks of before, so it does
//! not count for that call. All the calls waiting share one future: what
//! waits is bounded however often the page calls. (Tested in `make wasm-unit`:
//! this crate builds for wasm32 only.)

use std::cell::{Cell, RefCell};

use futures::{
    channel::oneshot,
    future::{FutureExt as _, Shared},
};

/// What a record writer read: records of at least this generation count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Snapshot(u64);

/// Settles once a record holding the picks asked for is written; cancelled
/// (`Err`) if the download stops first.
pub type WhenRecorded = Shared<oneshot::Receiver<()>>;

struct Waiting {
    /// The oldest snapshot that holds every waiting call's picks.
    needs: Snapshot,
    tx: oneshot::Sender<()>,
    rx: WhenRecorded,
}

#[derive(Default)]
pub struct Recorded {
    /// Bumped by every call that waits.
    generation: Cell<u64>,
    waiting: RefCell<Option<Waiting>>,
}

impl Recorded {
    /// The picks just changed: settles once a record read after now is written.
    pub fn wait(&self) -> WhenRecorded {
        let needs = Snapshot(self.generation.get() + 1);
        self.generation.set(needs.0);
        let mut waiting = self.waiting.borrow_mut();
        match waiting.as_mut() {
            Some(w) => {
                w.needs = needs;
                w.rx.clone()
            }
            None => {
                let (tx, rx) = oneshot::channel();
                let rx = rx.shared();
                *waiting = Some(Waiting {
                    needs,
                    tx,
                    rx: rx.clone(),
                });
                rx
            }
        }
    }

    /// Whether a call waits for a record.
    pub fn is_waiting(&self) -> bool {
        self.waiting.borrow().is_some()
    }

    /// Taken by a record writer before it reads the picks.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.generation.get())
    }

    /// A record read at `snapshot` is on disk.
    pub fn written(&self, snapshot: Snapshot) {
        let due = self
            .waiting
            .borrow()
            .as_ref()
            .is_some_and(|w| w.needs <= snapshot);
        if due {
            if let Some(w) = self.waiting.take() {
                let _ = w.tx.send(());
            }
        }
    }

    /// No record comes (the download stopped): the waiting calls fail.
    pub fn cancel(&self) {
        self.waiting.take();
    }

    /// Another attempt of the download (a new share object) writes the
    /// records from now on: the calls waiting here settle with its next one.
    pub fn hand_over(&self, to: &Recorded) {
        let Some(w) = self.waiting.take() else { return };
        let next = to.wait();
        wasm_bindgen_futures::spawn_local(async move {
            if next.await.is_ok() {
                let _ = w.tx.send(());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt as _;
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    #[wasm_bindgen_test]
    fn a_record_read_before_the_call_does_not_count() {
        let r = Recorded::default();
        let early = r.snapshot();
        let first = r.wait();
        r.written(early);
        assert_eq!(first.clone().now_or_never(), None, "read before the call");
        let read = r.snapshot();
        // A second call while that record is written: the first call's picks
        // are in it, the second's may not be; both wait for a later one.
        let second = r.wait();
        r.written(read);
        assert_eq!(first.clone().now_or_never(), None);
        r.written(r.snapshot());
        assert_eq!(first.now_or_never(), Some(Ok(())));
        assert_eq!(second.now_or_never(), Some(Ok(())));
    }

    #[wasm_bindgen_test]
    async fn the_calls_waiting_follow_a_reopened_download() {
        let (old, new) = (Recorded::default(), Recorded::default());
        let waiting = old.wait();
        old.hand_over(&new);
        // The old attempt's records no longer count, nor a new one read
        // before the hand-over; the next one does.
        old.written(old.snapshot());
        new.written(Snapshot(0));
        futures_timer::Delay::new(std::time::Duration::from_millis(5)).await;
        assert_eq!(waiting.clone().now_or_never(), None);
        new.written(new.snapshot());
        assert_eq!(waiting.await, Ok(()));
    }

    #[wasm_bindgen_test]
    fn a_stopped_download_fails_the_waiting_calls() {
        let r = Recorded::default();
        let waiting = r.wait();
        r.cancel();
        assert!(matches!(waiting.now_or_never(), Some(Err(_))));
        // Later calls wait afresh.
        let again = r.wait();
        r.written(r.snapshot());
        assert_eq!(again.now_or_never(), Some(Ok(())));
    }
}
