// Issue: "Share a file: chunked, verified, fetched from many peers at once, and re-seeded".
//
// One relay for the whole file; every test launches its own browsers (one Chromium
// process per peer) in a swarm of its own, waits until they all list each other as
// "direct", and closes them at the end. Files are random and made inside the sharing
// page; only SHA-256 hex digests cross into node. All waits are bounded (harness
// WAIT_MS, or DOWNLOAD_MS for a whole transfer); nothing asserts on durations.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { DOWNLOAD_MS, brief, entryOf, shareIdOf, shareRandom, startDownload } from './files.mjs';
import * as h from './harness.mjs';

const MiB = 1024 * 1024;
const BIG = 64 * MiB;
const TEST = { timeout: 12 * h.WAIT_MS + 4 * DOWNLOAD_MS };

const statsOf = (peer) => peer.page.evaluate(() => window.shoal.stats());
const sourceOf = (entry, peer) => entry?.sources?.find((s) => s.peerId === peer.peerId) ?? null;

describe('sharing a file between browsers', () => {
  const { relay, it, launchSwarm } = h.relaySuite('share', TEST);

  it('1. two browsers download a 64 MiB file at once: intact, from each other too, and the byte counts add up', async (t) => {
    const [a, b, c] = await launchSwarm('A', 'B', 'C');
    const orig = await shareRandom(a, BIG);
    assert.equal(orig.size, BIG);
    const shareId = shareIdOf(orig.link);

    const relayBefore = await h.relayBytes(relay);
    const [gotB, gotC] = await Promise.all([startDownload(b, orig.link), startDownload(c, orig.link)]);
    // Direct paths carried the file: the relay saw only control traffic, by its own count.
    const relayed = (await h.relayBytes(relay)) - relayBefore;
    t.diagnostic(`the relay's WebSockets carried ${relayed} bytes while two ${BIG}-byte downloads ran`);
    assert.ok(relayed < BIG / 100, `${relayed} bytes crossed the relay while the peers were direct`);
    assert.equal(gotB.sha256, orig.sha256, "B's file differs from A's");
    assert.equal(gotC.sha256, orig.sha256, "C's file differs from A's");
    assert.equal(gotB.size, BIG);
    assert.equal(gotC.size, BIG);

    // Per-source counts: C got chunks from the seeder A *and* from B, which was downloading too.
    const entryC = await entryOf(c, shareId);
    assert.equal(entryC?.state, 'done', `C's entry: ${JSON.stringify(brief(entryC))}`);
    assert.equal(entryC.bytesDone, BIG);
    for (const src of [a, b]) {
      const s = sourceOf(entryC, src);
      assert.ok(s && s.chunks > 0, `C's sources should include ${src.name} (${src.peerId}) with chunks > 0: ${JSON.stringify(entryC.sources)}`);
    }
    const entryB = await entryOf(b, shareId);
    assert.equal(entryB?.state, 'done', `B's entry: ${JSON.stringify(brief(entryB))}`);

    // Byte accounting. Every chunk byte received in this swarm was sent by a node of this swarm,
    // and the only traffic is this share. `uploaded` counts a chunk once it is written to the
    // stream, `downloaded` once it is read whole (verified or not, duplicates included). Nobody
    // leaves, so each written chunk is eventually read: once in-flight chunks (e.g. endgame
    // duplicates still on the wire when a download finished) have landed, the sums are equal.
    // Sampling three pages is not atomic, so wait for the equality rather than sample once.
    const all = [a, b, c];
    const settled = await h.waitFor(
      'sum of stats().uploaded to equal sum of stats().downloaded over A, B, C',
      async () => {
        const [sa, sb, sc] = await Promise.all(all.map(statsOf));
        return { a: sa, b: sb, c: sc, up: sa.uploaded + sb.uploaded + sc.uploaded, down: sa.downloaded + sb.downloaded + sc.downloaded };
      },
      (v) => v.up === v.down && v.up > 0,
    );
    assert.ok(settled.a.uploaded > 0, `A uploaded nothing: ${JSON.stringify(settled)}`);
    assert.ok(settled.b.downloaded >= BIG, `B.downloaded < file size: ${JSON.stringify(settled)}`);
    assert.ok(settled.c.downloaded >= BIG, `C.downloaded < file size: ${JSON.stringify(settled)}`);
    assert.equal(settled.a.downloaded, 0, `A (the seeder) downloaded chunk bytes: ${JSON.stringify(settled)}`);
    // Both verified copies had to be sent by someone.
    assert.ok(settled.up >= entryB.bytesDone + entryC.bytesDone, `uploaded < verified bytes: ${JSON.stringify(settled)}`);
    assert.equal(settled.up, settled.down);
    t.diagnostic(`C's sources: ${JSON.stringify(entryC.sources)}; stats: ${JSON.stringify(settled)}`);

    // Which connection carried the bytes, by each node's own per-path count (the path of the
    // connection each session ran on): all of it direct, none through the relay.
    for (const [name, st] of Object.entries({ A: settled.a, B: settled.b, C: settled.c })) {
      const sum = (path, dir) => st.peers.reduce((n, p) => n + p[path][dir], 0);
      assert.equal(sum('relayed', 'down') + sum('relayed', 'up'), 0, `${name} moved chunk bytes over a relayed connection: ${JSON.stringify(st)}`);
      assert.equal(sum('direct', 'down'), st.downloaded, `${name}'s per-peer direct bytes received do not add up to downloaded: ${JSON.stringify(st)}`);
      assert.equal(sum('direct', 'up'), st.uploaded, `${name}'s per-peer direct bytes sent do not add up to uploaded: ${JSON.stringify(st)}`);
    }
    const peerStat = (st, peer) => st.peers.find((p) => p.peerId === peer.peerId);
    assert.ok(peerStat(settled.c, a)?.direct.down > 0 && peerStat(settled.c, b)?.direct.down > 0, `C's per-peer stats: ${JSON.stringify(settled.c)}`);
  });

  it('2. a source leaves mid-download: the download completes from the remaining seeder', async (t) => {
    const [a, b, c] = await launchSwarm('A', 'B', 'C');
    const orig = await shareRandom(a, BIG);
    const shareId = shareIdOf(orig.link);

    const gotC = await startDownload(c, orig.link);
    assert.equal(gotC.sha256, orig.sha256, "C's file differs from A's");

    const pendingB = startDownload(b, orig.link);
    // Poll often: the second half of the transfer takes seconds, so this sees B mid-way.
    const half = await h.waitFor(
      "B's bytesDone to reach half of the file",
      () => entryOf(b, shareId),
      (e) => e && e.bytesTotal > 0 && e.bytesDone >= e.bytesTotal / 2,
      { timeout: DOWNLOAD_MS, interval: 50 },
    );
    await a.close();
    // Sampled after A is gone: still downloading now means the download was incomplete when A
    // left (the earlier sample alone would also pass if B finished in between).
    const [gone, statsGone] = await Promise.all([entryOf(b, shareId), statsOf(b)]);
    assert.ok(
      gone && gone.bytesDone < gone.bytesTotal && gone.state === 'downloading',
      `B was already done when A left, so this run did not test leaving: ${JSON.stringify(brief(gone))}`,
    );
    const fromPeer = (st, peer) => {
      const p = st.peers.find((x) => x.peerId === peer.peerId);
      return p ? p.direct.down + p.relayed.down : 0;
    };

    const gotB = await pendingB;
    assert.equal(gotB.sha256, orig.sha256, "B's file differs from A's");
    assert.equal(gotB.size, BIG);
    const entryB = await entryOf(b, shareId);
    assert.equal(entryB?.state, 'done', `B's entry: ${JSON.stringify(brief(entryB))}`);
    const fromC = sourceOf(entryB, c);
    t.diagnostic(`B at half: ${JSON.stringify(brief(half))}; after A left: ${JSON.stringify(brief(gone))}; B at the end: ${JSON.stringify(entryB.sources)}`);
    assert.ok(fromC && fromC.chunks > 0, `B's sources should include C (${c.peerId}) with chunks > 0: ${JSON.stringify(entryB.sources)}`);
    // The rest came from C after A left: B's chunk bytes from C grew after the close.
    const statsEnd = await statsOf(b);
    assert.ok(
      fromPeer(statsEnd, c) > fromPeer(statsGone, c),
      `B received nothing from C after A left: ${JSON.stringify({ whenAGone: statsGone, end: statsEnd })}`,
    );
  });

  it('3. a peer serving corrupted chunks is banned and asked for nothing more: the file is still intact', async (t) => {
    const [a, e, f] = await launchSwarm('A', 'E', 'F');
    const orig = await shareRandom(a, BIG);
    const shareId = shareIdOf(orig.link);

    const gotE = await startDownload(e, orig.link);
    assert.equal(gotE.sha256, orig.sha256, "E's file differs from A's");
    await e.page.evaluate(() => window.shoal.setTestCorruption(true));
    const statsBefore = await statsOf(e);
    const requestsBefore = await e.page.evaluate(() => window.shoal.testRequestsReceived());

    const pendingF = startDownload(f, orig.link);
    // The moment F's view first shows E banned, with the requests F had sent E by then.
    const atBan = await h.waitFor(
      `F to mark E (${e.peerId}) banned`,
      () => entryOf(f, shareId),
      (x) => sourceOf(x, e)?.banned === true || x?.state === 'done' || x?.state === 'failed',
      { timeout: DOWNLOAD_MS, interval: 50 },
    );
    const gotF = await pendingF;
    assert.equal(gotF.sha256, orig.sha256, "F's file differs from A's: a corrupted chunk got through");
    const entryF = await entryOf(f, shareId);
    assert.equal(entryF?.state, 'done', `F's entry: ${JSON.stringify(brief(entryF))}`);
    const afterStats = await statsOf(e);

    // Why this is deterministic: F is the only node downloading after E turned corruption on
    // (A is the seeder, E is done), so every byte E uploads from now on is a corrupted chunk for
    // F. F's scheduler fills every connected holder's request slots as soon as it joins (4 per
    // peer) and E joins with a full bitfield seconds before a 64 MiB transfer can end, so F asks
    // E for chunks. We first check that E did serve F (E's uploaded grew); if that ever fails, the
    // scheduler skipped a full holder for the whole download, which is itself worth reporting.
    // The only way E could serve F and F not count it is an endgame duplicate landing after F
    // finished; E's first 4 chunks are requested at the start, far from the endgame.
    assert.ok(
      afterStats.uploaded > statsBefore.uploaded,
      `E served F nothing (stats before ${JSON.stringify(statsBefore)}, after ${JSON.stringify(afterStats)}); F's sources: ${JSON.stringify(entryF.sources)}`,
    );
    const fromE = sourceOf(entryF, e);
    assert.ok(
      fromE && fromE.banned === true && fromE.badChunks > 0,
      `F's source entry for E (${e.peerId}) should show E banned: ${JSON.stringify(entryF.sources)}`,
    );
    const banSeen = sourceOf(atBan, e);
    assert.ok(banSeen?.banned === true, `F finished before its view showed E banned: ${JSON.stringify(brief(atBan))}`);
    // After the ban F asks E for nothing more: F's own count of requests to E is what it was
    // when the ban showed, and E — counting what it received — saw no more than that.
    assert.equal(fromE.requested, banSeen.requested, `F kept requesting from E after banning it: at the ban ${JSON.stringify(banSeen)}, at the end ${JSON.stringify(fromE)}`);
    const requestsAfter = await e.page.evaluate(() => window.shoal.testRequestsReceived());
    assert.ok(
      requestsAfter - requestsBefore <= banSeen.requested,
      `E received ${requestsAfter - requestsBefore} requests, F had sent ${banSeen.requested} when it banned E`,
    );
    t.diagnostic(`E's stats before/after F: ${JSON.stringify([statsBefore, afterStats])}; requests E received: ${requestsAfter - requestsBefore}; F's sources at the ban: ${JSON.stringify(atBan.sources)}, at the end: ${JSON.stringify(entryF.sources)}`);
    const fromA = sourceOf(entryF, a);
    assert.ok(fromA && fromA.chunks > 0, `F's sources should include A with chunks > 0: ${JSON.stringify(entryF.sources)}`);
  });

  it('4. bad input: a malformed share id is refused; a share nobody has stays "looking"', async () => {
    const [p, q] = await launchSwarm('P', 'Q');

    const refused = await q.page.evaluate(() =>
      window.shoal.download('http://x/#share=notanid').then(
        (f) => ({ resolved: true, name: f?.name ?? null }),
        (err) => ({ resolved: false, message: String(err?.message ?? err) }),
      ),
    );
    assert.equal(refused.resolved, false, `download of a malformed link resolved: ${JSON.stringify(refused)}`);
    assert.match(refused.message, /share id/i);
    assert.deepEqual(await q.page.evaluate(() => window.shoal.downloads()), [], 'a refused link must not leave a download entry');

    // A well-formed id that nobody has: take a real link and change one character in the middle
    // of its id (every base32 character is valid there; only the last one is constrained).
    const real = await shareRandom(p, 1024, 'tiny.bin');
    const realId = shareIdOf(real.link);
    const i = Math.floor(realId.length / 2);
    const missingId = realId.slice(0, i) + (realId[i] === 'a' ? 'b' : 'a') + realId.slice(i + 1);
    const link = real.link.replace(`share=${realId}`, `share=${missingId}`);
    await q.page.evaluate((l) => {
      window.__missing = window.shoal.download(l).then(
        () => 'resolved',
        (e) => `rejected: ${e?.message ?? e}`,
      );
    }, link);
    const entry = await h.waitFor(`Q's downloads() to list ${missingId}`, () => entryOf(q, missingId));
    assert.equal(entry.state, 'looking', JSON.stringify(entry));
    // It stays "looking" (no crash, no bogus failure) while P, who is connected, lacks it.
    await h.holdsFor(
      `Q's download of ${missingId} to stay "looking" and Q's node to keep answering`,
      async () => ({ entry: await entryOf(q, missingId), peers: await q.peers(), error: await q.page.evaluate(() => window.shoalError ?? null) }),
      (v) => v.entry?.state === 'looking' && v.error === null && v.peers.some((x) => x.peerId === p.peerId),
      { duration: 3_000 },
    );
  });

  it('5. the downloaded File has the name and size from the manifest', async () => {
    const [a, b] = await launchSwarm('A', 'B');
    // Not a multiple of the chunk size, so the last chunk is short.
    const size = 3 * 256 * 1024 + 12_345;
    const orig = await shareRandom(a, size, 'hello world.bin');
    const got = await startDownload(b, orig.link);
    assert.equal(got.isFile, true);
    assert.equal(got.name, 'hello world.bin');
    assert.equal(got.size, size);
    assert.equal(got.sha256, orig.sha256);
    const entry = await entryOf(b, shareIdOf(orig.link));
    assert.equal(entry?.name, 'hello world.bin');
    assert.equal(entry?.size, size);
  });
});
