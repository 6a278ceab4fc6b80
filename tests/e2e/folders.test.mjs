// Issue #9: "folders and several files in one link".
//
// A shares a folder of 60 files in nested directories (empty files, names in
// several scripts, files that cross chunk boundaries) under one link. D first
// downloads a subset while A is the only holder, so every request it makes
// goes to A: it asks for exactly the chunks that hold the picked files. Then
// B and C download all of it at once; every file's path and SHA-256 match A's,
// read as slices of the downloaded byte stream, and again after the page's
// own save code wrote the tree into a directory (OPFS here, a picked folder
// for a user). A path that could escape the folder is refused. Files are made
// and hashed inside the pages; only paths and hex digests cross into node.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe } from 'node:test';
import * as F from './files.mjs';
import { firefoxUnavailable, launchFirefoxPeer } from './firefox.mjs';
import * as h from './harness.mjs';
import { byPath, chunksOf, shareTreeInPage } from './tree.mjs';

const TEST = { timeout: 8 * h.WAIT_MS + 3 * F.DOWNLOAD_MS };
/**
 * In a downloader's page: download `link` (only `paths` if given), then hash each wanted file
 * as a slice of the byte stream; and write the tree with the page's own save code into an
 * OPFS directory and hash what it wrote. Returns { name, files, written, entry }.
 */
async function downloadTreeInPage({ link, paths }) {
  const hex = async (blob) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), (b) => b.toString(16).padStart(2, '0')).join('');
  const file = await window.shoal.download(link, paths ?? null);
  const id = /share=([^&]+)/.exec(link)[1];
  const entry = window.shoal.downloads().find((d) => d.shareId === id);
  const wanted = entry.files.filter((f) => f.wanted);
  const files = [];
  for (const f of wanted) files.push({ path: f.path, size: f.size, sha256: await hex(file.slice(f.offset, f.offset + f.size)) });
  // The page's save: a directory (as showDirectoryPicker would give) in OPFS.
  const { writeTree } = await import('/ui/folders.js');
  const root = await (await navigator.storage.getDirectory()).getDirectoryHandle(`saved-${id.slice(0, 8)}`, { create: true });
  await writeTree(root, file, wanted);
  const written = [];
  const walk = async (dir, prefix) => {
    for await (const [name, handle] of dir.entries()) {
      if (handle.kind === 'directory') await walk(handle, `${prefix}${name}/`);
      else {
        const f = await handle.getFile();
        written.push({ path: prefix + name, size: f.size, sha256: await hex(f) });
      }
    }
  };
  await walk(root, '');
  return { name: file.name, files, written, entry };
}

/**
 * In a downloader's page: the page's zip fallback (client-zip) writes the finished share's
 * files into an OPFS file as it goes; returns that file as base64 for an outside check.
 */
async function zipTreeInPage({ link, shareId }) {
  const entry = window.shoal.downloads().find((d) => d.shareId === shareId);
  // A finished download resolves at once to its File.
  const file = await window.shoal.download(link);
  const { zipInto } = await import('/ui/folders.js');
  const handle = await (await navigator.storage.getDirectory()).getFileHandle('test.zip', { create: true });
  const zip = await zipInto(handle, file, entry.files);
  const bytes = new Uint8Array(await zip.arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** [{ path, size, sha256 }] of a zip, read by Python's zipfile (which checks every CRC-32). */
function readZip(base64) {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-zip-'));
  try {
    const file = path.join(dir, 't.zip');
    writeFileSync(file, Buffer.from(base64, 'base64'));
    const script = 'import zipfile,hashlib,json,sys\nz=zipfile.ZipFile(sys.argv[1])\nprint(json.dumps([{"path":i.filename,"size":i.file_size,"sha256":hashlib.sha256(z.read(i)).hexdigest()} for i in z.infolist()]))';
    return JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('folders and several files in one link', () => {
  const { it, launchSwarm, relay, open, swarm } = h.relaySuite('folders', TEST);

  it('a tree of 60 files: a subset fetches only its chunks, then two peers get every file intact', async (t) => {
    const [a, b, c, d] = await launchSwarm('A', 'B', 'C', 'D');
    const orig = await h.within('A to make and share the tree', a.page.evaluate(shareTreeInPage), 4 * h.WAIT_MS);
    const shareId = F.shareIdOf(orig.link);
    assert.equal(orig.files.length, 60);
    assert.ok(orig.files.some((f) => f.size === 0), 'the tree has empty files');

    // Hostile paths are refused when sharing (the decoder refuses the same from peers:
    // share/src/manifest.rs tests and the fuzz target).
    for (const path of ['../escape', '/abs', 'a//b', 'a\\b', 'x/\u202egnp.exe', 'ok', 'ok']) {
      const refused = await a.page.evaluate(
        (p) => window.shoal.shareFiles('bad', [{ path: p, file: new Blob(['x']) }, { path: 'ok', file: new Blob(['y']) }]).then(() => null, (e) => String(e.message ?? e)),
        path,
      );
      assert.ok(refused, `sharing a file at ${JSON.stringify(path)} beside "ok" was accepted`);
    }

    // D picks the files of one directory while A is the only holder: every request goes to A.
    const picked = orig.files.filter((f) => f.path.startsWith('photos/2024/')).map((f) => f.path);
    assert.ok(picked.length >= 5, `${picked.length} files picked`);
    const requestsBefore = await a.page.evaluate(() => window.shoal.testRequestsReceived());
    const sub = await h.within('D to download the picked files', d.page.evaluate(downloadTreeInPage, { link: orig.link, paths: picked }), F.DOWNLOAD_MS);
    const expected = orig.files.filter((f) => picked.includes(f.path)).sort(byPath);
    assert.deepEqual(sub.files.sort(byPath), expected, "D's picked files differ from A's");
    assert.deepEqual(sub.written.sort(byPath), expected, 'the tree D saved differs from A\'s files');
    const wantedChunks = chunksOf(sub.entry.files.filter((f) => f.wanted));
    const requestsToA = (await a.page.evaluate(() => window.shoal.testRequestsReceived())) - requestsBefore;
    const requestedByD = sub.entry.sources.reduce((n, s) => n + s.requested, 0);
    t.diagnostic(`subset: ${picked.length} of 60 files, ${wantedChunks.size} of ${sub.entry.chunksTotal} chunks; D requested ${requestedByD}, A received ${requestsToA}`);
    assert.ok(wantedChunks.size < sub.entry.chunksTotal, 'the subset should not need every chunk');
    assert.equal(sub.entry.chunksDone, wantedChunks.size, `D stored ${sub.entry.chunksDone} chunks, the picked files lie in ${wantedChunks.size}`);
    assert.equal(requestedByD, wantedChunks.size, 'D asked for chunks beyond the picked files');
    assert.equal(requestsToA, wantedChunks.size, 'A was asked for chunks beyond the picked files');
    for (const f of sub.entry.files) {
      if (!f.wanted && ![...chunksOf([f])].some((ch) => wantedChunks.has(ch))) {
        assert.equal(f.chunksDone, 0, `D stored chunks of ${f.path}, which it did not pick`);
      }
    }

    // B and C download everything at once (from A, D and each other).
    const [gotB, gotC] = await Promise.all([b, c].map((p) =>
      h.within(`${p.name} to download the tree`, p.page.evaluate(downloadTreeInPage, { link: orig.link }), F.DOWNLOAD_MS, async () =>
        `${p.name}'s entry: ${JSON.stringify(F.brief(await F.entryOf(p, shareId)))}`)));
    const all = [...orig.files].sort(byPath);
    for (const [name, got] of [['B', gotB], ['C', gotC]]) {
      assert.equal(got.name, 'Фото & files');
      assert.deepEqual(got.files.sort(byPath), all, `${name}'s files differ from A's`);
      // Empty directories are not made; every file, empty ones included, is written.
      assert.deepEqual(got.written.sort(byPath), all, `the tree ${name} saved differs from A's`);
      assert.equal(got.entry.state, 'done');
      assert.equal(got.entry.files.length, 60);
    }

    // The zip fallback (browsers without a directory picker): the same files, every CRC right.
    const zipped = readZip(await b.page.evaluate(zipTreeInPage, { link: orig.link, shareId }));
    assert.deepEqual(zipped.sort(byPath), all, "the zip of B's download differs from A's files");

    // The page shows the tree as text: a row per file, the names as they are.
    const shown = await h.waitFor("B's page to list the 60 files", () => b.page.evaluate((id) => {
      const li = document.querySelector(`li.download[data-share-id="${id}"]`);
      return li ? [...li.querySelectorAll('li.tree-file')].map((r) => r.dataset.path) : [];
    }, shareId), (paths) => paths.length === 60);
    assert.deepEqual([...shown].sort(), all.map((f) => f.path).sort());
    const text = await b.page.evaluate(() => document.querySelector('ul.tree').textContent);
    assert.ok(text.includes('夏/') && text.includes('Привет'), `the tree's text: ${text.slice(0, 200)}`);
  });

  it('the page: a folder picked in A is one link; B opens it and the tree lists every file as text', async () => {
    const [a, b] = await launchSwarm('A', 'B');
    // A folder on disk, picked through the page's folder input (webkitdirectory).
    const root = mkdtempSync(path.join(tmpdir(), 'shoal-folder-'));
    const folder = path.join(root, 'Мой альбом');
    const made = [];
    try {
      for (const [rel, size] of [['a.txt', 10], ['empty', 0], ['sub/日本.bin', 300_000], ['sub/deeper/ünï.bin', 5000], ['z/only', 1]]) {
        const bytes = randomBytes(size);
        mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
        writeFileSync(path.join(folder, rel), bytes);
        made.push({ path: rel, size, sha256: createHash('sha256').update(bytes).digest('hex') });
      }
      await a.page.locator('input[webkitdirectory]').setInputFiles(folder);
      const row = a.page.locator('#shares li[data-state="ready"]');
      await row.waitFor({ timeout: 4 * h.WAIT_MS });
      const link = await row.locator('.link-text').inputValue();
      assert.match(await row.locator('.item-name').textContent(), /Мой альбом \(5 files\)/);

      await b.page.fill('#paste-input', link);
      await b.page.click('#paste-form button[type="submit"]');
      const id = F.shareIdOf(link);
      await b.page.locator(`li.download[data-share-id="${id}"][data-state="done"]`).waitFor({ timeout: F.DOWNLOAD_MS });
      const got = await b.page.evaluate(async ({ link, id }) => {
        const hex = async (blob) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), (x) => x.toString(16).padStart(2, '0')).join('');
        const file = await window.shoal.download(link);
        const d = window.shoal.downloads().find((x) => x.shareId === id);
        const files = [];
        for (const f of d.files) files.push({ path: f.path, size: f.size, sha256: await hex(file.slice(f.offset, f.offset + f.size)) });
        const li = document.querySelector(`li.download[data-share-id="${id}"]`);
        return { name: d.name, files, rows: [...li.querySelectorAll('li.tree-file')].map((r) => r.textContent), dirs: [...li.querySelectorAll('li.tree-dir')].map((r) => r.textContent) };
      }, { link, id });
      assert.equal(got.name, 'Мой альбом');
      assert.deepEqual(got.files.sort(byPath), made.sort(byPath));
      assert.equal(got.rows.length, 5);
      assert.ok(got.rows.some((r) => r.includes('日本.bin')), JSON.stringify(got.rows));
      assert.deepEqual(got.dirs.sort(), ['deeper/', 'sub/', 'z/']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('Firefox (no directory picker) downloads a tree from Chromium and zips it intact', async (t) => {
    const unavailable = firefoxUnavailable();
    if (unavailable) return t.skip(unavailable);
    const s = swarm('folders-firefox');
    const c = await h.launchPeer(relay.url, { name: 'C', swarm: s });
    open.push(c);
    const f = await launchFirefoxPeer(relay.url, { name: 'F', swarm: s });
    open.push(f);
    await Promise.all([c.started(), f.started()]);
    await h.waitMeshDirect([c, f]);
    const orig = await h.within('C to make and share the tree', c.page.evaluate(shareTreeInPage), 4 * h.WAIT_MS);
    const got = await h.within('F to download the tree', f.page.evaluate(downloadTreeInPage, { link: orig.link }), F.DOWNLOAD_MS);
    const all = [...orig.files].sort(byPath);
    assert.deepEqual(got.files.sort(byPath), all, "F's files differ from C's");
    assert.deepEqual(got.written.sort(byPath), all, "the tree F wrote differs from C's files");
    t.diagnostic(`Firefox's showDirectoryPicker: ${await f.page.evaluate(() => typeof window.showDirectoryPicker)} (without one, Save writes the zip)`);
    const zipped = readZip(await f.page.evaluate(zipTreeInPage, { link: orig.link, shareId: F.shareIdOf(orig.link) }));
    assert.deepEqual(zipped.sort(byPath), all, "the zip of F's download differs from C's files");
  });
});
