// Memory of the downloading tab.
//
// Which process: Chromium runs each tab in a renderer process (a child of the
// zygote, `--type=renderer`). rendererOf() (lib/browsers.mjs) picks the
// renderer whose CPU time grows while the tab spins for 600 ms, so the figure is
// that tab's process, not a spare renderer or the about:blank one. Its VmRSS
// is sampled from /proc/<pid>/status every 250 ms and its VmHWM (the kernel's
// own peak RSS of the process) read at the end; PSS (smaps_rollup) every 1 s.
// VmRSS counts the Chromium code and fonts mapped from files, shared with the
// other renderers; RssAnon is the private part. For scale, a blank tab of the
// same browser is measured the same way. The renderer holds the tab's JS heap,
// its wasm linear memory, its workers and (in Chromium) the WebRTC stack with
// its SCTP buffers; OPFS file I/O happens in the storage service (a utility
// process), sampled separately with the whole browser (sum of PSS).
// JS heap: CDP Performance.getMetrics JSHeapUsedSize (main thread's isolate).
// Wasm linear memory: CDP Runtime.queryObjects(WebAssembly.Memory.prototype)
// at the end (a debugger inspection: the page exposes nothing for it); a wasm
// memory never shrinks, so its size at the end is its peak.
//
// OPFS placement check: 64 MiB written to OPFS through createWritable() in (a)
// a Playwright browser.newContext() (off-the-record) and (b) a persistent
// context; growth of the profile directory on disk and of the browser
// process tree's RSS tell where the bytes went.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import * as h from '../../e2e/harness.mjs';
import { launchPeer, memStatus, processTree, pssKib } from './browsers.mjs';

const MiB = 1024 * 1024;

/** Bytes on disk under `dir` (du -sb), or null. */
export function diskBytes(dir) {
  try {
    return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(/\s/)[0]);
  } catch {
    return null;
  }
}

/**
 * Memory (KiB) of a browser's process tree: `total` = sum of PSS (shared pages
 * counted once overall), `browser` = the browser process's VmRSS, `storage` =
 * the storage service's VmRSS (where OPFS lives).
 */
export function treeRssKib(browserPid) {
  let total = 0;
  let browser = 0;
  let storage = 0;
  for (const { pid, type } of processTree(browserPid)) {
    total += pssKib(pid) ?? 0;
    if (type === 'browser') browser = memStatus(pid)?.VmRSS ?? 0;
    if (type.includes('StorageService')) storage = memStatus(pid)?.VmRSS ?? 0;
  }
  return { total, browser, storage };
}

// Evaluated in a page: write `mib` MiB to an OPFS file and close it.
async function writeOpfs(mib) {
  const root = await navigator.storage.getDirectory();
  const fh = await root.getFileHandle(`opfs-check-${Date.now()}`, { create: true });
  const w = await fh.createWritable();
  const buf = new Uint8Array(1024 * 1024);
  for (let i = 0; i < mib; i++) {
    crypto.getRandomValues(buf.subarray(0, 65536));
    buf[i % buf.length] = i;
    await w.write(buf);
  }
  await w.close();
  return (await fh.getFile()).size;
}

async function checkOne(context, browserPid, profileDir, benchOrigin, mib) {
  const page = await context.newPage();
  try {
    page.setDefaultTimeout(h.WAIT_MS);
    await page.goto(`${benchOrigin}/blank.html`);
    await new Promise((r) => setTimeout(r, 500));
    const disk0 = diskBytes(profileDir);
    const rss0 = treeRssKib(browserPid);
    const size = await page.evaluate(writeOpfs, mib);
    await new Promise((r) => setTimeout(r, 1_000));
    const disk1 = diskBytes(profileDir);
    const rss1 = treeRssKib(browserPid);
    return {
      written: size,
      diskMiB: disk0 === null || disk1 === null ? null : (disk1 - disk0) / MiB,
      browserRssMiB: (rss1.browser - rss0.browser) / 1024,
      storageRssMiB: (rss1.storage - rss0.storage) / 1024,
      treePssMiB: (rss1.total - rss0.total) / 1024,
    };
  } finally {
    await page.close().catch(() => {});
  }
}

/** Where do OPFS bytes go: off-the-record (browser.newContext) vs persistent profile. */
export async function opfsPlacementCheck(origin, benchOrigin, tmpDir, mib = 64) {
  const out = {};
  // (a) chromium.launch + newContext: find the process by a marker switch
  // (Chromium ignores unknown switches), its profile dir from its command line.
  const marker = `--shoal-bench-marker=${randomBytes(6).toString('hex')}`;
  const browser = await chromium.launch({ executablePath: h.CHROMIUM, headless: true, args: [...h.CHROMIUM_ARGS, marker], timeout: h.WAIT_MS });
  try {
    const context = await browser.newContext();
    const pid = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).find((p) => {
      try {
        const a = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return a.includes(marker) && !a.some((x) => x.startsWith('--type=')) && /^chrom(e|ium)$/.test(path.basename(a[0] ?? ''));
      } catch {
        return false;
      }
    });
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const profileDir = args.find((a) => a.startsWith('--user-data-dir='))?.slice(16);
    out.offTheRecord = await checkOne(context, pid, profileDir, benchOrigin, mib);
  } finally {
    await browser.close().catch(() => {});
  }
  // (b) a persistent context, as the benchmark uses.
  const dir = path.join(tmpDir, 'opfs-check-profile');
  mkdirSync(dir, { recursive: true });
  const peer = await launchPeer('opfs-check', dir, origin, benchOrigin);
  try {
    out.persistent = await checkOne(peer.context, peer.browserPid, dir, benchOrigin, mib);
  } finally {
    await peer.close();
  }
  return out;
}

/** Sample the renderer `pid` (and the whole browser tree) until stop(); CDP for JS heap. */
export async function startSampler(page, rendererPid, browserPid, intervalMs = 250) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const s = { samples: 0, peakRss: 0, peakAnon: 0, peakPss: 0, peakTree: 0, peakBrowser: 0, peakStorage: 0, peakJsHeap: 0, peakJsHeapTotal: 0 };
  let n = 0;
  let stopped = false;
  let heapBusy = false;
  const timer = setInterval(() => {
    if (stopped) return;
    const m = memStatus(rendererPid);
    if (m) {
      s.samples++;
      s.peakRss = Math.max(s.peakRss, m.VmRSS ?? 0);
      s.peakAnon = Math.max(s.peakAnon, m.RssAnon ?? 0);
    }
    // PSS walks page tables: every 4th tick (1 s) is enough.
    if (n++ % 4 === 0) {
      s.peakPss = Math.max(s.peakPss, pssKib(rendererPid) ?? 0);
      const t = treeRssKib(browserPid);
      s.peakTree = Math.max(s.peakTree, t.total);
      s.peakBrowser = Math.max(s.peakBrowser, t.browser);
      s.peakStorage = Math.max(s.peakStorage, t.storage);
    }
    if (!heapBusy) {
      heapBusy = true;
      cdp.send('Performance.getMetrics').then(({ metrics }) => {
        const get = (n) => metrics.find((x) => x.name === n)?.value ?? 0;
        s.peakJsHeap = Math.max(s.peakJsHeap, get('JSHeapUsedSize'));
        s.peakJsHeapTotal = Math.max(s.peakJsHeapTotal, get('JSHeapTotalSize'));
      }).catch(() => {}).finally(() => { heapBusy = false; });
    }
  }, intervalMs);
  return {
    cdp,
    /** The peaks so far (a copy). */
    peaks: () => ({ ...s }),
    /** The renderer's memory now and the page's wasm memories: one checkpoint. */
    async mark() {
      const m = memStatus(rendererPid) ?? {};
      const wasm = await wasmMemoryBytes(cdp).catch(() => null);
      return { rssKib: m.VmRSS ?? null, anonKib: m.RssAnon ?? null, wasm };
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      const end = memStatus(rendererPid) ?? {};
      s.hwm = end.VmHWM ?? null;
      s.endRss = end.VmRSS ?? null;
      s.wasmMemory = await wasmMemoryBytes(cdp).catch((e) => ({ error: e.message }));
      await cdp.detach().catch(() => {});
      return s;
    },
  };
}

/** Sizes of every WebAssembly.Memory in the page's main realm (CDP heap query). */
async function wasmMemoryBytes(cdp) {
  const { result: proto } = await cdp.send('Runtime.evaluate', { expression: 'WebAssembly.Memory.prototype' });
  const { objects } = await cdp.send('Runtime.queryObjects', { prototypeObjectId: proto.objectId });
  const { result } = await cdp.send('Runtime.callFunctionOn', {
    objectId: objects.objectId,
    functionDeclaration: 'function () { return this.map((m) => m.buffer.byteLength); }',
    returnByValue: true,
  });
  await cdp.send('Runtime.releaseObject', { objectId: objects.objectId }).catch(() => {});
  await cdp.send('Runtime.releaseObject', { objectId: proto.objectId }).catch(() => {});
  return result.value;
}

