//! Where chunks live. The sharer reads them from the picked `File` on demand
//! (`Blob.slice`). A downloader writes each verified chunk at its offset in one
//! file of the origin-private file system (OPFS), through a worker that holds
//! a synchronous access handle (`js/opfs.js`), and reads chunks back from it to
//! serve others. Once complete, the download is a `File` on disk and is served
//! like the sharer's. Only chunks in flight are ever in memory.

use js_sys::{Array, Uint8Array};
use shoal_share::{Manifest, ShareId};
use wasm_bindgen::{prelude::wasm_bindgen, JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File, FilePropertyBag};

use super::TransferError;

#[wasm_bindgen(module = "/js/opfs.js")]
extern "C" {
    #[wasm_bindgen(js_name = opfsOpen)]
    fn opfs_open(name: &str) -> js_sys::Promise;
    /// `bytes` is passed as a view of wasm memory; JS copies it at once.
    #[wasm_bindgen(js_name = opfsWrite)]
    fn opfs_write(name: &str, offset: f64, bytes: &[u8]) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsRead)]
    fn opfs_read(name: &str, offset: f64, len: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = opfsRecycle)]
    fn opfs_recycle(bytes: &Uint8Array);
    #[wasm_bindgen(js_name = opfsClose)]
    fn opfs_close(name: &str) -> js_sys::Promise;
}

pub enum Store {
    /// A whole file: the sharer's, or a finished download.
    Blob(Blob),
    /// A download in progress: one OPFS file, by name.
    Opfs(String),
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

impl Store {
    /// A new, empty OPFS file for a download of `share`.
    pub async fn opfs(share: &ShareId) -> Result<Self, TransferError> {
        // Unique per download: two tabs may fetch the same share.
        let name = format!(
            "shoal-{share}-{:08x}",
            (js_sys::Math::random() * f64::from(u32::MAX)) as u32
        );
        JsFuture::from(opfs_open(&name))
            .await
            .map_err(js_err("opening OPFS storage"))?;
        Ok(Store::Opfs(name))
    }

    /// Reads `len` bytes at `offset`.
    pub async fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>, TransferError> {
        let bytes = match self {
            Store::Blob(blob) => {
                let part = blob
                    .slice_with_f64_and_f64(offset as f64, (offset + u64::from(len)) as f64)
                    .map_err(js_err("slicing the file"))?;
                let buf = JsFuture::from(part.array_buffer())
                    .await
                    .map_err(js_err("reading the file"))?;
                Uint8Array::new(&buf).to_vec()
            }
            Store::Opfs(name) => {
                let view: Uint8Array = JsFuture::from(opfs_read(name, offset as f64, len))
                    .await
                    .map_err(js_err("reading a chunk"))?
                    .unchecked_into();
                let bytes = view.to_vec();
                opfs_recycle(&view);
                bytes
            }
        };
        if bytes.len() != len as usize {
            return Err(TransferError::Storage(format!(
                "read {} bytes at {offset}, expected {len}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Writes a verified chunk at `offset` (downloads only).
    pub async fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), TransferError> {
        let Store::Opfs(name) = self else {
            return Err(TransferError::Storage(
                "a complete file is read-only".into(),
            ));
        };
        JsFuture::from(opfs_write(name, offset as f64, bytes))
            .await
            .map_err(js_err("writing a chunk"))?;
        Ok(())
    }

    /// The whole file with the manifest's name and type, backed by disk. A
    /// download's storage is closed for writing by this.
    pub async fn finish(&self, manifest: &Manifest) -> Result<File, TransferError> {
        let whole: Blob = match self {
            Store::Blob(blob) => blob.clone(),
            Store::Opfs(name) => JsFuture::from(opfs_close(name))
                .await
                .map_err(js_err("closing the download"))?
                .unchecked_into(),
        };
        let props = FilePropertyBag::new();
        props.set_type(manifest.media_type());
        let parts = Array::of1(&whole);
        File::new_with_blob_sequence_and_options(&parts, manifest.name(), &props)
            .map_err(js_err("assembling the file"))
    }
}
