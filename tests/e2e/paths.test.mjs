// Issue "Across the internet": the path changes mid-transfer.
//
// Two pages connect directly; B downloads a random 64 MiB file from A. Half-way
// the test closes A's RTCPeerConnection from outside our code (as if the
// direct path had died). The download must carry on — through the relay
// until a direct path is made again, which on loopback is at once — and
// arrive intact, without starting over; afterwards the two are direct again
// over a new RTCPeerConnection. No durations are asserted; waits are bounded.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as F from './files.mjs';
import * as h from './harness.mjs';

const SIZE = 64 * 1024 * 1024;
const { DOWNLOAD_MS } = F;
const TEST = { timeout: 8 * h.WAIT_MS + DOWNLOAD_MS };


describe('a direct path dies mid-transfer', () => {
  const { relay, open } = h.relaySuite('paths', TEST);

  test('the download continues without starting over and the peers go direct again', TEST, h.withLogs(async (t) => {
    const swarm = `paths-${Date.now().toString(36)}`;
    const [a, b] = await Promise.all(['A', 'B'].map((name) => h.launchPeer(relay.url, { name, swarm })));
    open.push(a, b);
    await Promise.all([a.started(), b.started()]);
    await h.waitMeshDirect([a, b]);

    const orig = await F.shareRandom(a, SIZE, 'paths.bin');
    const shareId = F.shareIdOf(orig.link);
    const entryOfB = () => F.entryOf(b, shareId);
    const pending = F.startDownload(b, orig.link);

    const before = await h.waitFor('B to have a quarter of the file', entryOfB, (e) => e?.bytesDone >= SIZE / 4, {
      timeout: DOWNLOAD_MS,
      interval: 20,
    });
    const pcsBefore = await a.page.evaluate(() => {
      const live = window.__pcs.filter((pc) => pc.connectionState === 'connected');
      for (const pc of live) pc.close();
      return { total: window.__pcs.length, closed: live.length };
    });
    assert.ok(before.state === 'downloading' && before.bytesDone < SIZE, `B was done already: ${JSON.stringify(before)}`);
    assert.ok(pcsBefore.closed >= 1, `A had no connected RTCPeerConnection to close: ${JSON.stringify(pcsBefore)}`);

    // Progress is kept: never below what B had when the path died.
    const after = await h.waitFor('B to make progress after the path died', entryOfB,
      (e) => e && (e.bytesDone > before.bytesDone || e.state === 'done'), { timeout: DOWNLOAD_MS, interval: 50 });
    assert.ok(after.bytesDone >= before.bytesDone, `progress went back: ${JSON.stringify([before.bytesDone, after.bytesDone])}`);

    const got = await pending;
    assert.equal(got.size, SIZE);
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");

    await h.waitMeshDirect([a, b]);
    const pcsAfter = await a.page.evaluate(() => window.__pcs.filter((pc) => pc.connectionState === 'connected').length);
    assert.ok(pcsAfter >= 1, 'A has no connected RTCPeerConnection after the change');
    t.diagnostic(`B at the cut: ${before.bytesDone} B; A's peer connections before: ${JSON.stringify(pcsBefore)}`);
  }, () => open));
});
