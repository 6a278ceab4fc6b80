#!/usr/bin/env node
// Benchmark in the NAT lab (tests/lab/lab.mjs: network namespaces, real NATs, the relay in
// `pub` at 10.200.0.10 serving HTTPS and its own STUN, one Chromium process per namespace).
// Needs root. Prints figures and rewrites its own section of BENCHMARKS.md; no thresholds.
//
//   node tests/bench/lab.mjs [--runs N] [--size-mib N] [--rounds N] [--no-turn] [--no-write]
//                                                                               (make bench-lab)
//
// 1. Cone NATs: page load → first direct peer. Per run (≥ 5), a page in lab-a joins a fresh
//    swarm and gets its relay reservation; then a page in lab-b is opened (fresh context,
//    cold cache) and measures in the page, from its navigation start, until shoal.peers()
//    lists A as `direct` (the init script of connect.mjs, lib/shoal.mjs recordMilestones).
//    One warm-up run first, not counted.
//    The selected ICE pair must be srflx/prflx (through the NATs).
// 2. The same --size-mib (default 256) file A → B, in this one run:
//    - cone NATs: direct (WebRTC through both NATs);
//    - symmetric NATs: relayed through our relay (WebRTC fails), sampling the relay's CPU
//      time (/proc/<pid>/stat utime+stime) and memory (VmRSS every 250 ms, VmHWM);
//    - symmetric NATs with coturn (TURN over UDP) in `pub` on port 3479, given to the pages
//      by the relay (--ice-server turn:…): WebRTC through TURN (the selected pair has a
//      `relay` candidate), sampling turnserver the same way. --no-turn skips it.
//    --rounds N repeats the three (cone lab → direct, symmetric lab → relayed, TURN) N times.
//    Timed in the downloading page: download() call → resolve. The file is random bytes
//    written by node, given to A through <input type=file>; B's File is checked with
//    SHA-256 against the file on disk (after the timed part).
//
// Relay binary: $SHOAL_RELAY_BIN, else target/release/relay, else target/debug/relay.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as h from '../e2e/harness.mjs';
import * as L from '../lab/lab.mjs';
import { cpuSeconds, machineTicks, memStatus } from './lib/browsers.mjs';
import { MiB, writeRandomFile } from './lib/files.mjs';
import { benchCommand, cliArgs, machine, writeSection } from './lib/report.mjs';
import { downloadAll, recordMilestones, share } from './lib/shoal.mjs';
import { median, sleep, transferTimeout } from './lib/util.mjs';

const { argv, flag, option } = cliArgs();
const RUNS = Math.max(5, Number.parseInt(option('--runs', '5'), 10) || 5);
const SIZE_MIB = Number(option('--size-mib', '256'));
if (!(SIZE_MIB > 0)) throw new Error('--size-mib must be a positive number');
const SIZE = Math.round(SIZE_MIB * MiB);
const TURN = !flag('--no-turn');
const ROUNDS = Math.max(1, Number.parseInt(option('--rounds', '1'), 10) || 1);
const WRITE = !flag('--no-write');

const SECTION_START = '<!-- bench:lab -->';
const SECTION_END = '<!-- /bench:lab -->';

const COMMAND = benchCommand('tests/bench/lab.mjs', argv);


// ---- formatting ------------------------------------------------------------------

const say = (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const ms = (x) => (x === undefined || x === null ? '—' : `${Math.round(x)}`);
const f1 = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(1));
const f2 = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(2));
const mibOf = (kib) => (kib === null || kib === undefined ? '—' : (kib / 1024).toFixed(1));
const mbps = (t) => (t ? SIZE / 1e6 / t.seconds : null);
const pairText = (s) => `${s.localType}→${s.remoteType} (${s.protocol})`;

// ---- processes -------------------------------------------------------------------

/** Pids of every process in namespace `ns`. */
function nsPids(ns) {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU seconds so far of the processes in each lab namespace (a = browser A, b = browser B, pub = servers). */
function nsCpu() {
  const out = {};
  for (const host of ['a', 'b', 'pub']) {
    out[host] = new Map(nsPids(L.NS[host]).map((pid) => [pid, cpuSeconds(pid) ?? 0]));
  }
  return out;
}
/** CPU seconds per namespace between two nsCpu() snapshots (processes that appeared count from zero). */
function nsCpuDelta(before, after) {
  const out = {};
  for (const [host, procs] of Object.entries(after)) {
    out[host] = 0;
    for (const [pid, cpu] of procs) out[host] += Math.max(0, cpu - (before[host]?.get(pid) ?? 0));
  }
  return out;
}

/** Sample a server process: CPU time from /proc/<pid>/stat, VmRSS every `intervalMs`, VmHWM at the end. */
function startServerSampler(pid, intervalMs = 250) {
  const cpu0 = cpuSeconds(pid);
  const m0 = memStatus(pid) ?? {};
  let peak = m0.VmRSS ?? 0;
  let samples = 1;
  const timer = setInterval(() => {
    const m = memStatus(pid);
    if (m?.VmRSS !== undefined) {
      peak = Math.max(peak, m.VmRSS);
      samples++;
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const m1 = memStatus(pid) ?? {};
      if (m1.VmRSS !== undefined) peak = Math.max(peak, m1.VmRSS);
      const cpu1 = cpuSeconds(pid);
      return { cpu: cpu1 !== null && cpu0 !== null ? cpu1 - cpu0 : null, rssBefore: m0.VmRSS, rssPeak: peak, rssAfter: m1.VmRSS, hwm: m1.VmHWM, samples };
    },
  };
}

/** SHA-256 (hex) of a file on disk, 4 MiB at a time. */
function sha256File(file) {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4 * MiB);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Evaluated in a page: SHA-256 (hex) of the downloaded File (window.__dlFile, lib/shoal.mjs). */
async function sha256DownloadInPage() {
  const digest = await crypto.subtle.digest('SHA-256', await window.__dlFile.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- 1. page load → first direct peer ----------------------------------------------

async function connectRun(lab, browsers, i) {
  const swarm = `lab-connect-${i}-${Math.random().toString(36).slice(2, 8)}`;
  const a = await lab.openPage(browsers.a, `A${i}`, { swarm });
  let b = null;
  try {
    await a.started();
    await h.waitFor(`A${i}: relay reservation`, a.relay, (r) => r.state === 'reserved');
    // A is in the swarm: now B's page loads (its navigation start is the zero).
    b = await lab.openPage(browsers.b, `B${i}`, { swarm, initScripts: [recordMilestones] });
    await b.started();
    const marks = await h.waitFor(
      `B${i}: A listed as direct`,
      () => b.page.evaluate(() => window.__bench),
      (m) => m?.firstDirect !== undefined,
      { timeout: 2 * h.WAIT_MS, interval: 100 },
    );
    // Through the NATs, not around them: the selected pair is srflx/prflx.
    const pairs = await h.waitFor(`B${i}: a srflx/prflx selected pair`, () => L.connectedPairs(b), (ps) => ps.some(L.natPair));
    return { ...marks, pair: pairText(pairs.find(L.natPair)) };
  } finally {
    await b?.close();
    await a.close();
  }
}

// ---- 2./3. one transfer ------------------------------------------------------------

/**
 * Open A and B (fresh contexts) in a new swarm, wait for `want` ('direct' | 'relayed'),
 * share `file` from A and time B's download, sampling `server` ({ pid }) if given.
 */
async function transfer(lab, browsers, label, { file, sha256, want, server = null, checkPairs = null }) {
  const swarm = `lab-${label}-${Math.random().toString(36).slice(2, 8)}`;
  const a = await lab.openPage(browsers.a, `A-${label}`, { swarm });
  const b = await lab.openPage(browsers.b, `B-${label}`, { swarm });
  try {
    await Promise.all([a.started(), b.started()]);
    say(`${label}: waiting for the peers to list each other as ${want}`);
    const listed = (ps, id) => ps.some((p) => p.peerId === id && p.path === want);
    const [pa, pb] = await h.waitFor(
      `A and B to list each other as ${want}${want === 'relayed' ? ', with a WebRTC failure recorded' : ''}`,
      async () => [await a.peers(), await b.peers()],
      ([pa, pb]) => listed(pa, b.peerId) && listed(pb, a.peerId) &&
        (want !== 'relayed' || [...pa, ...pb].some((p) => p.path === 'relayed' && p.error)),
      { timeout: 3 * h.WAIT_MS },
    );
    if (want === 'relayed') {
      // Transfers use a relayed-only peer 15 s after its relayed connection opened (the NAT
      // fallback, peer-wasm/src/node.rs FALLBACK_AFTER), and the dialer makes up to 3 WebRTC
      // attempts of 10 s: wait both out, so neither is in the timed part.
      const since = Date.now();
      const quiet = await settleWebrtc([a, b]);
      await sleep(Math.max(0, 16_000 - (Date.now() - since)));
      say(`${label}: WebRTC attempts over ${quiet ? '' : '(NOT: still one open after 60 s) '}${((Date.now() - since) / 1000).toFixed(1)} s after the peers were relayed`);
    }
    // A selected pair may show `in-progress` for a moment (a consent check): poll.
    const pairs = await h.waitFor(
      `${label}: ${checkPairs?.what ?? 'selected pairs'}`,
      async () => ({ a: await L.connectedPairs(a), b: await L.connectedPairs(b) }),
      (p) => !checkPairs || checkPairs(p),
      { timeout: 15_000 },
    );
    say(`${label}: A ${JSON.stringify(pa)}; B ${JSON.stringify(pb)}; selected pairs A ${JSON.stringify(pairs.a)}, B ${JSON.stringify(pairs.b)}`);

    const tabA = { page: a.page, peerId: a.peerId, label: a.name };
    const tabB = { page: b.page, peerId: b.peerId, label: b.name };
    const { link, shareSeconds } = await share(tabA, file, 'lab-bench.bin');
    say(`${label}: A shared ${SIZE_MIB} MiB in ${f2(shareSeconds)} s; B downloads`);

    const sampler = server ? startServerSampler(server.pid) : null;
    const relaySampler = lab.relay && server?.pid !== lab.relay.pid ? startServerSampler(lab.relay.pid) : null;
    const cpu0 = nsCpu();
    const node0 = process.cpuUsage();
    const m0 = machineTicks();
    const [st] = await downloadAll([tabB], link, SIZE, {
      timeoutMs: transferTimeout(SIZE),
      progress: ([bytes]) => say(`${label}: ${f1(bytes / MiB)} MiB`),
    });
    const m1 = machineTicks();
    const node1 = process.cpuUsage(node0);
    const cpu = nsCpuDelta(cpu0, nsCpu());
    const srv = sampler?.stop() ?? null;
    const relayIdle = relaySampler?.stop() ?? null;
    const seconds = (st.t1 - st.t0) / 1000;
    const machineBusy = (m1.busy - m0.busy) / 100;
    const ours = cpu.a + cpu.b + cpu.pub + (node1.user + node1.system) / 1e6;
    const result = {
      label,
      seconds,
      cpu,
      server: srv,
      relayDuring: relayIdle,
      busyCores: machineBusy / seconds,
      otherCores: Math.max(0, (machineBusy - ours) / seconds),
      sources: (st.d?.sources ?? []).map((s) => s.path),
      pairs,
    };
    say(`${label}: ${f2(seconds)} s, ${f1(mbps(result))} MB/s; sources ${JSON.stringify(result.sources)}; CPU-s A ${f1(cpu.a)} B ${f1(cpu.b)} pub ${f1(cpu.pub)}; other load ${f2(result.otherCores)} cores`);
    if (srv) say(`${label}: server CPU ${f2(srv.cpu)} s, VmRSS ${mibOf(srv.rssBefore)} → peak ${mibOf(srv.rssPeak)} MiB, VmHWM ${mibOf(srv.hwm)} MiB`);

    // Not timed: the bytes are the file's, and they came the expected way.
    const got = await b.page.evaluate(sha256DownloadInPage);
    if (got !== sha256) throw new Error(`${label}: B's file has SHA-256 ${got}, the shared file ${sha256}`);
    const expected = want === 'relayed' ? 'relayed' : 'direct';
    if (!result.sources.length || result.sources.some((p) => p !== expected)) {
      throw new Error(`${label}: B's download sources ${JSON.stringify(st.d?.sources)}, expected all ${expected}`);
    }
    return result;
  } finally {
    await b.close();
    await a.close();
  }
}

/**
 * Wait (at most `timeout`) until no RTCPeerConnection of `peers` is new/connecting/connected
 * and none was created for 4 s: the WebRTC attempts are over. True if so, false on timeout.
 */
async function settleWebrtc(peers, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  let last = null;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const states = await Promise.all(peers.map((p) => p.page.evaluate(() => (window.__pcs ?? []).map((pc) => pc.connectionState))));
    const key = JSON.stringify(states);
    const over = states.every((s) => s.every((x) => x === 'failed' || x === 'closed'));
    if (key !== last || !over) {
      last = key;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= 4_000) {
      return true;
    }
    await sleep(250);
  }
  return false;
}

/** Both pages have a connected RTCPeerConnection whose selected pair goes through the NATs (srflx/prflx). */
const natPairs = Object.assign(({ a, b }) => a.some(L.natPair) && b.some(L.natPair), {
  what: 'a succeeded srflx/prflx selected pair in both pages',
});
/** Both pages have a connected RTCPeerConnection whose selected pair has a relay (TURN) candidate. */
const viaTurn = (s) => s.pairState === 'succeeded' && (s.localType === 'relay' || s.remoteType === 'relay');
const turnPairs = Object.assign(({ a, b }) => a.some(viaTurn) && b.some(viaTurn), {
  what: 'a succeeded selected pair with a relay (TURN) candidate in both pages',
});

// ---- report ------------------------------------------------------------------------

/** Runs of one path combined: total bytes ÷ total seconds, summed CPU, peak RSS. */
function combine(xs) {
  if (!xs?.length) return null;
  const sum = (f) => xs.reduce((acc, x) => acc + (f(x) ?? 0), 0);
  return {
    seconds: sum((x) => x.seconds) / xs.length,
    n: xs.length,
    serverCpu: xs.every((x) => x.server) ? sum((x) => x.server.cpu) / xs.length : null,
  };
}

function section(r) {
  const stat = (xs) => (xs.length ? `${ms(median(xs))} | ${ms(Math.min(...xs))} | ${ms(Math.max(...xs))} | ${xs.length}` : '— | — | — | 0');
  const t = r.transfers;
  const many = ROUNDS > 1;
  const row = (name, x, via) =>
    `| ${name} | ${via} | ${f2(x.seconds)} | **${f1(mbps(x))}** | ${f1(x.cpu.a)} / ${f1(x.cpu.b)} | ${x.server ? f2(x.server.cpu) : '—'} | ${x.server ? `${mibOf(x.server.rssPeak)} (VmHWM ${mibOf(x.server.hwm)})` : '—'} | ${f2(x.otherCores)} |`;
  const rows = (name, xs, via) => {
    if (!xs.length) return [`| ${name} | ${via} | — | — | — | — | — | — |`];
    const out = xs.map((x, i) => row(many ? `${name}, run ${i + 1}` : name, x, via));
    if (many) {
      const c = combine(xs);
      out.push(`| ${name}, mean of ${c.n} | | ${f2(c.seconds)} | **${f1(mbps(c))}** | | ${c.serverCpu === null ? '—' : f2(c.serverCpu)} | | |`);
    }
    return out;
  };
  const ratio = (x, y) => (combine(x) && combine(y) ? mbps(combine(x)) / mbps(combine(y)) : null);
  const pairsOf = (xs) => {
    const kinds = (side) => [...new Set(xs.flatMap((x) => x.pairs[side].map(pairText)))].join(', ') || '—';
    return xs.length ? `A ${kinds('a')}; B ${kinds('b')}` : '—';
  };
  const serverLine = (xs, what) => xs.map((x, i) => {
    const s = x.server;
    return `${what}${many ? ` (run ${i + 1})` : ''}: ${f2(s.cpu)} CPU-s (${f2(s.cpu / (SIZE / 2 ** 30))} per GiB), VmRSS ${mibOf(s.rssBefore)} MiB before, peak ${mibOf(s.rssPeak)} MiB (${s.samples} samples), ${mibOf(s.rssAfter)} MiB after; VmHWM ${mibOf(s.hwm)} MiB.`;
  });
  const relayedRatio = ratio(t.relayed, t.direct);
  const lines = [
    SECTION_START,
    '## NAT lab: first direct peer through cone NATs; relayed vs direct vs TURN throughput',
    '',
    `- Date: ${r.date}`,
    `- Machine: ${r.machine.arch}, ${r.machine.cpus} CPUs, ${r.machine.cpu}, ${r.machine.memGiB.toFixed(1)} GiB RAM; load average at start ${r.loadavg.map((x) => x.toFixed(2)).join(' ')}`,
    `- Browser: ${r.browser}, headless, one process per lab host (namespaces a, b), a fresh context per page (cold cache, OPFS in memory)`,
    `- Lab: scripts/nat-lab.sh (veth + nft masquerade; cone = masquerade, symmetric = masquerade fully-random); relay \`${path.relative(h.REPO, r.relayBin)}\` in \`pub\` at ${L.RELAY_URL} (HTTPS, WebSocket /p2p, its own STUN on udp 3478)`,
    `- Command: \`${COMMAND}\` (\`make bench-lab\`, as root)`,
    '',
    '### Cone NATs: page load → first direct peer',
    '',
    `A page in lab-a joins a fresh swarm and holds its relay reservation; then a page in lab-b is opened. Milliseconds from B's navigation start (${RUNS} runs after one unmeasured warm-up run, ${r.connectFailures} failed):`,
    '',
    '| milestone (page in lab-b) | median | min | max | n |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| node started (wasm loaded, \`Node.start\` resolved) | ${stat(r.started)} |`,
    `| relay reservation accepted | ${stat(r.reserved)} |`,
    `| **A listed as \`direct\`** | ${stat(r.firstDirect)} |`,
    '',
    `Per run: ${r.firstDirect.map(ms).join(', ') || '—'} ms; selected pairs (B): ${[...new Set(r.pairs)].join(', ') || '—'}.`,
    '',
    `### ${SIZE_MIB} MiB A → B: direct, relayed through our relay, through coturn (TURN/UDP)`,
    '',
    `MB = 10^6 bytes. Timed in B: \`download()\` call → resolve, peers already connected. ${many ? `${ROUNDS} rounds, each: cone lab → direct, then symmetric lab → relayed, TURN; a mean is total bytes ÷ total seconds. ` : ''}CPU-s = user+system time during the timed part: browsers = every process in namespace a / b; server = the relay process (relayed) or turnserver (TURN), from /proc/<pid>/stat; RSS from /proc/<pid>/status (VmRSS sampled every 250 ms; VmHWM = peak over the process's life). Other load = machine CPU busy minus the lab's processes and this node process, in cores of 2.`,
    '',
    '| path | through | s | MB/s | CPU-s browser A / B | server CPU-s | server peak VmRSS, MiB | other load |',
    '| --- | --- | ---: | ---: | --- | ---: | --- | ---: |',
    ...rows('direct (cone NATs)', t.direct, 'WebRTC, srflx/prflx pair'),
    ...rows('**relayed** (symmetric NATs)', t.relayed, 'our relay: WSS → circuit → WSS'),
    ...(r.turnSkipped ? [`| TURN (symmetric NATs) | coturn | skipped: ${r.turnSkipped} | | | | | |`] : rows('TURN (symmetric NATs)', t.turn, `WebRTC via coturn ${r.coturnVersion ?? ''} (udp)`)),
    '',
    `Ratios: **relayed ÷ direct = ${f2(relayedRatio)}** (goal ≥ 0.5: ${relayedRatio === null ? 'not measured' : relayedRatio >= 0.5 ? 'met' : 'NOT met'})` +
      (t.turn.length ? `; TURN ÷ direct = ${f2(ratio(t.turn, t.direct))}; our relay ÷ TURN = ${f2(ratio(t.relayed, t.turn))}.` : '.'),
    '',
    ...serverLine(t.relayed.filter((x) => x.server), 'Our relay during the relayed transfer'),
    ...serverLine(t.turn.filter((x) => x.server), 'turnserver during the TURN transfer'),
    `Our relay during the direct transfer: ${t.direct.map((x) => f2(x.relayDuring?.cpu)).join(', ') || '—'} CPU-s; during the TURN transfer: ${t.turn.map((x) => f2(x.relayDuring?.cpu)).join(', ') || '—'} CPU-s. The relay is started fresh with each lab, so its VmHWM is about the transfer.`,
    '',
    `Selected ICE pairs (local→remote, from each page's RTCPeerConnection stats): direct: ${pairsOf(t.direct)}; relayed: none connected (WebRTC failed: ${t.relayed.length ? 'yes' : '—'}); TURN: ${pairsOf(t.turn)}.`,
    '',
    `Set-up: coturn \`turnserver -n --no-cli --no-tls --no-dtls -L ${L.RELAY_IP} -E ${L.RELAY_IP} -p ${L.TURN_PORT} --min-port 49152 --max-port 49999 --lt-cred-mech --user u:p --realm shoal --fingerprint --denied-peer-ip=${L.TURN_DENIED}\` in \`pub\` (the denied range: the NAT'd subnets, which \`pub\` has no route to; without it coturn 4.6.1 logged \`udp send: Network is unreachable\` for the host candidates and the TURN path stopped carrying packets about 1 s after ICE connected), the relay restarted with \`${(r.turnRelayArgs ?? []).join(' ')}\` (the pages take it from /api/info). Every download is checked by SHA-256 against the file on disk, and its sources must all be \`direct\` (direct, TURN) or \`relayed\`. The lab's namespaces have IPv6 off (an IPv6 address finishing duplicate-address detection after a browser started made Chromium fail page loads with ERR_NETWORK_CHANGED).`,
    '',
    'Caveats: 2-CPU machine; both browsers, the relay and coturn share it, so the absolute MB/s are CPU-bound and noisy; the ratios, measured side by side in one run, are the figures to compare. The lab\'s links are veth pairs (no latency or loss added).',
  ];
  if (r.errors.length) lines.push('', 'Errors in this run:', '', ...r.errors.map((e) => `- ${e.length > 300 ? `${e.slice(0, 300)}…` : e}`));
  lines.push(SECTION_END);
  return lines.join('\n');
}

// ---- main ---------------------------------------------------------------------------

async function labWithBrowsers(mode) {
  say(`${mode} lab: up`);
  const lab = await L.startLab(mode);
  const browsers = { a: await lab.launchBrowser('a'), b: await lab.launchBrowser('b') };
  return { lab, browsers };
}

async function main() {
  const unavailable = await L.labUnavailable();
  if (unavailable) {
    console.error(`bench-lab: cannot run: ${unavailable}`);
    process.exitCode = 1;
    return;
  }
  if (TURN) {
    try {
      execFileSync('sh', ['-c', 'command -v turnserver']);
    } catch {
      throw new Error('turnserver is missing (apt-get install -y coturn; scripts/setup.sh test installs it), or pass --no-turn');
    }
  }
  const r = {
    date: new Date().toISOString(),
    machine: machine(),
    loadavg: os.loadavg(),
    relayBin: h.relayBinary(),
    started: [],
    reserved: [],
    firstDirect: [],
    pairs: [],
    connectFailures: 0,
    transfers: { direct: [], relayed: [], turn: [] },
    errors: [],
    turnSkipped: TURN ? null : '--no-turn',
  };
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-lab-'));
  let lab = null;
  let coturn = null;
  const attempt = async (key, round, fn) => {
    try {
      r.transfers[key].push(await fn());
    } catch (e) {
      r.errors.push(`${key} transfer${ROUNDS > 1 ? `, round ${round}` : ''}: ${e.message.split('\n')[0]}`);
      console.error(`${key} transfer failed: ${e.stack ?? e.message}`);
      h.dumpLogs(`logs up to the failed ${key} transfer`);
    }
  };
  try {
    const file = path.join(tmp, 'lab-bench.bin');
    say(`writing ${SIZE_MIB} MiB of random bytes to ${file}`);
    writeRandomFile(file, SIZE);
    const sha256 = sha256File(file);

    for (let round = 1; round <= ROUNDS; round++) {
      // Cone NATs: (first round) connect runs, then the direct transfer.
      let browsers;
      ({ lab, browsers } = await labWithBrowsers('cone'));
      r.browser = `Chromium ${browsers.a.version()}`;
      if (round === 1) {
        for (let i = 0; i <= RUNS; i++) {
          try {
            const m = await connectRun(lab, browsers, i);
            if (i === 0) {
              say(`connect warm-up run: direct ${ms(m.firstDirect)} ms (not counted)`);
              continue;
            }
            for (const key of ['started', 'reserved', 'firstDirect']) if (m[key] !== undefined) r[key].push(m[key]);
            r.pairs.push(m.pair);
            say(`connect run ${i}/${RUNS}: started ${ms(m.started)}, reserved ${ms(m.reserved)}, direct ${ms(m.firstDirect)} ms (${m.pair})`);
          } catch (e) {
            if (i > 0) {
              r.connectFailures++;
              r.errors.push(`connect run ${i}: ${e.message.split('\n')[0]}`);
            }
            console.error(`connect run ${i}/${RUNS} failed: ${e.message}`);
            h.dumpLogs(`logs up to failed connect run ${i}`);
          }
        }
      }
      await attempt('direct', round, () => transfer(lab, browsers, 'direct', { file, sha256, want: 'direct', checkPairs: natPairs }));
      await lab.down();

      // Symmetric NATs: relayed through our relay, then through coturn.
      ({ lab, browsers } = await labWithBrowsers('symmetric'));
      await attempt('relayed', round, () => transfer(lab, browsers, 'relayed', { file, sha256, want: 'relayed', server: lab.relay }));
      if (TURN) {
        await attempt('turn', round, async () => {
          coturn = await L.startLabTurn(tmp);
          r.coturnVersion = coturn.version;
          r.turnRelayArgs = coturn.relayArgs;
          await lab.stopRelay({ signal: 'SIGTERM' });
          lab.extraRelayArgs = coturn.relayArgs;
          await lab.startRelay();
          return transfer(lab, browsers, 'turn', { file, sha256, want: 'direct', server: coturn, checkPairs: turnPairs });
        });
        await coturn?.stop();
        coturn = null;
      }
      await lab.down();
      lab = null;
    }
    if (TURN && !r.transfers.turn.length) r.turnSkipped = 'failed (see the errors below)';
  } finally {
    await coturn?.stop().catch(() => {});
    await lab?.down();
    await h.closeAll();
    rmSync(tmp, { recursive: true, force: true });
  }

  const text = section(r);
  console.log(`\n${text}\n`);
  if (WRITE) console.log(`wrote ${writeSection(SECTION_START, SECTION_END, text)}`);
  if (r.errors.length) {
    console.error(`${r.errors.length} part(s) failed`);
    process.exitCode = 1;
  }
}

main().catch(async (e) => {
  console.error(e.stack ?? e.message);
  h.dumpLogs();
  await h.closeAll();
  process.exitCode = 1;
});
