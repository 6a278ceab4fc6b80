//! Streaming reads (play while downloading): `Node.read` asks for a byte
//! range of a share's byte stream. `shoal_share::stream::plan_read` says
//! which chunks hold it and what the scheduler should fetch first (the
//! focus: those chunks and the read-ahead after them); the read hands the
//! focus to the download task, waits until every chunk it needs is
//! verified and stored (woken by `download::stored`), then reads them from
//! the store. Only stored chunks are read, and a chunk is stored only once
//! it verified: a reader never sees bytes that failed or were not checked.

use futures::{channel::oneshot, FutureExt as _};
use futures_timer::Delay;
use shoal_share::{
    limits::{MAX_STREAM_READS, STREAM_READ_TIMEOUT},
    stream::plan_read,
    ShareId,
};

use super::{DlEvent, Share, TransferError, Transfers};

/// Reads of the store per streaming read, at most (see `Transfers::read`).
const READ_ATTEMPTS: u32 = 5;
/// Pause between them: closing a data file and opening the finished file
/// takes a few milliseconds.
const READ_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

fn read_error(what: impl Into<String>) -> TransferError {
    TransferError::Read(what.into())
}

impl Share {
    /// Wakes the streaming reads whose chunks are all stored now, and
    /// forgets those that gave up.
    pub(super) fn wake_readers(&self) {
        let have = self.have.borrow();
        self.readers.borrow_mut().retain_mut(|(chunks, tx)| {
            if tx.is_canceled() {
                return false;
            }
            !chunks.clone().all(|c| have.get(c))
        });
        // The retained ones still wait; the others' senders were dropped
        // above, which wakes them (with `Canceled`, read as "look again").
    }
}

impl Transfers {
    /// Up to `len` bytes at `offset` of share `id`'s byte stream (at most
    /// `STREAM_MAX_READ`), once the chunks that hold them are verified and
    /// stored; while it waits, the download fetches them (and the
    /// read-ahead after them) first.
    pub async fn read(
        &self,
        id: &ShareId,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, TransferError> {
        let share = self
            .share_by_id(id)
            .ok_or_else(|| read_error("this tab neither shares nor downloads that share"))?;
        let manifest = share
            .manifest()
            .ok_or_else(|| read_error("the share's manifest has not arrived yet"))?;
        let plan = plan_read(&manifest.0, offset, len).map_err(|e| read_error(e.to_string()))?;
        let downloading = share.download.borrow().is_some();
        if downloading {
            // Even when these chunks are here: the read-ahead may not be.
            *share.focus.borrow_mut() = Some(plan.focus.clone());
            if let Some(tx) = share.download.borrow_mut().as_mut() {
                // A full queue is busy: the loop reads `focus` at its next turn.
                let _ = tx.try_send(DlEvent::Focus);
            }
        }
        let missing = |share: &Share| !plan.chunks.clone().all(|c| share.has_chunk(c));
        if missing(&share) {
            if !downloading {
                return Err(read_error("the download is not running"));
            }
            let wanted = share.wanted_chunks(&manifest.0);
            if plan
                .chunks
                .clone()
                .any(|c| !wanted.get(c) && !share.has_chunk(c))
            {
                return Err(read_error(
                    "those bytes belong to a file that is not being downloaded (see Node.want)",
                ));
            }
            let rx = {
                let mut readers = share.readers.borrow_mut();
                readers.retain(|(_, tx)| !tx.is_canceled());
                if readers.len() >= MAX_STREAM_READS {
                    return Err(read_error(format!(
                        "{MAX_STREAM_READS} reads of this share are waiting already"
                    )));
                }
                let (tx, rx) = oneshot::channel();
                readers.push((plan.chunks.clone(), tx));
                rx
            };
            futures::select! {
                _ = rx.fuse() => {}
                _ = Delay::new(STREAM_READ_TIMEOUT).fuse() => {
                    return Err(read_error(format!(
                        "its chunks did not arrive within {} s",
                        STREAM_READ_TIMEOUT.as_secs()
                    )));
                }
            }
            if missing(&share) {
                return Err(read_error("the download stopped"));
            }
        }
        // A download that completes meanwhile closes its data file, and a
        // moment later swaps its store for the finished file: a read that
        // raced with that is made again on the store there is then.
        let mut last = None;
        for attempt in 0..READ_ATTEMPTS {
            if attempt > 0 {
                Delay::new(READ_RETRY_PAUSE).await;
            }
            let store = share
                .store
                .borrow()
                .clone()
                .ok_or_else(|| read_error("the share is no longer stored here"))?;
            match store.read_after(Vec::new(), plan.offset, plan.len).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| read_error("reading failed")))
    }
}
