// Browser processes for the transfer benchmark.
//
// Same flags and permission grant as tests/e2e/harness.mjs (imported, not
// changed), but each peer is a *persistent* context (`launchPersistentContext`
// with a user-data-dir of its own under the benchmark's temp dir): one Chromium
// process per peer whose origin storage (OPFS) lives on disk, as in a real
// browser profile. A Playwright `browser.newContext()` is an off-the-record
// context whose OPFS Chromium keeps in memory (lib/memory.mjs checks that).
//
// Also here: the process tree of each browser from /proc, and the per-process
// CPU ticks used for CPU accounting.

import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import * as h from '../../e2e/harness.mjs';

const CLK_TCK = 100; // USER_HZ on Linux

const t0 = Date.now();
const logs = [];
export function log(source, line) {
  logs.push(`${((Date.now() - t0) / 1000).toFixed(2).padStart(7)}s [${source}] ${line}`);
  if (logs.length > 20_000) logs.splice(0, 5_000);
}
export function dumpLogs(title = 'page logs') {
  process.stderr.write(`\n----- ${title} (${logs.length} lines) -----\n${logs.join('\n') || '(nothing logged)'}\n----- end -----\n`);
  h.dumpLogs('relay and harness logs');
}

const open = new Set();

/** Close every browser launched here and remove its profile directory. */
export async function closeAllPeers() {
  await Promise.all([...open].map((p) => p.close()));
}

/**
 * One Chromium process with a persistent profile in `dir`. `origin` (the relay
 * URL) and `benchOrigin` (lib/server.mjs) get the camera/microphone grant
 * (without it no ICE candidates on a loopback-only host).
 */
export async function launchPeer(name, dir, origin, benchOrigin, { extraArgs = [] } = {}) {
  mkdirSync(dir, { recursive: true });
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: h.CHROMIUM,
    headless: true,
    args: [...h.CHROMIUM_ARGS, ...extraArgs],
    timeout: h.WAIT_MS,
  });
  let closed = false;
  const peer = {
    name,
    dir,
    origin,
    benchOrigin,
    context,
    browserPid: null,
    async close() {
      if (closed) return;
      closed = true;
      open.delete(peer);
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  open.add(peer);
  try {
    for (const o of [origin, benchOrigin].filter(Boolean)) await context.grantPermissions(['camera', 'microphone'], { origin: o });
    peer.browserPid = findBrowserPid(dir);
    return peer;
  } catch (e) {
    await peer.close();
    throw e;
  }
}

/** A new tab of `peer` at `url` (an absolute URL, or a path on the relay). */
export async function openTab(peer, url, label = peer.name) {
  const page = await peer.context.newPage();
  page.setDefaultTimeout(h.WAIT_MS);
  page.on('console', (m) => log(label, `${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(label, `pageerror: ${e.stack ?? e.message}`));
  page.on('crash', () => log(label, 'page crashed'));
  await page.goto(new URL(url, peer.origin).href);
  return page;
}

/** Wait for window.shoal (or the page's own start-up error). */
export async function shoalStarted(page, label) {
  const handle = await page
    .waitForFunction(() => window.shoal || window.shoalError, null, { timeout: h.WAIT_MS, polling: 100 })
    .catch((e) => {
      throw new Error(`${label}: the page set neither window.shoal nor window.shoalError within ${h.WAIT_MS} ms (${e.message.split('\n')[0]})`);
    });
  await handle.dispose();
  const error = await page.evaluate(() => window.shoalError ?? null);
  if (error) throw new Error(`${label}: the page failed to start: ${error}`);
  return page.evaluate(() => window.shoal.peerId);
}

/** Empty the OPFS of the origin of `url` in `peer` (a tab at `url` removes every entry). */
export async function clearOpfs(peer, url) {
  const page = await peer.context.newPage();
  try {
    await page.goto(url);
    await page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      const names = [];
      for await (const name of root.keys()) names.push(name);
      for (const name of names) await root.removeEntry(name, { recursive: true });
    });
  } finally {
    await page.close();
  }
}

/** Add a hidden <input type=file> and give it `filePath` (a disk-backed File in the page: `window.__benchFile`). */
export async function giveFile(page, filePath) {
  await page.evaluate(() => {
    document.getElementById('__bench_file')?.remove();
    const input = document.createElement('input');
    input.type = 'file';
    input.id = '__bench_file';
    input.style.display = 'none';
    document.body.append(input);
  });
  await page.setInputFiles('#__bench_file', filePath);
  return page.evaluate(() => {
    window.__benchFile = document.getElementById('__bench_file').files[0];
    return window.__benchFile.size;
  });
}

// ---- processes ---------------------------------------------------------------

function cmdline(pid) {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    // Zygote-forked children (renderers) rewrite their title: one string with spaces.
    return args.length === 1 ? args[0].split(' ') : args;
  } catch {
    return null;
  }
}

function allPids() {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

function ppid(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** The Chromium browser process started with --user-data-dir=`dir` (no --type=). */
export function findBrowserPid(dir) {
  for (const pid of allPids()) {
    const args = cmdline(pid);
    if (!args) continue;
    if (!/^chrom(e|ium)$/.test(path.basename(args[0] ?? ''))) continue; // not chrome_crashpad_handler
    if (args.some((a) => a === `--user-data-dir=${dir}`) && !args.some((a) => a.startsWith('--type='))) return pid;
  }
  return null;
}

/** [{pid, type}] for the browser process and all its descendants. */
export function processTree(rootPid) {
  if (!rootPid) return [];
  const parent = new Map(allPids().map((p) => [p, ppid(p)]));
  const tree = [];
  const want = new Set([rootPid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, pp] of parent) {
      if (!want.has(pid) && want.has(pp)) {
        want.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of want) {
    const args = cmdline(pid);
    if (!args) continue;
    const type = args.find((a) => a.startsWith('--type='))?.slice(7) ?? (pid === rootPid ? 'browser' : path.basename(args[0] || '?'));
    const sub = args.find((a) => a.startsWith('--utility-sub-type='))?.slice(19);
    tree.push({ pid, type: sub ? `${type}:${sub.split('.').pop()}` : type });
  }
  return tree;
}

/** CPU seconds (user + system) used so far by `pid`, or null if it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Proportional set size (KiB) from /proc/<pid>/smaps_rollup: shared pages split among their users. */
export function pssKib(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** KiB fields of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile, RssShmem), or null. */
export function memStatus(pid) {
  try {
    const out = {};
    for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const m = line.match(/^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem):\s+(\d+) kB/);
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  } catch {
    return null;
  }
}

/** Every process on the machine: [{ pid, comm, cpu }] (CPU seconds so far). */
export function allProcesses() {
  const out = [];
  for (const pid of allPids()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid, comm, cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Per-process CPU seconds of every process of every peer: { peerName: { pid: {type, cpu} } }. */
export function cpuSnapshot(peers) {
  const snap = {};
  for (const p of peers) {
    snap[p.name] = {};
    for (const { pid, type } of processTree(p.browserPid)) snap[p.name][pid] = { type, cpu: cpuSeconds(pid) ?? 0 };
  }
  return snap;
}

/**
 * CPU seconds spent between two snapshots, per peer: { total, renderer, network, storage, gpu, browser, other }.
 * Processes that appeared in between count from zero.
 */
export function cpuDelta(before, after) {
  const out = {};
  for (const [name, procs] of Object.entries(after)) {
    const d = { total: 0, renderer: 0, network: 0, storage: 0, gpu: 0, browser: 0, other: 0 };
    for (const [pid, { type, cpu }] of Object.entries(procs)) {
      const used = Math.max(0, cpu - (before[name]?.[pid]?.cpu ?? 0));
      d.total += used;
      const t = type.toLowerCase();
      const key = t === 'renderer' ? 'renderer'
        : t.includes('network') ? 'network'
          : t.includes('storage') ? 'storage'
            : t === 'gpu-process' ? 'gpu'
              : t === 'browser' ? 'browser' : 'other';
      d[key] += used;
    }
    out[name] = d;
  }
  return out;
}

/** Machine-wide CPU ticks from /proc/stat: { busy, total } (all CPUs). */
export function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * The renderer process that runs `page`: the renderer of `peer` whose CPU time
 * grows while the page spins for 600 ms (a tab's JS runs on its renderer's main thread).
 */
export async function rendererOf(peer, page) {
  const renderers = () => processTree(peer.browserPid).filter((p) => p.type === 'renderer').map((p) => p.pid);
  for (let attempt = 0; attempt < 3; attempt++) {
    const pids = renderers();
    const before = new Map(pids.map((pid) => [pid, cpuSeconds(pid)]));
    await page.evaluate(() => {
      const end = performance.now() + 600;
      while (performance.now() < end) { /* spin */ }
    });
    const grew = pids
      .map((pid) => ({ pid, d: (cpuSeconds(pid) ?? 0) - (before.get(pid) ?? 0) }))
      .sort((a, b) => b.d - a.d);
    if (grew.length && grew[0].d >= 0.3 && (grew.length === 1 || grew[1].d < grew[0].d / 3)) {
      return { pid: grew[0].pid, renderers: pids.length, spinCpu: grew[0].d };
    }
    log('bench', `renderer identification attempt ${attempt + 1} ambiguous: ${JSON.stringify(grew)}`);
  }
  throw new Error(`could not tell which renderer runs ${peer.name}'s tab`);
}
