// Files for the tests: made, shared, downloaded and hashed inside the pages,
// and read back from a page's downloads(). One place for every test file
// (e2e, the NAT lab, benchmarks) that moves files between browsers.

import * as h from './harness.mjs';

export const MiB = 1024 * 1024;

/** Bound for one whole download: generous, the machine has 2 cores shared with other browsers. */
export const DOWNLOAD_MS = Number(process.env.SHOAL_DOWNLOAD_MS ?? 6 * h.WAIT_MS);

// ---- evaluated in pages (self-contained: Playwright serialises them) ----

/** Make a random file of `size` bytes, hash it, share it; return { link, sha256, size }. */
export async function shareRandomInPage({ size, name }) {
  const SLICE = 64 * 1024; // crypto.getRandomValues fills at most 65536 bytes per call
  let parts = [];
  for (let off = 0; off < size; off += SLICE) {
    const part = new Uint8Array(Math.min(SLICE, size - off));
    crypto.getRandomValues(part);
    parts.push(part);
  }
  const blob = new Blob(parts);
  parts = null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  const link = name === undefined ? await window.shoal.share(blob) : await window.shoal.share(blob, name);
  return { link, sha256, size: blob.size };
}

/** Download `link`, hash the File; return { name, size, isFile, sha256 }. */
export async function downloadInPage(link) {
  const file = await window.shoal.download(link);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  return { name: file.name, size: file.size, isFile: file instanceof File, sha256 };
}

// ---- from the test ----

/** The share id in a link's fragment. */
export function shareIdOf(link) {
  const m = /[#&]share=([^&]+)/.exec(new URL(link).hash);
  if (!m) throw new Error(`no #share= in link ${link}`);
  return m[1];
}

/** `peer`'s downloads() entry for `shareId`, or null. */
export const entryOf = (peer, shareId) =>
  peer.page.evaluate((id) => window.shoal.downloads().find((d) => d.shareId === id) ?? null, shareId);

/** A download entry, short enough for an error message. */
export const brief = (e) =>
  e && { state: e.state, chunks: `${e.chunksDone}/${e.chunksTotal}`, bytes: `${e.bytesDone}/${e.bytesTotal}`, sources: e.sources, error: e.error };

/** `peer` makes a random file of `size` bytes and shares it: { link, sha256, size }. */
export function shareRandom(peer, size, name) {
  return h.within(`${peer.name} to make and share a ${size}-byte file`, peer.page.evaluate(shareRandomInPage, { size, name }), 4 * h.WAIT_MS);
}

/**
 * Start `peer` downloading `link` (bounded by `timeout`); the promise gives { name, size, isFile,
 * sha256 }. On timeout the error says how far the download got and whom the peer saw. Returns
 * the promise so callers can start several before awaiting.
 */
export function startDownload(peer, link, { timeout = DOWNLOAD_MS } = {}) {
  const shareId = shareIdOf(link);
  return h.within(`${peer.name} to download ${link}`, peer.page.evaluate(downloadInPage, link), timeout, async () =>
    `${peer.name}'s download entry: ${JSON.stringify(brief(await entryOf(peer, shareId)))}; peers: ${JSON.stringify(await peer.peers())}`,
  );
}
