//! What the page did for the node before the wasm was ready: `index.html`
//! fetches the relay's `/api/info` and opens the relay WebSocket while the
//! peer downloads and compiles, and hands both to `Node.start` as `early`,
//! a promise of `{ info, socket }`. Both are on the path to the first
//! connection (issue #10's connect goal), and neither needs the wasm.
//!
//! Everything here is a head start, never a requirement: a promise that
//! rejects, an `info` that is not the relay's, or a socket that is closed
//! or points elsewhere leaves the node doing what it does without them
//! (fetch `/api/info`, open its own socket).

use shoal_proto::info::RelayInfo;
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::WebSocket;

/// The settled head start; either part may be missing.
#[derive(Default)]
pub struct Early {
    pub info: Option<RelayInfo>,
    pub socket: Option<WebSocket>,
}

impl Early {
    /// Waits for the page's promise (settled long before, as a rule).
    pub async fn settle(promise: Option<js_sys::Promise>) -> Self {
        let Some(promise) = promise else {
            return Self::default();
        };
        match JsFuture::from(promise).await {
            Ok(value) => Self::read(&value),
            Err(e) => {
                tracing::debug!(error = ?e, "the page's early start failed; starting without it");
                Self::default()
            }
        }
    }

    fn read(value: &JsValue) -> Self {
        let Some(object) = value.dyn_ref::<js_sys::Object>() else {
            return Self::default();
        };
        let field = |name| crate::options::get(object, name);
        let info = field("info").and_then(|v| match crate::options::relay_info(&v) {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::debug!(error = %e, "the page's early /api/info is unusable");
                None
            }
        });
        let socket = field("socket").and_then(|v| v.dyn_into::<WebSocket>().ok());
        Self { info, socket }
    }
}
