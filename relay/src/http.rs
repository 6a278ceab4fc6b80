//! The HTTP side: health check, `/api/info`, the static page, and the
//! peers' libp2p WebSocket (`/p2p` for pages; `/` for stock libp2p clients,
//! whose `/ws` addresses carry no path), all on one listener.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use shoal_proto::info::P2P_PATH;
use tower::ServiceExt as _;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::{debug, info, warn};

use crate::limits::MAX_WS_MESSAGE;
use crate::metrics::Metrics;
use crate::state::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/info", get(info))
        .route("/metrics", get(metrics))
        .route(P2P_PATH, get(p2p))
        .route("/", get(root))
        .fallback(static_file)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The static page, pre-compressed where `make` compressed it. Revalidated on every load: after a rebuild the page and
/// its wasm must change together, and a stale half breaks the page.
async fn static_file(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let files = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        // `make` writes .br and .gz copies beside the assets (scripts/compress.mjs).
        .service(
            ServeDir::new(state.www())
                .precompressed_br()
                .precompressed_gzip(),
        );
    match files.oneshot(req).await {
        Ok(res) => res.into_response(),
        Err(never) => match never {},
    }
}

/// `/`: the page, or a libp2p WebSocket from a client dialing a plain `/ws`.
async fn root(
    state: State<Arc<AppState>>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> Response {
    match ws {
        Ok(ws) => p2p(state, connect, headers, ws).await,
        Err(_) => static_file(state, req).await,
    }
}

/// Accepts a libp2p WebSocket and hands it to the swarm.
async fn p2p(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let client = state.proxies().client(peer, &forwarded);
    let permit = match state.admission().admit(client.ip()) {
        Ok(permit) => permit,
        Err(refused) => {
            Metrics::count(&state.metrics().websockets, "refused");
            info!(%client, "libp2p WebSocket refused: {refused}");
            return (StatusCode::TOO_MANY_REQUESTS, refused.to_string()).into_response();
        }
    };
    // How the swarm names the client: its address and the transport.
    let remote = crate::config::ws_multiaddr(client, state.tls());
    ws.max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .on_failed_upgrade(move |e| debug!(%client, "WebSocket upgrade failed: {e}"))
        .on_upgrade(move |socket: WebSocket| async move {
            if let Err(e) = state.bridge().hand_over(socket, remote, permit) {
                warn!(%client, "libp2p WebSocket refused: {e}");
            }
        })
}

async fn healthz() -> &'static str {
    "ok"
}

/// Counters in the OpenMetrics text format (no addresses, no PeerIds).
async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics().render(),
    )
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
    use axum::http::Response;
    use http_body_util::BodyExt;
    use shoal_proto::info::RelayInfo;

    fn test_info() -> RelayInfo {
        RelayInfo {
            peer_id: "12D3KooWTest".into(),
            p2p_path: P2P_PATH.into(),
            stun_port: Some(3478),
            ice_servers: vec![],
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
        let metrics = Arc::<crate::metrics::Metrics>::default();
        let (bridge, _transport) = crate::bridge::bridge(metrics.clone());
        let state = Arc::new(AppState::new(
            test_info(),
            dir.path().to_path_buf(),
            bridge,
            Default::default(),
            false,
            metrics,
        ));
        let req = Request::get(uri).body(Body::empty()).expect("request");
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        router(state)
            .layer(axum::extract::connect_info::MockConnectInfo(peer))
            .oneshot(req)
            .await
            .expect("infallible")
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
                "p2pPath": "/p2p",
                "stunPort": 3478,
                "iceServers": [],
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
    async fn metrics_are_openmetrics_text() {
        let dir = www();
        let res = get(&dir, "/metrics").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(header(&res, header::CONTENT_TYPE).starts_with("application/openmetrics-text"));
        let text = String::from_utf8(body(res).await).expect("utf-8");
        assert!(
            text.contains("# TYPE shoal_relay_circuits counter"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn p2p_without_upgrade_is_refused() {
        let dir = www();
        // A plain GET is not a WebSocket: refused, not served as a file.
        let res = get(&dir, "/p2p").await;
        assert!(res.status().is_client_error(), "{}", res.status());
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
