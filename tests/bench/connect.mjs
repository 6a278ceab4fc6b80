#!/usr/bin/env node
// Benchmark: how long from page load to the first direct peer, and to the first
// verified chunk.
//
//   node tests/bench/connect.mjs [--runs N] [--compare DIR [--compare-relay BIN]]
//                                [--only waiting|together] [--no-write]
//                                                                          (make bench)
//
// - "waiting" (the headline, issue #10's goal): a peer with a file already waits in the
//   swarm (its page started, reserved, registered, the file shared); then the share link
//   is opened in a fresh context (cold cache) of a second Chromium process. Every stage
//   of that page, from navigation start: HTML, page.js, wasm, node started, and the
//   node's own milestones (`node.milestones()`: relay connected, reserved, registered,
//   discovered, relayed connection, /webrtc start, first direct, first verified chunk),
//   and the first RTCPeerConnection's SDP, ICE, DTLS and first data channel (wrapped in
//   the page by lib/shoal.mjs recordMilestones).
// - "together": the page opened at the same moment in a fresh context of each of two
//   Chromium processes, in a swarm of its own (both compile the wasm on the same cores).
// - --compare DIR: another build of the page (DIR/pkg, e.g. main's `www`) served by a
//   second relay; every run is made with both, alternating which goes first, so that
//   the two are compared side by side on a noisy machine. --compare-relay BIN: that
//   build's relay is another binary (to measure a change of the relay).
// - Sizes of the served peer: .wasm and .js, raw and the pre-compressed copies
//   the relay serves in their place (`.br`, `.gz`, written by scripts/compress.mjs).
// - Relay memory: VmRSS from /proc/<pid>/status when idle, and with three
//   peers connected to each other.
// Prints the figures and writes them into BENCHMARKS.md (its own section).
//
// Relay binary: $SHOAL_RELAY_BIN, else target/release/relay, else target/debug/relay.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as h from '../e2e/harness.mjs';
import { goalRow, recordGoals } from './lib/goals.mjs';
import { benchCommand, cliArgs, machine, writeSection } from './lib/report.mjs';
import { benchMarks, recordMilestones } from './lib/shoal.mjs';
import { median, sleep } from './lib/util.mjs';

const { argv, flag, option } = cliArgs();
const RUNS = Math.max(5, Number.parseInt(option('--runs', '10'), 10) || 10);
const WRITE = !flag('--no-write');
const COMPARE = option('--compare', null);
// The compared build's relay binary, when the change under test is the relay's (default: the same relay).
const COMPARE_RELAY = option('--compare-relay', null);
const ONLY = option('--only', null);
const CASES = ['waiting', 'together'].filter((c) => !ONLY || ONLY === c);

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
  const pkg = path.join(h.wwwDir(), 'pkg');
  // The peer's own JS snippets (OPFS, file reads) load with it: counted too.
  // `make wasm` bundles them into peer_wasm.js; a build from before that has them apart.
  const dir = path.join(pkg, 'snippets');
  const snippets = (existsSync(dir) ? readdirSync(dir, { recursive: true }) : [])
    .filter((f) => f.endsWith('.js'))
    .map((f) => path.join('snippets', f))
    .sort();
  for (const file of ['peer_wasm_bg.wasm', 'peer_wasm.js', ...snippets]) {
    const p = path.join(pkg, file);
    const size = (q) => {
      if (!existsSync(q)) throw new Error(`${q} is missing: build the wasm first (make wasm)`);
      return statSync(q).size;
    };
    out.push({ file, raw: size(p), br: size(`${p}.br`), gzip: size(`${p}.gz`) });
  }
  return out;
}

const PAGE_GOAL_KIB = 400;
const GOAL_MS = 400;

// Stages of the measured page (lib/shoal.mjs recordMilestones, benchMarks), in page
// order: [key, description]. `n…` keys are the node's own milestones (null in builds
// without `node.milestones()`).
const STAGES = [
  ['html', 'page HTML received (navigation `responseEnd`)'],
  ['appFetched', 'page.js fetched (app.js and ui/ bundled; resource `responseEnd`)'],
  ['app', 'page.js running (`shoal:app` mark)'],
  ['wasmFetched', 'wasm fetched (resource `responseEnd`; compiled while it streams)'],
  ['wasmReady', 'wasm compiled and instantiated (`shoal:wasm-ready`)'],
  ['nStart', '`Node.start` called'],
  ['nInfoFetched', '`/api/info` fetched'],
  ['started', 'node started (`Node.start` resolved)'],
  ['nRelayDial', 'relay dial started'],
  ['wsCreated', 'relay WebSocket created'],
  ['wsOpen', 'relay WebSocket open'],
  ['nRelayConnected', 'relay connected (WebSocket + Noise + Yamux)'],
  ['nDiscovered', 'discovered a member of the swarm (rendezvous)'],
  ['nReserved', 'relay reservation accepted'],
  ['nRegistered', 'rendezvous registration accepted'],
  ['nPeerRelayed', 'relayed connection to the peer up'],
  ['nWebrtcStart', '`/webrtc` started (dial, or signaling stream in)'],
  ['pcCreated', 'RTCPeerConnection created'],
  ['sdp', 'first SDP applied (signaling)'],
  ['iceChecking', 'ICE checking'],
  ['iceConnected', 'ICE connected'],
  ['dtlsConnected', 'DTLS connected (`connectionState` connected)'],
  ['channelOpen', 'first data channel open (SCTP)'],
  ['firstDirect', '**first direct peer** (in `peers()`)'],
  ['nHolder', 'download: a session with a holder of the share up'],
  ['nManifest', 'download: manifest received and verified'],
  ['nDataOpen', 'download: data file open (OPFS)'],
  ['nFirstRequest', 'download: first chunk requested'],
  ['firstChunk', '**first verified chunk** (stored)'],
];

// Evaluated in a page: share 1 MiB of random bytes; resolves to the link.
async function shareRandomInPage() {
  const parts = [];
  for (let k = 0; k < 16; k++) parts.push(crypto.getRandomValues(new Uint8Array(65536)));
  return window.shoal.share(new Blob(parts), 'bench.bin');
}

// Evaluated in a page: whether the node is reserved and registered (old builds without
// milestones(): reserved, and 1 s later).
function registeredInPage() {
  const n = window.shoal;
  if (typeof n.milestones === 'function') return n.milestones().registered !== null;
  if (n.relay().state !== 'reserved') return false;
  window.__reservedSeen ??= performance.now();
  return performance.now() - window.__reservedSeen > 1000;
}

const swarmName = (what, i) => `bench-${what}-${i}-${Math.random().toString(36).slice(2, 8)}`;

/** The first chunk: the node's own stamp where the build has one, else the page's. */
function normalise(m) {
  return { ...m, firstChunk: m.nFirstChunk ?? m.firstChunk };
}

/** Peer A waits with a shared file; B opens the link. B's stages. */
async function waitingRun(browsers, relay, i) {
  const swarm = swarmName('w', i);
  const a = await h.openPage(browsers[0], relay.url, { name: `W${i}`, swarm });
  let b = null;
  try {
    await a.started();
    await h.waitFor(`W${i}: reserved and registered`, () => a.page.evaluate(registeredInPage), Boolean, { interval: 50 });
    const link = await a.page.evaluate(shareRandomInPage);
    // A is idle by the time the link is opened, as a peer that waits would be.
    await sleep(300);
    b = await h.openPage(browsers[1], relay.url, { name: `J${i}`, swarm, url: link, initScripts: [recordMilestones] });
    const m = await h.waitFor(
      `J${i}: a direct peer and a verified chunk`,
      () => b.page.evaluate(benchMarks),
      (x) => x?.firstDirect !== undefined && (x.nFirstChunk ?? x.firstChunk) !== undefined,
      { interval: 100 },
    );
    return [normalise(m)];
  } finally {
    await Promise.all([a.close(), b?.close()]);
  }
}

/** Both pages opened at the same moment; both pages' stages (no file). */
async function togetherRun(browsers, relay, i) {
  const swarm = swarmName('t', i);
  const names = ['A', 'B'];
  const peers = await Promise.all(
    browsers.map((b, k) => h.openPage(b, relay.url, { name: `${names[k]}${i}`, swarm, initScripts: [recordMilestones] })),
  );
  try {
    await Promise.all(peers.map((p) => p.started()));
    return await Promise.all(
      peers.map(async (p) =>
        normalise(
          await h.waitFor(`${p.name}: a direct peer`, () => p.page.evaluate(benchMarks), (m) => m?.firstDirect !== undefined, { interval: 100 }),
        ),
      ),
    );
  } finally {
    await Promise.all(peers.map((p) => p.close()));
  }
}

const RUNNERS = { waiting: waitingRun, together: togetherRun };

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

const stat = (xs) => (xs.length ? `${ms(median(xs))} | ${ms(Math.min(...xs))} | ${ms(Math.max(...xs))} | ${xs.length}` : '— | — | — | 0');

/** Stage rows of one case: one build, or this build beside the compared one. */
function stageTable(builds, kase) {
  const col = (b, key) => b.cases[kase].marks.map((m) => m[key]).filter((x) => typeof x === 'number');
  const shown = STAGES.filter(([key]) => builds.some((b) => col(b, key).length));
  if (builds.length === 1) {
    return [
      '| stage | median | min | max | n |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...shown.map(([key, name]) => `| ${name} | ${stat(col(builds[0], key))} |`),
    ];
  }
  const [cur, alt] = builds;
  const med = (xs) => (xs.length ? ms(median(xs)) : '—');
  return [
    `| stage | ${cur.label}: median (min–max) | ${alt.label}: median (min–max) |`,
    '| --- | ---: | ---: |',
    ...shown.map(([key, name]) => {
      const cell = (b) => {
        const xs = col(b, key);
        return xs.length ? `${med(xs)} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})` : '—';
      };
      return `| ${name} | ${cell(cur)} | ${cell(alt)} |`;
    }),
  ];
}

const CASE_TITLES = {
  waiting: (runs) => `**A peer already waits; the share link is opened** (the goal: first direct peer ≤ ${GOAL_MS} ms, median of ≥ 10). Milliseconds from the joining page's navigation start, ${runs} runs each:`,
  together: (runs) => `Two pages opened at the same moment (both compile the wasm on the same 2 cores); milliseconds from navigation start, both pages of ${runs} runs each:`,
};

function section(r) {
  const lines = [
    SECTION_START,
    '## Connect: page load → first direct peer',
    '',
    `- Date: ${r.date}`,
    `- Machine: ${r.machine.arch}, ${r.machine.cpus} CPUs, ${r.machine.cpu}`,
    `- Browser: ${r.browser}, headless, one process per peer, loopback, fresh context (cold cache) per page`,
    `- Relay: \`${path.relative(h.REPO, r.relayBin)}\``,
    `- Command: \`${COMMAND}\` (\`make bench\` runs it with the release relay)`,
    r.builds.length > 1
      ? `- Builds: \`${r.builds[0].label}\` and \`${r.builds[1].label}\`, each from its own relay, every run made with both (alternating which goes first)`
      : `- Build: \`${r.builds[0].label}\``,
  ];
  for (const kase of CASES) {
    const failed = r.builds.map((b) => `${b.cases[kase].failures}`).join(' / ');
    lines.push('', `${CASE_TITLES[kase](RUNS)} (failed: ${failed})`, '', ...stageTable(r.builds, kase));
    for (const b of r.builds) {
      const per = b.cases[kase].perRun;
      const key = kase === 'waiting' ? 'first direct / first chunk' : 'first direct (A / B)';
      lines.push('', `Per run, ${b.label}, ${key}: ${per.length ? per.join(', ') : '—'} ms.`);
    }
  }
  lines.push(
    '',
    'Stages: page marks and resource timing; `relay connected` … `/webrtc started` and the first chunk from `node.milestones()` (the node\'s own `performance.now()` stamps); SDP, ICE, DTLS and the first data channel from the first `RTCPeerConnection`, wrapped in the page (tests/bench/lib/shoal.mjs).',
    '',
    '| served file | raw | brotli (`.br`, quality 11) | gzip (`.gz`, level 9) |',
    '| --- | ---: | ---: | ---: |',
    ...r.sizes.map((s) => `| \`www/pkg/${s.file}\` | ${kib(s.raw)} (${s.raw} B) | ${kib(s.br)} (${s.br} B) | ${kib(s.gzip)} (${s.gzip} B) |`),
    '',
    pageSizeLine(r.sizes),
    '',
    `Relay VmRSS: idle ${r.rssIdle ?? '—'} KiB; with 3 peers connected (each with 2 direct peers) ${r.rssThree ?? '—'} KiB.`,
    SECTION_END,
  );
  return lines.join('\n');
}

function pageSizeLine(sizes) {
  const br = sizes.reduce((n, s) => n + s.br, 0);
  const met = br / 1024 <= PAGE_GOAL_KIB ? 'met' : 'NOT met';
  return `Peer as served with brotli, wasm + JS: **${kib(br)}** (${br} B; goal ≤ ${PAGE_GOAL_KIB} KiB: ${met}).`;
}

const writeBenchmarks = (text) => writeSection(SECTION_START, SECTION_END, text);

/** Issue #10's goals this script measures, for this build (lib/goals.mjs). */
function goalRows(r) {
  const br = r.sizes.reduce((n, s) => n + s.br, 0);
  const rows = [goalRow('the peer as served (wasm + JS, brotli)', kib(br), `≤ ${PAGE_GOAL_KIB} KiB`, br / 1024 <= PAGE_GOAL_KIB)];
  const marks = r.builds[0].cases.waiting?.marks ?? [];
  const of = (key) => marks.map((m) => m[key]).filter((x) => typeof x === 'number');
  const direct = of('firstDirect');
  if (direct.length) {
    const med = median(direct);
    rows.push(goalRow(`link opened, a peer waiting: navigation → first direct peer, median of ${direct.length}`, `${ms(med)} ms`, `≤ ${GOAL_MS} ms, ≥ 10 runs`, med <= GOAL_MS && direct.length >= 10));
  }
  const chunk = of('firstChunk');
  if (chunk.length) rows.push(goalRow(`link opened: navigation → first verified chunk, median of ${chunk.length}`, `${ms(median(chunk))} ms`, 'reported', null));
  return rows;
}

async function main() {
  const result = {
    date: new Date().toISOString(),
    machine: machine(),
    relayBin: h.relayBinary(),
    sizes: sizes(),
    builds: [],
  };
  const newBuild = (label, www, bin = undefined) => ({
    label,
    www,
    bin,
    relay: null,
    cases: Object.fromEntries(CASES.map((c) => [c, { marks: [], perRun: [], failures: 0 }])),
  });
  result.builds.push(newBuild(path.relative(h.REPO, h.wwwDir()) || '.', h.wwwDir()));
  if (COMPARE) {
    const label = COMPARE_RELAY ? `${COMPARE} + ${COMPARE_RELAY}` : COMPARE;
    result.builds.push(newBuild(label, path.resolve(COMPARE), COMPARE_RELAY ? path.resolve(COMPARE_RELAY) : undefined));
  }
  try {
    for (const b of result.builds) b.relay = await h.startRelay({ www: b.www, ...(b.bin ? { bin: b.bin } : {}) });
    const relay = result.builds[0].relay;
    result.rssIdle = vmRssKib(relay.pid);
    const browsers = await Promise.all([h.launchBrowser(), h.launchBrowser()]);
    result.browser = `Chromium ${browsers[0].version()}`;
    for (const kase of CASES) {
      for (let i = 0; i < RUNS; i++) {
        const order = i % 2 ? [...result.builds].reverse() : result.builds;
        for (const b of order) {
          const c = b.cases[kase];
          try {
            const marks = await RUNNERS[kase](browsers, b.relay, i);
            c.marks.push(...marks);
            const line = kase === 'waiting'
              ? `${ms(marks[0].firstDirect)} / ${ms(marks[0].firstChunk)}`
              : marks.map((m) => ms(m.firstDirect)).join(' / ');
            c.perRun.push(line);
            console.log(`${kase} run ${i + 1}/${RUNS} (${b.label}): ${line} ms`);
            // SHOAL_BENCH_SLOW_MS=N: print the pages' and relay's logs of a run slower than N ms.
            const slow = Number(process.env.SHOAL_BENCH_SLOW_MS ?? Infinity);
            if (marks.some((m) => m.firstDirect > slow || m.firstChunk > slow)) h.dumpLogs(`logs up to slow run ${i + 1}`);
          } catch (e) {
            c.failures++;
            console.error(`${kase} run ${i + 1}/${RUNS} (${b.label}) failed: ${e.message}`);
            h.dumpLogs(`logs up to failed run ${i + 1}`);
          }
        }
      }
    }
    browsers.push(await h.launchBrowser());
    result.rssThree = await rssWithThreePeers(browsers, relay);
  } finally {
    await h.closeAll();
    for (const b of result.builds) await b.relay?.stop();
  }

  const text = section(result);
  console.log(`\n${text}\n`);
  if (WRITE) {
    console.log(`wrote ${writeBenchmarks(text)}`);
    recordGoals('connect', result.date, goalRows(result));
  }
  const failures = result.builds.reduce((n, b) => n + CASES.reduce((k, c) => k + b.cases[c].failures, 0), 0);
  if (failures > 0 || result.builds[0].cases[CASES[0]].marks.length === 0) {
    console.error(`${failures} runs failed`);
    process.exitCode = 1;
  }
}

main().catch(async (e) => {
  console.error(e.stack ?? e.message);
  h.dumpLogs();
  await h.closeAll();
  process.exitCode = 1;
});
