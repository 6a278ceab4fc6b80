// WebTorrent 3 in the same browser processes: the ESM browser bundle
// (webtorrent/dist/webtorrent.min.js, imported by a blank page of the bench
// server, lib/server.mjs), a local WebSocket
// tracker (bittorrent-tracker's Server on 127.0.0.1, no HTTP/UDP), no DHT, no
// LSD, no uTP, no web seeds, no public trackers (announce/announceList set, so
// create-torrent adds none), rtcConfig { iceServers: [] } for simple-peer.
// Piece length 256 KiB (shoal's chunk size). Downloads go to WebTorrent's
// default browser store (fsa-chunk-store, i.e. OPFS).

import { Server } from 'bittorrent-tracker';
import { giveFile, openTab } from './browsers.mjs';
import { poll, throttle } from './util.mjs';

export const PIECE_LENGTH = 256 * 1024;

/** A WebSocket tracker on 127.0.0.1; { url, stop }. */
export function startTracker() {
  return new Promise((resolve, reject) => {
    const server = new Server({ udp: false, http: false, ws: true, stats: false });
    server.on('error', (e) => reject(e));
    server.on('warning', () => {});
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.http.address();
      resolve({
        url: `ws://127.0.0.1:${port}`,
        stop: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

// ---- evaluated in the pages --------------------------------------------------

async function wtInit() {
  const { default: WebTorrent } = await import('/webtorrent.min.js');
  const client = new WebTorrent({
    dht: false,
    lsd: false,
    utp: false,
    natUpnp: false,
    natPmp: false,
    webSeeds: false,
    tracker: { rtcConfig: { iceServers: [] } },
  });
  client.on('error', (e) => console.error(`webtorrent client error: ${e?.message ?? e}`));
  window.__wt = { client, version: WebTorrent.VERSION };
  return WebTorrent.VERSION;
}

function wtSeed([tracker, pieceLength]) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const timer = setTimeout(() => reject(new Error('seed() did not call back within 600 s')), 600_000);
    const torrent = window.__wt.client.seed(
      window.__benchFile,
      { announce: [tracker], announceList: [[tracker]], pieceLength, name: window.__benchFile.name, private: false },
      (t) => {
        clearTimeout(timer);
        resolve({ magnetURI: t.magnetURI, pieceLength: t.pieceLength, seedSeconds: (performance.now() - t0) / 1000 });
      },
    );
    torrent.on('error', (e) => { clearTimeout(timer); reject(new Error(String(e?.message ?? e))); });
    window.__wt.seeding = torrent;
  });
}

function wtStartAdd([magnetURI, tracker]) {
  const now = () => performance.timeOrigin + performance.now();
  const st = (window.__wt.dl = { t0: now(), firstByte: null, t1: null, error: null, length: null });
  const torrent = window.__wt.client.add(magnetURI, { announce: [tracker] });
  window.__wt.leeching = torrent;
  torrent.on('download', () => { if (st.firstByte === null) st.firstByte = now(); });
  torrent.on('done', () => { st.t1 = now(); st.length = torrent.length; });
  torrent.on('error', (e) => { st.error = String(e?.message ?? e); });
}

function wtStatus() {
  const t = window.__wt.leeching;
  return { ...window.__wt.dl, downloaded: t?.downloaded ?? 0, numPeers: t?.numPeers ?? 0 };
}

function wtSeederStats() {
  const t = window.__wt.seeding;
  return { uploaded: t?.uploaded ?? 0, numPeers: t?.numPeers ?? 0 };
}

function wtDestroy() {
  return new Promise((resolve) => {
    if (!window.__wt?.client) return resolve();
    const timer = setTimeout(resolve, 5_000);
    window.__wt.client.destroy(() => { clearTimeout(timer); resolve(); });
  });
}

// ---- driven from node -------------------------------------------------------

/** A blank tab of `peer` with a WebTorrent client; { page, label, version }. */
export async function openWebTorrent(peer, label = peer.name) {
  const page = await openTab(peer, `${peer.benchOrigin}/blank.html`, label);
  const version = await page.evaluate(wtInit);
  return { page, label, version, peer };
}

/** Seed `filePath` from `tab`; returns { magnetURI, pieceLength, seedSeconds }. */
export async function seed(tab, filePath, tracker) {
  await giveFile(tab.page, filePath);
  return tab.page.evaluate(wtSeed, [tracker, PIECE_LENGTH]);
}

/** Add the magnet in all `tabs` at once; resolve when every torrent is done. */
export async function leechAll(tabs, magnetURI, tracker, size, { timeoutMs, progress = () => {} }) {
  await Promise.all(tabs.map((t) => t.page.evaluate(wtStartAdd, [magnetURI, tracker])));
  const tick = throttle(progress);
  const all = await poll(
    `webtorrent: ${tabs.map((t) => t.label).join(', ')} to finish`,
    async () => {
      const s = await Promise.all(tabs.map((t) => t.page.evaluate(wtStatus)));
      const failed = s.findIndex((x) => x.error);
      if (failed >= 0) throw new Error(`${tabs[failed].label}: torrent error: ${s[failed].error}`);
      tick(s.map((x) => x.downloaded));
      return s;
    },
    (s) => s.every((x) => x.t1 !== null),
    { timeout: timeoutMs, interval: 200 },
  );
  for (const [i, s] of all.entries()) {
    if (s.length !== size) throw new Error(`${tabs[i].label}: torrent length ${s.length}, expected ${size}`);
  }
  return all;
}

export const seederStats = (tab) => tab.page.evaluate(wtSeederStats);
export const destroy = (tab) => tab.page.evaluate(wtDestroy).catch(() => {});
