// NAT fallback: when no direct path can be made, the relayed connection stays
// up, the peer is reported as "relayed", and files still arrive — end-to-end
// encrypted through the relay's circuit.
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
      return { sha: hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer())), size: file.size, downloads: window.shoal.downloads() };
    }, link);
    assert.equal(got.sha, sha);
    assert.equal(got.size, 3 * 1024 * 1024 + 12345);
    // All of it crossed the relay (in from A, out to B), by the relay's own count.
    const relayed = (await h.relayBytes(relay)) - relayBefore;
    assert.ok(relayed >= 2 * got.size, `only ${relayed} bytes crossed the relay for a ${got.size}-byte file`);
    const sources = got.downloads[0].sources;
    assert.deepEqual(sources.map((s) => [s.peerId, s.path]), [[a.peerId, 'relayed']]);
  }, () => [a, b]));
});
