//! The HTTP side: health check, `/api/info`, and the static page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{self, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    // Revalidate static files on every load: after a rebuild the page and its
    // wasm must change together, and a stale half breaks the page.
    let static_files = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .service(ServeDir::new(state.www()));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/info", get(info))
        .fallback_service(static_files)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn info(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // The ws port changes with every restart on port 0: never cache it.
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(state.info()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, Response, StatusCode};
    use http_body_util::BodyExt;
    use shoal_proto::info::RelayInfo;
    use tower::ServiceExt;

    fn test_info() -> RelayInfo {
        RelayInfo {
            peer_id: "12D3KooWTest".into(),
            ws_port: 4001,
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001/ws/p2p/12D3KooWTest".into()],
            version: "0.1.0".into(),
        }
    }

    fn www() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "<!doctype html>shoal").expect("index");
        std::fs::create_dir(dir.path().join("pkg")).expect("pkg");
        std::fs::write(dir.path().join("pkg/peer_wasm_bg.wasm"), b"\0asm\x01\0\0\0").expect("wasm");
        std::fs::write(dir.path().join("pkg/peer_wasm.js"), "export {}").expect("js");
        dir
    }

    async fn get(dir: &tempfile::TempDir, uri: &str) -> Response<Body> {
        let state = Arc::new(AppState::new(test_info(), dir.path().to_path_buf()));
        let req = Request::get(uri).body(Body::empty()).expect("request");
        router(state).oneshot(req).await.expect("infallible")
    }

    async fn body(res: Response<Body>) -> Vec<u8> {
        res.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec()
    }

    fn header(res: &Response<Body>, name: header::HeaderName) -> &str {
        res.headers()
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("ascii header")
    }

    #[tokio::test]
    async fn healthz_is_ok() {
        let dir = www();
        let res = get(&dir, "/healthz").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body(res).await, b"ok");
    }

    #[tokio::test]
    async fn info_is_uncached_json() {
        let dir = www();
        let res = get(&dir, "/api/info").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, header::CACHE_CONTROL), "no-store");
        assert_eq!(header(&res, header::CONTENT_TYPE), "application/json");
        let json: serde_json::Value = serde_json::from_slice(&body(res).await).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "peerId": "12D3KooWTest",
                "wsPort": 4001,
                "listenAddrs": ["/ip4/127.0.0.1/tcp/4001/ws/p2p/12D3KooWTest"],
                "version": "0.1.0",
            })
        );
    }

    #[tokio::test]
    async fn index_served_at_root() {
        let dir = www();
        let res = get(&dir, "/").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(header(&res, header::CONTENT_TYPE).starts_with("text/html"));
        assert_eq!(header(&res, header::CACHE_CONTROL), "no-cache");
        assert_eq!(body(res).await, b"<!doctype html>shoal");
    }

    #[tokio::test]
    async fn wasm_and_js_content_types() {
        let dir = www();
        let res = get(&dir, "/pkg/peer_wasm_bg.wasm").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, header::CONTENT_TYPE), "application/wasm");
        assert_eq!(body(res).await, b"\0asm\x01\0\0\0");
        let res = get(&dir, "/pkg/peer_wasm.js").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(header(&res, header::CONTENT_TYPE).contains("javascript"));
    }

    #[tokio::test]
    async fn missing_files_are_404() {
        let dir = www();
        assert_eq!(
            get(&dir, "/nope.html").await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&dir, "/pkg/missing.wasm").await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&dir, "/../Cargo.toml").await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
