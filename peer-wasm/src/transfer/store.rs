//! Where chunks live, and the thin OPFS driver under them. The sharer reads
//! chunks from the picked `File` on demand (`Blob.slice`). A downloader
//! writes each verified chunk at its offset in the share's data file in the
//! origin-private file system (OPFS), through a worker that holds a
//! synchronous access handle (`js/opfs.js`), and reads chunks back from it to
//! serve others. Once complete, the data file is a `File` on disk and is
//! served like the sharer's. Only chunks in flight are ever in memory.
//!
//! What the files are called and what they mean is `shoal_share::resume`;
//! how a share is opened, resumed, listed and deleted is `super::stored`.
//! [`ShareLock`] is this tab's Web Lock on one share: exclusive while
//! writing, shared while serving a complete file.

use std::{cell::Cell, rc::Rc};

use js_sys::{Array, Uint8Array};
use shoal_share::{resume, Bitfield, Manifest, ShareId};
use wasm_bindgen::{prelude::wasm_bindgen, JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File, FilePropertyBag};

use super::TransferError;

#[wasm_bindgen(module = "/js/read.js")]
extern "C" {
    /// Resolves to a view of a pooled buffer: hand it to `opfs_recycle`.
    #[wasm_bindgen(js_name = blobRead)]
    fn blob_read(blob: &Blob, offset: f64, len: u32) -> js_sys::Promise;
}

#[wasm_bindgen(module = "/js/opfs.js")]
extern "C" {
    #[wasm_bindgen(js_name = opfsLock)]
    fn opfs_lock(key: &str, mode: &str, wait: bool) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsDowngrade)]
    fn opfs_downgrade(key: &str, token: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsUnlock)]
    fn opfs_unlock(key: &str, token: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsLockedKeys)]
    fn opfs_locked_keys() -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsList)]
    fn opfs_list() -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsFile)]
    fn opfs_file(name: &str) -> js_sys::Promise;
    /// `bytes` is passed as a view of wasm memory; JS copies it at once.
    #[wasm_bindgen(js_name = opfsReplace)]
    fn opfs_replace(name: &str, bytes: &[u8]) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsRemove)]
    fn opfs_remove(key: &str, names: Array) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsRemoveLegacy)]
    fn opfs_remove_legacy() -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsOpen)]
    fn opfs_open(name: &str, size: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsWarm)]
    fn opfs_warm();
    /// `bytes` is passed as a view of wasm memory; JS copies it at once.
    #[wasm_bindgen(js_name = opfsWrite)]
    fn opfs_write(name: &str, offset: f64, bytes: &[u8]) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsRead)]
    fn opfs_read(name: &str, offset: f64, len: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsRecycle)]
    fn opfs_recycle(bytes: &Uint8Array);
    #[wasm_bindgen(js_name = opfsFlush)]
    fn opfs_flush(name: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsClose)]
    fn opfs_close(name: &str) -> js_sys::Promise;
}

pub(super) fn js_err(context: &'static str) -> impl Fn(JsValue) -> TransferError {
    move |e| TransferError::Storage(format!("{context}: {}", describe(&e)))
}

pub fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Why a write to disk failed.
#[derive(Debug)]
pub enum WriteError {
    /// The disk or the origin's quota is full (`QuotaExceededError`).
    Full,
    Failed(TransferError),
}

fn write_err(context: &'static str) -> impl Fn(JsValue) -> WriteError {
    move |e| {
        let full = e
            .dyn_ref::<js_sys::Error>()
            .is_some_and(|e| e.name() == "QuotaExceededError");
        if full {
            WriteError::Full
        } else {
            WriteError::Failed(js_err(context)(e))
        }
    }
}

/// Lock mode for [`ShareLock::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// To write the share's files.
    Exclusive,
    /// To serve a complete file; only while no tab writes it.
    Shared,
}

/// This tab's Web Lock on one share, released when dropped (or earlier, by
/// [`release`](Self::release)); a tab that goes away releases its locks too.
#[derive(Debug)]
pub struct ShareLock {
    key: String,
    token: f64,
    mode: Cell<LockMode>,
    released: Cell<bool>,
}

impl ShareLock {
    /// The lock on `share`, if it can be had at once (or with `wait`, within
    /// a moment: a page that is reloading lets go of its locks shortly after
    /// the new one starts).
    pub async fn take(
        share: &ShareId,
        mode: LockMode,
        wait: bool,
    ) -> Result<Option<Self>, TransferError> {
        let key = share.to_string();
        let name = match mode {
            LockMode::Exclusive => "exclusive",
            LockMode::Shared => "shared",
        };
        let token = JsFuture::from(opfs_lock(&key, name, wait))
            .await
            .map_err(js_err("taking the share's lock"))?
            .as_f64()
            .unwrap_or(0.0);
        Ok((token > 0.0).then(|| Self {
            key,
            token,
            mode: Cell::new(mode),
            released: Cell::new(false),
        }))
    }

    pub fn mode(&self) -> LockMode {
        self.mode.get()
    }

    /// Lets other tabs serve the share too (it is complete), without letting
    /// go in between.
    pub async fn downgrade(&self) -> Result<(), TransferError> {
        if self.mode.get() == LockMode::Exclusive && !self.released.get() {
            JsFuture::from(opfs_downgrade(&self.key, self.token))
                .await
                .map_err(js_err("sharing the share's lock"))?;
            self.mode.set(LockMode::Shared);
        }
        Ok(())
    }

    /// Lets go of the lock (others get it a moment later; see
    /// [`release_now`](Self::release_now)).
    pub fn release(&self) {
        if !self.released.replace(true) {
            let _ = opfs_unlock(&self.key, self.token);
        }
    }

    /// Lets go of the lock and waits until other tabs can have it.
    pub async fn release_now(&self) {
        if !self.released.replace(true) {
            let _ = JsFuture::from(opfs_unlock(&self.key, self.token)).await;
        }
    }
}

impl Drop for ShareLock {
    fn drop(&mut self) {
        self.release();
    }
}

pub enum Store {
    /// A whole file picked by the sharer.
    Blob(Blob),
    /// A complete file on disk, served while this tab holds its lock shared.
    Stored { file: Blob, lock: Rc<ShareLock> },
    /// A download in progress: its data file, open for writing in the worker.
    Opfs { data: String, lock: Rc<ShareLock> },
}

impl Store {
    /// Starts the thread that writes data files, if it is not up yet: a new
    /// download calls this while its manifest is on the way.
    pub fn warm() {
        opfs_warm();
    }

    /// Opens `share`'s data file for writing (created if missing), at its
    /// full `size` at once, so that a disk too small fails now; `lock` must
    /// be exclusive.
    pub async fn open_data(
        share: &ShareId,
        size: u64,
        lock: Rc<ShareLock>,
    ) -> Result<Self, WriteError> {
        let data = resume::file_name(share, resume::FileKind::Data);
        JsFuture::from(opfs_open(&data, size as f64))
            .await
            .map_err(write_err("opening OPFS storage"))?;
        Ok(Store::Opfs { data, lock })
    }

    /// Reads `len` bytes at `offset` (the tests' shorthand).
    #[cfg(test)]
    pub async fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>, TransferError> {
        self.read_after(Vec::new(), offset, len).await
    }

    /// `prefix` followed by `len` bytes at `offset`, in one buffer filled by
    /// one copy out of JS: a chunk and its message header leave as one write.
    /// The read starts now, not when the future is first polled, so a
    /// writer can read its next chunk while it sends this one.
    pub fn read_after(
        &self,
        prefix: Vec<u8>,
        offset: u64,
        len: u32,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, TransferError>> + 'static {
        // Both reads lend a pooled buffer, given back once copied.
        let read = JsFuture::from(match self {
            Store::Blob(blob) | Store::Stored { file: blob, .. } => {
                blob_read(blob, offset as f64, len)
            }
            Store::Opfs { data, .. } => opfs_read(data, offset as f64, len),
        });
        async move {
            let view: Uint8Array = read
                .await
                .map_err(js_err("reading a chunk"))?
                .unchecked_into();
            let got = view.length() as usize;
            let bytes = append_view(prefix, &view);
            opfs_recycle(&view);
            if got != len as usize {
                return Err(TransferError::Storage(format!(
                    "read {got} bytes at {offset}, expected {len}"
                )));
            }
            Ok(bytes)
        }
    }

    /// Writes a verified chunk at `offset` (downloads only).
    pub async fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), WriteError> {
        let Store::Opfs { data, .. } = self else {
            return Err(WriteError::Failed(TransferError::Storage(
                "a complete file is read-only".into(),
            )));
        };
        JsFuture::from(opfs_write(data, offset as f64, bytes))
            .await
            .map_err(write_err("writing a chunk"))?;
        Ok(())
    }

    /// Records on disk that the chunks of `have` are stored, and which files
    /// are `picked` (`None`: all): flushes the data file first, then
    /// replaces the `.have` record (see `resume`).
    pub async fn checkpoint(
        &self,
        share: &ShareId,
        have: &Bitfield,
        picked: Option<&Bitfield>,
    ) -> Result<(), WriteError> {
        let Store::Opfs { data, .. } = self else {
            return Ok(());
        };
        JsFuture::from(opfs_flush(data))
            .await
            .map_err(write_err("flushing the download"))?;
        write_record(share, have, picked).await
    }

    /// A finished download: closes its data file and serves it from disk
    /// from now on, letting other tabs serve it too.
    pub async fn complete(&self) -> Result<Self, TransferError> {
        match self {
            Store::Opfs { data, lock } => {
                let file = close(data).await?;
                lock.downgrade().await?;
                Ok(Store::Stored {
                    file,
                    lock: lock.clone(),
                })
            }
            Store::Blob(blob) => Ok(Store::Blob(blob.clone())),
            Store::Stored { file, lock } => Ok(Store::Stored {
                file: file.clone(),
                lock: lock.clone(),
            }),
        }
    }

    /// A download that stopped: closes its data file (kept for resume) and
    /// lets go of the lock.
    pub async fn abandon(&self) {
        if let Store::Opfs { data, lock } = self {
            if let Err(e) = close(data).await {
                tracing::debug!("closing an abandoned download: {e}");
            }
            lock.release_now().await;
        }
    }

    /// The whole file with the manifest's name and type, backed by disk.
    pub fn file(&self, manifest: &Manifest) -> Result<File, TransferError> {
        let whole = match self {
            Store::Blob(blob) | Store::Stored { file: blob, .. } => blob,
            Store::Opfs { .. } => {
                return Err(TransferError::Storage(
                    "the download is not complete".into(),
                ))
            }
        };
        named_file(whole, manifest)
    }

    /// This tab's lock on the share, if the store has one.
    pub fn lock(&self) -> Option<&ShareLock> {
        match self {
            Store::Blob(_) => None,
            Store::Stored { lock, .. } | Store::Opfs { lock, .. } => Some(lock),
        }
    }
}

async fn close(data: &str) -> Result<Blob, TransferError> {
    Ok(JsFuture::from(opfs_close(data))
        .await
        .map_err(js_err("closing the download"))?
        .unchecked_into())
}

/// `blob` as a `File` with the manifest's name and media type.
pub fn named_file(blob: &Blob, manifest: &Manifest) -> Result<File, TransferError> {
    let props = FilePropertyBag::new();
    props.set_type(manifest.media_type());
    let parts = Array::of1(blob);
    File::new_with_blob_sequence_and_options(&parts, manifest.name(), &props)
        .map_err(js_err("assembling the file"))
}

/// Reads `len` bytes at `offset` of `blob` (fewer at its end).
pub async fn read_blob(blob: &Blob, offset: u64, len: u32) -> Result<Vec<u8>, TransferError> {
    let view: Uint8Array = JsFuture::from(blob_read(blob, offset as f64, len))
        .await
        .map_err(js_err("reading the file"))?
        .unchecked_into();
    let bytes = view.to_vec();
    opfs_recycle(&view);
    Ok(bytes)
}

/// `bytes` with `view` appended, copied once from JS memory.
fn append_view(mut bytes: Vec<u8>, view: &Uint8Array) -> Vec<u8> {
    let start = bytes.len();
    bytes.resize(start + view.length() as usize, 0);
    view.copy_to(&mut bytes[start..]);
    bytes
}

/// The names in the shares' directory.
pub async fn list() -> Result<Vec<String>, TransferError> {
    let names = JsFuture::from(opfs_list())
        .await
        .map_err(js_err("listing stored shares"))?;
    Ok(Array::from(&names)
        .iter()
        .filter_map(|n| n.as_string())
        .collect())
}

/// Share ids (text) that some tab of this origin holds a lock on.
pub async fn locked_keys() -> Result<Vec<String>, TransferError> {
    let keys = JsFuture::from(opfs_locked_keys())
        .await
        .map_err(js_err("asking for locks"))?;
    Ok(Array::from(&keys)
        .iter()
        .filter_map(|n| n.as_string())
        .collect())
}

/// File `name` of the shares' directory, if it exists.
pub async fn file(name: &str) -> Result<Option<Blob>, TransferError> {
    let file = JsFuture::from(opfs_file(name))
        .await
        .map_err(js_err("opening a stored file"))?;
    Ok((!file.is_null()).then(|| file.unchecked_into()))
}

/// A small file read whole (a manifest or a record), if it exists; one
/// larger than `max` bytes is not ours and reads as absent.
pub async fn read_small(name: &str, max: usize) -> Result<Option<Vec<u8>>, TransferError> {
    let Some(blob) = file(name).await? else {
        return Ok(None);
    };
    let size = blob.size() as u64;
    if size > max as u64 {
        return Ok(None);
    }
    Ok(Some(read_blob(&blob, 0, size as u32).await?))
}

/// Replaces `share`'s `.have` record with one of `have` and `picked` (see
/// `resume`); a checkpoint flushes the data file first.
pub async fn write_record(
    share: &ShareId,
    have: &Bitfield,
    picked: Option<&Bitfield>,
) -> Result<(), WriteError> {
    let record = resume::HaveRecord::encode(have, picked);
    let name = resume::file_name(share, resume::FileKind::Have);
    JsFuture::from(opfs_replace(&name, &record))
        .await
        .map_err(write_err("recording the stored chunks"))?;
    Ok(())
}

/// Replaces file `name` with `bytes`, whole or not at all.
pub async fn replace(name: &str, bytes: &[u8]) -> Result<(), WriteError> {
    JsFuture::from(opfs_replace(name, bytes))
        .await
        .map_err(write_err("writing a stored file"))?;
    Ok(())
}

/// Deletes `names` unless some tab (this one included) holds lock `key`;
/// false if one does.
pub async fn remove(key: &str, names: &[String]) -> Result<bool, TransferError> {
    let list: Array = names.iter().map(|n| JsValue::from_str(n)).collect();
    let done = JsFuture::from(opfs_remove(key, list))
        .await
        .map_err(js_err("deleting stored files"))?;
    Ok(done.as_bool() == Some(true))
}

/// Deletes the single-file downloads earlier versions left behind.
pub async fn remove_legacy() -> Result<(), TransferError> {
    JsFuture::from(opfs_remove_legacy())
        .await
        .map_err(js_err("deleting old downloads"))?;
    Ok(())
}
