//! Where chunks live: the sharer reads them from the picked `File` on demand
//! (`Blob.slice`), a downloader writes each verified chunk to its own file in
//! the origin-private file system (OPFS) and serves it back from there. Only
//! the chunks in flight are ever in memory, whatever the file's size.

use js_sys::{Array, Object, Reflect, Uint8Array};
use shoal_share::{Manifest, ShareId};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, File, FilePropertyBag, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemWritableFileStream,
};

use super::TransferError;

pub enum Store {
    /// The sharer's own file.
    Blob(Blob),
    /// A download: one OPFS file per chunk in a directory per share.
    Opfs(FileSystemDirectoryHandle),
}

fn js_err(context: &'static str) -> impl Fn(JsValue) -> TransferError {
    move |e| TransferError::Storage(format!("{context}: {}", describe(&e)))
}

pub fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn chunk_name(index: u32) -> String {
    format!("{index:08}")
}

impl Store {
    /// A fresh OPFS directory for `share` (left-overs of an earlier attempt
    /// are removed: they were never verified by this session).
    pub async fn opfs(share: &ShareId) -> Result<Self, TransferError> {
        let storage = web_sys::window().ok_or(TransferError::Storage("no window".into()))?.navigator().storage();
        let root: FileSystemDirectoryHandle =
            JsFuture::from(storage.get_directory()).await.map_err(js_err("opening OPFS"))?.unchecked_into();
        let name = format!("shoal-{share}");
        let opts = Object::new();
        let _ = Reflect::set(&opts, &"recursive".into(), &true.into());
        let _ = JsFuture::from(root.remove_entry_with_options(&name, opts.unchecked_ref())).await;
        let dir_opts = FileSystemGetDirectoryOptions::new();
        dir_opts.set_create(true);
        let dir = JsFuture::from(root.get_directory_handle_with_options(&name, &dir_opts))
            .await
            .map_err(js_err("creating the download folder"))?;
        Ok(Store::Opfs(dir.unchecked_into()))
    }

    /// Reads `len` bytes at `offset` (chunk `index`).
    pub async fn read(&self, index: u32, offset: u64, len: u32) -> Result<Vec<u8>, TransferError> {
        let blob = match self {
            Store::Blob(blob) => blob
                .slice_with_f64_and_f64(offset as f64, (offset + u64::from(len)) as f64)
                .map_err(js_err("slicing the file"))?,
            Store::Opfs(dir) => {
                let handle: FileSystemFileHandle = JsFuture::from(dir.get_file_handle(&chunk_name(index)))
                    .await
                    .map_err(js_err("opening a chunk"))?
                    .unchecked_into();
                let file: File = JsFuture::from(handle.get_file()).await.map_err(js_err("reading a chunk"))?.unchecked_into();
                file.into()
            }
        };
        let buf = JsFuture::from(blob.array_buffer()).await.map_err(js_err("reading"))?;
        let bytes = Uint8Array::new(&buf).to_vec();
        if bytes.len() != len as usize {
            return Err(TransferError::Storage(format!("chunk {index}: read {} bytes, expected {len}", bytes.len())));
        }
        Ok(bytes)
    }

    /// Writes a verified chunk (downloads only).
    pub async fn write(&self, index: u32, bytes: &[u8]) -> Result<(), TransferError> {
        let Store::Opfs(dir) = self else {
            return Err(TransferError::Storage("the sharer's file is read-only".into()));
        };
        let opts = FileSystemGetFileOptions::new();
        opts.set_create(true);
        let handle: FileSystemFileHandle = JsFuture::from(dir.get_file_handle_with_options(&chunk_name(index), &opts))
            .await
            .map_err(js_err("creating a chunk file"))?
            .unchecked_into();
        let writable: FileSystemWritableFileStream =
            JsFuture::from(handle.create_writable()).await.map_err(js_err("opening a chunk file"))?.unchecked_into();
        JsFuture::from(writable.write_with_u8_array(bytes).map_err(js_err("writing a chunk"))?)
            .await
            .map_err(js_err("writing a chunk"))?;
        JsFuture::from(writable.close()).await.map_err(js_err("closing a chunk file"))?;
        Ok(())
    }

    /// The whole file, as a `File` whose parts are the chunk files on disk
    /// (so the tab does not hold the content in memory).
    pub async fn to_file(&self, manifest: &Manifest) -> Result<File, TransferError> {
        let parts = Array::new();
        match self {
            Store::Blob(blob) => {
                parts.push(blob);
            }
            Store::Opfs(dir) => {
                for index in 0..manifest.chunk_count() {
                    let handle: FileSystemFileHandle = JsFuture::from(dir.get_file_handle(&chunk_name(index)))
                        .await
                        .map_err(js_err("opening a chunk"))?
                        .unchecked_into();
                    parts.push(&JsFuture::from(handle.get_file()).await.map_err(js_err("reading a chunk"))?);
                }
            }
        }
        let props = FilePropertyBag::new();
        props.set_type(manifest.media_type());
        File::new_with_blob_sequence_and_options(&parts, manifest.name(), &props).map_err(js_err("assembling the file"))
    }
}
