// shoal itself, through the page's public API only (window.shoal):
// share(File) → link; download(link) → File; downloads(); stats(); peers().

import { hashRangesInPage, hashRanges, spotRanges } from './files.mjs';
import { openTab, shoalStarted, giveFile } from './browsers.mjs';
import { poll, throttle } from './util.mjs';
import * as h from '../../e2e/harness.mjs';

/** Open a shoal tab in `peer` joined to `swarm`; resolves once window.shoal exists. */
export async function openShoal(peer, swarm, label = peer.name) {
  const page = await openTab(peer, `/?swarm=${encodeURIComponent(swarm)}`, label);
  const peerId = await shoalStarted(page, label);
  return { page, peerId, label, peer };
}

/** Wait until every tab lists every other one as a direct peer (bounded). */
export async function waitMesh(tabs, timeout = 2 * h.WAIT_MS) {
  await Promise.all(
    tabs.map((t) =>
      poll(
        `${t.label}: all ${tabs.length - 1} other tabs as direct peers`,
        () => t.page.evaluate(() => window.shoal.peers()),
        (ps) => tabs.every((o) => o === t || ps.some((p) => p.peerId === o.peerId && p.path === 'direct')),
        { timeout, interval: 200 },
      ),
    ),
  );
}

/** Give `filePath` to the tab and share it; returns { link, shareSeconds }. */
export async function share(tab, filePath, name) {
  await giveFile(tab.page, filePath);
  return tab.page.evaluate(async (n) => {
    const t0 = performance.now();
    const link = await window.shoal.share(window.__benchFile, n);
    return { link, shareSeconds: (performance.now() - t0) / 1000 };
  }, name);
}

// Evaluated in a page: start download(link) in the background.
function startDownload(link) {
  const now = () => performance.timeOrigin + performance.now();
  const st = (window.__dl = { t0: now(), t1: null, size: null, error: null });
  window.shoal.download(link).then(
    (file) => {
      st.t1 = now();
      st.size = file.size;
      window.__dlFile = file;
    },
    (e) => {
      st.t1 = now();
      st.error = String(e?.message ?? e);
    },
  );
}

function downloadStatus() {
  const d = window.shoal.downloads();
  return { ...window.__dl, d: d[d.length - 1] ?? null, stats: window.shoal.stats() };
}

/** Start downloads in all `tabs` at once; resolve when all have resolved. */
export async function downloadAll(tabs, link, size, { timeoutMs, progress = () => {} }) {
  await Promise.all(tabs.map((t) => t.page.evaluate(startDownload, link)));
  const tick = throttle(progress);
  const statuses = await poll(
    `shoal: ${tabs.map((t) => t.label).join(', ')} to finish downloading`,
    async () => {
      const all = await Promise.all(tabs.map((t) => t.page.evaluate(downloadStatus)));
      const failed = all.findIndex((s) => s.error);
      if (failed >= 0) throw new Error(`${tabs[failed].label}: download(link) rejected: ${all[failed].error}`);
      tick(all.map((s) => s.d?.bytesDone ?? 0));
      return all;
    },
    (all) => all.every((s) => s.t1 !== null),
    { timeout: timeoutMs, interval: 200 },
  );
  for (const [i, s] of statuses.entries()) {
    if (s.size !== size) throw new Error(`${tabs[i].label}: downloaded File has ${s.size} bytes, expected ${size}`);
  }
  return statuses;
}

/** Compare spot ranges of the downloaded File (window.__dlFile) with the file on disk. */
export async function verify(tab, filePath, size) {
  const ranges = spotRanges(size);
  const [want, got] = [hashRanges(filePath, ranges), await tab.page.evaluate(hashRangesInPage, ['__dlFile', ranges])];
  if (want.join() !== got.join()) throw new Error(`${tab.label}: downloaded bytes differ from the shared file`);
  return ranges.length;
}

export const stats = (tab) => tab.page.evaluate(() => window.shoal.stats());

/**
 * An init script (runs in the page before its scripts): `window.__bench` gets
 * performance.now() — ms since navigation start — of each stage of the page joining
 * its swarm. Used by connect.mjs and lab.mjs.
 * - From the page: HTML received (`html`), app.js fetched (`appFetched`) and running
 *   (`app`), the wasm fetched (`wasmFetched`) and ready (`wasmReady`), `Node.start`
 *   resolved (`started`).
 * - From the browser's objects, wrapped here: the first WebSocket opened (`wsOpen`:
 *   the relay's), and of the first RTCPeerConnection: created (`pcCreated`), its first
 *   SDP applied (`sdp`: signaling state left `stable`), ICE `checking` and `connected`
 *   (`iceChecking`, `iceConnected`), `connectionState` `connected` (`dtlsConnected`:
 *   ICE and DTLS done), the first data channel open (`channelOpen`: SCTP up).
 * - From the node: relay reservation accepted (`reserved`) and the first direct peer
 *   in `peers()` (`firstDirect`), seen through onChange; and, where the build has it,
 *   `node.milestones()` (the node's own clock for stages JS cannot see), which
 *   `benchMarks()` merges in with an `n` prefix (`nRelayConnected`, ...).
 */
export function recordMilestones() {
  let node;
  const marks = (window.__bench = {});
  const mark = (key) => {
    if (marks[key] === undefined) marks[key] = performance.now();
  };
  const NativeWs = window.WebSocket;
  if (typeof NativeWs === 'function') {
    window.WebSocket = class extends NativeWs {
      constructor(...args) {
        super(...args);
        mark('wsCreated');
        this.addEventListener('open', () => mark('wsOpen'));
      }
    };
  }
  const NativePc = window.RTCPeerConnection;
  if (typeof NativePc === 'function') {
    let first = true;
    window.RTCPeerConnection = class extends NativePc {
      constructor(...args) {
        super(...args);
        if (!first) return;
        first = false;
        mark('pcCreated');
        this.addEventListener('signalingstatechange', () => this.signalingState !== 'stable' && mark('sdp'));
        this.addEventListener('iceconnectionstatechange', () => {
          if (this.iceConnectionState === 'checking') mark('iceChecking');
          if (this.iceConnectionState === 'connected' || this.iceConnectionState === 'completed') mark('iceConnected');
        });
        this.addEventListener('connectionstatechange', () => this.connectionState === 'connected' && mark('dtlsConnected'));
        // The answerer hears of channels the dialer opened once they are open.
        this.addEventListener('datachannel', () => mark('channelOpen'));
      }

      createDataChannel(...args) {
        const dc = super.createDataChannel(...args);
        dc.addEventListener('open', () => mark('channelOpen'));
        return dc;
      }
    };
  }
  const check = () => {
    if (marks.reserved === undefined && node.relay().state === 'reserved') marks.reserved = performance.now();
    if (marks.firstDirect === undefined && node.peers().some((p) => p.path === 'direct')) {
      marks.firstDirect = performance.now();
    }
    // Builds without node.milestones(): the first progress event that counts a chunk.
    if (marks.firstChunk === undefined && node.downloads().some((d) => d.chunksDone > 0)) marks.firstChunk = performance.now();
  };
  // The page assigns window.shoal once Node.start resolved: hook in right there.
  Object.defineProperty(window, 'shoal', {
    configurable: true,
    enumerable: true,
    get: () => node,
    set(value) {
      node = value;
      marks.started = performance.now();
      // The page's own stages (www/index.html, page.js: www/app.js bundled), from navigation start too.
      const at = (name) => performance.getEntriesByName(name)[0]?.startTime;
      const fetched = (suffix) => performance.getEntriesByType('resource').find((e) => e.name.endsWith(suffix))?.responseEnd;
      marks.html = performance.getEntriesByType('navigation')[0]?.responseEnd;
      marks.appFetched = fetched('/page.js') ?? fetched('/app.js'); // app.js unbundled before page.js
      marks.app = at('shoal:app');
      marks.wasmFetched = fetched('peer_wasm_bg.wasm');
      marks.wasmReady = at('shoal:wasm-ready');
      node.onChange(check);
      check();
    },
  });
}

/** Evaluated in a page with recordMilestones: its marks, and the node's own milestones (n-prefixed). */
export function benchMarks() {
  const out = { ...window.__bench };
  const m = typeof window.shoal?.milestones === 'function' ? window.shoal.milestones() : {};
  for (const [k, v] of Object.entries(m)) if (typeof v === 'number') out[`n${k[0].toUpperCase()}${k.slice(1)}`] = v;
  return out;
}
