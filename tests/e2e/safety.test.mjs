// Hostile peers (issue 8): what a stranger, a banned peer, a flooder and a silent holder can
// and cannot do to a page. Each test runs its own browsers (one Chromium process per peer) in a
// swarm of its own. The hostile behaviour comes from test-only switches in the wasm built with
// the `test-hooks` cargo feature (`setTestCorruption`, `setTestManifestFlood`,
// `setTestSilentManifest`, `setTestBitfieldFlood`, `testHellosSeen`/`testReplayHellos`,
// `testRandomHello`, `testDialRelayed`, `testRawFlood`); release builds
// have none.
// All waits are bounded; nothing asserts on durations.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { DOWNLOAD_MS, MiB, brief, entryOf, shareIdOf, shareRandom, startDownload } from './files.mjs';
import * as h from './harness.mjs';

const TEST = { timeout: 12 * h.WAIT_MS + 2 * DOWNLOAD_MS };

const sourceOf = (entry, peer) => entry?.sources?.find((s) => s.peerId === peer.peerId) ?? null;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('hostile peers', () => {
  const { relay, open, it, launchSwarm } = h.relaySuite('safety', TEST);

  it('a stranger in the swarm without the link learns no share id and cannot obtain the share', async (t) => {
    const [a, b, s] = await launchSwarm('A', 'B', 'S');
    const orig = await shareRandom(a, 2 * MiB + 5, 'secret.bin');
    // Sessions go to swarm members only: give B a discovery round (every 5 s) to have seen
    // S registered, so that B's short download opens a session to S too.
    await sleep(6000);
    const got = await startDownload(b, orig.link);
    assert.equal(got.sha256, orig.sha256);

    // B opened a session to every member, S included: S saw B's Hello(s).
    const hellos = await h.waitFor('S to have received a Hello from B', () => s.page.evaluate(() => window.shoal.testHellosSeen()), (x) => x.length > 0);
    const idHex = await a.page.evaluate((l) => window.shoal.testShareIdHex(l), orig.link);
    for (const hello of hellos) {
      assert.ok(!hello.includes(idHex), `a Hello carried the share id: ${hello}`);
      // Nor any 8-byte piece of it.
      for (let i = 0; i + 16 <= idHex.length; i += 2) assert.ok(!hello.includes(idHex.slice(i, i + 16)), `a Hello carried part of the share id: ${hello}`);
    }
    // Replayed by S (as itself) to the sharer and to the downloader: refused.
    for (const target of [a, b]) {
      const answers = await s.page.evaluate((p) => window.shoal.testReplayHellos(p), target.peerId);
      assert.ok(answers.length === hellos.length && answers.every((x) => x === 'unknown'), `${target.name} answered a replayed Hello with ${JSON.stringify(answers)}`);
    }
    // S got nothing of the file.
    const sView = await s.page.evaluate(() => ({ downloads: window.shoal.downloads(), shares: window.shoal.shares(), stats: window.shoal.stats() }));
    assert.deepEqual(sView.downloads, []);
    assert.deepEqual(sView.shares, []);
    assert.equal(sView.stats.downloaded, 0, `S received chunk bytes: ${JSON.stringify(sView.stats)}`);
    t.diagnostic(`hellos S saw: ${hellos.length}`);
  });

  it('a stranger outside the swarm that reaches the pages gets no Hello, no session and no share', async (t) => {
    const [a, b] = await launchSwarm('A', 'B');
    const [x] = await launchSwarm('X'); // a swarm of its own
    const orig = await shareRandom(a, 4 * MiB + 9, 'private.bin');
    // X reaches both pages through the relay's circuit, as anyone who learnt their PeerIds can.
    for (const p of [a, b]) await x.page.evaluate((id) => window.shoal.testDialRelayed(id), p.peerId);
    const connected = () => x.page.evaluate(() => window.shoal.peers().map((p) => p.peerId));
    await h.waitFor('X to be connected to A and B', connected, (ids) => ids.includes(a.peerId) && ids.includes(b.peerId));
    // A stranger's inbound connection once became usable for sessions after 15 s: stay past that.
    await sleep(16_000);
    assert.ok((await connected()).includes(b.peerId), 'X lost its connection to B before the download, so nothing was tested');

    const got = await startDownload(b, orig.link);
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
    const stillConnected = await connected();
    // B opened sessions to swarm members only: X, connected all along, received no Hello.
    assert.deepEqual(await x.page.evaluate(() => window.shoal.testHellosSeen()), [], 'B sent X a Hello');
    // A well-formed Hello from X is not even read by either page (not a member) …
    for (const target of [a, b]) {
      const answer = await x.page.evaluate((p) => window.shoal.testRandomHello(p), target.peerId);
      assert.equal(answer, 'closed', `${target.name} answered a stranger's Hello with ${answer}`);
    }
    // … while the same from a member is answered (no such share), so the refusal above is
    // about membership, not the Hello.
    assert.equal(await b.page.evaluate((p) => window.shoal.testRandomHello(p), a.peerId), 'unknown');
    const xView = await x.page.evaluate(() => ({ downloads: window.shoal.downloads(), stats: window.shoal.stats() }));
    assert.deepEqual(xView.downloads, []);
    assert.equal(xView.stats.downloaded, 0, `X received chunk bytes: ${JSON.stringify(xView.stats)}`);
    t.diagnostic(`X connected to ${stillConnected.length} page(s) during B's download`);
  });

  it('a Bitfield flood leaves both pages\' memory bounded and the download finishing', async (t) => {
    const [a, b, x] = await launchSwarm('A', 'B', 'X');
    // 64 MiB: 256 chunks, a 32-byte bitfield; X queues its (empty) bitfield 200,000 times on
    // each session it opens (to A and to B), as fast as the sessions take them.
    const orig = await shareRandom(a, 64 * MiB, 'flagged.bin');
    const mem = () => Promise.all([a, b].map((p) => p.page.evaluate(() => window.shoal.testMemoryBytes())));
    const before = await mem();
    await x.page.evaluate((l) => {
      window.shoal.setTestBitfieldFlood(200000);
      window.shoal.download(l).catch(() => {});
    }, orig.link);
    await h.waitFor('X to be flooding', () => x.page.evaluate(() => window.shoal.testBitfieldsFlooded()), (n) => n >= 10000);
    const got = await startDownload(b, orig.link);
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
    const flooded = await x.page.evaluate(() => window.shoal.testBitfieldsFlooded());
    const after = await mem();
    [a, b].forEach((p, i) => {
      const grew = after[i] - before[i];
      assert.ok(grew < 48 * MiB, `${p.name}'s wasm memory grew by ${(grew / MiB).toFixed(1)} MiB during the flood`);
    });
    t.diagnostic(`bitfields X queued: ${flooded}; wasm memory A ${(before[0] / MiB).toFixed(1)} → ${(after[0] / MiB).toFixed(1)} MiB, B ${(before[1] / MiB).toFixed(1)} → ${(after[1] / MiB).toFixed(1)} MiB`);
  });

  it('a banned peer gets no further requests, also after it reconnects', async (t) => {
    const [a, e, f] = await launchSwarm('A', 'E', 'F');
    const SIZE = 96 * MiB;
    const orig = await shareRandom(a, SIZE);
    const shareId = shareIdOf(orig.link);
    const gotE = await startDownload(e, orig.link);
    assert.equal(gotE.sha256, orig.sha256);
    await e.page.evaluate(() => window.shoal.setTestCorruption(true));

    const pendingF = startDownload(f, orig.link);
    const atBan = await h.waitFor(`F to ban E (${e.peerId})`, () => entryOf(f, shareId),
      (x) => sourceOf(x, e)?.banned === true || x?.state === 'done' || x?.state === 'failed', { timeout: DOWNLOAD_MS, interval: 50 });
    assert.equal(sourceOf(atBan, e)?.banned, true, `F finished before banning E: ${JSON.stringify(brief(atBan))}`);

    // Cut E's direct connections: E meets A and F again (through the relay, then directly,
    // over new RTCPeerConnections). F may notice the old connection's death only later.
    const requestsAtCut = await e.page.evaluate(() => window.shoal.testRequestsReceived());
    const pcsAtCut = await e.page.evaluate(() => {
      const live = window.__pcs.filter((pc) => pc.connectionState === 'connected');
      for (const pc of live) pc.close();
      return { total: window.__pcs.length, closed: live.length };
    });
    assert.ok(pcsAtCut.closed >= 2, `E had fewer than 2 connected RTCPeerConnections to close: ${JSON.stringify(pcsAtCut)}`);
    const back = await h.waitFor('E to connect directly to A and F again',
      async () => ({
        fresh: await e.page.evaluate((n) => window.__pcs.slice(n).filter((pc) => pc.connectionState === 'connected').length, pcsAtCut.total),
        entry: await entryOf(f, shareId),
      }),
      (x) => x.fresh >= 2 || x.entry?.state === 'done', { interval: 20 });
    const reconnectedWhileDownloading = back.fresh >= 2 && back.entry?.state === 'downloading';

    const gotF = await pendingF;
    assert.equal(gotF.sha256, orig.sha256, "F's file differs from A's");
    const entryF = await entryOf(f, shareId);
    const requestsAfter = await e.page.evaluate(() => window.shoal.testRequestsReceived());
    assert.equal(requestsAfter, requestsAtCut, `E received ${requestsAfter - requestsAtCut} requests after it was banned and reconnected`);
    assert.equal(sourceOf(entryF, e)?.requested, sourceOf(atBan, e)?.requested, `F requested from E after the ban: ${JSON.stringify(entryF.sources)}`);
    assert.equal(sourceOf(entryF, e)?.banned, true);
    assert.ok(reconnectedWhileDownloading, `F finished before E reconnected, so the reconnect was not tested: ${JSON.stringify(brief(back.entry))}`);
    t.diagnostic(`E's peer connections at the cut: ${JSON.stringify(pcsAtCut)}; F at the reconnect: ${JSON.stringify(brief(back.entry))}; E's requests: ${requestsAtCut}`);
  });

  it('a GetManifest flood leaves the sharer\'s memory bounded and an honest download finishing', async (t) => {
    const [a, b, x] = await launchSwarm('A', 'B', 'X');
    // 64 MiB: 256 chunks, an 8 KiB manifest; copied per request that would be 8 KiB × the flood.
    const orig = await shareRandom(a, 64 * MiB, 'flooded.bin');
    const memBefore = await a.page.evaluate(() => window.shoal.testMemoryBytes());
    await x.page.evaluate((l) => {
      window.shoal.setTestManifestFlood(100000);
      window.shoal.download(l).catch(() => {});
    }, orig.link);
    const got = await startDownload(b, orig.link);
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
    await sleep(1000);
    const memAfter = await a.page.evaluate(() => window.shoal.testMemoryBytes());
    const grew = memAfter - memBefore;
    assert.ok(grew < 48 * MiB, `A's wasm memory grew by ${(grew / MiB).toFixed(1)} MiB during the flood`);
    t.diagnostic(`A's wasm memory: ${(memBefore / MiB).toFixed(1)} → ${(memAfter / MiB).toFixed(1)} MiB`);
  });

  it('a session flood with oversized first messages is cut off at once; an honest download finishes', async (t) => {
    const [a, b, s] = await launchSwarm('A', 'B', 'S');
    const orig = await shareRandom(a, 8 * MiB + 3, 'stormy.bin');
    const memBefore = await a.page.evaluate(() => window.shoal.testMemoryBytes());
    const pending = startDownload(b, orig.link);
    // 48 sessions at once, each announcing a 16 MiB first message and sending 256 KiB of it.
    const report = await s.page.evaluate((p) => window.shoal.testRawFlood(p, 48, 16 * 1024 * 1024, 256 * 1024, 5000), a.peerId);
    assert.ok(report.opened + report.refused === 48, JSON.stringify(report));
    assert.equal(report.closed, report.opened, `A left some flood streams open for 5 s: ${JSON.stringify(report)}`);
    const got = await pending;
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
    const memAfter = await a.page.evaluate(() => window.shoal.testMemoryBytes());
    assert.ok(memAfter - memBefore < 32 * MiB, `A's wasm memory grew by ${((memAfter - memBefore) / MiB).toFixed(1)} MiB`);
    t.diagnostic(`flood: ${JSON.stringify(report)}; A's wasm memory ${(memBefore / MiB).toFixed(1)} → ${(memAfter / MiB).toFixed(1)} MiB`);
  });

  it('silent manifest holders do not stall the download', async (t) => {
    const [a, b, c] = await launchSwarm('A', 'B', 'C');
    const orig = await shareRandom(a, 4 * MiB + 1, 'quiet.bin');
    const shareId = shareIdOf(orig.link);
    const gotC = await startDownload(c, orig.link);
    assert.equal(gotC.sha256, orig.sha256);
    // Both holders ignore GetManifest; B starts, asks, and hears nothing.
    await Promise.all([a, c].map((p) => p.page.evaluate(() => window.shoal.setTestSilentManifest(true))));
    const pending = startDownload(b, orig.link);
    await sleep(3000);
    const looking = await entryOf(b, shareId);
    assert.equal(looking?.state, 'looking', `B got a manifest from a silent holder: ${JSON.stringify(brief(looking))}`);
    // One of them starts answering: B's next ask to it (after a timeout) gets the manifest.
    await c.page.evaluate(() => window.shoal.setTestSilentManifest(false));
    const got = await pending;
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
  });
});
