#!/usr/bin/env node
// Benchmark: how long from page load to the first direct peer, with two browsers.
//
//   node tests/bench/connect.mjs [--runs N] [--no-write]      (make bench)
//
// - Each run opens the page at the same moment in a fresh context (cold cache)
//   of each of two Chromium processes, in a swarm of its own. Inside each page
//   an init script notes performance.now() — milliseconds since navigation
//   start — when the node has started, when the relay reservation is
//   accepted, and at the first change where shoal.peers() holds a direct peer.
// - Sizes of the served peer: .wasm and .js, raw and the pre-compressed copies
//   the relay serves in their place (`.br`, `.gz`, written by scripts/compress.mjs).
// - Relay memory: VmRSS from /proc/<pid>/status when idle, and with three
//   peers connected to each other.
// Prints the figures and writes them into BENCHMARKS.md (its own section).
//
// Relay binary: $SHOAL_RELAY_BIN, else target/release/relay, else target/debug/relay.

import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as h from '../e2e/harness.mjs';
import { benchCommand, cliArgs, machine, writeSection } from './lib/report.mjs';
import { recordMilestones } from './lib/shoal.mjs';
import { median } from './lib/util.mjs';

const { argv, flag, option } = cliArgs();
const RUNS = Math.max(5, Number.parseInt(option('--runs', '5'), 10) || 5);
const WRITE = !flag('--no-write');

const SECTION_START = '<!-- bench:connect -->';
const SECTION_END = '<!-- /bench:connect -->';

const COMMAND = benchCommand('tests/bench/connect.mjs', argv);

const ms = (x) => (x === undefined || x === null ? '—' : `${Math.round(x)}`);
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

function vmRssKib(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return line ? Number.parseInt(line.replace(/\D+/g, ''), 10) : null;
}


// The page's size as the relay serves it: the build's files and the
// pre-compressed copies `make wasm` wrote beside them (what a browser that
// accepts br or gzip downloads).
function sizes() {
  const out = [];
  for (const file of ['peer_wasm_bg.wasm', 'peer_wasm.js']) {
    const p = path.join(h.REPO, 'www', 'pkg', file);
    const size = (q) => {
      if (!existsSync(q)) throw new Error(`${q} is missing: build the wasm first (make wasm)`);
      return statSync(q).size;
    };
    out.push({ file, raw: size(p), br: size(`${p}.br`), gzip: size(`${p}.gz`) });
  }
  return out;
}

const PAGE_GOAL_KIB = 400;

// Milestones each page records (tests/bench/lib/shoal.mjs), in page order.
const STAGES = ['html', 'app', 'wasmFetched', 'wasmReady', 'started', 'reserved', 'firstDirect'];

async function connectRun(browsers, relay, i) {
  const swarm = `bench-${i}-${Math.random().toString(36).slice(2, 8)}`;
  const names = ['A', 'B'];
  const peers = await Promise.all(
    browsers.map((b, k) => h.openPage(b, relay.url, { name: `${names[k]}${i}`, swarm, initScripts: [recordMilestones] })),
  );
  try {
    await Promise.all(peers.map((p) => p.started()));
    return await Promise.all(
      peers.map((p) =>
        h.waitFor(
          `${p.name}: a direct peer`,
          () => p.page.evaluate(() => window.__bench),
          (m) => m?.firstDirect !== undefined,
          { interval: 100 },
        ),
      ),
    );
  } finally {
    await Promise.all(peers.map((p) => p.close()));
  }
}

async function rssWithThreePeers(browsers, relay) {
  const swarm = `bench-rss-${Math.random().toString(36).slice(2, 8)}`;
  const peers = await Promise.all(browsers.map((b, k) => h.openPage(b, relay.url, { name: `R${k}`, swarm })));
  try {
    await Promise.all(peers.map((p) => p.started()));
    const ids = peers.map((p) => p.peerId);
    await Promise.all(
      peers.map((p) =>
        h.waitFor(`${p.name}: both others as direct`, p.peers, (ps) =>
          ids.filter((id) => id !== p.peerId).every((id) => ps.some((q) => q.peerId === id && q.path === 'direct')),
        ),
      ),
    );
    return vmRssKib(relay.pid);
  } finally {
    await Promise.all(peers.map((p) => p.close()));
  }
}

function section(r) {
  const rows = [
    ['page HTML received (navigation `responseEnd`)', r.html],
    ['app.js running (`shoal:app` mark)', r.app],
    ['wasm fetched (resource `responseEnd`; compiled while it streams)', r.wasmFetched],
    ['wasm ready (compiled and instantiated, `shoal:wasm-ready`)', r.wasmReady],
    ['node started (`Node.start` resolved: `/api/info` fetched, swarm built)', r.started],
    ['relay reservation accepted', r.reserved],
    ['**first direct peer**', r.firstDirect],
  ];
  const stat = (xs) => (xs.length ? `${ms(median(xs))} | ${ms(Math.min(...xs))} | ${ms(Math.max(...xs))} | ${xs.length}` : '— | — | — | 0');
  return [
    SECTION_START,
    '## Connect: page load → first direct peer',
    '',
    `- Date: ${r.date}`,
    `- Machine: ${r.machine.arch}, ${r.machine.cpus} CPUs, ${r.machine.cpu}`,
    `- Browser: ${r.browser}, headless, one process per peer, loopback, fresh context (cold cache) per run`,
    `- Relay: \`${path.relative(h.REPO, r.relayBin)}\``,
    `- Command: \`${COMMAND}\` (\`make bench\` runs it with the release relay)`,
    '',
    `Milliseconds from navigation start, both pages of ${RUNS} runs (${r.failures} failed):`,
    '',
    '| milestone | median | min | max | n |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map(([name, xs]) => `| ${name} | ${stat(xs)} |`),
    '',
    'Per run, first direct peer (A / B): ' + (r.perRun.length ? r.perRun.map(([a, b]) => `${ms(a)} / ${ms(b)}`).join(', ') : '—') + ' ms.',
    '',
    '| served file | raw | brotli (`.br`, quality 11) | gzip (`.gz`, level 9) |',
    '| --- | ---: | ---: | ---: |',
    ...r.sizes.map((s) => `| \`www/pkg/${s.file}\` | ${kib(s.raw)} (${s.raw} B) | ${kib(s.br)} (${s.br} B) | ${kib(s.gzip)} (${s.gzip} B) |`),
    '',
    pageSizeLine(r.sizes),
    '',
    `Relay VmRSS: idle ${r.rssIdle ?? '—'} KiB; with 3 peers connected (each with 2 direct peers) ${r.rssThree ?? '—'} KiB.`,
    SECTION_END,
  ].join('\n');
}

function pageSizeLine(sizes) {
  const br = sizes.reduce((n, s) => n + s.br, 0);
  const met = br / 1024 <= PAGE_GOAL_KIB ? 'met' : 'NOT met';
  return `Peer as served with brotli, wasm + JS: **${kib(br)}** (${br} B; goal ≤ ${PAGE_GOAL_KIB} KiB: ${met}).`;
}

const writeBenchmarks = (text) => writeSection(SECTION_START, SECTION_END, text);

async function main() {
  const result = {
    date: new Date().toISOString(),
    machine: machine(),
    relayBin: h.relayBinary(),
    sizes: sizes(),
    html: [],
    app: [],
    wasmFetched: [],
    wasmReady: [],
    started: [],
    reserved: [],
    firstDirect: [],
    perRun: [],
    failures: 0,
  };
  const relay = await h.startRelay();
  try {
    result.rssIdle = vmRssKib(relay.pid);
    const browsers = await Promise.all([h.launchBrowser(), h.launchBrowser()]);
    result.browser = `Chromium ${browsers[0].version()}`;
    for (let i = 0; i < RUNS; i++) {
      try {
        const marks = await connectRun(browsers, relay, i);
        for (const m of marks) {
          for (const key of STAGES) if (m[key] !== undefined) result[key].push(m[key]);
        }
        result.perRun.push(marks.map((m) => m.firstDirect));
        console.log(`run ${i + 1}/${RUNS}: first direct peer at ${marks.map((m) => ms(m.firstDirect)).join(' / ')} ms`);
        // SHOAL_BENCH_SLOW_MS=N: print the pages' and relay's logs of a run slower than N ms.
        const slow = Number(process.env.SHOAL_BENCH_SLOW_MS ?? Infinity);
        if (marks.some((m) => m.firstDirect > slow)) h.dumpLogs(`logs up to slow run ${i + 1}`);
      } catch (e) {
        result.failures++;
        console.error(`run ${i + 1}/${RUNS} failed: ${e.message}`);
        h.dumpLogs(`logs up to failed run ${i + 1}`);
      }
    }
    browsers.push(await h.launchBrowser());
    result.rssThree = await rssWithThreePeers(browsers, relay);
  } finally {
    await h.closeAll();
    await relay.stop();
  }

  const text = section(result);
  console.log(`\n${text}\n`);
  if (WRITE) console.log(`wrote ${writeBenchmarks(text)}`);
  if (result.failures > 0 || result.firstDirect.length === 0) {
    console.error(`${result.failures} of ${RUNS} runs failed`);
    process.exitCode = 1;
  }
}

main().catch(async (e) => {
  console.error(e.stack ?? e.message);
  h.dumpLogs();
  await h.closeAll();
  process.exitCode = 1;
});
