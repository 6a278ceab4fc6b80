//! TypeScript types of the JS API, for the `.d.ts` wasm-pack ships with the
//! package. The values themselves are the serde views in `state` and
//! `transfer`; these declarations must follow them (the e2e tests check
//! every field at run time, `tests/e2e/types.test.mjs`).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** An ICE server: a URL, or an RTCIceServer. */
export type IceServerOption = string | { urls: string | string[]; username?: string; credential?: string };

/** Options of `Node.start`; unknown keys are refused. */
export interface StartOptions {
  /** The relay's origin, e.g. `https://relay.example`. */
  relay: string;
  /** The swarm to join (default `"default"`). */
  swarm?: string;
  /** Most peers to be connected to, whoever dialed (default 16). */
  maxPeers?: number;
  /** Default: what the relay's `/api/info` offers. */
  iceServers?: IceServerOption[];
  /** Bound on one WebRTC attempt, in milliseconds. */
  webrtcTimeoutMs?: number;
  /**
   * A head start the page made before the wasm was ready: the relay's
   * `/api/info` JSON, and a WebSocket it opened to that info's `p2pPath`
   * (not yet used; close it if it receives anything). The node dials
   * through that socket if its URL is the relay's. Either may be missing;
   * a rejected promise is the same as none.
   */
  early?: Promise<{ info?: unknown; socket?: WebSocket | null }>;
}

export type PathKind = "direct" | "relayed";

export interface PeerInfo {
  peerId: string;
  path: PathKind;
  /** libp2p ping round trip over that path, in ms. */
  rttMs: number | null;
  /** Why the direct path failed, while relayed. */
  error: string | null;
}

export interface RelayStatus {
  state: "connecting" | "reconnecting" | "connected" | "reserved" | "failed" | "stopped";
  peerId: string | null;
  error: string | null;
}

export interface SourceInfo {
  peerId: string;
  /** The peer's best connection now. */
  path: PathKind | null;
  chunks: number;
  bytes: number;
  badChunks: number;
  banned: boolean;
  requested: number;
}

export interface DownloadInfo {
  shareId: string;
  name: string | null;
  size: number | null;
  mediaType: string | null;
  state: "looking" | "checking" | "downloading" | "done" | "failed";
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
  sources: SourceInfo[];
  error: string | null;
  /** A share of files: each file and its progress; null for one file. */
  files: FileInfo[] | null;
}

/** One file of a share of files (a folder). */
export interface FileInfo {
  /** Relative, `/`-separated; peer-supplied: show it as text. */
  path: string;
  size: number;
  /** Where it starts in the downloaded `File`: `file.slice(offset, offset + size)`. */
  offset: number;
  chunksDone: number;
  chunksTotal: number;
  /** Whether it is being fetched (`Node.want`). */
  wanted: boolean;
}

/** An entry of `Node.shareFiles`. */
export interface ShareEntry {
  /** Relative, `/`-separated, e.g. a `File`'s `webkitRelativePath`. */
  path: string;
  file: Blob;
}

export interface ShareInfo {
  shareId: string;
  name: string;
  size: number;
  mediaType: string;
  link: string;
  complete: boolean;
}

export interface StoredShare {
  shareId: string;
  name: string;
  size: number;
  mediaType: string;
  link: string;
  state: "partial" | "complete";
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  /** "here": this tab uses it; "elsewhere": another tab does. */
  inUse: "here" | "elsewhere" | null;
}

/** `performance.now()` (ms since navigation start) when each stage of joining was first reached. */
export interface Milestones {
  start: number | null;
  infoFetched: number | null;
  relayDial: number | null;
  relayConnected: number | null;
  reserved: number | null;
  registered: number | null;
  discovered: number | null;
  peerRelayed: number | null;
  webrtcStart: number | null;
  direct: number | null;
  /** A download's session with a peer holding the share. */
  holder: number | null;
  /** A download received and verified the manifest. */
  manifest: number | null;
  /** A download's data file was open for writing. */
  dataOpen: number | null;
  /** A download asked a peer for its first chunk. */
  firstRequest: number | null;
  firstChunk: number | null;
}

export interface PathBytes { up: number; down: number }

export interface Stats {
  uploaded: number;
  downloaded: number;
  peers: { peerId: string; direct: PathBytes; relayed: PathBytes }[];
}
"#;
