//! A picked file read once from start to end, for hashing it when it is
//! shared: one reused buffer on the JS side (a BYOB reader of the blob's
//! stream, `js/read.js`, which says why) and one on ours, so a file of any
//! size is hashed in constant memory. A read that stalls (a Chromium bug,
//! see there) is redone by slices.

use js_sys::Uint8Array;
use wasm_bindgen::{prelude::wasm_bindgen, JsCast as _};
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use super::{store::js_err, TransferError};

#[wasm_bindgen(module = "/js/read.js")]
extern "C" {
    type JsBlobReader;
    #[wasm_bindgen(js_name = blobReader)]
    fn blob_reader(blob: &Blob) -> JsBlobReader;
    #[wasm_bindgen(method)]
    fn read(this: &JsBlobReader, len: u32) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn close(this: &JsBlobReader);
    #[cfg(test)]
    #[wasm_bindgen(js_name = retryByob)]
    pub fn retry_byob();
}

/// Reads `blob` in order; its JS reader is cancelled when this is dropped.
pub struct BlobReader {
    js: JsBlobReader,
    buf: Vec<u8>,
}

impl BlobReader {
    pub fn new(blob: &Blob) -> Self {
        Self {
            js: blob_reader(blob),
            buf: Vec::new(),
        }
    }

    /// The next `len` bytes, or fewer at the end of the blob. The slice is
    /// valid until the next call.
    pub async fn next(&mut self, len: u32) -> Result<&[u8], TransferError> {
        let view: Uint8Array = JsFuture::from(self.js.read(len))
            .await
            .map_err(js_err("reading the file"))?
            .unchecked_into();
        self.buf.resize(view.length() as usize, 0);
        view.copy_to(&mut self.buf);
        Ok(&self.buf)
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        self.js.close();
    }
}
