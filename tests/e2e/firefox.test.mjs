// Firefox (Debian's firefox-esr) as a shoal peer, beside Chromium and beside another Firefox:
// joining, a direct WebRTC connection (its selected ICE pair checked from the page's own
// RTCPeerConnection), files both ways verified by SHA-256, and the download kept in OPFS.
// Skips with the reason when firefox-esr is missing. Waits are bounded; no durations asserted.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import * as F from './files.mjs';
import { firefoxUnavailable, launchFirefoxPeer } from './firefox.mjs';
import * as h from './harness.mjs';

const SIZE = 16 * F.MiB;
const TEST = { timeout: 6 * h.WAIT_MS + 2 * F.DOWNLOAD_MS };
const unavailable = firefoxUnavailable();

// In a page: every file in the origin's OPFS, with its path and size.
async function opfsFilesInPage() {
  const out = [];
  async function walk(dir, prefix) {
    for await (const [name, handle] of dir.entries()) {
      if (handle.kind === 'directory') await walk(handle, `${prefix}${name}/`);
      else out.push({ path: `${prefix}${name}`, size: (await handle.getFile()).size });
    }
  }
  await walk(await navigator.storage.getDirectory(), '');
  return out;
}

describe('Firefox', () => {
  let relay;
  const open = [];
  let swarms = 0;
  const swarm = () => `firefox-${++swarms}-${Date.now().toString(36)}`;

  before(async () => {
    if (!unavailable) relay = await h.startRelay();
  });

  after(async () => {
    await h.closeAll();
    await relay?.stop();
  });

  const it = h.peerTest(open, TEST, () => {
    if (unavailable) return unavailable;
    return null;
  });

  const firefox = async (name, s) => {
    const peer = await launchFirefoxPeer(relay.url, { name, swarm: s });
    open.push(peer);
    await peer.started();
    return peer;
  };
  const chromium = async (name, s) => {
    const peer = await h.launchPeer(relay.url, { name, swarm: s });
    open.push(peer);
    await peer.started();
    return peer;
  };

  /** `from` shares SIZE random bytes; `to` downloads them: same SHA-256, `from` the direct source. */
  async function transfer(t, from, to) {
    const orig = await F.shareRandom(from, SIZE, `${from.name}-to-${to.name}.bin`);
    const got = await F.startDownload(to, orig.link);
    assert.equal(got.sha256, orig.sha256, `${to.name}'s file differs from ${from.name}'s`);
    assert.equal(got.size, SIZE);
    assert.equal(got.isFile, true);
    const entry = await F.entryOf(to, F.shareIdOf(orig.link));
    assert.equal(entry?.state, 'done', JSON.stringify(F.brief(entry)));
    assert.deepEqual(entry.sources.map((s) => [s.peerId, s.path]), [[from.peerId, 'direct']], JSON.stringify(entry.sources));
    t.diagnostic(`${from.name} -> ${to.name}: ${SIZE} bytes, SHA-256 equal, source direct`);
    return orig;
  }

  it('a Chromium page and a Firefox page connect directly and move a file both ways', async (t) => {
    const s = swarm();
    const [c, f] = await Promise.all([chromium('C', s), firefox('F', s)]);
    await h.waitMeshDirect([c, f]);
    const pairs = await h.waitFor('F: a selected ICE pair, succeeded, without a TURN candidate', () => f.page.evaluate(h.selectedPairsInPage), (pcs) => h.directPairs(pcs).length >= 1);
    t.diagnostic(`F's selected pairs: ${JSON.stringify(h.directPairs(pairs))}`);
    await transfer(t, c, f);
    await transfer(t, f, c);
  });

  it('two Firefox pages connect directly; the download lives in OPFS', async (t) => {
    const s = swarm();
    const [f1, f2] = await Promise.all([firefox('F1', s), firefox('F2', s)]);
    await h.waitMeshDirect([f1, f2]);
    await transfer(t, f1, f2);
    const files = await f2.page.evaluate(opfsFilesInPage);
    t.diagnostic(`F2's OPFS: ${JSON.stringify(files)}`);
    assert.ok(files.some((f) => f.size >= SIZE), `no file of ${SIZE} bytes in F2's OPFS: ${JSON.stringify(files)}`);
  });

  it('the page runs in Firefox: it shows its PeerId and its peer as text, and no page error', async () => {
    const s = swarm();
    const [f, c] = await Promise.all([firefox('F', s), chromium('C', s)]);
    await h.waitMeshDirect([f, c]);
    await h.waitFor('the Firefox page to show its PeerId and its peer', () => f.page.evaluate(() => document.body.innerText), (text) => text.includes(f.peerId) && text.includes(c.peerId));
    const errors = h.logLines('F').filter((l) => l.startsWith('pageerror'));
    assert.deepEqual(errors, []);
  });
});
