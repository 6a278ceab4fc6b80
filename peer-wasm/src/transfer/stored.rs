//! Shares kept on disk between page loads: opening one for a download
//! (resume, or serve it when complete), listing them for the page, deleting
//! one, and cleaning up stray files. The rules are `shoal_share::resume`;
//! the file I/O and the Web Locks are `super::store`.
//!
//! Several tabs of one origin share the files: a tab downloading a share
//! holds its lock exclusive, a tab serving a complete one shared, and files
//! are deleted only while no tab holds their share's lock.

use std::rc::Rc;

use serde::Serialize;
use shoal_share::{
    manifest::MAX_ENCODED_LEN,
    resume::{self, FileKind, HaveRecord, Held, Inventory, Opening, Recheck, StoredProgress},
    Bitfield, Manifest, ShareId,
};
use web_sys::{Blob, File};

use super::{
    store::{self, LockMode, ShareLock, Store},
    TransferError, Transfers,
};

/// Largest `.have` record: a bitfield of the most chunks a manifest may
/// list, and its header.
const MAX_RECORD_LEN: usize = 32
    + shoal_share::manifest::MAX_CHUNKS as usize / 8
    + shoal_share::manifest::MAX_FILES as usize / 8;

/// What is on disk for a share, once this tab holds its lock.
pub enum Opened {
    /// Nothing usable: fetch the manifest from peers, then [`create`].
    New { lock: Rc<ShareLock> },
    /// The manifest, the chunks on disk that verified, and the files the
    /// page had picked (`None`: all).
    Partial {
        manifest: Manifest,
        have: Bitfield,
        picked: Option<Vec<String>>,
        lock: Rc<ShareLock>,
    },
    /// Every chunk on disk verified: serve it as it is.
    Complete {
        manifest: Manifest,
        file: File,
        store: Store,
    },
}

/// Takes `share`'s lock and reads what is stored for it, re-verifying every
/// chunk the record names (`checking(manifest, checked, claimed)` before the
/// first and after each).
pub async fn open(
    share: &ShareId,
    checking: impl Fn(&Manifest, u32, u32),
) -> Result<Opened, TransferError> {
    let lock = Rc::new(take_lock(share).await?.ok_or(TransferError::InUse)?);
    let held = match lock.mode() {
        LockMode::Exclusive => Held::Exclusive,
        LockMode::Shared => Held::Shared,
    };
    let name = |kind| resume::file_name(share, kind);
    let manifest = store::read_small(&name(FileKind::Manifest), MAX_ENCODED_LEN)
        .await?
        .and_then(|bytes| match Manifest::decode_verified(&bytes, share) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(%share, "stored manifest is unusable, fetching anew: {e}");
                None
            }
        });
    let Some(manifest) = manifest else {
        return match resume::opening(held, false, false) {
            Opening::Fetch => Ok(Opened::New { lock }),
            _ => Err(TransferError::InUse),
        };
    };
    let data = store::file(&name(FileKind::Data)).await?;
    let record = store::read_small(&name(FileKind::Have), MAX_RECORD_LEN).await?;
    // Without a data file, a record claims nothing.
    let claimed = HaveRecord::claimed(data.as_ref().and(record.as_deref()), &manifest);
    let have = recheck(&manifest, &claimed.have, data.as_ref(), checking).await;
    match (
        resume::opening(held, true, data.is_some() && have.is_full()),
        data,
    ) {
        (Opening::Serve, Some(data)) => {
            let file = store::named_file(&data, &manifest)?;
            lock.downgrade().await?;
            tracing::info!(%share, "complete on disk; serving it");
            Ok(Opened::Complete {
                manifest,
                file,
                store: Store::Stored { file: data, lock },
            })
        }
        (Opening::Continue, _) => {
            tracing::info!(
                %share,
                chunks = have.count_ones(),
                of = manifest.chunk_count(),
                "resuming from disk"
            );
            let picked = claimed.picked.map(|p| {
                resume::picked_paths(&manifest, &p)
                    .map(str::to_owned)
                    .collect()
            });
            Ok(Opened::Partial {
                manifest,
                have,
                picked,
                lock,
            })
        }
        // Complete in another tab's eyes, but not all of it verified here.
        _ => Err(TransferError::InUse),
    }
}

/// The share's lock, exclusive if free, else shared (another tab serves the
/// complete file: serve it too); a moment's wait for a tab that is going away
/// only if neither is free now.
async fn take_lock(share: &ShareId) -> Result<Option<ShareLock>, TransferError> {
    for wait in [false, true] {
        if let Some(lock) = ShareLock::take(share, LockMode::Exclusive, wait).await? {
            return Ok(Some(lock));
        }
        if let Some(lock) = ShareLock::take(share, LockMode::Shared, false).await? {
            return Ok(Some(lock));
        }
    }
    Ok(None)
}

/// Reads back and verifies each chunk `claimed` names; the ones that pass.
async fn recheck(
    manifest: &Manifest,
    claimed: &Bitfield,
    data: Option<&Blob>,
    checking: impl Fn(&Manifest, u32, u32),
) -> Bitfield {
    let mut check = Recheck::new(manifest, claimed);
    let Some(data) = data else {
        return check.into_have();
    };
    let (_, claimed) = check.progress();
    if claimed > 0 {
        checking(manifest, 0, claimed);
    }
    while let Some(index) = check.next_chunk() {
        let (Some(range), Some(len)) = (manifest.chunk_range(index), manifest.chunk_len(index))
        else {
            continue;
        };
        let bytes = store::read_blob(data, range.start, len)
            .await
            .unwrap_or_default();
        check.checked(manifest, index, &bytes);
        let (done, of) = check.progress();
        checking(manifest, done, of);
    }
    if check.failed() > 0 {
        tracing::warn!(
            failed = check.failed(),
            "stored chunks failed verification; fetching them again"
        );
    }
    check.into_have()
}

/// Records a new download's manifest (before any chunk, see `resume`).
pub async fn create(share: &ShareId, manifest: &Manifest) -> Result<(), store::WriteError> {
    store::replace(
        &resume::file_name(share, FileKind::Manifest),
        &manifest.encode(),
    )
    .await
}

/// A stored share as the page lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredView {
    pub share_id: String,
    pub name: String,
    pub size: u64,
    pub media_type: String,
    pub link: String,
    /// "partial" or "complete", by the last record (verified when opened).
    pub state: &'static str,
    pub chunks_done: u32,
    pub chunks_total: u32,
    pub bytes_done: u64,
    /// "here" (this tab downloads or serves it), "elsewhere" (another tab
    /// does), or null.
    pub in_use: Option<&'static str>,
}

impl Transfers {
    /// Deletes stray files (never a stored share, never what a tab holds),
    /// and the files earlier versions left. Runs in the background.
    pub fn clean_up_storage(&self) {
        wasm_bindgen_futures::spawn_local(async {
            if let Err(e) = clean_up().await {
                tracing::warn!("cleaning up stored files failed: {e}");
            }
        });
    }

    /// The shares stored in this origin, with their progress.
    pub async fn stored(&self) -> Result<Vec<StoredView>, TransferError> {
        let names = store::list().await?;
        let inventory = Inventory::from_names(names.iter().map(String::as_str));
        let locked = store::locked_keys().await?;
        let mut views = Vec::new();
        for id in inventory.stored {
            let name = |kind| resume::file_name(&id, kind);
            let Some(bytes) = store::read_small(&name(FileKind::Manifest), MAX_ENCODED_LEN).await?
            else {
                continue;
            };
            let Ok(manifest) = Manifest::decode_verified(&bytes, &id) else {
                continue;
            };
            let record = store::read_small(&name(FileKind::Have), MAX_RECORD_LEN).await?;
            let progress = StoredProgress::of(
                &manifest,
                &HaveRecord::claimed(record.as_deref(), &manifest).have,
            );
            let here = self.holds(&id);
            let key = id.to_string();
            views.push(StoredView {
                link: self.link(&id),
                name: manifest.name().to_owned(),
                size: manifest.size(),
                media_type: manifest.media_type().to_owned(),
                state: if progress.is_complete() {
                    "complete"
                } else {
                    "partial"
                },
                chunks_done: progress.chunks_done,
                chunks_total: progress.chunks_total,
                bytes_done: progress.bytes_done,
                in_use: if here {
                    Some("here")
                } else if locked.contains(&key) {
                    Some("elsewhere")
                } else {
                    None
                },
                share_id: key,
            });
        }
        Ok(views)
    }

    /// Whether this tab downloads or serves `id` from disk.
    fn holds(&self, id: &ShareId) -> bool {
        self.share_by_id(id).is_some_and(|s| {
            s.download.borrow().is_some()
                || s.store
                    .borrow()
                    .as_ref()
                    .is_some_and(|st| st.lock().is_some())
        })
    }

    /// Deletes a stored share: this tab stops serving it first; refused
    /// while this tab downloads it or another tab uses it.
    pub async fn delete_stored(&self, id: &ShareId) -> Result<(), TransferError> {
        if let Some(share) = self.share_by_id(id) {
            if share.download.borrow().is_some() {
                return Err(TransferError::Stopped(
                    "it is being downloaded; wait until it ends".into(),
                ));
            }
            let store = share.store.borrow().clone();
            if let Some(lock) = store.as_ref().and_then(|s| s.lock()) {
                // Served from disk here: stop, so the files can go.
                lock.release_now().await;
                self.0.shares.borrow_mut().remove(id);
                let sids: Vec<u64> = share.sessions.borrow().keys().copied().collect();
                for sid in sids {
                    share.close_session(sid);
                }
                *share.store.borrow_mut() = None;
                *share.have.borrow_mut() = Bitfield::new(0);
            }
        }
        let names = resume::file_names(id);
        if !store::remove(&id.to_string(), &names).await? {
            return Err(TransferError::InUse);
        }
        tracing::info!(share = %id, "stored share deleted");
        self.notify();
        Ok(())
    }
}

async fn clean_up() -> Result<(), TransferError> {
    store::remove_legacy().await?;
    let names = store::list().await?;
    let inventory = Inventory::from_names(names.iter().map(String::as_str));
    for (name, owner) in inventory.stray {
        // A stray file of a share is locked with its share; any other on its own.
        let key = owner.map_or_else(|| format!("stray:{name}"), |id| id.to_string());
        if store::remove(&key, std::slice::from_ref(&name)).await? {
            tracing::debug!(%name, "deleted a stray stored file");
        }
    }
    Ok(())
}
