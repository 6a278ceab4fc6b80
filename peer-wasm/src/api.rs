//! The JavaScript API (a stable contract, documented in README.md):
//!
//! ```js
//! import init, { Node } from '/pkg/peer_wasm.js';
//! await init();
//! const node = await Node.start({ relay: location.origin, swarm: 'default' });
//! node.peerId; node.peers(); node.relay(); node.onChange(fn); node.stop();
//! const bytes = await node.read(shareId, offset, length); // play while downloading
//! ```

use futures::channel::mpsc;
use libp2p::{identity::Keypair, rendezvous::Namespace, PeerId};
use shoal_proto::info::{Origin, RelayInfo};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::{
    early::Early,
    milestones::{self, Milestone},
    node::{self, Command, Settings},
    options::StartOptions,
    state::SharedState,
    transfer::Transfers,
    webrtc,
};

/// Longest swarm name; rendezvous namespaces allow 255 bytes with our prefix.
const MAX_SWARM_NAME: usize = 200;

/// A running shoal peer.
#[wasm_bindgen]
pub struct Node {
    peer_id: PeerId,
    state: SharedState,
    transfers: Transfers,
    commands: mpsc::Sender<Command>,
    #[cfg(feature = "test-hooks")]
    echo: crate::echo::Echo,
}

#[wasm_bindgen]
impl Node {
    /// Fetches the relay's `/api/info` (unless `early` has it), builds the
    /// Swarm and starts it. Rejects with a readable message when the options
    /// or the relay are bad.
    pub async fn start(
        #[wasm_bindgen(unchecked_param_type = "StartOptions")] options: JsValue,
    ) -> Result<Node, JsError> {
        crate::init_logging();
        let opts = StartOptions::read(&options)
            .map_err(|e| JsError::new(&format!("invalid options: {e}")))?;
        let swarm_name = opts.swarm.trim();
        if swarm_name.is_empty() || swarm_name.len() > MAX_SWARM_NAME {
            return Err(JsError::new(&format!(
                "swarm name must be 1 to {MAX_SWARM_NAME} bytes"
            )));
        }
        let namespace = Namespace::new(format!("shoal/{swarm_name}"))
            .map_err(|e| JsError::new(&format!("invalid swarm name: {e}")))?;
        let relay_url = web_sys::Url::new(&opts.relay)
            .map_err(|_| JsError::new(&format!("relay is not a URL: {}", opts.relay)))?;
        let origin = Origin::new(
            &relay_url.protocol(),
            &relay_url.hostname(),
            &relay_url.port(),
        )
        .map_err(|e| JsError::new(&e.to_string()))?;
        let started_at = milestones::now();
        let early = Early::settle(opts.early).await;
        let info = match early.info {
            Some(info) => info,
            None => fetch_info(&opts.relay).await?,
        };
        let info_at = milestones::now();
        let relay_peer: PeerId = info
            .peer_id
            .parse()
            .map_err(|e| JsError::new(&format!("relay sent a bad PeerId: {e}")))?;
        let relay_addr = crate::ws::relay_addr(&origin, &info.p2p_path, relay_peer);
        let ice_servers = match opts.ice_servers {
            Some(servers) => servers,
            None => info.ice_servers_for(&origin),
        };
        tracing::info!(relay = %relay_addr, ice_servers = ice_servers.len(), "relay found");

        let mut webrtc_config = webrtc::Config {
            ice_servers,
            ..Default::default()
        };
        if let Some(ms) = opts.webrtc_timeout_ms {
            webrtc_config.timeout = std::time::Duration::from_millis(u64::from(ms));
        }
        let keypair = Keypair::generate_ed25519();
        let peer_id = keypair.public().to_peer_id();
        let (swarm, control) = node::build(
            keypair,
            webrtc_config,
            opts.max_peers,
            relay_peer,
            early.socket,
        )
        .map_err(|e| JsError::new(&e.to_string()))?;
        let state = SharedState::new(&relay_peer);
        state.mark_at(Milestone::Start, started_at);
        state.mark_at(Milestone::InfoFetched, info_at);
        let transfers = Transfers::new(
            control,
            peer_id,
            state.clone(),
            relay_url.origin(),
            swarm_name.to_owned(),
        );
        transfers.start_accepting();
        transfers.clean_up_storage();
        let (commands, rx) = mpsc::channel(4);
        let settings = Settings {
            relay_addr,
            relay_peer,
            namespace,
            max_peers: opts.max_peers,
        };
        #[cfg(feature = "test-hooks")]
        let echo = crate::echo::Echo::start(node::stream_control(&swarm))
            .map_err(|e| JsError::new(&e.to_string()))?;
        tracing::info!(%peer_id, swarm = swarm_name, "starting");
        wasm_bindgen_futures::spawn_local(node::run(
            swarm,
            settings,
            state.clone(),
            transfers.clone(),
            rx,
        ));
        Ok(Node {
            peer_id,
            state,
            transfers,
            commands,
            #[cfg(feature = "test-hooks")]
            echo,
        })
    }

    /// This node's PeerId.
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.peer_id.to_base58()
    }

    /// `[{ peerId, path: "direct" | "relayed", rttMs, error }]`.
    #[wasm_bindgen(unchecked_return_type = "PeerInfo[]")]
    pub fn peers(&self) -> Result<JsValue, JsError> {
        to_js(&self.state.read(|s| s.peers()))
    }

    /// `{ state: "connecting" | "connected" | "reserved" | "reconnecting" | "failed" | "stopped",
    /// peerId, error }`; `error` says why the relay is unreachable or refused a reservation.
    #[wasm_bindgen(unchecked_return_type = "RelayStatus")]
    pub fn relay(&self) -> Result<JsValue, JsError> {
        to_js(&self.state.read(|s| s.relay()))
    }

    /// `{ start, infoFetched, relayDial, relayConnected, reserved, registered,
    /// discovered, peerRelayed, webrtcStart, direct, firstChunk }`: the
    /// `performance.now()` at which each stage of joining was first reached,
    /// `null` until then (see `milestones.rs`).
    #[wasm_bindgen(unchecked_return_type = "Milestones")]
    pub fn milestones(&self) -> Result<JsValue, JsError> {
        to_js(&self.state.milestones())
    }

    /// Calls `listener()` after every change of `peers()` or `relay()`.
    #[wasm_bindgen(js_name = onChange)]
    pub fn on_change(&self, listener: js_sys::Function) {
        self.state.add_listener(listener);
    }

    /// Shares a `File` or `Blob` (read in chunks, never whole) and resolves
    /// to its link. `name` defaults to the file's own name.
    pub async fn share(
        &self,
        file: web_sys::Blob,
        name: Option<String>,
    ) -> Result<String, JsError> {
        let name = name
            .or_else(|| file.dyn_ref::<web_sys::File>().map(|f| f.name()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "shared-file".to_owned());
        self.transfers
            .share(file, name)
            .await
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Shares several files under one link (a folder: `name` is its name):
    /// `[{ path, file }]`, paths relative and `/`-separated (e.g. a `File`'s
    /// `webkitRelativePath`). The files are read in chunks, never whole.
    #[wasm_bindgen(js_name = shareFiles)]
    pub async fn share_files(
        &self,
        name: String,
        #[wasm_bindgen(unchecked_param_type = "ShareEntry[]")] entries: js_sys::Array,
    ) -> Result<String, JsError> {
        let mut files = Vec::with_capacity(entries.length() as usize);
        for entry in entries.iter() {
            let path = js_sys::Reflect::get(&entry, &"path".into())
                .ok()
                .and_then(|p| p.as_string())
                .ok_or_else(|| JsError::new("each entry needs a string `path`"))?;
            let file = js_sys::Reflect::get(&entry, &"file".into())
                .ok()
                .and_then(|f| f.dyn_into::<web_sys::Blob>().ok())
                .ok_or_else(|| JsError::new("each entry needs a Blob `file`"))?;
            files.push((path, file));
        }
        self.transfers
            .share_files(name, files)
            .await
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Downloads the file behind a share link from every peer that has it;
    /// resolves to a `File` backed by the browser's private storage. For a
    /// share of files, that `File` is all files one after the other (each at
    /// its `downloads()[].files[].offset`), and `paths` limits the download
    /// to those files (all when omitted).
    pub async fn download(
        &self,
        link: String,
        paths: Option<Vec<String>>,
    ) -> Result<web_sys::File, JsError> {
        self.transfers
            .download(&link, paths)
            .await
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Changes which files of a share of files a download fetches (`null`:
    /// all); it completes once those are stored. Resolves once the choice is
    /// recorded on disk: a reload from then on keeps it.
    pub async fn want(
        &self,
        #[wasm_bindgen(js_name = shareId)] share_id: String,
        paths: Option<Vec<String>>,
    ) -> Result<(), JsError> {
        let id: shoal_share::ShareId = share_id
            .parse()
            .map_err(|e: shoal_share::ShareIdParseError| JsError::new(&e.to_string()))?;
        self.transfers
            .want(&id, paths)
            .await
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Reads up to `length` bytes (at most 1 MiB) at `offset` of a share's
    /// byte stream (a share of files: the files one after the other, each at
    /// its `downloads()[].files[].offset`), for playing while it downloads.
    /// Resolves once the chunks holding them are verified and stored; until
    /// then the download fetches them, and the next 8 MiB, before anything
    /// else. Rejects when the range is past the end, the bytes belong to a
    /// file not being downloaded, the download stops, or the chunks do not
    /// come within 60 s.
    pub async fn read(
        &self,
        #[wasm_bindgen(js_name = shareId)] share_id: String,
        offset: f64,
        length: f64,
    ) -> Result<Vec<u8>, JsError> {
        let id: shoal_share::ShareId = share_id
            .parse()
            .map_err(|e: shoal_share::ShareIdParseError| JsError::new(&e.to_string()))?;
        let whole = |x: f64| x.is_finite() && x >= 0.0 && x.fract() == 0.0;
        if !whole(offset) || !whole(length) {
            return Err(JsError::new(
                "offset and length must be whole numbers of bytes, 0 or more",
            ));
        }
        self.transfers
            .read(&id, offset as u64, length as u64)
            .await
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// `[{ shareId, name, size, mediaType, state, chunksDone, chunksTotal,
    /// bytesDone, bytesTotal, sources: [{ peerId, path, chunks, bytes,
    /// badChunks, banned, requested }], error }]`.
    #[wasm_bindgen(unchecked_return_type = "DownloadInfo[]")]
    pub fn downloads(&self) -> Result<JsValue, JsError> {
        to_js(&self.transfers.downloads())
    }

    /// `[{ shareId, name, size, mediaType, link, complete }]`.
    #[wasm_bindgen(unchecked_return_type = "ShareInfo[]")]
    pub fn shares(&self) -> Result<JsValue, JsError> {
        to_js(&self.transfers.shares())
    }

    /// Resolves to the shares stored in this browser (every tab of this
    /// origin): `[{ shareId, name, size, mediaType, link, state: "partial" |
    /// "complete", chunksDone, chunksTotal, bytesDone, inUse: "here" |
    /// "elsewhere" | null }]`. Opening a link resumes (or serves) it.
    #[wasm_bindgen(js_name = storedShares, unchecked_return_type = "StoredShare[]")]
    pub async fn stored_shares(&self) -> Result<JsValue, JsError> {
        let stored = self
            .transfers
            .stored()
            .await
            .map_err(|e| JsError::new(&e.to_string()))?;
        to_js(&stored)
    }

    /// Deletes a stored share's files; this tab stops serving it first.
    /// Rejects while this tab downloads it or another tab uses it.
    #[wasm_bindgen(js_name = deleteStored)]
    pub async fn delete_stored(&self, share_id: String) -> Result<(), JsError> {
        let id: shoal_share::ShareId = share_id
            .parse()
            .map_err(|e: shoal_share::ShareIdParseError| JsError::new(&e.to_string()))?;
        self.transfers
            .delete_stored(&id)
            .await
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// `{ uploaded, downloaded, peers: [{ peerId, direct: { up, down },
    /// relayed: { up, down } }] }`: chunk bytes sent and received since
    /// start, in all and per peer by the path of the connection that carried them.
    #[wasm_bindgen(unchecked_return_type = "Stats")]
    pub fn stats(&self) -> Result<JsValue, JsError> {
        to_js(&self.transfers.stats())
    }

    /// Leaves the swarm and closes every connection.
    pub fn stop(&self) {
        let _ = self.commands.clone().try_send(Command::Stop);
    }
}

/// Switches for the end-to-end tests, only in builds with the `test-hooks`
/// feature (`make test` builds one; `make build`/`make run` do not).
#[cfg(feature = "test-hooks")]
#[wasm_bindgen]
impl Node {
    /// Serve corrupted chunks, to show that others reject them.
    #[wasm_bindgen(js_name = setTestCorruption)]
    pub fn set_test_corruption(&self, on: bool) {
        self.transfers.set_corrupt(on);
    }

    /// Wait `ms` milliseconds before sending each chunk (a slow sharer); 0
    /// turns it off.
    #[wasm_bindgen(js_name = setTestServeDelay)]
    pub fn set_test_serve_delay(&self, ms: u32) {
        self.transfers.set_serve_delay(ms);
    }

    /// Wait `ms` milliseconds before answering each session's `Hello` (a
    /// slow acceptor: the opener's handshake stays in progress); 0 turns it off.
    #[wasm_bindgen(js_name = setTestHelloDelay)]
    pub fn set_test_hello_delay(&self, ms: u32) {
        self.transfers.set_hello_delay(ms);
    }

    /// Chunk requests this node has received from other peers since start.
    #[wasm_bindgen(js_name = testRequestsReceived)]
    pub fn test_requests_received(&self) -> f64 {
        self.transfers.requests_received() as f64
    }

    /// Answer requests for a share's manifest with another share's manifest
    /// (a peer lying about what a link names).
    #[wasm_bindgen(js_name = setTestWrongManifest)]
    pub fn set_test_wrong_manifest(&self, on: bool) {
        self.transfers.set_wrong_manifest(on);
    }

    /// Let `writes` more chunk writes succeed, then fail every one (a full
    /// or broken disk); `null` turns it off.
    #[wasm_bindgen(js_name = setTestFailWritesAfter)]
    pub fn set_test_fail_writes_after(&self, writes: Option<u32>) {
        self.transfers.set_fail_writes_after(writes);
    }

    /// The `Hello`s other peers sent this node (hex of nonce ‖ proof): what
    /// a stranger learns from a downloader.
    #[wasm_bindgen(js_name = testHellosSeen)]
    pub fn test_hellos_seen(&self) -> Result<JsValue, JsError> {
        to_js(&self.transfers.hellos_seen())
    }

    /// Replays every recorded `Hello`, as this node, to `peer_id`; resolves
    /// to the answers: `'welcome'|'unknown'|'other'|'closed'|'error'`.
    #[wasm_bindgen(js_name = testReplayHellos)]
    pub async fn test_replay_hellos(&self, peer_id: String) -> Result<JsValue, JsError> {
        let peer = parse_peer(&peer_id)?;
        to_js(&self.transfers.replay_hellos(peer).await)
    }

    /// Sends `peer_id` one well-formed `Hello` for a share nobody has;
    /// resolves to its answer, as `testReplayHellos` does.
    #[wasm_bindgen(js_name = testRandomHello)]
    pub async fn test_random_hello(&self, peer_id: String) -> Result<JsValue, JsError> {
        let peer = parse_peer(&peer_id)?;
        to_js(&self.transfers.random_hello(peer).await)
    }

    /// Echo protocol (interop tests): `streams` streams to `peer_id` at once,
    /// `bytesEach` bytes each way, every byte checked.
    #[wasm_bindgen(js_name = testEcho)]
    pub async fn test_echo(
        &self,
        peer_id: String,
        streams: u32,
        bytes_each: u32,
    ) -> Result<JsValue, JsError> {
        let peer = parse_peer(&peer_id)?;
        to_js(&self.echo.run(peer, streams, bytes_each as usize).await)
    }

    /// Echo protocol: open a stream to `peer_id`, write `bytes`, drop it
    /// unclosed (a RESET).
    #[wasm_bindgen(js_name = testEchoReset)]
    pub async fn test_echo_reset(&self, peer_id: String, bytes: u32) -> Result<(), JsError> {
        let peer = parse_peer(&peer_id)?;
        self.echo
            .reset(peer, bytes as usize)
            .await
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// Echo protocol: how the streams this node served ended.
    #[wasm_bindgen(js_name = testEchoStats)]
    pub fn test_echo_stats(&self) -> Result<JsValue, JsError> {
        to_js(&self.echo.stats())
    }

    /// The share id of `link` as hex of its bytes.
    #[wasm_bindgen(js_name = testShareIdHex)]
    pub fn test_share_id_hex(&self, link: &str) -> Result<String, JsError> {
        crate::transfer::hooks::share_id_hex(link).map_err(|e| JsError::new(&e.to_string()))
    }

    /// Send `n` `GetManifest`s on every session this node opens from now on.
    #[wasm_bindgen(js_name = setTestManifestFlood)]
    pub fn set_test_manifest_flood(&self, n: u32) {
        self.transfers.set_manifest_flood(n);
    }

    /// Never answer `GetManifest` (a silent holder).
    #[wasm_bindgen(js_name = setTestSilentManifest)]
    pub fn set_test_silent_manifest(&self, on: bool) {
        self.transfers.set_silent_manifest(on);
    }

    /// Opens `streams` sessions to `peer_id` at once, each starting with a
    /// length prefix of `announce` bytes followed by `send` bytes; resolves
    /// to `{ opened, refused, closed }` (closed: by the other side within
    /// `wait_ms`).
    #[wasm_bindgen(js_name = testRawFlood)]
    pub async fn test_raw_flood(
        &self,
        peer_id: String,
        streams: u32,
        announce: f64,
        send: u32,
        wait_ms: u32,
    ) -> Result<JsValue, JsError> {
        let peer = parse_peer(&peer_id)?;
        let report = self
            .transfers
            .raw_flood(peer, streams, announce as u64, send, wait_ms)
            .await;
        to_js(&report)
    }

    /// Dials `peer_id` through the relay's circuit, in this node's swarm or
    /// not (a stranger reaching for a page it was never introduced to).
    #[wasm_bindgen(js_name = testDialRelayed)]
    pub fn test_dial_relayed(&self, peer_id: String) -> Result<(), JsError> {
        let peer = parse_peer(&peer_id)?;
        self.commands
            .clone()
            .try_send(Command::TestDialRelayed(peer))
            .map_err(|e| JsError::new(&format!("node not running: {e}")))
    }

    /// Send `n` copies of this node's bitfield on every session it opens
    /// from now on, as fast as the session's queue takes them.
    #[wasm_bindgen(js_name = setTestBitfieldFlood)]
    pub fn set_test_bitfield_flood(&self, n: u32) {
        self.transfers.set_bitfield_flood(n);
    }

    /// Bitfields the flood above has queued so far, on all sessions.
    #[wasm_bindgen(js_name = testBitfieldsFlooded)]
    pub fn test_bitfields_flooded(&self) -> f64 {
        self.transfers.bitfields_flooded() as f64
    }

    /// Bytes of the wasm linear memory (a high-water mark).
    #[wasm_bindgen(js_name = testMemoryBytes)]
    pub fn test_memory_bytes(&self) -> f64 {
        crate::transfer::hooks::memory_bytes()
    }
}

/// A PeerId from the page (test switches).
#[cfg(feature = "test-hooks")]
fn parse_peer(peer_id: &str) -> Result<PeerId, JsError> {
    peer_id
        .parse()
        .map_err(|e| JsError::new(&format!("bad PeerId: {e}")))
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

async fn fetch_info(relay: &str) -> Result<RelayInfo, JsError> {
    let url = format!("{}/api/info", relay.trim_end_matches('/'));
    let window = web_sys::window().ok_or_else(|| JsError::new("no window"))?;
    let unreachable = |e: JsValue| JsError::new(&format!("relay unreachable at {url}: {e:?}"));
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str(&url))
        .await
        .map_err(unreachable)?
        .dyn_into()
        .map_err(|_| JsError::new("fetch did not return a Response"))?;
    if !resp.ok() {
        return Err(JsError::new(&format!("{url} answered {}", resp.status())));
    }
    let json = JsFuture::from(resp.json().map_err(unreachable)?)
        .await
        .map_err(unreachable)?;
    crate::options::relay_info(&json)
        .map_err(|e| JsError::new(&format!("{url} sent unexpected JSON: {e}")))
}
