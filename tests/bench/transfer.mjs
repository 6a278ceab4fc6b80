#!/usr/bin/env node
// Benchmark: file transfer between browsers — shoal against the data-channel
// ceiling and against WebTorrent, fan-out, and the downloading tab's memory.
//
//   node tests/bench/transfer.mjs [--size-mib N] [--fanout-mib N] [--memory-mib N]
//        [--only raw,shoal,webtorrent,fanout,memory] [--rounds N] [--no-write]
//                                                            (make bench-transfer)
//
// One Chromium process per peer, each a persistent profile (OPFS on disk); a
// real relay ($SHOAL_RELAY_BIN, else target/release/relay, else target/debug/relay);
// a local WebSocket tracker for WebTorrent. Files are random bytes written to a
// temp file by node and handed to the sharing tab through <input type=file>
// (a disk-backed File): the same bytes for every contender.
//
// 1. 1:1 (--size-mib, default 256), browsers A → B, in one run: raw
//    RTCDataChannel (before and after the others; its mean is the reference),
//    shoal (download() call → resolve), WebTorrent (add(magnet) → 'done');
//    --rounds N repeats shoal and WebTorrent, interleaved with raw.
//    Reported as ratios, with CPU seconds per GiB of each browser.
// 2. Fan-out (--fanout-mib, default 256): 1 sharer → 4 downloaders started
//    together (5 browser processes), shoal then WebTorrent: time until all 4
//    are done, and what the sharer uploaded ÷ file size.
// 3. Memory (--memory-mib, default 4096): shoal A → B, both tabs' renderers
//    sampled from before A hashes the file, with checkpoints every GiB (see
//    lib/memory.mjs for what exactly is measured and why). Its own section.
// Where the CPU goes: tests/bench/profile.mjs (make bench-profile).
// Prints everything and rewrites its own section of BENCHMARKS.md.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as h from '../e2e/harness.mjs';
import { benchCommand, cliArgs, machine, wasmBuild, writeSection } from './lib/report.mjs';
import * as B from './lib/browsers.mjs';
import { MiB, writeRandomFile } from './lib/files.mjs';
import { opfsPlacementCheck, startSampler, diskBytes } from './lib/memory.mjs';
import { goalRow, recordGoals } from './lib/goals.mjs';
import { describeRaw, rawTransfer, RAW_CONFIGS } from './lib/raw.mjs';
import { startBenchServer } from './lib/server.mjs';
import * as S from './lib/shoal.mjs';
import { transferTimeout } from './lib/util.mjs';
import { idleLoad } from './lib/load.mjs';
import * as W from './lib/webtorrent.mjs';

const { argv, flag, option } = cliArgs();
const positive = (name, fallback) => {
  const n = Number(option(name, fallback));
  if (!(n > 0)) throw new Error(`${name} must be a positive number`);
  return n;
};
const SIZE = Math.round(positive('--size-mib', 256) * MiB);
const FANOUT_SIZE = Math.round(positive('--fanout-mib', 256) * MiB);
const MEMORY_SIZE = Math.round(positive('--memory-mib', 4096) * MiB);
const ALL = ['raw', 'shoal', 'webtorrent', 'fanout', 'memory'];
const ONLY = new Set(option('--only', ALL.join(',')).split(',').map((s) => s.trim()).filter(Boolean));
for (const o of ONLY) if (!ALL.includes(o)) throw new Error(`--only: unknown "${o}" (one of ${ALL.join(', ')})`);
const ROUNDS = Math.max(1, Number.parseInt(option('--rounds', '1'), 10) || 1);
const WRITE = !flag('--no-write');
const FANOUT_N = 4;

const SECTION_START = '<!-- bench:transfer -->';
const SECTION_END = '<!-- /bench:transfer -->';
const FANOUT_START = '<!-- bench:fanout -->';
const FANOUT_END = '<!-- /bench:fanout -->';
const MEMORY_START = '<!-- bench:memory -->';
const MEMORY_END = '<!-- /bench:memory -->';

if (!process.env.SHOAL_RELAY_BIN) {
  const release = path.join(h.REPO, 'target', 'release', 'relay');
  if (existsSync(release)) process.env.SHOAL_RELAY_BIN = release;
}
const COMMAND = benchCommand('tests/bench/transfer.mjs', argv);

// ---- formatting ----------------------------------------------------------------

const mib = (bytes) => `${(bytes / MiB).toFixed(bytes % MiB ? 1 : 0)} MiB`;
const f1 = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(1));
const f2 = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(2));
const goal = (ok) => (ok ? 'met' : 'NOT met');
const say = (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

// ---- measuring -----------------------------------------------------------------

let relay = null;

function ourCpu(peers) {
  let s = process.cpuUsage();
  let total = (s.user + s.system) / 1e6;
  if (relay) total += B.cpuSeconds(relay.pid) ?? 0;
  for (const p of Object.values(B.cpuSnapshot(peers))) for (const { cpu } of Object.values(p)) total += cpu;
  return total;
}

/** Run `fn` and account CPU: per-peer deltas, and other processes' load in cores. */
async function measured(peers, fn) {
  const snap0 = B.cpuSnapshot(peers);
  const ours0 = ourCpu(peers);
  const m0 = B.machineTicks();
  const t0 = Date.now();
  const result = await fn();
  const seconds = (Date.now() - t0) / 1000;
  const m1 = B.machineTicks();
  const cpu = B.cpuDelta(snap0, B.cpuSnapshot(peers));
  const ours = ourCpu(peers) - ours0;
  const machineBusy = (m1.busy - m0.busy) / 100;
  return { result, cpu, seconds, otherCores: Math.max(0, (machineBusy - ours) / seconds), busyCores: machineBusy / seconds };
}

/** "renderer 1.2, storage 0.3, …" CPU seconds of one browser by process kind (console only). */
const cpuSplit = (c) => ['renderer', 'network', 'storage', 'browser', 'gpu', 'other'].filter((k) => c[k] >= 0.05).map((k) => `${k} ${f1(c[k])}`).join(', ');

// ---- 1:1 ------------------------------------------------------------------------

async function pairPhase(tmp, file, out) {
  say(`1:1 phase: launching browsers A and B (persistent profiles)`);
  const [a, b] = await Promise.all([
    B.launchPeer('A', path.join(tmp, 'profile-A'), relay.url, bench.url),
    B.launchPeer('B', path.join(tmp, 'profile-B'), relay.url, bench.url),
  ]);
  const peers = [a, b];
  out.browser = `Chromium ${a.context.browser()?.version() ?? (await versionOf(a))}`;
  const timeoutMs = transferTimeout(SIZE);
  const rawRuns = [];
  const shoalRuns = [];
  const wtRuns = [];

  const runRaw = async (label, config) => {
    say(`raw RTCDataChannel ${label} (${describeRaw(config)}): ${mib(SIZE)} A → B`);
    const pa = await B.openTab(a, `${bench.url}/blank.html`, 'A-raw');
    const pb = await B.openTab(b, `${bench.url}/blank.html`, 'B-raw');
    try {
      await B.giveFile(pa, file);
      const m = await measured(peers, () => rawTransfer(pa, pb, SIZE, { timeoutMs, config, progress: (n) => say(`  raw: ${mib(n)} received`) }));
      const r = { ...m.result, label, config, cpu: m.cpu, otherCores: m.otherCores, busyCores: m.busyCores };
      say(`  raw ${label}: ${f1(r.mbps)} MB/s (${f2(r.seconds)} s; receiver-only ${f1(r.recvOnlyMbps)} MB/s; ${r.pauses} pauses; CPU A ${f1(r.cpu.A.total)} s [${cpuSplit(r.cpu.A)}], B ${f1(r.cpu.B.total)} s [${cpuSplit(r.cpu.B)}]; other load ${f2(r.otherCores)} cores)`);
      rawRuns.push(r);
      return r;
    } finally {
      await Promise.all([pa.close(), pb.close()]);
    }
  };

  const runShoal = async (label) => {
    say(`shoal ${label}: ${mib(SIZE)} A shares, B downloads`);
    // Earlier runs may have left the file in OPFS: start both from empty storage.
    await Promise.all(peers.map((p) => B.clearOpfs(p, `${relay.url}/healthz`)));
    const swarm = `bench-pair-${Math.random().toString(36).slice(2, 8)}`;
    const [ta, tb] = await Promise.all([S.openShoal(a, swarm, 'A-shoal'), S.openShoal(b, swarm, 'B-shoal')]);
    try {
      await S.waitMesh([ta, tb]);
      const { link, shareSeconds } = await S.share(ta, file, path.basename(file));
      say(`  shared in ${f2(shareSeconds)} s; B downloading`);
      const m = await measured(peers, () =>
        S.downloadAll([tb], link, SIZE, { timeoutMs, progress: ([n]) => say(`  shoal: ${mib(n)} done`) }),
      );
      const [st] = m.result;
      const seconds = (st.t1 - st.t0) / 1000;
      const checked = await S.verify(tb, file, SIZE);
      const aStats = await S.stats(ta);
      const r = {
        label,
        seconds,
        mbps: SIZE / 1e6 / seconds,
        shareSeconds,
        sources: st.d?.sources?.map((x) => ({ path: x.path, chunks: x.chunks, bytes: x.bytes })) ?? [],
        uploadedRatio: aStats.uploaded / SIZE,
        checked,
        cpu: m.cpu,
        otherCores: m.otherCores,
        busyCores: m.busyCores,
      };
      say(`  shoal ${label}: ${f1(r.mbps)} MB/s (${f2(seconds)} s; source paths ${r.sources.map((x) => x.path).join(',')}; ${checked} spot ranges match; CPU A ${f1(m.cpu.A.total)} s [${cpuSplit(m.cpu.A)}], B ${f1(m.cpu.B.total)} s [${cpuSplit(m.cpu.B)}]; other load ${f2(m.otherCores)} cores)`);
      shoalRuns.push(r);
    } finally {
      await Promise.all([ta.page.close(), tb.page.close()]);
    }
  };

  const runWebTorrent = async (label) => {
    say(`webtorrent ${label}: ${mib(SIZE)} A seeds, B adds the magnet`);
    await Promise.all(peers.map((p) => B.clearOpfs(p, `${bench.url}/blank.html`)));
    const [wa, wb] = await Promise.all([W.openWebTorrent(a, 'A-wt'), W.openWebTorrent(b, 'B-wt')]);
    try {
      out.webtorrentVersion = wa.version;
      const seeded = await W.seed(wa, file, tracker.url);
      say(`  seeded in ${f2(seeded.seedSeconds)} s (piece ${seeded.pieceLength / 1024} KiB); B downloading`);
      const m = await measured(peers, () =>
        W.leechAll([wb], seeded.magnetURI, tracker.url, SIZE, { timeoutMs, progress: ([n]) => say(`  webtorrent: ${mib(n)} done`) }),
      );
      const [st] = m.result;
      const seconds = (st.t1 - st.t0) / 1000;
      const r = {
        label,
        seconds,
        mbps: SIZE / 1e6 / seconds,
        firstByteSeconds: (st.firstByte - st.t0) / 1000,
        seedSeconds: seeded.seedSeconds,
        cpu: m.cpu,
        otherCores: m.otherCores,
        busyCores: m.busyCores,
      };
      say(`  webtorrent ${label}: ${f1(r.mbps)} MB/s (${f2(seconds)} s; first byte after ${f2(r.firstByteSeconds)} s; CPU A ${f1(m.cpu.A.total)} s [${cpuSplit(m.cpu.A)}], B ${f1(m.cpu.B.total)} s [${cpuSplit(m.cpu.B)}]; other load ${f2(m.otherCores)} cores)`);
      wtRuns.push(r);
    } finally {
      await Promise.all([W.destroy(wa), W.destroy(wb)]);
      await Promise.all([wa.page.close(), wb.page.close()]);
    }
  };

  try {
    // Raw first: every configuration once, the fastest is the reference.
    // Then shoal and WebTorrent (per round, each round after a run of the
    // reference), and the reference once more at the end.
    let best = null;
    if (ONLY.has('raw')) {
      for (const config of RAW_CONFIGS) {
        const r = await runRaw(`sweep ${RAW_CONFIGS.indexOf(config) + 1}`, config);
        if (!best || r.mbps > best.mbps) best = r;
      }
      say(`fastest raw configuration: ${describeRaw(best.config)} (${f1(best.mbps)} MB/s)`);
    }
    for (let k = 1; k <= ROUNDS; k++) {
      if (best && k > 1) await runRaw(`reference, run ${k}`, best.config);
      if (ONLY.has('shoal')) await runShoal(`run ${k}`);
      if (ONLY.has('webtorrent')) await runWebTorrent(`run ${k}`);
    }
    if (best && (ONLY.has('shoal') || ONLY.has('webtorrent'))) await runRaw(`reference, last`, best.config);
    out.rawBest = best?.config;

  } finally {
    await Promise.all(peers.map((p) => p.close()));
  }
  const mean = (runs) => runs.reduce((x, r) => x + r.mbps, 0) / runs.length;
  if (rawRuns.length) {
    // The reference: the fastest configuration's runs (its sweep run and the later ones).
    const ref = rawRuns.filter((r) => r.config === out.rawBest);
    out.raw = { runs: rawRuns, reference: ref, mbps: mean(ref) };
  }
  if (shoalRuns.length) out.shoal = { runs: shoalRuns, mbps: mean(shoalRuns) };
  if (wtRuns.length) out.webtorrent = { runs: wtRuns, mbps: mean(wtRuns) };
}

async function versionOf(peer) {
  const p = await peer.context.newPage();
  try {
    return (await p.evaluate(() => navigator.userAgent)).match(/Chrome\/([\d.]+)/)?.[1] ?? '?';
  } finally {
    await p.close();
  }
}

// ---- fan-out --------------------------------------------------------------------

async function fanoutPhase(tmp, file, out) {
  say(`fan-out phase: launching ${FANOUT_N + 1} browsers (1 sharer + ${FANOUT_N} downloaders), ${mib(FANOUT_SIZE)}`);
  const names = ['S', ...Array.from({ length: FANOUT_N }, (_, i) => `D${i + 1}`)];
  const peers = await Promise.all(names.map((n) => B.launchPeer(n, path.join(tmp, `profile-${n}`), relay.url, bench.url)));
  const timeoutMs = transferTimeout(FANOUT_N * FANOUT_SIZE);
  try {
    // shoal
    const swarm = `bench-fan-${Math.random().toString(36).slice(2, 8)}`;
    const tabs = await Promise.all(peers.map((p) => S.openShoal(p, swarm, `${p.name}-shoal`)));
    try {
      say('  shoal: waiting for the full direct mesh');
      let mesh = 'full';
      await S.waitMesh(tabs).catch(async (e) => {
        mesh = `incomplete (${e.message.split(';')[0]})`;
        say(`  warning: mesh ${mesh}; starting anyway with what is connected`);
      });
      const { link } = await S.share(tabs[0], file, path.basename(file));
      say(`  shoal: ${FANOUT_N} downloaders start together`);
      const m = await measured(peers, () =>
        S.downloadAll(tabs.slice(1), link, FANOUT_SIZE, { timeoutMs, progress: (ns) => say(`  shoal fan-out: ${ns.map((n) => mib(n)).join(' / ')}`) }),
      );
      const st = m.result;
      const start = Math.min(...st.map((s) => s.t0));
      const total = (Math.max(...st.map((s) => s.t1)) - start) / 1000;
      const sharer = await S.stats(tabs[0]);
      for (const t of tabs.slice(1)) await S.verify(t, file, FANOUT_SIZE);
      out.fanoutShoal = {
        mesh,
        seconds: total,
        each: st.map((s) => (s.t1 - s.t0) / 1000),
        uploadedRatio: sharer.uploaded / FANOUT_SIZE,
        cpuTotal: Object.values(m.cpu).reduce((s, c) => s + c.total, 0),
        otherCores: m.otherCores,
        busyCores: m.busyCores,
      };
      say(`  shoal fan-out: all ${FANOUT_N} done in ${f2(total)} s; sharer uploaded ${f2(out.fanoutShoal.uploadedRatio)} × file size; other load ${f2(m.otherCores)} cores`);
    } finally {
      await Promise.all(tabs.map((t) => t.page.close()));
    }

    // WebTorrent
    const wts = await Promise.all(peers.map((p) => W.openWebTorrent(p, `${p.name}-wt`)));
    try {
      const seeded = await W.seed(wts[0], file, tracker.url);
      say(`  webtorrent: seeded in ${f2(seeded.seedSeconds)} s; ${FANOUT_N} leechers add the magnet together`);
      const m = await measured(peers, () =>
        W.leechAll(wts.slice(1), seeded.magnetURI, tracker.url, FANOUT_SIZE, { timeoutMs, progress: (ns) => say(`  webtorrent fan-out: ${ns.map((n) => mib(n)).join(' / ')}`) }),
      );
      const st = m.result;
      const start = Math.min(...st.map((s) => s.t0));
      const total = (Math.max(...st.map((s) => s.t1)) - start) / 1000;
      const seeder = await W.seederStats(wts[0]);
      out.fanoutWebtorrent = {
        seconds: total,
        each: st.map((s) => (s.t1 - s.t0) / 1000),
        uploadedRatio: seeder.uploaded / FANOUT_SIZE,
        cpuTotal: Object.values(m.cpu).reduce((s, c) => s + c.total, 0),
        otherCores: m.otherCores,
        busyCores: m.busyCores,
      };
      say(`  webtorrent fan-out: all ${FANOUT_N} done in ${f2(total)} s; seeder uploaded ${f2(out.fanoutWebtorrent.uploadedRatio)} × file size; other load ${f2(m.otherCores)} cores`);
    } finally {
      await Promise.all(wts.map((t) => W.destroy(t)));
      await Promise.all(wts.map((t) => t.page.close()));
    }
  } finally {
    await Promise.all(peers.map((p) => p.close()));
  }
}

// ---- memory -----------------------------------------------------------------------

async function memoryPhase(tmp, file, out) {
  say('memory phase: where do OPFS writes go? (64 MiB into OPFS, off-the-record context vs persistent profile)');
  out.opfsCheck = await opfsPlacementCheck(relay.url, bench.url, tmp);
  const { offTheRecord: o, persistent: p } = out.opfsCheck;
  say(`  off-the-record: profile dir +${f1(o.diskMiB)} MiB on disk, browser process RSS +${f1(o.browserRssMiB)} MiB, storage service +${f1(o.storageRssMiB)} MiB; persistent: +${f1(p.diskMiB)} MiB on disk, browser RSS +${f1(p.browserRssMiB)} MiB, storage service +${f1(p.storageRssMiB)} MiB`);

  say(`memory: shoal ${mib(MEMORY_SIZE)} A → B, sampling B's renderer`);
  const [a, b] = await Promise.all([
    B.launchPeer('A', path.join(tmp, 'mem-profile-A'), relay.url, bench.url),
    B.launchPeer('B', path.join(tmp, 'mem-profile-B'), relay.url, bench.url),
  ]);
  try {
    const swarm = `bench-mem-${Math.random().toString(36).slice(2, 8)}`;
    const [ta, tb] = await Promise.all([S.openShoal(a, swarm, 'A-mem'), S.openShoal(b, swarm, 'B-mem')]);
    await S.waitMesh([ta, tb]);
    // The sharer's tab, sampled from before it hashes the file to the end of the download.
    const rendererA = await B.rendererOf(a, ta.page);
    const samplerA = await startSampler(ta.page, rendererA.pid, a.browserPid);
    let sharePeaks;
    let link;
    try {
      const shared = await S.share(ta, file, path.basename(file));
      link = shared.link;
      sharePeaks = samplerA.peaks();
      say(`  shared in ${f2(shared.shareSeconds)} s; A's renderer peak VmRSS while hashing ${f1(sharePeaks.peakRss / 1024)} MiB`);
    } catch (e) {
      await samplerA.stop();
      throw e;
    }
    // For scale: a blank tab of the same browser, measured the same way.
    const blank = await B.openTab(b, `${bench.url}/blank.html`, 'B-blank');
    const blankRenderer = await B.rendererOf(b, blank);
    const blankMem = { ...B.memStatus(blankRenderer.pid), Pss: B.pssKib(blankRenderer.pid) };
    await blank.close();
    const renderer = await B.rendererOf(b, tb.page);
    const before = B.memStatus(renderer.pid);
    say(`  blank tab's renderer: VmRSS ${f1(blankMem.VmRSS / 1024)} MiB, RssAnon ${f1(blankMem.RssAnon / 1024)} MiB`);
    say(`  B's tab runs in renderer pid ${renderer.pid} (one of ${renderer.renderers} renderers; it used ${f2(renderer.spinCpu)} CPU-s of a 0.6 s spin); VmRSS before: ${f1(before.VmRSS / 1024)} MiB`);
    const disk0 = diskBytes(b.dir);
    const sampler = await startSampler(tb.page, renderer.pid, b.browserPid);
    // Checkpoints at every whole GiB downloaded (and at the end): both tabs'
    // RSS and wasm memories, to show whether anything grows with the bytes moved.
    const checkpoints = [];
    const marking = [];
    const checkpoint = (bytes) => {
      marking.push(Promise.all([sampler.mark(), samplerA.mark()]).then(([mb, ma]) => checkpoints.push({ bytes, b: mb, a: ma })));
    };
    let nextMark = 2 ** 30;
    let s;
    let sa;
    let st;
    try {
      const m = await measured([a, b], () =>
        S.downloadAll([tb], link, MEMORY_SIZE, {
          timeoutMs: transferTimeout(MEMORY_SIZE),
          progress: ([n]) => {
            say(`  memory run: ${mib(n)} done, renderer VmRSS ${f1((B.memStatus(renderer.pid)?.VmRSS ?? 0) / 1024)} MiB`);
            if (n >= nextMark && n < MEMORY_SIZE) {
              checkpoint(n);
              while (nextMark <= n) nextMark += 2 ** 30;
            }
          },
        }),
      );
      [st] = m.result;
      out.memoryOtherCores = m.otherCores;
      checkpoint(MEMORY_SIZE);
      await Promise.all(marking);
    } finally {
      s = await sampler.stop();
      sa = await samplerA.stop();
    }
    const disk1 = diskBytes(b.dir);
    out.memory = {
      renderer,
      rssBeforeMiB: before.VmRSS / 1024,
      anonBeforeMiB: before.RssAnon / 1024,
      blank: { rssMiB: blankMem.VmRSS / 1024, anonMiB: blankMem.RssAnon / 1024, pssMiB: blankMem.Pss / 1024 },
      peakPssMiB: s.peakPss / 1024,
      peakStorageMiB: s.peakStorage / 1024,
      peakRssMiB: s.peakRss / 1024,
      peakAnonMiB: s.peakAnon / 1024,
      hwmMiB: s.hwm / 1024,
      endRssMiB: s.endRss / 1024,
      samples: s.samples,
      peakJsHeapMiB: s.peakJsHeap / MiB,
      peakJsHeapTotalMiB: s.peakJsHeapTotal / MiB,
      peakTreeMiB: s.peakTree / 1024,
      peakBrowserMiB: s.peakBrowser / 1024,
      wasmMemory: s.wasmMemory,
      diskGrowthMiB: disk0 !== null && disk1 !== null ? (disk1 - disk0) / MiB : null,
      seconds: (st.t1 - st.t0) / 1000,
      checkpoints: checkpoints.sort((x, y) => x.bytes - y.bytes),
      sharer: {
        renderer: rendererA,
        peakWhileHashingMiB: sharePeaks.peakRss / 1024,
        peakRssMiB: sa.peakRss / 1024,
        peakAnonMiB: sa.peakAnon / 1024,
        hwmMiB: sa.hwm / 1024,
        wasmMemory: sa.wasmMemory,
      },
    };
    const mm = out.memory;
    say(`  memory: renderer peak VmRSS ${f1(mm.peakRssMiB)} MiB (VmHWM ${f1(mm.hwmMiB)} MiB), JS heap peak ${f1(mm.peakJsHeapMiB)} MiB, wasm memory ${JSON.stringify(mm.wasmMemory)}; B's profile grew ${f1(mm.diskGrowthMiB)} MiB on disk; ${f1(MEMORY_SIZE / 1e6 / mm.seconds)} MB/s`);
    await Promise.all([ta.page.close(), tb.page.close()]);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

// ---- BENCHMARKS.md ----------------------------------------------------------------

function cpuCell(r, bytes) {
  if (!r?.cpu?.A) return '—';
  const g = bytes / 2 ** 30;
  return `${f1(r.cpu.A.total / g)} / ${f1(r.cpu.B.total / g)} (renderers ${f1(r.cpu.A.renderer / g)} / ${f1(r.cpu.B.renderer / g)})`;
}

// The lines every section starts with: when, where, what ran.
function header(r, L) {
  L.push(`- Date: ${r.date}`);
  L.push(`- Machine: ${r.machine.arch}, ${r.machine.cpus} CPUs, ${r.machine.cpu}, ${f1(r.machine.memGiB)} GiB RAM`);
  L.push(`- Load before the run: ${f2(r.idle.cores)} cores busy (3 s sample), load average ${r.idle.loadavg.map(f2).join(' ')}; ${r.loaded}`);
  const others = [...(r.raw?.runs ?? []), ...(r.shoal?.runs ?? []), ...(r.webtorrent?.runs ?? []), r.fanoutShoal, r.fanoutWebtorrent]
    .filter(Boolean).map((x) => x.otherCores);
  if (r.memoryOtherCores !== undefined) others.push(r.memoryOtherCores);
  if (others.length) {
    const worst = Math.max(...others);
    L.push(`- Other work during the timed parts (machine CPU busy minus our browsers, relay and node): mean ${f2(others.reduce((a, b) => a + b, 0) / others.length)}, max ${f2(worst)} cores of ${r.machine.cpus}${worst > 0.3 ? ' — **the machine was loaded**; see the column "other load" per figure' : ''}`);
  }
  L.push(`- Browser: ${r.browser ?? '—'}, headless, one process per peer, persistent profile each (OPFS on disk), loopback, \`iceServers: []\``);
  L.push(`- Peer: \`www/pkg/peer_wasm_bg.wasm\` ${r.wasm}`);
  L.push(`- Relay: \`${path.relative(h.REPO, h.relayBinary())}\`; WebTorrent ${r.webtorrentVersion ?? '3'} (browser bundle) with a local bittorrent-tracker WebSocket tracker, no DHT/LSD/uTP/web seeds`);
  L.push(`- Command: \`${COMMAND}\`  (\`make bench-transfer\`)`);
  L.push('- MB = 10^6 bytes. Random file written by node, given to the sharing tab with `<input type=file>` (disk-backed `File`); same bytes for every contender.');
  L.push('');
}

function section(r) {
  const L = [];
  const raw = r.raw?.mbps;
  L.push(SECTION_START, '## Transfer: browser → browser throughput', '');
  header(r, L);
  if (r.raw || r.shoal || r.webtorrent) {
    L.push(`### 1:1, ${mib(SIZE)}, browser A → browser B`, '');
    L.push('| contender | what is timed | s | MB/s | ÷ raw | CPU-s per GiB, A / B | other load (cores) |');
    L.push('| --- | --- | ---: | ---: | ---: | --- | ---: |');
    const rows = [
      ...(r.raw?.runs ?? []).map((x) => [`raw RTCDataChannel, ${x.label}: ${describeRaw(x.config)}${x.config === r.rawBest ? ' (**reference**)' : ''}`, 'first byte sent → last byte received', x]),
      ...(r.shoal?.runs ?? []).map((x) => [`**shoal**, ${x.label}`, '`download()` call → resolve', x]),
      ...(r.webtorrent?.runs ?? []).map((x) => [`WebTorrent, ${x.label}`, '`add(magnet)` → `done`', x]),
    ];
    for (const [name, what, x] of rows) {
      L.push(`| ${name} | ${what} | ${f2(x.seconds)} | ${f1(x.mbps)} | ${raw ? f2(x.mbps / raw) : '—'} | ${cpuCell(x, SIZE)} | ${f2(x.otherCores)} |`);
    }
    L.push('');
    if (raw) L.push(`Raw reference = the fastest of the ${RAW_CONFIGS.length} configurations swept, mean of its ${r.raw.reference.length} runs: ${f1(raw)} MB/s (${describeRaw(r.rawBest)}; one ordered channel, SDP without trickle; the receiver counts each message's bytes and drops it: no framing, hashing or storage). Each contender's figure below is the mean of its runs; ÷ raw is against this reference.`);
    const ratios = [];
    if (r.shoal && raw) ratios.push(`**shoal ÷ raw = ${f2(r.shoal.mbps / raw)}** (goal ≥ 0.9: ${goal(r.shoal.mbps / raw >= 0.9)})`);
    if (r.webtorrent && raw) ratios.push(`WebTorrent ÷ raw = ${f2(r.webtorrent.mbps / raw)}`);
    if (r.shoal && r.webtorrent) ratios.push(`**shoal ÷ WebTorrent = ${f2(r.shoal.mbps / r.webtorrent.mbps)}×** (goal ≥ 1.6: ${goal(r.shoal.mbps / r.webtorrent.mbps >= 1.6)})`);
    if (r.shoal && raw) {
      const cpu = ['A', 'B'].map((side) => cpuPerGib(r.shoal.runs, side, SIZE) / cpuPerGib(r.raw.reference, side, SIZE));
      ratios.push(`**CPU-s per GiB, shoal ÷ raw: A ${f2(cpu[0])}, B ${f2(cpu[1])}** (goal ≤ 1.15 each: ${goal(cpu.every((x) => x <= 1.15))})`);
    }
    if (ratios.length) L.push('', `Ratios: ${ratios.join('; ')}.`);
    const notes = [];
    const s0 = r.shoal?.runs[0];
    const w0 = r.webtorrent?.runs[0];
    if (s0) notes.push(`shoal: share() (BLAKE3 of the file) took ${f2(s0.shareSeconds)} s before the timed part; chunks came over ${[...new Set(s0.sources.map((x) => x.path))].join(', ') || '?'} path(s); ${s0.checked} spot ranges of the downloaded File match the source; A uploaded ${f2(s0.uploadedRatio)} × the file`);
    if (w0) notes.push(`WebTorrent: seed() (SHA-1 of 256 KiB pieces, copy into its OPFS store) took ${f2(w0.seedSeconds)} s before the timed part; its timed part includes tracker announce, WebRTC set-up and metadata (first byte after ${f2(w0.firstByteSeconds)} s); shoal's does not include connection set-up (peers already connected)`);
    notes.push('CPU-s per GiB: user+system time of every process of each browser (/proc/<pid>/stat) during the timed part, per GiB moved; "renderers" is the part spent in renderer processes (the tabs, which in Chromium also run WebRTC/SCTP), the rest is mostly the network service, storage service and browser process');
    if (notes.length) L.push('', ...notes.map((n) => `- ${n}.`));
    L.push('');
  }
  L.push('Caveats: 2-CPU machine; every browser and the relay share it, so absolute MB/s are CPU-bound and noisy, ratios within one run are the figures to compare.');
  L.push(SECTION_END);
  return L.join('\n');
}

/** CPU-s per GiB of side `side` ('A' or 'B'), mean over `runs`. */
function cpuPerGib(runs, side, bytes) {
  return runs.reduce((s, x) => s + x.cpu[side].total, 0) / runs.length / (bytes / 2 ** 30);
}

/** Issue #10's goals this run measured, phase by phase (lib/goals.mjs). */
function goalRows(r) {
  const rows = {};
  const raw = r.raw?.mbps;
  if (r.shoal) {
    const pair = [];
    if (raw) pair.push(goalRow('1:1 throughput, shoal ÷ fastest raw data channel', `${f2(r.shoal.mbps / raw)} (${f1(r.shoal.mbps)} ÷ ${f1(raw)} MB/s)`, '≥ 0.9', r.shoal.mbps / raw >= 0.9));
    if (r.webtorrent) pair.push(goalRow('1:1 throughput, shoal ÷ WebTorrent', `${f2(r.shoal.mbps / r.webtorrent.mbps)} (${f1(r.shoal.mbps)} ÷ ${f1(r.webtorrent.mbps)} MB/s)`, '≥ 1.6', r.shoal.mbps / r.webtorrent.mbps >= 1.6));
    if (raw) {
      for (const [side, who] of [['A', 'sharer'], ['B', 'downloader']]) {
        const s = cpuPerGib(r.shoal.runs, side, SIZE);
        const w = cpuPerGib(r.raw.reference, side, SIZE);
        pair.push(goalRow(`1:1 CPU-s per GiB, ${who} (${side}), shoal ÷ raw`, `${f2(s / w)} (${f1(s)} ÷ ${f1(w)})`, '≤ 1.15', s / w <= 1.15));
      }
    }
    rows.pair = pair;
  }
  const s = r.fanoutShoal;
  const w = r.fanoutWebtorrent;
  if (s) {
    rows.fanout = [goalRow(`1 → ${FANOUT_N} fan-out of ${mib(FANOUT_SIZE)}, sharer upload ÷ file`, f2(s.uploadedRatio), '≤ 1.5', s.uploadedRatio <= 1.5)];
    if (w) rows.fanout.push(goalRow(`1 → ${FANOUT_N} fan-out, all done, shoal ÷ WebTorrent`, `${f2(s.seconds / w.seconds)} (${f2(s.seconds)} ÷ ${f2(w.seconds)} s)`, '≤ 0.6', s.seconds / w.seconds <= 0.6));
  }
  const m = r.memory;
  if (m?.renderer) {
    const mem = [goalRow(`downloading ${mib(MEMORY_SIZE)}: the tab's peak RSS`, `${f1(m.peakRssMiB)} MiB`, '≤ 256 MiB', m.peakRssMiB <= 256)];
    const c = m.checkpoints ?? [];
    if (c.length > 1) {
      // Flat: no growth over the second half of the download (a heap that grows
      // with the bytes grows there too); the figure shows every checkpoint.
      const half = c.slice(Math.floor(c.length / 2) - (c.length % 2 ? 0 : 1));
      const flat = half.every((x) => JSON.stringify(x.b.wasm) === JSON.stringify(half[0].b.wasm));
      const sizes = c.map((x) => (Array.isArray(x.b.wasm) ? x.b.wasm.map((v) => f1(v / MiB)).join('+') : '?')).join(' → ');
      mem.push(goalRow(`downloading ${mib(MEMORY_SIZE)}: wasm memory at each GiB`, `${sizes} MiB`, 'flat (no growth over the second half)', flat));
    }
    if (m.sharer) mem.push(goalRow(`sharing ${mib(MEMORY_SIZE)} (hashing, then serving it): the tab's peak RSS`, `${f1(m.sharer.peakRssMiB)} MiB`, '≤ 256 MiB', m.sharer.peakRssMiB <= 256));
    rows.memory = mem;
  }
  return rows;
}

// The fan-out has a section of its own too: it runs alone at its goal's size
// (--only fanout --fanout-mib 256) without touching the 1:1 figures.
function fanoutSection(r) {
  const L = [];
  L.push(FANOUT_START, `## Fan-out: 1 sharer → ${FANOUT_N} downloaders, shoal and WebTorrent`, '');
  header(r, L);
  const s = r.fanoutShoal;
  const w = r.fanoutWebtorrent;
  L.push(`### Fan-out: 1 sharer → ${FANOUT_N} downloaders, ${mib(FANOUT_SIZE)}, ${FANOUT_N + 1} browser processes, started together`, '');
  L.push('| contender | all done (s) | each downloader (s) | sharer uploaded ÷ file size | CPU-s, all browsers | other load (cores) |');
  L.push('| --- | ---: | --- | ---: | ---: | ---: |');
  if (s) L.push(`| **shoal** | ${f2(s.seconds)} | ${s.each.map(f1).join(', ')} | **${f2(s.uploadedRatio)}** | ${f1(s.cpuTotal)} | ${f2(s.otherCores)} |`);
  if (w) L.push(`| WebTorrent | ${f2(w.seconds)} | ${w.each.map(f1).join(', ')} | ${f2(w.uploadedRatio)} | ${f1(w.cpuTotal)} | ${f2(w.otherCores)} |`);
  L.push('');
  const parts = [];
  if (s) parts.push(`shoal sharer upload ÷ size = ${f2(s.uploadedRatio)} (goal ≤ 1.5: ${goal(s.uploadedRatio <= 1.5)}; naive fan-out = ${FANOUT_N})`);
  if (s && w) parts.push(`shoal's time ÷ WebTorrent's = ${f2(s.seconds / w.seconds)} (goal ≤ 0.6: ${goal(s.seconds / w.seconds <= 0.6)}; shoal all-done ${f2(s.seconds)} s vs ${f2(w.seconds)} s)`);
  if (s) parts.push(`shoal mesh before start: ${s.mesh}`);
  L.push(`${parts.join('; ')}. Times from the first download()/add() call to the last resolve/\`done\` (wall clock in the pages).`, '');
  L.push(FANOUT_END);
  return L.join('\n');
}

// The memory phase has a section of its own, so a long run of it alone
// (--only memory --memory-mib 4096) leaves the throughput figures as they are.
function memorySection(r) {
  const L = [];
  L.push(MEMORY_START, `## Memory of the downloading and the sharing tab, shoal, ${mib(MEMORY_SIZE)}`, '');
  header(r, L);
  const m = r.memory;
  if (m) {
    L.push('| measure | value |', '| --- | ---: |');
    L.push(`| **renderer peak VmRSS** (sampled every 250 ms, ${m.samples} samples) | **${f1(m.peakRssMiB)} MiB** |`);
    L.push(`| renderer VmHWM (kernel's peak RSS over the process's life) | ${f1(m.hwmMiB)} MiB |`);
    L.push(`| renderer peak RssAnon (private memory) | ${f1(m.peakAnonMiB)} MiB |`);
    L.push(`| renderer peak PSS (shared pages split among processes; every 1 s) | ${f1(m.peakPssMiB)} MiB |`);
    L.push(`| renderer before download: VmRSS / RssAnon | ${f1(m.rssBeforeMiB)} / ${f1(m.anonBeforeMiB)} MiB |`);
    L.push(`| renderer VmRSS at end | ${f1(m.endRssMiB)} MiB |`);
    L.push(`| for scale, a blank tab's renderer in the same browser: VmRSS / RssAnon / PSS | ${f1(m.blank.rssMiB)} / ${f1(m.blank.anonMiB)} / ${f1(m.blank.pssMiB)} MiB |`);
    L.push(`| JS heap used, peak (CDP Performance.getMetrics JSHeapUsedSize; main thread) | ${f1(m.peakJsHeapMiB)} MiB (total ${f1(m.peakJsHeapTotalMiB)} MiB) |`);
    const wasm = Array.isArray(m.wasmMemory) ? m.wasmMemory.map((x) => `${f1(x / MiB)} MiB`).join(', ') || 'none found' : `not measured (${m.wasmMemory?.error ?? '?'})`;
    L.push(`| wasm linear memory at end = its peak (CDP Runtime.queryObjects on WebAssembly.Memory; main realm only) | ${wasm} |`);
    L.push(`| whole browser B, sum of PSS of all its processes, peak (every 1 s) | ${f1(m.peakTreeMiB)} MiB |`);
    L.push(`| browser process / storage service VmRSS, peak | ${f1(m.peakBrowserMiB)} / ${f1(m.peakStorageMiB)} MiB |`);
    L.push(`| B's profile directory growth on disk | ${f1(m.diskGrowthMiB)} MiB |`);
    L.push('');
    if (m.checkpoints?.length) {
      const wasmCell = (w) => (Array.isArray(w) ? w.map((x) => f1(x / MiB)).join(', ') || 'none' : '?');
      L.push('Both tabs at each GiB downloaded (the sharer A serves every byte):', '');
      L.push('| downloaded | B VmRSS | B RssAnon | B wasm memory | A VmRSS | A RssAnon | A wasm memory |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
      const kib = (x) => (x === null ? '—' : `${f1(x / 1024)} MiB`);
      for (const c of m.checkpoints) {
        L.push(`| ${mib(c.bytes)} | ${kib(c.b.rssKib)} | ${kib(c.b.anonKib)} | ${wasmCell(c.b.wasm)} MiB | ${kib(c.a.rssKib)} | ${kib(c.a.anonKib)} | ${wasmCell(c.a.wasm)} MiB |`);
      }
      const w0 = m.checkpoints[0];
      const w1 = m.checkpoints[m.checkpoints.length - 1];
      const flat = (x, y) => JSON.stringify(x.wasm) === JSON.stringify(y.wasm);
      L.push('');
      L.push(`Wasm memory from the first checkpoint to the last: B ${flat(w0.b, w1.b) ? 'flat' : 'grew'}, A ${flat(w0.a, w1.a) ? 'flat' : 'grew'}.`);
    }
    if (m.sharer) {
      const a = m.sharer;
      L.push(`Sharer A's renderer: peak VmRSS ${f1(a.peakWhileHashingMiB)} MiB while hashing the ${mib(MEMORY_SIZE)} file, ${f1(a.peakRssMiB)} MiB over hashing and serving (VmHWM ${f1(a.hwmMiB)} MiB, peak RssAnon ${f1(a.peakAnonMiB)} MiB; goal ≤ 256 MiB: ${goal(a.peakRssMiB <= 256)}).`);
    }
    L.push('');
    L.push(`Peak renderer RSS ${f1(Math.max(m.peakRssMiB, 0))} MiB (goal ≤ 256 MiB: ${goal(m.peakRssMiB <= 256)}). Download ran at ${f1(MEMORY_SIZE / 1e6 / m.seconds)} MB/s; other load ${f2(r.memoryOtherCores)} cores.`);
    L.push(`Method: B's tab is the renderer (pid ${m.renderer.pid}, one of ${m.renderer.renderers}) whose CPU time grew during a 0.6 s spin in the tab; VmRSS/RssAnon/VmHWM from /proc/<pid>/status, PSS from /proc/<pid>/smaps_rollup. VmRSS includes Chromium's code mapped from files (shared with every renderer: see the blank tab); RssAnon is the tab's own. The renderer holds the tab's JS heap, wasm memory, workers and Chromium's WebRTC/SCTP stack; OPFS file I/O runs in the storage service process.`);
  }
  const c = r.opfsCheck;
  if (c) {
    L.push('');
    const row = (x) => `${f1(x.diskMiB)} MiB more on disk in the profile dir, browser process VmRSS ${x.browserRssMiB >= 0 ? '+' : ''}${f1(x.browserRssMiB)} MiB, storage service ${x.storageRssMiB >= 0 ? '+' : ''}${f1(x.storageRssMiB)} MiB`;
    L.push(`OPFS placement check, 64 MiB written with \`createWritable()\`: Playwright \`browser.newContext()\` (off-the-record, what tests/e2e uses): ${row(c.offTheRecord)} — OPFS kept in memory; persistent profile: ${row(c.persistent)} — on disk. Hence a persistent profile per browser in this benchmark.`);
  }
  L.push('');
  L.push(MEMORY_END);
  return L.join('\n');
}

// ---- main -------------------------------------------------------------------------

let tracker = null;
let bench = null;

async function main() {
  const out = { date: new Date().toISOString(), machine: machine(), wasm: wasmBuild() };
  say(`machine: ${out.machine.arch}, ${out.machine.cpus} CPUs, ${out.machine.cpu}`);
  out.idle = await idleLoad();
  const busiest = out.idle.top.map((p) => `${p.comm} ${f2(p.cores)}`).join(', ');
  out.loaded = out.idle.cores > 0.3
    ? `**machine was loaded by other work** (busiest, in cores: ${busiest || '?'})`
    : 'machine idle at start';
  say(`load before start: ${f2(out.idle.cores)} cores busy; ${out.loaded}`);

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-transfer-'));
  let failed = null;
  try {
    const pair = ONLY.has('raw') || ONLY.has('shoal') || ONLY.has('webtorrent');
    const files = {};
    const need = [...new Set([pair && SIZE, ONLY.has('fanout') && FANOUT_SIZE, ONLY.has('memory') && MEMORY_SIZE].filter(Boolean))];
    for (const size of need) {
      say(`writing ${mib(size)} of random bytes to a temp file`);
      files[size] = writeRandomFile(path.join(tmp, `random-${size}.bin`), size);
    }
    relay = await h.startRelay();
    tracker = await W.startTracker();
    bench = await startBenchServer();
    say(`relay ${relay.url} (pid ${relay.pid}), tracker ${tracker.url}, bench pages ${bench.url}`);
    const phases = [
      [pair, () => pairPhase(tmp, files[SIZE], out)],
      [ONLY.has('fanout'), () => fanoutPhase(tmp, files[FANOUT_SIZE], out)],
      [ONLY.has('memory'), () => memoryPhase(tmp, files[MEMORY_SIZE], out)],
    ];
    for (const [on, run] of phases) {
      if (!on) continue;
      try {
        await run();
      } catch (e) {
        failed ??= e;
        console.error(`phase failed: ${e.stack ?? e.message}`);
        B.dumpLogs('logs up to the failure');
      }
    }
  } finally {
    await B.closeAllPeers();
    await h.closeAll();
    if (tracker) await tracker.stop().catch(() => {});
    if (bench) await bench.stop().catch(() => {});
    if (relay) await relay.stop();
    rmSync(tmp, { recursive: true, force: true });
  }

  const sections = [];
  if (['raw', 'shoal', 'webtorrent'].some((p) => ONLY.has(p))) sections.push([SECTION_START, SECTION_END, section(out)]);
  if (ONLY.has('fanout')) sections.push([FANOUT_START, FANOUT_END, fanoutSection(out)]);
  if (ONLY.has('memory')) sections.push([MEMORY_START, MEMORY_END, memorySection(out)]);
  for (const [, , text] of sections) console.log(`\n${text}\n`);
  if (failed) {
    console.error(`not writing BENCHMARKS.md: a phase failed (${failed.message.split('\n')[0]})`);
    process.exitCode = 1;
  } else if (WRITE) {
    for (const [start, end, text] of sections) console.log(`wrote ${writeSection(start, end, text)}`);
    for (const [phase, rows] of Object.entries(goalRows(out))) recordGoals(`transfer-${phase}`, out.date, rows);
  }
}

main().catch(async (e) => {
  console.error(e.stack ?? e.message);
  B.dumpLogs();
  await B.closeAllPeers();
  await h.closeAll();
  process.exitCode = 1;
});
