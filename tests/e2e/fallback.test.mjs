// NAT fallback: when no direct path can be made, the relayed connection stays
// up, the peer is reported as "relayed", and files arrive — end-to-end
// encrypted through the relay's circuit — from the start, not after a wait.
//
// One browser runs with `--webrtc-ip-handling-policy=disable_non_proxied_udp`:
// it gathers no ICE candidates, so every WebRTC attempt to it fails (ICE stays
// `new`; our own timeout ends each attempt).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import * as h from './harness.mjs';

const TEST = { timeout: 6 * h.WAIT_MS };

describe('without a direct path, peers stay connected through the relay', () => {
  let relay;
  let blockedBrowser;
  let a;
  let b;

  before(async () => {
    relay = await h.startRelay();
    a = await h.launchPeer(relay.url, { name: 'A' });
    blockedBrowser = await chromium.launch({
      executablePath: h.CHROMIUM,
      headless: true,
      args: [...h.CHROMIUM_ARGS, '--webrtc-ip-handling-policy=disable_non_proxied_udp'],
      timeout: h.WAIT_MS,
    });
    b = await h.openPage(blockedBrowser, relay.url, { name: 'B (no ICE)' });
    await a.started();
    await b.started();
  });

  after(async () => {
    await a?.close();
    await blockedBrowser?.close().catch(() => {});
    await relay?.stop();
    await h.closeAll();
  });

  // First, while the first WebRTC attempt is still running (it can only end
  // by our timeout, ICE stays `new`): chunks must already flow through the
  // relay. No fixed wait before the fallback, and no timing threshold here:
  // the order of events is the assertion. An error, once recorded on a
  // relayed peer, stays; so a sample taken after chunks were seen that shows
  // no error on either side means none had been recorded when they arrived.
  test('transfers start over the relay at once, before WebRTC has given up', TEST, h.withLogs(async () => {
    const listed = (ps, id) => ps.some((p) => p.peerId === id && p.path === 'relayed');
    await h.waitFor('A and B to list each other as relayed', async () => [await a.peers(), await b.peers()],
      ([pa, pb]) => listed(pa, b.peerId) && listed(pb, a.peerId));
    const size = 8 * 1024 * 1024;
    const link = await a.page.evaluate(async (size) => {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      return window.shoal.share(new Blob([bytes]), 'early.bin');
    }, size);
    await b.page.evaluate((link) => {
      window.__early = window.shoal.download(link).then((f) => f.size, (e) => `error: ${e.message}`);
    }, link);
    const sample = async () => {
      const entry = await b.page.evaluate(() => window.shoal.downloads().find((d) => d.name === 'early.bin') ?? null);
      return { entry, pa: await a.peers(), pb: await b.peers() };
    };
    const first = await h.waitFor('B to receive a first chunk', sample, (v) => v.entry?.chunksDone > 0, { interval: 50 });
    const errors = [...first.pa, ...first.pb].filter((p) => p.error);
    assert.deepEqual(errors, [], `a WebRTC attempt had already failed when the first chunks arrived: ${JSON.stringify(first)}`);
    assert.ok(listed(first.pa, b.peerId) && listed(first.pb, a.peerId), `not relayed: ${JSON.stringify(first)}`);
    assert.deepEqual(first.entry.sources.map((s) => [s.peerId, s.path]), [[a.peerId, 'relayed']]);
    assert.equal(await b.page.evaluate(() => window.__early), size);
  }, () => [a, b]));

  test('a failed WebRTC dial leaves the peer listed as relayed, with the reason', TEST, h.withLogs(async () => {
    // Whichever side dials, the attempt fails and its error is recorded on the
    // dialer's entry; both sides keep the relayed connection.
    const failed = (ps, id) => ps.some((p) => p.peerId === id && p.path === 'relayed' && p.error);
    const listed = (ps, id) => ps.some((p) => p.peerId === id && p.path === 'relayed');
    await h.waitFor('a WebRTC failure recorded on one side', async () => [await a.peers(), await b.peers()],
      ([pa, pb]) => failed(pa, b.peerId) || failed(pb, a.peerId));
    const [pa, pb] = [await a.peers(), await b.peers()];
    assert.ok(listed(pa, b.peerId), `A lists B as relayed: ${JSON.stringify(pa)}`);
    assert.ok(listed(pb, a.peerId), `B lists A as relayed: ${JSON.stringify(pb)}`);
    // Neither side ever reports a direct path to the other.
    assert.ok(!pa.concat(pb).some((p) => p.path === 'direct'));
  }, () => [a, b]));

  test('a file still arrives, through the relay, verified', TEST, h.withLogs(async () => {
    const { link, sha } = await a.page.evaluate(async () => {
      const bytes = new Uint8Array(3 * 1024 * 1024 + 12345);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      const blob = new Blob([bytes]);
      const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');
      return { link: await window.shoal.share(blob, 'fallback.bin'), sha: hex(await crypto.subtle.digest('SHA-256', bytes)) };
    });
    const relayBefore = await h.relayBytes(relay);
    const got = await b.page.evaluate(async (link) => {
      const file = await window.shoal.download(link);
      const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, '0')).join('');
      return {
        sha: hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer())),
        size: file.size,
        downloads: window.shoal.downloads(),
        stats: window.shoal.stats(),
      };
    }, link);
    assert.equal(got.sha, sha);
    assert.equal(got.size, 3 * 1024 * 1024 + 12345);
    // All of it crossed the relay (in from A, out to B), by the relay's own count.
    const relayed = (await h.relayBytes(relay)) - relayBefore;
    assert.ok(relayed >= 2 * got.size, `only ${relayed} bytes crossed the relay for a ${got.size}-byte file`);
    const sources = got.downloads[0].sources;
    assert.deepEqual(sources.map((s) => [s.peerId, s.path]), [[a.peerId, 'relayed']]);
    // By B's own per-path count (this and the first test's file): every chunk byte it received
    // came over a relayed connection, none over a direct one; A sent them all that way.
    const statsA = await a.page.evaluate(() => window.shoal.stats());
    const perPath = (st, peer) => st.peers.find((p) => p.peerId === peer.peerId);
    const bFromA = perPath(got.stats, a);
    assert.ok(bFromA, `B's stats list no bytes from A: ${JSON.stringify(got.stats)}`);
    assert.equal(bFromA.direct.down, 0, `B received chunk bytes over a direct path: ${JSON.stringify(got.stats)}`);
    assert.equal(bFromA.relayed.down, got.stats.downloaded, `B's relayed bytes from A are not all it downloaded: ${JSON.stringify(got.stats)}`);
    assert.ok(bFromA.relayed.down >= got.size, JSON.stringify(got.stats));
    const aToB = perPath(statsA, b);
    assert.equal(aToB?.direct.up, 0, `A sent chunk bytes over a direct path: ${JSON.stringify(statsA)}`);
    assert.ok(aToB.relayed.up >= got.size, `A's relayed bytes to B: ${JSON.stringify(statsA)}`);
  }, () => [a, b]));
});
