// README claims that had no test of their own (issue 11), one focused case each:
// - `Node.start` rejects bad options with a readable message, and the page shows a start-up
//   error in the page, as text, and sets `window.shoalError`;
// - a link whose share id does not match the manifest a peer sends is refused: no file from
//   that manifest is ever handed back (test switch `setTestWrongManifest`);
// - `download()` never hands back a partial file, and a failed download can be started again
//   (test switch `setTestFailWritesAfter`: the downloader's chunk writes start failing).
// The switches exist only in the test build of the wasm (cargo feature `test-hooks`).
// - the page's head start: the peer dials the relay through the WebSocket index.html opened,
//   opens its own when that one is gone, and a page that fails to start closes it.
// All waits are bounded; nothing asserts on durations.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { MiB, shareRandomInPage } from './files.mjs';
import * as h from './harness.mjs';

const TEST = { timeout: 8 * h.WAIT_MS };

/** Start downloading `link` in the page; the outcome lands in window.__dl[link]. */
function startDownloadInPage(link) {
  window.__dl ??= {};
  window.__dl[link] = { state: 'pending' };
  window.shoal.download(link).then(
    async (file) => {
      const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');
      const sha256 = hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
      window.__dl[link] = { state: 'resolved', isFile: file instanceof File, name: file.name, size: file.size, sha256 };
    },
    (e) => {
      window.__dl[link] = { state: 'rejected', isError: e instanceof Error, message: String(e?.message ?? e) };
    },
  );
}

/**
 * Init script: keeps every WebSocket the page creates in window.__sockets (index.html's
 * early one included); with `closeFirst`, the first is closed as soon as it exists.
 */
function recordSockets(closeFirst) {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      if (closeFirst && window.__sockets.length === 1) this.close();
    }

    close(...args) {
      this.closedByPage = true;
      return super.close(...args);
    }
  };
}

const sockets = (peer) =>
  peer.page.evaluate(() => window.__sockets.map((s) => ({ url: s.url, readyState: s.readyState, closedByPage: Boolean(s.closedByPage) })));

const outcome = (peer, link) => peer.page.evaluate((l) => window.__dl?.[l] ?? null, link);
const entryOf = (peer, link) =>
  peer.page.evaluate((l) => {
    const id = /share=([^&]+)/.exec(new URL(l).hash)[1];
    return window.shoal.downloads().find((d) => d.shareId === id) ?? null;
  }, link);

describe('README claims', () => {
  const { relay, open, it, swarm: newSwarm } = h.relaySuite('claims', TEST);

  async function launchPair() {
    const swarm = newSwarm();
    const peers = await Promise.all(['A', 'B'].map((name) => h.launchPeer(relay.url, { name, swarm })));
    open.push(...peers);
    await Promise.all(peers.map((p) => p.started()));
    await h.waitMeshDirect(peers);
    return peers;
  }

  it('Node.start rejects bad options with a readable message', async () => {
    const browser = await h.launchBrowser();
    const page = await (await browser.newContext()).newPage();
    open.push({ name: 'start', page, close: () => browser.close().catch(() => {}) });
    await page.goto(`${relay.url}/healthz`);
    const results = await page.evaluate(async () => {
      const mod = await import('/pkg/peer_wasm.js');
      await mod.default();
      const cases = {
        emptySwarm: { relay: location.origin, swarm: '   ' },
        longSwarm: { relay: location.origin, swarm: 'x'.repeat(300) },
        notHttp: { relay: 'ftp://example.org', swarm: 's' },
        notUrl: { relay: 'no url here', swarm: 's' },
        unknownOption: { relay: location.origin, swarm: 's', maxPeer: 3 },
        noRelay: { swarm: 's' },
      };
      const out = {};
      for (const [name, options] of Object.entries(cases)) {
        try {
          const node = await mod.Node.start(options);
          node.stop();
          out[name] = { started: true };
        } catch (e) {
          out[name] = { started: false, isError: e instanceof Error, message: String(e?.message ?? e) };
        }
      }
      return out;
    });
    const expect = {
      emptySwarm: /swarm name must be 1 to 200 bytes/,
      longSwarm: /swarm name must be 1 to 200 bytes/,
      notHttp: /scheme|ftp/i,
      notUrl: /relay is not a URL: no url here/,
      unknownOption: /invalid options: unknown field `maxPeer`/,
      noRelay: /invalid options: missing field `relay`/,
    };
    for (const [name, re] of Object.entries(expect)) {
      const r = results[name];
      assert.equal(r.started, false, `${name}: Node.start resolved: ${JSON.stringify(results)}`);
      assert.equal(r.isError, true, `${name}: rejected with something that is not an Error: ${JSON.stringify(r)}`);
      assert.match(r.message, re, `${name}: ${JSON.stringify(r)}`);
    }
  });

  it('the page shows a start-up error as text and sets window.shoalError', async () => {
    // A swarm name over 200 bytes makes Node.start fail; it carries markup, which must stay text.
    const swarm = `<img id="injected" src="x"><b id="bold">bold</b>${'x'.repeat(300)}`;
    const peer = await h.launchPeer(relay.url, { name: 'page', swarm, initScripts: [[recordSockets, false]] });
    open.push(peer);
    const seen = await h.waitFor(
      'the page to set window.shoalError',
      () =>
        peer.page.evaluate(() => ({
          shoal: Boolean(window.shoal),
          shoalError: window.shoalError ?? null,
          bannerHidden: document.getElementById('error').hidden,
          bannerText: document.getElementById('error').textContent,
          state: document.documentElement.dataset.shoal ?? null,
          injected: Boolean(document.getElementById('injected') || document.getElementById('bold')),
          swarmShown: document.getElementById('swarm-name').textContent,
        })),
      (v) => v.shoalError !== null || v.shoal,
    );
    assert.equal(seen.shoal, false, `the node started: ${JSON.stringify(seen)}`);
    assert.match(seen.shoalError, /swarm name must be 1 to 200 bytes/);
    assert.equal(seen.bannerHidden, false, `the error banner is hidden: ${JSON.stringify(seen)}`);
    assert.match(seen.bannerText, /swarm name must be 1 to 200 bytes/);
    assert.equal(seen.state, 'error');
    assert.equal(seen.injected, false, 'markup from the URL was rendered as HTML');
    assert.equal(seen.swarmShown, swarm, 'the swarm name is shown as text');
    // No peer took the relay socket index.html opened: the page closed it.
    await h.waitFor('the page to close the early relay socket', () => sockets(peer), (v) => v.length === 1 && v[0].closedByPage);
  });

  /** A page (recordSockets(closeFirst)) holding its relay reservation; its WebSockets. */
  async function reservedSockets(name, closeFirst) {
    const peer = await h.launchPeer(relay.url, { name, swarm: newSwarm(), initScripts: [[recordSockets, closeFirst]] });
    open.push(peer);
    await peer.started();
    await h.waitFor('a relay reservation', peer.relay, (r) => r?.state === 'reserved');
    return sockets(peer);
  }

  it('the peer dials the relay through the WebSocket index.html opened while the wasm loaded', async () => {
    const seen = await reservedSockets('early', false);
    assert.equal(seen.length, 1, `one WebSocket, not a second one by the peer: ${JSON.stringify(seen)}`);
    assert.equal(new URL(seen[0].url).pathname, '/p2p');
    assert.deepEqual([seen[0].readyState, seen[0].closedByPage], [1, false], 'the socket is open');
  });

  it('an early WebSocket that closed before the peer started is replaced by the peer\'s own', async () => {
    const seen = await reservedSockets('early-closed', true);
    assert.equal(seen.length, 2, JSON.stringify(seen));
    assert.deepEqual(seen.map((s) => s.readyState), [3, 1], 'the early one closed, the peer\'s own open');
  });

  it('a manifest that does not match the link is refused; only the linked file is handed back', async () => {
    const [a, b] = await launchPair();
    // A holds two files; with the switch on, it answers for X with Y's (valid) manifest.
    const y = await a.page.evaluate(shareRandomInPage, { size: 1 * MiB + 7, name: 'decoy.bin' });
    const x = await a.page.evaluate(shareRandomInPage, { size: 2 * MiB + 3, name: 'wanted.bin' });
    await a.page.evaluate(() => window.shoal.setTestWrongManifest(true));
    await b.page.evaluate(startDownloadInPage, x.link);

    const refused = await h.waitFor(
      "B's download entry to report a manifest that does not match the link",
      () => entryOf(b, x.link),
      (e) => typeof e?.error === 'string' && /does not match the link/.test(e.error),
      { interval: 50 },
    );
    assert.equal(refused.state, 'looking', `B took a manifest: ${JSON.stringify(refused)}`);
    assert.equal(refused.name, null, `B shows a name from a refused manifest: ${JSON.stringify(refused)}`);
    assert.deepEqual(await outcome(b, x.link), { state: 'pending' }, 'download() settled on a refused manifest');

    // Once A answers honestly, B gets the file the link names, not the decoy.
    await a.page.evaluate(() => window.shoal.setTestWrongManifest(false));
    const got = await h.waitFor('B to finish the download', () => outcome(b, x.link), (o) => o?.state !== 'pending');
    assert.equal(got.state, 'resolved', JSON.stringify(got));
    assert.equal(got.name, 'wanted.bin');
    assert.equal(got.sha256, x.sha256, "B's file is not the linked one");
    assert.notEqual(got.sha256, y.sha256);
    const entry = await entryOf(b, x.link);
    assert.equal(entry.state, 'done');
    assert.equal(entry.error, null);
  });

  it('download() hands back no partial file when it fails, and the download can be started again', async () => {
    const [a, b] = await launchPair();
    const size = 8 * MiB + 5;
    const x = await a.page.evaluate(shareRandomInPage, { size, name: 'again.bin' });
    // B's chunk writes fail after the first 5 (of 33): the download fails part-way.
    await b.page.evaluate(() => window.shoal.setTestFailWritesAfter(5));
    await b.page.evaluate(startDownloadInPage, x.link);
    const failed = await h.waitFor('B\'s download to settle', () => outcome(b, x.link), (o) => o?.state !== 'pending');
    assert.equal(failed.state, 'rejected', `download() resolved although writes failed: ${JSON.stringify(failed)}`);
    assert.equal(failed.isError, true);
    assert.match(failed.message, /storage full: \d+ MiB free needed/);
    const entry = await entryOf(b, x.link);
    assert.equal(entry.state, 'failed', JSON.stringify(entry));
    assert.match(entry.error, /storage full/);
    assert.ok(entry.chunksDone < entry.chunksTotal, `the failure was not part-way: ${JSON.stringify(entry)}`);

    // Started again (same link, same page): it completes, intact.
    await b.page.evaluate(() => window.shoal.setTestFailWritesAfter(null));
    await b.page.evaluate(startDownloadInPage, x.link);
    const got = await h.waitFor('B\'s second download to settle', () => outcome(b, x.link), (o) => o?.state !== 'pending', {
      timeout: 4 * h.WAIT_MS,
    });
    assert.equal(got.state, 'resolved', JSON.stringify(got));
    assert.equal(got.size, size);
    assert.equal(got.sha256, x.sha256);
    assert.equal((await entryOf(b, x.link)).state, 'done');
  });
});
