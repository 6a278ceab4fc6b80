#!/usr/bin/env node
// Benchmark: where a transfer's CPU goes, shoal beside a raw RTCDataChannel
// (issue 10: profile before changing, attribution in BENCHMARKS.md).
//
//   node tests/bench/profile.mjs [--size-mib N] [--rounds N] [--compare DIR]
//        [--save-profiles DIR] [--no-write]                       (make bench-profile)
//
// One pair of Chromium processes (persistent profiles, OPFS on disk), a real
// relay, the same random file for both contenders, A → B:
// 1. raw RTCDataChannel (lib/raw.mjs), then shoal (download() → resolve):
//    CPU seconds per GiB of every thread of each browser, grouped by process
//    and thread kind (lib/threads.mjs: the tab's main thread, Chromium's
//    WebRTC network thread, workers, the network and storage services).
// 2. shoal once more with the CDP Profiler on both tabs' main threads: self
//    time by category (BLAKE3, copies, allocator, libp2p, shoal's crates, the
//    JS glue, GC, Chromium's own work on that thread) and the top functions.
//    Function names come from the wasm's name section: `make bench-profile`
//    serves a build that keeps it (target/www-profiling); the release build
//    strips it, and then wasm functions show as wasm-function[N].
// --compare DIR: a second page (another build of the peer, DIR/pkg) served by
//    a second relay; each round then runs raw, shoal, and shoal with that build
//    (the two builds in turn first), side by side on the same browsers, and the
//    report gives the ratios (use an even number of rounds). For
//    deciding a change on a noisy machine; it prints, and writes nothing.
// Prints everything and rewrites its own section of BENCHMARKS.md.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as h from '../e2e/harness.mjs';
import * as B from './lib/browsers.mjs';
import { attribute } from './lib/cpuprofile.mjs';
import { MiB, writeRandomFile } from './lib/files.mjs';
import { describeRaw, RAW, rawTransfer } from './lib/raw.mjs';
import { benchCommand, cliArgs, machine, writeSection } from './lib/report.mjs';
import { startBenchServer } from './lib/server.mjs';
import * as S from './lib/shoal.mjs';
import { threadDelta, threadSnapshot } from './lib/threads.mjs';
import { transferTimeout } from './lib/util.mjs';

const { argv, flag, option } = cliArgs();
const SIZE = Math.round(Number(option('--size-mib', '128')) * MiB);
if (!(SIZE > 0)) throw new Error('--size-mib must be a positive number');
const WRITE = !flag('--no-write');
// --save-profiles DIR: also write both .cpuprofile files (open them in Chrome DevTools).
const SAVE = option('--save-profiles', null);
const ROUNDS = Math.max(1, Number.parseInt(option('--rounds', '1'), 10) || 1);
const COMPARE = option('--compare', null);
const GiB = 1024 * MiB;
const SECTION_START = '<!-- bench:profile -->';
const SECTION_END = '<!-- /bench:profile -->';
const COMMAND = benchCommand('tests/bench/profile.mjs', argv);
const WWW = process.env.SHOAL_WWW ?? 'www';

const f1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toFixed(1));
const say = (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

// ---- main-thread profile ----------------------------------------------------------

// First match wins: a function's category by its name (wasm name section) or script.
// ---- transfers ---------------------------------------------------------------------

async function withThreads(peers, fn) {
  const before = peers.map((p) => threadSnapshot(p.browserPid));
  const t0 = Date.now();
  const result = await fn();
  const seconds = (Date.now() - t0) / 1000;
  const threads = peers.map((p, i) => threadDelta(before[i], threadSnapshot(p.browserPid)));
  return { result, seconds, threads };
}

// Evaluated in a page: count RTCDataChannel.send() calls and bytes from now on
// (each call is a hop to Chromium's WebRTC thread).
function countSends() {
  const counts = (window.__sends = { calls: 0, bytes: 0 });
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    counts.calls++;
    counts.bytes += data?.byteLength ?? data?.size ?? data?.length ?? 0;
    return send.call(this, data);
  };
}

const sendCounts = (tabs) => Promise.all(tabs.map((t) => t.page.evaluate(() => ({ ...window.__sends }))));

async function shoalPair(a, b, file, label, origin) {
  await Promise.all([a, b].map((p) => B.clearOpfs(p, `${origin}/healthz`)));
  const swarm = `bench-profile-${Math.random().toString(36).slice(2, 8)}`;
  const open = async (peer, name) => {
    const page = await B.openTab(peer, `${origin}/?swarm=${swarm}`, name);
    return { page, peerId: await B.shoalStarted(page, name), label: name, peer };
  };
  const [ta, tb] = await Promise.all([open(a, `A-${label}`), open(b, `B-${label}`)]);
  await S.waitMesh([ta, tb]);
  await Promise.all([ta, tb].map((t) => t.page.evaluate(countSends)));
  const { link } = await S.share(ta, file, path.basename(file));
  return { ta, tb, link, close: () => Promise.all([ta.page.close(), tb.page.close()]) };
}

/** One shoal transfer A → B from the page at `origin`, with threads and send() counts. */
async function shoalRun(peers, file, label, origin, timeoutMs) {
  const pair = await shoalPair(...peers, file, label, origin);
  try {
    const sends0 = await sendCounts([pair.ta, pair.tb]);
    const m = await withThreads(peers, () => S.downloadAll([pair.tb], pair.link, SIZE, { timeoutMs }));
    m.sends = (await sendCounts([pair.ta, pair.tb])).map((c, i) => ({ calls: c.calls - sends0[i].calls, bytes: c.bytes - sends0[i].bytes }));
    await S.verify(pair.tb, file, SIZE);
    say(`  ${label}: ${f1(SIZE / 1e6 / m.seconds)} MB/s`);
    return m;
  } finally {
    await pair.close();
  }
}

async function rawRun(peers, file, bench, timeoutMs) {
  const [a, b] = peers;
  const [pa, pb] = [await B.openTab(a, `${bench.url}/blank.html`, 'A-raw'), await B.openTab(b, `${bench.url}/blank.html`, 'B-raw')];
  try {
    await B.giveFile(pa, file);
    const m = await withThreads(peers, () => rawTransfer(pa, pb, SIZE, { timeoutMs }));
    say(`  raw: ${f1(SIZE / 1e6 / m.seconds)} MB/s`);
    return m;
  } finally {
    await Promise.all([pa.close(), pb.close()]);
  }
}

async function run(tmp, file, out) {
  const relay = await h.startRelay();
  const variant = COMPARE ? await h.startRelay({ www: path.resolve(COMPARE) }) : null;
  const bench = await startBenchServer();
  try {
    const [a, b] = await Promise.all([
      B.launchPeer('A', path.join(tmp, 'profile-A'), relay.url, bench.url),
      B.launchPeer('B', path.join(tmp, 'profile-B'), relay.url, bench.url),
    ]);
    if (variant) for (const p of [a, b]) await p.context.grantPermissions(['camera', 'microphone'], { origin: variant.url });
    const peers = [a, b];
    const timeoutMs = transferTimeout(SIZE);
    out.runs = { raw: [], shoal: [], variant: [] };
    for (let k = 1; k <= ROUNDS; k++) {
      // With --compare the two builds take turns at following raw (odd rounds: the base
      // first), so that neither always runs in the same place.
      const variantFirst = variant && k % 2 === 0;
      say(`round ${k} of ${ROUNDS}: ${SIZE / MiB} MiB A → B, raw${variant ? (variantFirst ? ', shoal --compare, shoal' : ', shoal, shoal --compare') : ', shoal'}`);
      out.runs.raw.push(await rawRun(peers, file, bench, timeoutMs));
      const runVariant = async () => out.runs.variant.push(await shoalRun(peers, file, `shoal (${COMPARE})`, variant.url, timeoutMs));
      if (variantFirst) await runVariant();
      out.runs.shoal.push(await shoalRun(peers, file, 'shoal', relay.url, timeoutMs));
      if (variant && !variantFirst) await runVariant();
    }
    out.raw = out.runs.raw[0];
    out.shoal = out.runs.shoal[0];
    out.sends = out.shoal.sends;
    if (variant) return;

    say(`shoal: ${SIZE / MiB} MiB A → B with the CDP Profiler on both main threads`);
    const pair = await shoalPair(a, b, file, 'profiled', relay.url);
    const cdps = await Promise.all([pair.ta, pair.tb].map((t) => t.page.context().newCDPSession(t.page)));
    for (const c of cdps) {
      await c.send('Profiler.enable');
      await c.send('Profiler.setSamplingInterval', { interval: 500 });
      await c.send('Profiler.start');
    }
    await S.downloadAll([pair.tb], pair.link, SIZE, { timeoutMs });
    const profiles = await Promise.all(cdps.map((c) => c.send('Profiler.stop')));
    await Promise.all(cdps.map((c) => c.detach().catch(() => {})));
    await pair.close();
    out.mainThread = profiles.map((p) => attribute(p.profile));
    if (SAVE) {
      mkdirSync(SAVE, { recursive: true });
      profiles.forEach((p, i) => writeFileSync(path.join(SAVE, `${['A', 'B'][i]}-main.cpuprofile`), JSON.stringify(p.profile)));
      say(`  profiles written to ${SAVE}`);
    }
    out.browser = `Chromium ${a.context.browser()?.version() ?? '?'}`;
  } finally {
    await B.closeAllPeers();
    await h.closeAll();
    await bench.stop().catch(() => {});
    await variant?.stop();
    await relay.stop();
  }
}

/** Side by side (--compare): mean MB/s and CPU-s per GiB of each contender, and the ratios. */
function comparison(out) {
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const perGiB = (s) => (s * GiB) / SIZE;
  const stats = (runs) => ({
    mbps: mean(runs.map((m) => SIZE / 1e6 / m.seconds)),
    cpu: [0, 1].map((i) => perGiB(mean(runs.map((m) => m.threads[i].reduce((a, r) => a + r.seconds, 0))))),
    main: [0, 1].map((i) => perGiB(mean(runs.map((m) => m.threads[i].filter((r) => r.key === 'renderer / main thread').reduce((a, r) => a + r.seconds, 0))))),
  });
  const [raw, base, alt] = [stats(out.runs.raw), stats(out.runs.shoal), stats(out.runs.variant)];
  const row = (name, x) => `| ${name} | ${f1(x.mbps)} | ${(x.mbps / raw.mbps).toFixed(2)} | ${f1(x.cpu[0])} / ${f1(x.cpu[1])} | ${f1(x.main[0])} / ${f1(x.main[1])} |`;
  return [
    `Side by side, ${ROUNDS} round(s) of ${SIZE / MiB} MiB A → B (means):`,
    '',
    '| contender | MB/s | ÷ raw | CPU-s per GiB, all threads A / B | main thread A / B |',
    '| --- | ---: | ---: | --- | --- |',
    row(`raw (${describeRaw(RAW)})`, raw),
    row(`shoal (${WWW})`, base),
    row(`shoal (${COMPARE})`, alt),
    '',
    `--compare ÷ base: ${(alt.mbps / base.mbps).toFixed(2)}× MB/s; CPU per GiB A ${(alt.cpu[0] / base.cpu[0]).toFixed(2)}×, B ${(alt.cpu[1] / base.cpu[1]).toFixed(2)}×.`,
  ].join('\n');
}

// ---- report ------------------------------------------------------------------------

function threadTable(out) {
  const perGiB = (s) => (s * GiB) / SIZE;
  const keys = new Map();
  for (const [who, m] of [['raw', out.raw], ['shoal', out.shoal]]) {
    m.threads.forEach((rows, i) => {
      for (const { key, seconds } of rows) {
        const k = keys.get(key) ?? { raw: [0, 0], shoal: [0, 0] };
        k[who][i] += seconds;
        keys.set(key, k);
      }
    });
  }
  const total = (who, i) => out[who].threads[i].reduce((a, r) => a + r.seconds, 0);
  const shown = [...keys.entries()]
    .filter(([, v]) => Math.max(...v.raw, ...v.shoal) * (GiB / SIZE) >= 0.3)
    .sort((x, y) => y[1].shoal[0] + y[1].shoal[1] - (x[1].shoal[0] + x[1].shoal[1]));
  const cell = (v) => f1(perGiB(v));
  return [
    '| process / thread | raw A | **shoal A** | raw B | **shoal B** |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...shown.map(([key, v]) => `| ${key} | ${cell(v.raw[0])} | ${cell(v.shoal[0])} | ${cell(v.raw[1])} | ${cell(v.shoal[1])} |`),
    `| **all threads** | ${cell(total('raw', 0))} | **${cell(total('shoal', 0))}** | ${cell(total('raw', 1))} | **${cell(total('shoal', 1))}** |`,
  ];
}

function mainThreadTables(out) {
  const L = [];
  const mainOf = (i) => out.shoal.threads[i].filter((r) => r.key === 'renderer / main thread').reduce((a, r) => a + r.seconds, 0);
  ['A (sharer)', 'B (downloader)'].forEach((who, i) => {
    const m = out.mainThread[i];
    const mainPerGiB = (mainOf(i) * GiB) / SIZE;
    L.push('', `**${who}'s main thread** (${f1(m.busyMs / 1000)} s busy in the profiled run; its CPU in the run above: ${f1(mainPerGiB)} s per GiB):`, '');
    L.push('| category | % of busy samples | ≈ CPU-s per GiB |', '| --- | ---: | ---: |');
    for (const c of m.categories) L.push(`| ${c.name} | ${f1(c.pct)} | ${f1((c.pct / 100) * mainPerGiB)} |`);
    L.push('', `Top functions by self time (${who}):`, '');
    L.push('| % | function |', '| ---: | --- |');
    for (const t of m.top) L.push(`| ${f1(t.pct)} | \`${t.fn.replace(/`/g, "'").replace(/\|/g, '\\|')}\` |`);
  });
  return L;
}

function wasmBuild() {
  const file = path.join(h.REPO, WWW, 'pkg', 'peer_wasm_bg.wasm');
  const buf = readFileSync(file);
  const names = new WebAssembly.Module(buf);
  const hasNames = WebAssembly.Module.customSections(names, 'name').length > 0;
  return `\`${path.relative(h.REPO, file)}\` ${createHash('sha256').update(buf).digest('hex').slice(0, 12)}, ${(buf.length / 1e6).toFixed(2)} MB, ${hasNames ? 'with its name section' : 'names stripped'}`;
}

const perGiBCount = (c) => `${Math.round((c.calls * GiB) / SIZE)} calls, ${c.calls ? ((c.bytes / c.calls) / 1024).toFixed(1) : '—'} KiB each on average`;

function section(out) {
  const mbps = (m) => SIZE / 1e6 / m.seconds;
  return [
    SECTION_START,
    '## Profile: where a transfer\'s CPU goes, shoal beside raw',
    '',
    `- Date: ${out.date}`,
    `- Machine: ${out.machine.arch}, ${out.machine.cpus} CPUs, ${out.machine.cpu}; load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    `- Browser: ${out.browser}, headless, one process per peer, persistent profiles (OPFS on disk), loopback`,
    `- Peer: ${out.wasm}`,
    `- Command: \`${COMMAND}\` (\`make bench-profile\`)`,
    '',
    `${SIZE / MiB} MiB A → B on one pair of browsers: raw RTCDataChannel ${f1(mbps(out.raw))} MB/s (${describeRaw(RAW)}), shoal ${f1(mbps(out.shoal))} MB/s (\`download()\` → resolve; ratio ${(mbps(out.shoal) / mbps(out.raw)).toFixed(2)}). MB = 10^6 bytes.`,
    '',
    'CPU seconds per GiB moved, each thread of each browser during its transfer (/proc/<pid>/task/<tid>/stat, grouped by process and thread name; rows under 0.3 s/GiB left out; "renderer" is every renderer of that browser, the tab\'s own does almost all of it):',
    '',
    ...threadTable(out),
    '',
    `Data-channel \`send()\` calls during the shoal transfer, per GiB moved: A ${perGiBCount(out.sends[0])}, B ${perGiBCount(out.sends[1])} (raw: ${Math.ceil(GiB / RAW.message)} calls of ${RAW.message / 1024} KiB on A, none on B).`,
    '',
    'Threads: a renderer\'s `main thread` is the tab\'s (JS and the wasm peer); `Chrome_ChildIOT` is a process\'s IPC thread (in the network service it also runs the UDP sockets WebRTC sends through); `WebRTC_W_and_N` is WebRTC\'s worker-and-network thread (SCTP, DTLS, ICE); `DedicatedWorker` threads are the page\'s workers (shoal\'s OPFS writer); `ThreadPool` is Chromium\'s task pool; the network and storage services are their own processes.',
    '',
    `Main threads of the shoal tabs, from a second shoal transfer with the CDP Profiler sampling every 0.5 ms (the profiler slows the page; the shares are what counts). Categories go by the function\'s name from the wasm's name section, else by its script.`,
    ...mainThreadTables(out),
    SECTION_END,
  ].join('\n');
}

async function main() {
  const out = { date: new Date().toISOString(), machine: machine(), wasm: wasmBuild() };
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-profile-'));
  try {
    const file = writeRandomFile(path.join(tmp, `random-${SIZE}.bin`), SIZE);
    await run(tmp, file, out);
  } catch (e) {
    B.dumpLogs('logs up to the failure');
    throw e;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (COMPARE) {
    console.log(`\n${comparison(out)}\n`);
    return;
  }
  const text = section(out);
  console.log(`\n${text}\n`);
  if (WRITE) console.log(`wrote ${writeSection(SECTION_START, SECTION_END, text)}`);
}

main().catch((e) => {
  console.error(e.stack ?? e.message);
  process.exitCode = 1;
});
