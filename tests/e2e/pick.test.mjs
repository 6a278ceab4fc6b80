// Issue #9: picking more files of a share after a download of some of them
// finished. D (a persistent profile: OPFS on disk) downloads the files of one
// directory of A's tree and the download completes; then D ticks the files of
// a second directory in the page's tree (node.want) and gets them; then it
// unticks the second (node.want resolves once that is on disk) and reloads at
// once: download(link) goes on with the files picked (the first directory:
// it fetches nothing, they are stored), and at once
// download(link, paths) asks for a third directory, while the session the
// first call opened is still in its handshake (A answers slowly); then
// want(id, null) and a reload at once: download(link) fetches every file.
// A is the only other holder, so every chunk request goes to A: each step
// must ask for exactly the chunks of the new files that were not stored
// already (the earlier ones stay stored), and every picked file's bytes
// must match A's by SHA-256.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe } from 'node:test';
import * as F from './files.mjs';
import * as h from './harness.mjs';
import { byPath, chunksOf, shareTreeInPage } from './tree.mjs';

const TEST = { timeout: 8 * h.WAIT_MS + 3 * F.DOWNLOAD_MS };
// How long A waits before answering a Hello in step 3: far longer than D takes from one
// download call to the next, and well under the handshake timeout (10 s).
const HELLO_DELAY_MS = 4000;
// How long A waits before sending each chunk in the narrowing test: the whole share
// (26 chunks) then takes several seconds, far longer than D takes to narrow it.
const NARROW_SERVE_DELAY_MS = 300;

/** In D's page: download `link` (only `paths`); its entry and each wanted file's SHA-256. */
async function downloadPicked({ link, paths }) {
  const hex = async (blob) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), (b) => b.toString(16).padStart(2, '0')).join('');
  const file = await window.shoal.download(link, paths);
  const id = /share=([^&]+)/.exec(link)[1];
  const entry = window.shoal.downloads().find((d) => d.shareId === id);
  const files = [];
  for (const f of entry.files.filter((x) => x.wanted)) files.push({ path: f.path, size: f.size, sha256: await hex(file.slice(f.offset, f.offset + f.size)) });
  return { entry, files };
}

/** In D's page: tick (or untick) the tree's checkbox of each of `paths` (the page calls node.want). */
function tick({ id, paths, checked = true }) {
  const row = document.querySelector(`li.download[data-share-id="${id}"]`);
  for (const p of paths) {
    const box = row?.querySelector(`li.tree-file[data-path="${CSS.escape(p)}"] input[type=checkbox]`);
    if (!box || box.disabled) throw new Error(`no enabled checkbox for ${p}`);
    if (box.checked !== checked) box.click();
  }
}

describe('picking more files of a share later', () => {
  const { relay, open, it, swarm: newSwarm } = h.relaySuite('pick', TEST);
  const dirs = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  // A shares the tree; D (a persistent profile: OPFS on disk) is connected to it directly.
  const sharedTree = async (swarm) => {
    const profile = mkdtempSync(path.join(tmpdir(), 'shoal-profile-'));
    dirs.push(profile);
    const a = await h.launchPeer(relay.url, { name: 'A', swarm });
    open.push(a);
    const d = await h.launchPeer(relay.url, { name: 'D', swarm, persistent: profile });
    open.push(d);
    await Promise.all([a.started(), d.started()]);
    await h.waitMeshDirect([a, d]);
    const orig = await h.within('A to make and share the tree', a.page.evaluate(shareTreeInPage), 4 * h.WAIT_MS);
    return { a, d, orig, id: F.shareIdOf(orig.link) };
  };

  it('after a subset finished, more files (in the page, then after a reload) fetch only their missing chunks', async (t) => {
    const swarm = newSwarm('pick');
    const { a, d, orig, id } = await sharedTree(swarm);
    const under = (...prefixes) => orig.files.filter((f) => prefixes.some((p) => f.path.startsWith(p))).map((f) => f.path);
    const steps = [under('photos/2024/'), under('photos/2024/', 'docs/'), under('photos/2024/', 'docs/', 'src/')];
    const requestsToA = () => a.page.evaluate(() => window.shoal.testRequestsReceived());
    const expected = (paths) => orig.files.filter((f) => paths.includes(f.path)).sort(byPath);

    // Checks one step: D stored exactly the chunks of `paths`; D asked, and A was asked, for
    // exactly those not stored before (`before`); the picked files are A's bytes.
    const check = (step, got, paths, before, asked) => {
      const layout = got.entry.files;
      const now = chunksOf(layout.filter((f) => paths.includes(f.path)));
      const fresh = [...now].filter((c) => !before.has(c)).length;
      const requestedByD = got.entry.sources.reduce((n, s) => n + s.requested, 0);
      t.diagnostic(`${step}: ${paths.length} files in ${now.size} of ${got.entry.chunksTotal} chunks, ${fresh} new; D requested ${requestedByD}, A received ${asked}`);
      assert.equal(got.entry.state, 'done', `${step}: state`);
      assert.ok(fresh > 0, `${step}: the new files should need chunks not stored yet`);
      assert.ok(now.size < got.entry.chunksTotal, `${step}: should not need every chunk`);
      assert.equal(got.entry.chunksDone, now.size, `${step}: D stored ${got.entry.chunksDone} chunks, the picked files lie in ${now.size}`);
      assert.equal(requestedByD, fresh, `${step}: D asked for chunks it had, or beyond the picked files`);
      assert.equal(asked, fresh, `${step}: A was asked for chunks D had, or beyond the picked files`);
      assert.deepEqual(got.files.sort(byPath), expected(paths), `${step}: D's files differ from A's`);
      assert.deepEqual(layout.filter((f) => f.wanted).map((f) => f.path).sort(), [...paths].sort(), `${step}: the files marked wanted`);
      return now;
    };

    // 1. A subset, to the end.
    let before = await requestsToA();
    const first = await h.within('D to download the first directory', d.page.evaluate(downloadPicked, { link: orig.link, paths: steps[0] }), F.DOWNLOAD_MS);
    let stored = check('first pick', first, steps[0], new Set(), (await requestsToA()) - before);

    // 2. The page's tree, once the download is done: tick the second directory's files.
    await h.waitFor("D's page to show the finished tree", () => d.page.evaluate((i) => {
      const row = document.querySelector(`li.download[data-share-id="${i}"]`);
      return row?.dataset.state === 'done' ? row.querySelectorAll('li.tree-file input:not(:disabled)').length : 0;
    }, id), (n) => n === orig.files.length);
    before = await requestsToA();
    await d.page.evaluate(tick, { id, paths: steps[1] });
    const newFiles = steps[1].filter((p) => !steps[0].includes(p));
    await h.waitFor('D to fetch the ticked files', () => F.entryOf(d, id), (e) => e?.state === 'done' &&
      e.files.filter((f) => newFiles.includes(f.path)).every((f) => f.chunksDone === f.chunksTotal), { timeout: F.DOWNLOAD_MS });
    // download(link) without paths: the finished File at once, never a fetch.
    const second = await d.page.evaluate(downloadPicked, { link: orig.link, paths: null });
    stored = check('ticked in the page', second, steps[1], stored, (await requestsToA()) - before);
    const shown = await d.page.evaluate((i) => [...document.querySelectorAll(`li.download[data-share-id="${i}"] li.tree-file`)]
      .filter((r) => r.querySelector('input').checked).map((r) => r.dataset.path), id);
    assert.deepEqual(shown.sort(), [...steps[1]].sort(), 'the ticked files in the page');

    // 3. Untick the second directory (node.want, all of the rest stored: nothing to fetch)
    // and reload as soon as want() resolves: it resolves once the picks are on disk. After
    // the reload download(link) keeps them (the first directory only), all stored, so it
    // asks for nothing; then download(link, paths) with a third directory.
    await d.page.evaluate(({ i, paths }) => window.shoal.want(i, paths), { i: id, paths: steps[0] });
    await d.page.reload();
    await d.started();
    await h.waitMeshDirect([a, d]);
    // A answers each session's Hello only after HELLO_DELAY_MS: the session that
    // download(link) opens is still in its handshake when download(link, paths) reopens
    // the download below (the race this step checks: the new attempt must not be refused
    // for the old attempt's handshake, nor wait for it).
    await a.page.evaluate((ms) => window.shoal.setTestHelloDelay(ms), HELLO_DELAY_MS);
    before = await requestsToA();
    const again = await h.within('D to reopen its picks after a reload', d.page.evaluate(downloadPicked, { link: orig.link, paths: null }), F.DOWNLOAD_MS);
    const askedAgain = (await requestsToA()) - before;
    t.diagnostic(`reopened after a reload: ${again.entry.state}, ${again.entry.chunksDone} of ${again.entry.chunksTotal} chunks, A asked ${askedAgain} times`);
    assert.equal(again.entry.state, 'done', 'reopened after a reload: state');
    assert.equal(askedAgain, 0, 'reopened after a reload: it fetched chunks of files not picked');
    assert.deepEqual(again.entry.files.filter((f) => f.wanted).map((f) => f.path).sort(), [...steps[0]].sort(), 'reopened after a reload: the files marked wanted');
    assert.deepEqual(again.files.sort(byPath), expected(steps[0]), "reopened after a reload: D's files differ from A's");
    // At once (A has not answered the first session's Hello yet): the third directory.
    before = await requestsToA();
    const third = await h.within('D to download the third directory after a reload', d.page.evaluate(downloadPicked, { link: orig.link, paths: steps[2] }), F.DOWNLOAD_MS);
    await a.page.evaluate(() => window.shoal.setTestHelloDelay(0));
    check('after a reload', third, steps[2], stored, (await requestsToA()) - before);

    // 4. Every file (want(id, null)): the download reopens for the rest; D reloads as soon
    // as want() resolves, and download(link) then fetches everything, not the last picks.
    await d.page.evaluate((i) => window.shoal.want(i, null), id);
    await d.page.reload();
    await d.started();
    await h.waitMeshDirect([a, d]);
    const all = await h.within('D to fetch every file after a reload', d.page.evaluate(downloadPicked, { link: orig.link, paths: null }), F.DOWNLOAD_MS);
    t.diagnostic(`every file after a reload: ${all.entry.state}, ${all.entry.chunksDone} of ${all.entry.chunksTotal} chunks`);
    assert.equal(all.entry.state, 'done', 'every file after a reload: state');
    assert.equal(all.entry.chunksDone, all.entry.chunksTotal, 'every file after a reload: the last picks came back');
    assert.deepEqual(all.files.sort(byPath), [...orig.files].sort(byPath), "every file after a reload: D's files differ from A's");
  });
  it('narrowing the picks while it downloads: want() resolves once they are on disk, and a reload then keeps them', async (t) => {
    const swarm = newSwarm('narrow');
    const { a, d, orig, id } = await sharedTree(swarm);
    const picked = orig.files.filter((f) => f.path.startsWith('photos/2024/')).map((f) => f.path);
    // A serves slowly, so that the download of everything is still running when D narrows it.
    await a.page.evaluate((ms) => window.shoal.setTestServeDelay(ms), NARROW_SERVE_DELAY_MS);
    await d.page.evaluate((link) => { window.shoal.download(link).catch(() => {}); }, orig.link);
    await h.waitFor('D to store a first chunk', () => F.entryOf(d, id), (e) => e?.state === 'downloading' && e.chunksDone > 0);
    await d.page.evaluate(({ i, paths }) => window.shoal.want(i, paths), { i: id, paths: picked });
    const narrowed = await F.entryOf(d, id);
    t.diagnostic(`narrowed at ${narrowed.chunksDone} of ${narrowed.chunksTotal} chunks (${narrowed.state})`);
    assert.equal(narrowed.state, 'downloading', 'the download was over before want() resolved');
    // Reload at once: the picks were on disk when want() resolved.
    await d.page.reload();
    await d.started();
    await h.waitMeshDirect([a, d]);
    await a.page.evaluate(() => window.shoal.setTestServeDelay(0));
    const got = await h.within('D to finish the narrowed download after a reload', d.page.evaluate(downloadPicked, { link: orig.link, paths: null }), F.DOWNLOAD_MS);
    const layout = got.entry.files;
    t.diagnostic(`after the reload: ${got.entry.state}, ${got.entry.chunksDone} of ${got.entry.chunksTotal} chunks`);
    assert.equal(got.entry.state, 'done');
    assert.deepEqual(layout.filter((f) => f.wanted).map((f) => f.path).sort(), [...picked].sort(), 'the files marked wanted after the reload');
    assert.ok(layout.filter((f) => picked.includes(f.path)).every((f) => f.chunksDone === f.chunksTotal), 'every picked file is stored');
    assert.ok(got.entry.chunksDone < got.entry.chunksTotal, 'it fetched the whole share: the narrowed picks were lost');
    assert.deepEqual(got.files.sort(byPath), orig.files.filter((f) => picked.includes(f.path)).sort(byPath), "D's files differ from A's");
  });
});
