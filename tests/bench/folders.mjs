#!/usr/bin/env node
// Benchmark: a folder of many small files against the same bytes as one file
// (issue #9): files/s and MB/s of the download, and the time to share.
//
//   node tests/bench/folders.mjs [--files N] [--min-kib N] [--max-kib N] [--seed S]
//        [--rounds N] [--profile] [--no-write]                                (make bench-folders)
//
// Two Chromium processes (one per peer, persistent profiles: OPFS on disk), a
// real relay ($SHOAL_RELAY_BIN, else target/release/relay), the release page.
// Each round, in a fresh swarm with both browsers' storage emptied:
// 1. A makes --files files (default 1,000) of random bytes in the page, sizes
//    drawn log-uniformly between --min-kib and --max-kib (default 1–64 KiB)
//    from --seed (so runs compare), at paths whose sorted order is the order
//    they were made in; and one Blob of the same bytes in the same order.
// 2. A shares both, timed: `shareFiles(name, entries)` and `share(blob)`
//    (hashing and building the manifest).
// 3. B downloads a small file first (untimed: the round's first download pays
//    for starting its sessions), then both one after the other, the order
//    alternating round by round, each timed from `download(link)` to its resolve, and then to
//    saved (the page's own save: the tree written by `writeTree` into an
//    OPFS directory, the one file piped into an OPFS file). The two downloaded
//    byte streams and A's are compared by SHA-256.
// Medians over --rounds (default 3), the folder ÷ one-file ratio per round,
// CPU seconds of each browser per case; prints and rewrites its own section
// of BENCHMARKS.md.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as h from '../e2e/harness.mjs';
import * as B from './lib/browsers.mjs';
import { attribute, startProfiler } from './lib/cpuprofile.mjs';
import { idleLoad, loadLine } from './lib/load.mjs';
import { benchCommand, cliArgs, machine, wasmBuild, writeSection } from './lib/report.mjs';
import * as S from './lib/shoal.mjs';
import { median, transferTimeout } from './lib/util.mjs';

const { argv, flag, option } = cliArgs();
const int = (name, fallback, min = 1) => {
  const n = Number(option(name, fallback));
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}`);
  return n;
};
const FILES = int('--files', 1000);
const MIN_KIB = int('--min-kib', 1);
const MAX_KIB = int('--max-kib', 64);
if (MAX_KIB < MIN_KIB) throw new Error('--max-kib must be ≥ --min-kib');
const SEED = int('--seed', 1, 0);
const ROUNDS = int('--rounds', 3);
const WRITE = !flag('--no-write');
// B's main thread under the CDP Profiler during each download (slows it: for where the time goes, not for the figures).
const PROFILE = flag('--profile');

const SECTION_START = '<!-- bench:folders -->';
const SECTION_END = '<!-- /bench:folders -->';
const COMMAND = benchCommand('tests/bench/folders.mjs', argv);

const f1 = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(1));
const f2 = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(2));
const say = (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

/** File sizes from `seed`: log-uniform in [min, max] KiB (mulberry32). */
function fileSizes(count, minKib, maxKib, seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const lo = Math.log(minKib * 1024);
  const hi = Math.log(maxKib * 1024);
  return Array.from({ length: count }, () => Math.round(Math.exp(lo + (hi - lo) * next())));
}

// ---- evaluated in A's page -------------------------------------------------------

/**
 * Make the files (random bytes, `sizes`), at paths `d07/f00421.bin` (sorted = made), and
 * one Blob of the same bytes; share both, timed. Returns links, times and A's SHA-256.
 */
async function shareBothInPage({ sizes, name }) {
  const hex = async (blob) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), (b) => b.toString(16).padStart(2, '0')).join('');
  const pad = (n, w) => String(n).padStart(w, '0');
  const entries = sizes.map((size, i) => {
    const parts = [];
    for (let off = 0; off < size; off += 65536) {
      const part = new Uint8Array(Math.min(65536, size - off));
      crypto.getRandomValues(part); // at most 65,536 bytes a call
      parts.push(part);
    }
    return { path: `d${pad(Math.floor(i / 50), 3)}/f${pad(i, 6)}.bin`, file: new Blob(parts) };
  });
  const whole = new Blob(entries.map((e) => e.file));
  const sha256 = await hex(whole);
  const t0 = performance.now();
  const folderLink = await window.shoal.shareFiles(name, entries);
  const t1 = performance.now();
  const fileLink = await window.shoal.share(whole, `${name}.bin`);
  const t2 = performance.now();
  // Not timed: B fetches this first, so neither timed download is the round's first.
  const warmLink = await window.shoal.share(whole.slice(0, 256 * 1024), `${name}-warm-up.bin`);
  return { folderLink, fileLink, warmLink, sha256, size: whole.size, shareFolderMs: t1 - t0, shareFileMs: t2 - t1 };
}

// ---- evaluated in B's page -------------------------------------------------------

/** Download `link`, timed to its resolve; the File waits in `window.__got` for saveInPage. */
async function downloadInPage(link) {
  const t0 = performance.now();
  const file = await window.shoal.download(link);
  const ms = performance.now() - t0;
  const id = /share=([^&]+)/.exec(link)[1];
  const d = window.shoal.downloads().find((x) => x.shareId === id);
  window.__got = { file, files: d.files };
  return { downloadMs: ms, size: file.size, files: d.files?.length ?? 1, chunks: d.chunksTotal };
}

/**
 * Save what downloadInPage got as the page does (a tree into an OPFS directory with
 * `writeTree`, one file piped into an OPFS file), timed; then hash its bytes.
 */
async function saveInPage(dir) {
  const hex = async (blob) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), (b) => b.toString(16).padStart(2, '0')).join('');
  const { file, files } = window.__got;
  const t0 = performance.now();
  const root = await navigator.storage.getDirectory();
  if (files) {
    const { writeTree } = await import('/ui/folders.js');
    await writeTree(await root.getDirectoryHandle(dir, { create: true }), file, files);
  } else {
    const handle = await root.getFileHandle(dir, { create: true });
    await file.stream().pipeTo(await handle.createWritable());
  }
  return { saveMs: performance.now() - t0, sha256: await hex(file) };
}

let browserVersion = null;

// ---- one round -------------------------------------------------------------------

async function round(i, a, b, relayUrl, sizes) {
  await Promise.all([a, b].map((p) => B.clearOpfs(p, `${relayUrl}/healthz`)));
  const swarm = `bench-folders-${Math.random().toString(36).slice(2, 8)}`;
  const [ta, tb] = await Promise.all([S.openShoal(a, swarm, 'A'), S.openShoal(b, swarm, 'B')]);
  try {
    await S.waitMesh([ta, tb]);
    browserVersion ??= await ta.page.evaluate(() => navigator.userAgent.match(/Chrome\/([\d.]+)/)?.[1] ?? '?');
    const shared = await h.within('A to make and share the files', ta.page.evaluate(shareBothInPage, { sizes, name: `bench-${i}` }), 20 * h.WAIT_MS);
    say(`  round ${i + 1}: A shared ${FILES} files in ${f2(shared.shareFolderMs / 1000)} s, the same ${f1(shared.size / 1e6)} MB as one file in ${f2(shared.shareFileMs / 1000)} s`);
    // The round's first download pays for its sessions' start (measured: 1.5-2.5x slower
    // whichever case went first): a small file first, untimed.
    await h.within('B to download the warm-up file', tb.page.evaluate((l) => window.shoal.download(l).then((f) => f.size), shared.warmLink), transferTimeout(256 * 1024));
    const order = i % 2 === 0 ? ['folder', 'file'] : ['file', 'folder'];
    const out = { round: i + 1, order, shared };
    for (const kind of order) {
      const link = kind === 'folder' ? shared.folderLink : shared.fileLink;
      const snap0 = B.cpuSnapshot([a, b]);
      const stop = PROFILE ? await startProfiler(tb.page) : null; // the download only
      const dl = await h.within(`B to download the ${kind}`, tb.page.evaluate(downloadInPage, link), transferTimeout(shared.size));
      const cpu = B.cpuDelta(snap0, B.cpuSnapshot([a, b]));
      if (stop) {
        const prof = attribute(await stop());
        say(`  B's main thread, ${kind}: ${f2(prof.busyMs / 1000)} s busy; ${prof.categories.map((c) => `${c.name} ${f1(c.pct)} %`).join('; ')}`);
        for (const t of prof.top) say(`    ${f1(t.pct)} %  ${t.fn}`);
      }
      const saved = await h.within(`B to save the ${kind}`, tb.page.evaluate(saveInPage, `saved-${kind}`), 10 * h.WAIT_MS);
      const got = { ...dl, ...saved };
      if (got.sha256 !== shared.sha256 || got.size !== shared.size) throw new Error(`round ${i + 1}: B's ${kind} differs from A's bytes`);
      out[kind] = { ...got, cpuA: cpu.A, cpuB: cpu.B };
      say(`  round ${i + 1}: ${kind}: ${f2(got.downloadMs / 1000)} s to download (${f1(FILES / (got.downloadMs / 1000))} files/s, ${f1(shared.size / 1e3 / got.downloadMs)} MB/s), +${f2(got.saveMs / 1000)} s to save; ${got.chunks} chunks; CPU A ${f1(cpu.A.total)} s, B ${f1(cpu.B.total)} s (renderer ${f1(cpu.B.renderer)}, storage ${f1(cpu.B.storage)}, network ${f1(cpu.B.network)}, browser ${f1(cpu.B.browser)}); SHA-256 matches`);
    }
    return out;
  } finally {
    await Promise.all([ta.page.close(), tb.page.close()]);
  }
}

// ---- report ----------------------------------------------------------------------

function section(r) {
  const size = r.rounds[0].shared.size;
  const med = (f) => median(r.rounds.map(f));
  const rate = (ms) => FILES / (ms / 1000);
  const mbps = (ms) => size / 1e3 / ms;
  const L = [SECTION_START, `## Folders: ${FILES.toLocaleString('en')} small files against the same bytes as one file`, ''];
  L.push(`- Date: ${r.date}`);
  L.push(`- Machine: ${r.machine.arch}, ${r.machine.cpus} CPUs, ${r.machine.cpu}, ${f1(r.machine.memGiB)} GiB RAM`);
  L.push(`- Load before the run: ${loadLine(r.idle)}`);
  L.push(`- Browser: ${r.browser}, headless, one process per peer, persistent profile each (OPFS on disk), loopback`);
  L.push(`- Peer: \`www/pkg/peer_wasm_bg.wasm\` ${r.wasm}; relay \`${path.relative(h.REPO, h.relayBinary())}\``);
  L.push(`- Command: \`${COMMAND}\`  (\`make bench-folders\`)`);
  L.push(`- Files: ${FILES.toLocaleString('en')} of random bytes made in A's page, sizes log-uniform in ${MIN_KIB}–${MAX_KIB} KiB from seed ${SEED} (${(size / 1e6).toFixed(2)} MB in all, median file ${(median(r.sizes) / 1024).toFixed(1)} KiB; ${r.rounds[0].folder.chunks} chunks either way), in ${Math.ceil(FILES / 50)} directories; the one file is the same bytes in the same order.`);
  L.push(`- Each of ${r.rounds.length} rounds: fresh swarm, both browsers' storage emptied, A shares both, B downloads a 256 KiB file (untimed warm-up), then both one after the other (order alternating by round). Timed in the pages: \`shareFiles\`/\`share\` to resolve; \`download(link)\` to resolve; then saving as the page does (\`writeTree\` into an OPFS directory / the one file piped into an OPFS file). Bytes compared by SHA-256. MB = 10^6 bytes.`);
  L.push('');
  L.push('| case (median of rounds) | share s | download s | files/s ¹ | MB/s | + save s | CPU-s A / B (download) |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
  const row = (label, kind, shareMs) => {
    const dl = med((x) => x[kind].downloadMs);
    L.push(`| ${label} | ${f2(shareMs / 1000)} | ${f2(dl / 1000)} | ${f1(rate(dl))} | ${f1(mbps(dl))} | ${f2(med((x) => x[kind].saveMs) / 1000)} | ${f1(med((x) => x[kind].cpuA.total))} / ${f1(med((x) => x[kind].cpuB.total))} |`);
  };
  row(`folder of ${FILES.toLocaleString('en')} files`, 'folder', med((x) => x.shared.shareFolderMs));
  row('one file, same bytes', 'file', med((x) => x.shared.shareFileMs));
  L.push('', `¹ For the one file: ${FILES.toLocaleString('en')} ÷ its download time, the rate at which it delivers the same bytes.`, '');
  const ratios = r.rounds.map((x) => x.folder.downloadMs / x.file.downloadMs);
  const shareRatios = r.rounds.map((x) => x.shared.shareFolderMs / x.shared.shareFileMs);
  const saveRatios = r.rounds.map((x) => (x.folder.downloadMs + x.folder.saveMs) / (x.file.downloadMs + x.file.saveMs));
  L.push(`Folder ÷ one file, per round (download time): ${ratios.map(f2).join(', ')} — **median ${f2(median(ratios))}×**; to saved: ${saveRatios.map(f2).join(', ')} (median ${f2(median(saveRatios))}×); sharing: ${shareRatios.map(f2).join(', ')} (median ${f2(median(shareRatios))}×).`);
  L.push('');
  L.push('<details><summary>every round</summary>', '');
  L.push('| round | order | share folder / file s | folder: download s, save s | file: download s, save s |');
  L.push('| ---: | --- | --- | --- | --- |');
  for (const x of r.rounds) {
    L.push(`| ${x.round} | ${x.order.join(' → ')} | ${f2(x.shared.shareFolderMs / 1000)} / ${f2(x.shared.shareFileMs / 1000)} | ${f2(x.folder.downloadMs / 1000)}, ${f2(x.folder.saveMs / 1000)} | ${f2(x.file.downloadMs / 1000)}, ${f2(x.file.saveMs / 1000)} |`);
  }
  L.push('', '</details>', SECTION_END);
  return L.join('\n');
}

async function main() {
  const r = { date: new Date().toISOString(), machine: machine(), wasm: wasmBuild(process.env.SHOAL_WWW), rounds: [] };
  r.sizes = fileSizes(FILES, MIN_KIB, MAX_KIB, SEED);
  r.idle = await idleLoad();
  say(`load before start: ${loadLine(r.idle)}`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-folders-'));
  let relay = null;
  try {
    relay = await h.startRelay();
    say(`relay ${relay.url} (pid ${relay.pid}); launching browsers A and B`);
    const [a, b] = await Promise.all([
      B.launchPeer('A', path.join(tmp, 'profile-A'), relay.url, null),
      B.launchPeer('B', path.join(tmp, 'profile-B'), relay.url, null),
    ]);
    for (let i = 0; i < ROUNDS; i++) r.rounds.push(await round(i, a, b, relay.url, r.sizes));
  } catch (e) {
    console.error(e.stack ?? e.message);
    B.dumpLogs('logs up to the failure');
    process.exitCode = 1;
  } finally {
    await B.closeAllPeers();
    await h.closeAll();
    if (relay) await relay.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  if (r.rounds.length === 0) return;
  r.browser = `Chromium ${browserVersion}`;
  const text = section(r);
  console.log(`\n${text}\n`);
  if (process.exitCode) console.error('not writing BENCHMARKS.md: a round failed');
  else if (WRITE) console.log(`wrote ${writeSection(SECTION_START, SECTION_END, text)}`);
}

main();
