// Downloads kept on disk (issue 8, "Resume"): browsers with a persistent profile
// (launchPeer(..., { persistent })), so OPFS and Web Locks behave as in a real browser.
// - a reload at about half-way resumes: the file arrives intact and the resumed page
//   fetched well under the whole file (its own stats()); once complete, with the only
//   other holder gone, opening the link again serves it from disk to a new browser;
// - two tabs of one profile: one finished a download and seeds it, the other starts
//   another download; the first keeps seeding (a third browser fetches from it only);
// - a full disk (test switch setTestFailWritesAfter) ends the download with
//   "storage full: N MiB free needed", keeps the partial file (listed as partial), and the
//   retry resumes; the page lists the stored share as text and its Delete button deletes it;
// - the browser's own quota (DevTools Storage.overrideQuotaForOrigin): a file that does not
//   fit fails at once with the same error, an earlier stored file stays complete, and once
//   there is room the same link completes.
// All waits are bounded; nothing asserts on durations.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe } from 'node:test';
import { MiB, brief, entryOf, shareIdOf, shareRandom, startDownload } from './files.mjs';
import * as h from './harness.mjs';

const TEST = { timeout: 12 * h.WAIT_MS };

/** Start downloading `link` without waiting; the outcome lands in window.__dl[link]. */
function startDownloadInPage(link) {
  window.__dl ??= {};
  window.__dl[link] = { state: 'pending' };
  window.shoal.download(link).then(
    () => { window.__dl[link] = { state: 'resolved' }; },
    (e) => { window.__dl[link] = { state: 'rejected', message: String(e?.message ?? e) }; },
  );
}
const outcome = (peer, link) => peer.page.evaluate((l) => window.__dl?.[l] ?? null, link);
const downloaded = (peer) => peer.page.evaluate(() => window.shoal.stats().downloaded);
const storedOf = (peer) => peer.page.evaluate(() => window.shoal.storedShares());

describe('resume and tabs', () => {
  const { relay, open, it, swarm: newSwarm } = h.relaySuite('resume', TEST);
  const dirs = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const profile = () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'shoal-profile-'));
    dirs.push(dir);
    return dir;
  };

  async function launch(name, swarm, options = {}) {
    const peer = await h.launchPeer(relay.url, { name, swarm, ...options });
    open.push(peer);
    await peer.started();
    return peer;
  }

  /** Wait until `peer` lists every one of `others` as direct. */
  const meshed = (peers) => h.waitMeshDirect(peers);

  it('a reload half-way resumes where it stopped; a finished download serves again when reopened', async () => {
    const swarm = newSwarm('resume');
    const a = await launch('A', swarm);
    const b = await launch('B', swarm, { persistent: profile() });
    await meshed([a, b]);
    const size = 64 * MiB + 11;
    const x = await shareRandom(a, size, 'resume.bin');

    await b.page.evaluate(startDownloadInPage, x.link);
    const half = await h.waitFor(
      "B's download to pass half-way",
      () => entryOf(b, shareIdOf(x.link)),
      (e) => e && e.bytesTotal > 0 && e.bytesDone >= e.bytesTotal / 2,
      { interval: 50, timeout: 4 * h.WAIT_MS },
    );
    assert.notEqual(half.state, 'done', `finished before the reload: ${JSON.stringify(brief(half))}`);
    h.log('test', `reloading B at ${half.bytesDone} of ${half.bytesTotal} bytes`);
    await b.page.reload();
    await b.started();
    await meshed([a, b]);

    const got = await startDownload(b, x.link);
    assert.equal(got.sha256, x.sha256, 'the resumed file is not the shared one');
    assert.equal(got.size, size);
    const fetched = await downloaded(b);
    assert.ok(fetched <= 0.7 * size, `the resumed page fetched ${fetched} of ${size} bytes: it did not resume`);
    assert.ok(fetched > 0, 'the resumed page fetched nothing, so the reload came too late to test anything');

    const stored = await storedOf(b);
    const mine = stored.find((s) => s.shareId === shareIdOf(x.link));
    assert.equal(mine?.state, 'complete', JSON.stringify(stored));
    assert.equal(mine.name, 'resume.bin');
    assert.equal(mine.size, size);

    // The sharer leaves; B reloads and opens the link: it needs no peer (manifest and
    // chunks from disk, re-verified) and serves the file to a new browser.
    await a.close();
    await b.page.reload();
    await b.started();
    const again = await startDownload(b, x.link, { timeout: 4 * h.WAIT_MS });
    assert.equal(again.sha256, x.sha256);
    assert.equal(await downloaded(b), 0, 'B fetched chunks it had on disk');
    const c = await launch('C', swarm);
    await meshed([b, c]);
    const fromB = await startDownload(c, x.link);
    assert.equal(fromB.sha256, x.sha256, "C's file, served from B's disk, is wrong");
  });

  it('two tabs of one profile: a tab that starts another download leaves the first tab seeding', async () => {
    const swarm = newSwarm('tabs');
    const a = await launch('A', swarm);
    const b1 = await launch('B1', swarm, { persistent: profile() });
    await meshed([a, b1]);
    const x = await shareRandom(a, 16 * MiB + 3, 'first.bin');
    const y = await shareRandom(a, 8 * MiB + 5, 'second.bin');
    const gotX = await startDownload(b1, x.link);
    assert.equal(gotX.sha256, x.sha256);

    // A second tab of the same browser downloads another share.
    const b2 = await h.openTab(b1.context, relay.url, { name: 'B2', swarm });
    open.push(b2);
    await b2.started();
    await meshed([a, b1, b2]);
    const gotY = await startDownload(b2, y.link);
    assert.equal(gotY.sha256, y.sha256);
    const listed = await storedOf(b2);
    const xHere = listed.find((s) => s.shareId === shareIdOf(x.link));
    assert.equal(xHere?.inUse, 'elsewhere', `the second tab does not see the first tab's file in use: ${JSON.stringify(listed)}`);

    // The sharer leaves: B1 is the only holder of X, and a third browser fetches it from B1.
    await a.close();
    const c = await launch('C', swarm);
    await meshed([b1, c]);
    const fromB1 = await startDownload(c, x.link);
    assert.equal(fromB1.sha256, x.sha256, "C's copy of the first tab's file is wrong");
    const sources = (await entryOf(c, shareIdOf(x.link))).sources;
    assert.ok(
      sources.some((s) => s.peerId === b1.peerId && s.chunks > 0),
      `C got no chunk from the first tab: ${JSON.stringify(sources)}`,
    );
  });

  it('a full disk ends the download with a clear error, keeps the partial file, and the retry resumes', async () => {
    const swarm = newSwarm('quota');
    const a = await launch('A', swarm);
    const b = await launch('B', swarm, { persistent: profile() });
    await meshed([a, b]);
    const size = 16 * MiB + 9; // 65 chunks
    const x = await shareRandom(a, size, 'full <img src=x onerror=alert(1)>.bin');
    const id = shareIdOf(x.link);

    await b.page.evaluate(() => window.shoal.setTestFailWritesAfter(32));
    await b.page.evaluate(startDownloadInPage, x.link);
    const failed = await h.waitFor("B's download to settle", () => outcome(b, x.link), (o) => o?.state !== 'pending', {
      timeout: 4 * h.WAIT_MS,
    });
    assert.equal(failed.state, 'rejected', JSON.stringify(failed));
    assert.match(failed.message, /^storage full: \d+ MiB free needed$/);
    const needed = Number(/(\d+) MiB/.exec(failed.message)[1]);
    assert.ok(needed > 0 && needed <= Math.ceil(size / MiB), `needed ${needed} MiB`);
    const entry = await entryOf(b, id);
    assert.equal(entry.state, 'failed');
    assert.match(entry.error, /storage full/);

    // Kept: listed as partial, with what was stored.
    const partial = (await storedOf(b)).find((s) => s.shareId === id);
    assert.equal(partial?.state, 'partial', JSON.stringify(partial));
    assert.ok(partial.chunksDone > 0 && partial.chunksDone <= 32, JSON.stringify(partial));
    assert.equal(partial.inUse, null, 'the failed download still holds its lock');

    // The retry resumes from the partial file.
    await b.page.evaluate(() => window.shoal.setTestFailWritesAfter(null));
    const before = await downloaded(b);
    const got = await startDownload(b, x.link);
    assert.equal(got.sha256, x.sha256);
    const refetched = (await downloaded(b)) - before;
    assert.ok(
      refetched <= size - partial.chunksDone * 256 * 1024 + 4 * 256 * 1024,
      `the retry fetched ${refetched} of ${size} bytes although ${partial.chunksDone} chunks were stored`,
    );

    // The page lists it, the name as text, and deletes it.
    const row = b.page.locator(`#stored li[data-share-id="${id}"]`);
    await b.page.evaluate(() => window.dispatchEvent(new Event('visibilitychange')));
    await row.waitFor({ timeout: h.WAIT_MS });
    assert.equal(await row.locator('.item-name').textContent(), 'full <img src=x onerror=alert(1)>.bin');
    assert.equal(await b.page.locator('#stored img').count(), 0, 'a name was rendered as HTML');
    await h.waitFor('the row to say complete', () => row.getAttribute('data-state'), (s) => s === 'complete');
    await row.getByRole('button', { name: /^Delete/ }).click();
    await h.waitFor('the stored share to be deleted', () => storedOf(b), (list) => !list.some((s) => s.shareId === id));
    await row.waitFor({ state: 'detached', timeout: h.WAIT_MS });
  });

  it("the browser's own quota (lowered through DevTools): a file that does not fit fails at once, nothing else is lost", async () => {
    const swarm = newSwarm('realquota');
    const a = await launch('A', swarm);
    const b = await launch('B', swarm, { persistent: profile() });
    await meshed([a, b]);
    const y = await shareRandom(a, 2 * MiB + 1, 'kept.bin');
    const x = await shareRandom(a, 16 * MiB + 1, 'too-big.bin');
    assert.equal((await startDownload(b, y.link)).sha256, y.sha256);

    // Room for 4 MiB more (Chromium's own QuotaExceededError, not a test switch).
    const cdp = await b.context.newCDPSession(b.page);
    const origin = new URL(relay.url).origin;
    const { usage } = await b.page.evaluate(() => navigator.storage.estimate());
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: usage + 4 * MiB });
    await b.page.evaluate(startDownloadInPage, x.link);
    const failed = await h.waitFor("B's download to settle", () => outcome(b, x.link), (o) => o?.state !== 'pending', {
      timeout: 4 * h.WAIT_MS,
    });
    assert.equal(failed.state, 'rejected', JSON.stringify(failed));
    assert.match(failed.message, /^storage full: \d+ MiB free needed$/);
    assert.equal(Number(/(\d+) MiB/.exec(failed.message)[1]), 17);
    assert.equal(await downloaded(b) < 2 * MiB + 8 * 256 * 1024 + 1, true, 'B fetched chunks of a file that cannot fit');

    // Nothing else lost: the earlier file is still complete and still opens from disk.
    const stored = await storedOf(b);
    assert.equal(stored.find((s) => s.shareId === shareIdOf(y.link))?.state, 'complete', JSON.stringify(stored));
    assert.equal((await startDownload(b, y.link)).sha256, y.sha256);

    // Room again: the same link completes.
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
    assert.equal((await startDownload(b, x.link)).sha256, x.sha256);
  });
});
