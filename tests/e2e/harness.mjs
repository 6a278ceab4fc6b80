// Test harness: a real relay process and one headless Chromium process per peer.
//
// - startRelay(): runs `target/debug/relay` (or $SHOAL_RELAY_BIN) on a free
//   port with a temporary identity and `--www target/www-test` (the test page), waits for /healthz.
//   Options let tests/lab/ run it elsewhere (a fixed address and identity,
//   inside a network namespace, with its own health probe).
// - launchPeer(): one Chromium *process* per peer (separate network stacks, as
//   with two real browsers), with the flags and permission grant that make
//   ICE gather candidates on a loopback-only host (see shared/NOTES.md), and
//   an init script that records every RTCPeerConnection in `window.__pcs` so
//   tests can read WebRTC stats independently of our code. With `{ persistent: dir }` the
//   browser keeps a profile on disk (OPFS on disk, as for real users; the default contexts
//   are off the record), and openTab() opens more tabs of it.
// - waitFor(): bounded polling that reports the last value seen on timeout.
// Every relay line and page console line is kept; dumpLogs() prints them.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = process.env.SHOAL_CHROMIUM ?? '/usr/bin/chromium';
/**
 * The page the relay serves: by default the test build `make test` made (its wasm has the
 * test switches, feature test-hooks); benchmarks set SHOAL_WWW=www, the release page.
 */
export function wwwDir() {
  return process.env.SHOAL_WWW ? path.resolve(process.env.SHOAL_WWW) : path.join(REPO, 'target', 'www-test');
}
/** The bound for every wait: long enough for a slow CI machine, short enough not to hang. */
export const WAIT_MS = Number(process.env.SHOAL_WAIT_MS ?? 30_000);
const ARTIFACTS = path.join(REPO, 'tests', '.artifacts');

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Without this (and the camera/microphone grant) a loopback-only host
  // gathers no ICE candidates at all and ICE stays `new` forever.
  '--allow-loopback-in-peer-connection',
];

const logs = [];
const t0 = Date.now();
// Every browser launched and not yet closed: closeAll() must find them all,
// or a browser left open keeps the test process alive forever.
const browsers = new Set();

/** Close every browser this process launched (use in `after`). */
export async function closeAll() {
  await Promise.all([...browsers].map((b) => b.close().catch(() => {})));
  browsers.clear();
}

/** Let closeAll() find `browser` (Playwright's or Puppeteer's) until it disconnects. */
export function trackBrowser(browser) {
  browsers.add(browser);
  browser.on('disconnected', () => browsers.delete(browser));
  return browser;
}

/**
 * Launch one Chromium process with a profile on disk in `userDataDir` (OPFS, Web Locks
 * and the rest of storage survive reloads and live on disk, as in a real browser; the
 * default contexts are off the record, with OPFS in memory). Resolves to its one
 * BrowserContext; closing it ends the process. Pages: openTab().
 */
export async function launchPersistent(userDataDir, { executablePath = CHROMIUM, args = [] } = {}) {
  const options = { executablePath, headless: true, args: [...CHROMIUM_ARGS, ...args], timeout: WAIT_MS };
  const context = await chromium.launchPersistentContext(userDataDir, options);
  // closeAll() closes it like a browser.
  browsers.add(context);
  context.on('close', () => browsers.delete(context));
  return context;
}

/** Add a line to the logs dumpLogs() prints. */
export function log(source, line) {
  logs.push(`${((Date.now() - t0) / 1000).toFixed(2).padStart(7)}s [${source}] ${line}`);
}

/** The lines logged so far by one source ('relay', a peer's name, ...), without timestamps. */
export function logLines(source) {
  const tag = ` [${source}] `;
  return logs.filter((l) => l.includes(tag)).map((l) => l.slice(l.indexOf(tag) + tag.length));
}

/** Keep every line a child process prints (stdout and stderr) in the logs, as `source`. */
export function pipeLines(proc, source) {
  for (const stream of [proc.stdout, proc.stderr]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        log(source, buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
}

/** Print everything the relay and the pages logged so far (call when a test fails). */
export function dumpLogs(title = 'relay and page logs') {
  const body = logs.length ? logs.join('\n') : '(nothing logged)';
  process.stderr.write(`\n----- ${title} (${logs.length} lines) -----\n${body}\n----- end of logs -----\n`);
}

/** Wrap a test body: on failure, print the logs and save screenshots of open pages. */
export function withLogs(fn, peers = () => []) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      dumpLogs(`logs for failed test "${t.name}"`);
      await screenshots(peers(), t.name);
      throw err;
    }
  };
}

/**
 * `test` for a suite whose tests open peers into `open` (an array the suite keeps): a failed
 * test dumps the logs and screenshots its pages, and the test's peers are closed after it
 * either way, so the next test has the 2 cores to itself. `check(t)`, if given, runs first:
 * it throws when the suite's set-up failed, or returns a reason to skip.
 */
export function peerTest(open, options, check = null) {
  return (name, fn) =>
    test(name, options, async (t) => {
      const skip = check?.(t);
      if (skip) return t.skip(skip);
      try {
        await withLogs(fn, () => open)(t);
      } finally {
        await Promise.all(open.splice(0).map((p) => p.close()));
      }
    });
}

/**
 * The usual suite, called inside `describe()`: a relay started before the tests (options to
 * startRelay()) and stopped after them, every browser closed. Returns
 * - `relay`: the suite's relay once started (a stand-in whose properties are the started
 *   relay's, so `relay.url` reads naturally inside tests);
 * - `open`: the peers to close after each test; `it`: peerTest() over `open`, failing every
 *   test with the reason when the relay did not start;
 * - `swarm(what)`: a fresh swarm name; `launchSwarm(...names)`: launchSwarm() into one.
 */
export function relaySuite(prefix, testOptions, relayOptions = {}) {
  let started = null;
  let setupError = null;
  let swarms = 0;
  before(async () => {
    try {
      started = await startRelay(relayOptions);
    } catch (e) {
      setupError = e;
    }
  });
  after(async () => {
    await closeAll();
    await started?.stop();
  });
  const relay = new Proxy({}, {
    get(_, key) {
      if (!started) throw new Error(`the suite's relay is not running${setupError ? `: ${setupError.message}` : ''}`);
      return started[key];
    },
  });
  const open = [];
  const swarm = (what = prefix) => `${what}-${++swarms}-${Date.now().toString(36)}`;
  return {
    relay,
    open,
    swarm,
    it: peerTest(open, testOptions, () => {
      if (setupError) throw new Error(`set-up failed: ${setupError.message}`);
      return null;
    }),
    launchSwarm: (...names) => launchSwarm(relay.url, open, swarm(), names),
  };
}

/** Save a full-page screenshot of each open page to tests/.artifacts/. */
export async function screenshots(peers, testName) {
  const slug = testName.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 60);
  for (const peer of peers) {
    if (!peer?.page || peer.page.isClosed()) continue;
    try {
      mkdirSync(ARTIFACTS, { recursive: true });
      const file = path.join(ARTIFACTS, `${slug}-${peer.name}.png`);
      await peer.page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
      process.stderr.write(`screenshot: ${file}\n`);
    } catch {
      // A screenshot is a convenience; never let it hide the real failure.
    }
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * GET `url` (http or https; `ca` is a PEM to trust for https), at most 2 s.
 * @returns {Promise<{status: number, headers: object, body: string}>}
 */
export function httpGet(url, { ca, headers = {} } = {}) {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ca, headers, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

export function relayBinary() {
  const env = process.env.SHOAL_RELAY_BIN;
  return env ? path.resolve(env) : path.join(REPO, 'target', 'debug', 'relay');
}

/**
 * Start a relay process. Resolves once GET /healthz answers "ok".
 *
 * Options (all optional): `listen` (`IP:PORT`, default 127.0.0.1 and a free port),
 * `identity` (key file; default a fresh one in a temporary directory, removed by stop()),
 * `wrap` (argv prefix, e.g. `['ip', 'netns', 'exec', NS]`: it must exec the relay, so that
 * the pid is the relay's), `healthz` (`async (url) => ({ status, body })`, default fetch from
 * an https GET trusting `ca`), `extraArgs`, `env` (more environment, e.g. RUST_LOG).
 * `stop({ signal })` sends `signal` (default SIGTERM; SIGKILL after 5 s) and waits for the exit.
 * @returns {Promise<{url: string, port: number, pid: number, stop: (o?: {signal?: string}) => Promise<void>}>}
 */
export async function startRelay({
  bin = relayBinary(), extraArgs = [], listen, identity, wrap = [], healthz,
  tls = null, https = Boolean(tls), host, ca = tls?.pem, env = {}, www = wwwDir(),
} = {}) {
  if (!existsSync(bin)) {
    throw new Error(`relay binary not found at ${bin}: run \`cargo build -p shoal-relay\` (or \`make test\`), or set SHOAL_RELAY_BIN`);
  }
  if (!existsSync(path.join(www, 'pkg', 'peer_wasm.js'))) {
    throw new Error(`${www}/pkg/peer_wasm.js is missing: \`make test\` builds the test page there (or set SHOAL_WWW)`);
  }
  const dir = identity ? null : mkdtempSync(path.join(tmpdir(), 'shoal-relay-'));
  const key = identity ?? path.join(dir, 'identity.key');
  const addr = listen ?? `127.0.0.1:${await freePort()}`;
  const ip = addr.slice(0, addr.lastIndexOf(':'));
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const envArgs = (process.env.SHOAL_RELAY_ARGS ?? '').split(/\s+/).filter(Boolean);
  // One port for the page and the peers' WebSocket.
  const args = ['--listen', addr, '--identity', key, '--www', www, ...extraArgs, ...envArgs];
  // STUN on a free UDP port unless told otherwise (several relays may run at once).
  if (!args.includes('--stun-listen') && !args.includes('--no-stun')) args.push('--stun-listen', `${ip}:0`);
  // With `tls` ({ cert, key, pem } from tls.mjs) the relay serves HTTPS itself;
  // `https` without `tls`: it gets its certificate itself (ACME).
  if (tls) args.push('--tls-cert', tls.cert, '--tls-key', tls.key);
  const url = `${https ? 'https' : 'http'}://${host ?? ip}:${port}`;
  healthz ??= async (base) => httpGet(`${base}/healthz`, { ca });
  const argv = [...wrap, bin, ...args];
  log('harness', `starting ${argv.join(' ')}`);

  const proc = spawn(argv[0], argv.slice(1), {
    cwd: REPO,
    env: { RUST_LOG: 'info', ...process.env, ...env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exited = null;
  const exit = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      log('relay', `exited (code ${code}, signal ${signal})`);
      resolve();
    });
    proc.on('error', (e) => {
      exited = { error: e.message };
      log('relay', `spawn error: ${e.message}`);
      resolve();
    });
  });
  pipeLines(proc, 'relay');

  const stop = async ({ signal = 'SIGTERM' } = {}) => {
    if (!exited) {
      log('harness', `stopping the relay (pid ${proc.pid}) with ${signal}`);
      proc.kill(signal);
      const killed = await Promise.race([exit.then(() => true), sleep(5_000).then(() => false)]);
      if (!killed) {
        log('harness', 'relay ignored SIGTERM for 5 s; sending SIGKILL');
        proc.kill('SIGKILL');
        await exit;
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + WAIT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const res = await healthz(url);
      const body = res.body.trim();
      if (res.status === 200 && body === 'ok') return { url, port, pid: proc.pid, proc, ca, stop };
      last = `HTTP ${res.status} ${JSON.stringify(body.slice(0, 200))}`;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    await sleep(100);
  }
  await stop();
  dumpLogs('relay logs');
  throw new Error(exited
    ? `relay exited before answering /healthz (${JSON.stringify(exited)})`
    : `relay did not answer GET /healthz with "ok" within ${WAIT_MS} ms (last: ${last})`);
}

/**
 * Bytes through the relay's libp2p WebSockets, both directions, from the text of its
 * /metrics (relayed circuits plus signaling and control; page loads are not counted).
 */
export function relayBytesIn(metricsText) {
  const found = [...metricsText.matchAll(/^shoal_relay_websocket_bytes_total\{direction="(?:in|out)"\} (\d+)$/gm)];
  if (found.length !== 2) throw new Error(`no WebSocket byte counters in /metrics:\n${metricsText}`);
  return found.reduce((sum, m) => sum + Number(m[1]), 0);
}

/** The same, read from a relay that startRelay() started. */
export async function relayBytes(relay) {
  const res = await httpGet(`${relay.url}/metrics`, { ca: relay.ca });
  if (res.status !== 200) throw new Error(`${relay.url}/metrics answered ${res.status}`);
  return relayBytesIn(res.body);
}

// Runs in every page before any of its scripts: record each RTCPeerConnection.
export function recordPeerConnections() {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  if (typeof Native !== 'function') return;
  class RecordedRTCPeerConnection extends Native {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
  }
  window.RTCPeerConnection = RecordedRTCPeerConnection;
  if (window.webkitRTCPeerConnection) window.webkitRTCPeerConnection = RecordedRTCPeerConnection;
}

/**
 * Launch one Chromium process (one per peer: separate network stacks, like two real browsers).
 * `executablePath` (default CHROMIUM) may be a wrapper that execs Chromium (e.g. inside a
 * network namespace); `args` are added to CHROMIUM_ARGS.
 */
export async function launchBrowser({ executablePath = CHROMIUM, args = [] } = {}) {
  const options = { executablePath, headless: true, args: [...CHROMIUM_ARGS, ...args], timeout: WAIT_MS };
  let browser;
  try {
    browser = await chromium.launch(options);
  } catch (e) {
    // A browser process that dies while starting up, before any page exists, is the
    // machine's fault, not shoal's (seen once in CI: "Target page, context or browser has
    // been closed" 0.2 s after launch). Try once more, say so, and fail if it happens again.
    log('harness', `browser launch failed, trying once more: ${e.message.split('\n')[0]}`);
    console.error(`[harness] browser launch failed, retrying once: ${e.message.split('\n')[0]}`);
    browser = await chromium.launch(options);
  }
  return trackBrowser(browser);
}

// Evaluated in a page at the relay's origin that does not run app.js: start the node as
// app.js does, but with the given Node.start options. Returns at once; sets window.shoal
// or window.shoalError like the page.
function startNodeInPage(options) {
  window.__shoalStart = (async () => {
    try {
      const mod = await import('/pkg/peer_wasm.js');
      await mod.default();
      window.shoal = await mod.Node.start({ relay: location.origin, ...options });
    } catch (e) {
      window.shoalError = `Node.start failed: ${e?.message ?? e}`;
      console.error(`shoal: ${window.shoalError}`);
    }
  })();
}

/**
 * Open `${relayUrl}/?swarm=...` in a fresh context (empty cache and storage) of `browser`.
 * Does not wait for the node: call `peer.started()` for that.
 * `initScripts` run in the page before its own scripts, after the RTCPeerConnection recorder;
 * each is a function or [function, argument].
 * With `startOptions` (extra `Node.start` options, e.g. `{ iceServers }`), the page is
 * `${relayUrl}/healthz` instead (app.js does not run) and the node is started from the test
 * with those options; `window.shoal` is set the same way. With `url`, that page instead (one
 * that starts a node itself, e.g. on another origin).
 */
export async function openPage(browser, relayUrl, options = {}) {
  const context = await browser.newContext();
  try {
    const peer = await openTab(context, relayUrl, options);
    peer.close = () => context.close().catch(() => {});
    return peer;
  } catch (e) {
    await context.close().catch(() => {});
    throw e;
  }
}

/**
 * Navigate `page` to the relay's page for `swarm`, or (with `startOptions`) to /healthz and
 * start the node from the test with those options.
 */
export async function gotoShoal(page, relayUrl, { name, swarm, startOptions = null }) {
  if (startOptions) {
    log(name, `goto ${relayUrl}/healthz; Node.start with ${JSON.stringify({ swarm, ...startOptions })}`);
    await page.goto(`${relayUrl}/healthz`);
    await page.evaluate(startNodeInPage, { swarm, ...startOptions });
  } else {
    const url = `${relayUrl}/?swarm=${encodeURIComponent(swarm)}`;
    log(name, `goto ${url}`);
    await page.goto(url);
  }
}

/**
 * The handle tests use for one page running shoal, from any browser driver whose `page`
 * has `evaluate(fn, arg)` (Playwright's and Puppeteer's both do).
 */
export function pagePeer({ name, swarm, browser, context = null, page, close }) {
  const peer = {
    name,
    swarm,
    browser,
    context,
    page,
    peerId: null,
    /** Wait until the page set window.shoal; throw the page's own error if it failed to start. */
    async started() {
      await waitFor(`${name}: the page to set window.shoal or window.shoalError`, () =>
        page.evaluate(() => Boolean(window.shoal || window.shoalError)), Boolean, { interval: 100 });
      const error = await page.evaluate(() => window.shoalError ?? null);
      if (error) throw new Error(`${name}: the page failed to start: ${error}`);
      peer.peerId = await page.evaluate(() => window.shoal.peerId);
      log(name, `started as ${peer.peerId}`);
      return peer.peerId;
    },
    peers: () => page.evaluate(() => window.shoal.peers()),
    relay: () => page.evaluate(() => window.shoal.relay()),
    close,
  };
  return peer;
}

/**
 * The same as openPage() in an existing `context` (e.g. a second tab of a persistent
 * profile from launchPersistent()). `close()` closes only this tab.
 */
export async function openTab(context, relayUrl, { name, swarm = 'default', initScripts = [], startOptions = null, url = null } = {}) {
  await context.grantPermissions(['camera', 'microphone'], { origin: new URL(url ?? relayUrl).origin });
  // Init scripts are per context: a second tab of the same context has them already.
  if (!context.__shoalInit) {
    context.__shoalInit = true;
    await context.addInitScript(recordPeerConnections);
    for (const script of initScripts) await (Array.isArray(script) ? context.addInitScript(...script) : context.addInitScript(script));
  }
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('console', (m) => log(name, `${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(name, `pageerror: ${e.stack ?? e.message}`));
  page.on('requestfailed', (r) => log(name, `request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('crash', () => log(name, 'page crashed'));
  if (url) {
    log(name, `goto ${url}`);
    await page.goto(url);
  } else {
    await gotoShoal(page, relayUrl, { name, swarm, startOptions });
  }
  return pagePeer({ name, swarm, browser: context.browser(), context, page, close: () => page.close().catch(() => {}) });
}

/**
 * A browser process of its own with one page; `close()` ends the process.
 * `options.launch` goes to launchBrowser(), the rest to openPage(). With `persistent`
 * (a directory), the browser keeps its profile there (see launchPersistent()); its
 * context is `peer.context`, for more tabs with openTab().
 */
export async function launchPeer(relayUrl, { launch, persistent, ...options } = {}) {
  if (persistent) {
    const context = await launchPersistent(persistent, launch);
    try {
      // The persistent context opens with a blank tab: closed once ours is open.
      const blank = context.pages();
      const peer = await openTab(context, relayUrl, options);
      for (const p of blank) await p.close().catch(() => {});
      peer.close = () => context.close().catch(() => {});
      return peer;
    } catch (e) {
      await context.close().catch(() => {});
      throw e;
    }
  }
  const browser = await launchBrowser(launch);
  try {
    const peer = await openPage(browser, relayUrl, options);
    peer.close = () => browser.close().catch(() => {});
    return peer;
  } catch (e) {
    await browser.close().catch(() => {});
    throw e;
  }
}

/**
 * Launch one browser per name into `swarm`, each pushed onto `open` (the suite's list of
 * peers to close) as soon as it exists; resolves once they all list each other as direct.
 * `options` (for launchPeer) may be a function of the name, e.g. for a profile each.
 */
export function launchSwarm(relayUrl, open, swarm, names, options = {}) {
  return launchMesh(
    names.map((name) => async () => {
      const peer = await launchPeer(relayUrl, { name, swarm, ...(typeof options === 'function' ? options(name) : options) });
      open.push(peer);
      await peer.started();
      return peer;
    }),
  );
}

/**
 * Poll `probe` (an async function) until `check(value)` holds; return the value.
 * On timeout throw with `what` and the last value seen, so a failure explains itself.
 */
export async function waitFor(what, probe, check = Boolean, { timeout = WAIT_MS, interval = 250 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (check(last)) return last;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) break;
    await sleep(interval);
  }
  const seen = lastError ? `last error: ${lastError.message}` : `last value: ${JSON.stringify(last)}`;
  throw new Error(`timed out after ${timeout} ms waiting for ${what}; ${seen}`);
}

/**
 * Evaluated in a page: the selected ICE candidate pair of every RTCPeerConnection, and the
 * types of the local candidates it gathered (`gathered`: host, srflx, relay).
 */
export function selectedPairsInPage() {
  return Promise.all(
    (window.__pcs ?? []).map(async (pc, index) => {
      const entry = { index, connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState, selected: [], gathered: [] };
      if (pc.connectionState === 'closed') return entry;
      const stats = await pc.getStats();
      // Chromium names the selected pair in its `transport` report; Firefox has no such
      // report and marks the pair itself (`selected`, non-standard).
      const selectedIds = [];
      for (const report of stats.values()) {
        if (report.type === 'local-candidate' && !entry.gathered.includes(report.candidateType)) entry.gathered.push(report.candidateType);
        if (report.type === 'transport' && report.selectedCandidatePairId) selectedIds.push(report.selectedCandidatePairId);
        if (report.type === 'candidate-pair' && report.selected === true) selectedIds.push(report.id);
      }
      for (const id of new Set(selectedIds)) {
        const pair = stats.get(id);
        const local = pair && stats.get(pair.localCandidateId);
        const remote = pair && stats.get(pair.remoteCandidateId);
        entry.selected.push({
          pairState: pair?.state ?? null,
          localType: local?.candidateType ?? null,
          remoteType: remote?.candidateType ?? null,
          protocol: local?.protocol ?? null,
        });
      }
      return entry;
    }),
  );
}

/** Selected pairs that are live and direct: state succeeded, neither candidate of type relay. */
export function directPairs(pcs) {
  return pcs.flatMap((pc) =>
    pc.selected.filter(
      (s) => s.pairState === 'succeeded' && s.localType && s.remoteType && s.localType !== 'relay' && s.remoteType !== 'relay',
    ),
  );
}

/**
 * Check for `duration` ms that `check(await probe())` holds at every poll; throw at the first
 * poll where it does not. This is a wait (give the system time to misbehave), not a timing assertion.
 */
export async function holdsFor(what, probe, check, { duration = 5_000, interval = 250 } = {}) {
  const end = Date.now() + duration;
  for (;;) {
    const value = await probe();
    if (!check(value)) throw new Error(`expected ${what}, but saw ${JSON.stringify(value)}`);
    if (Date.now() >= end) return value;
    await sleep(interval);
  }
}

/**
 * Resolve or reject like `promise`, but reject after `ms` with a message naming `what`
 * (plus the result of `explain()`, if given, to say how far things got).
 * The original promise is not cancelled; its later rejection is swallowed.
 */
export async function within(what, promise, ms = WAIT_MS, explain = null) {
  promise.catch(() => {});
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(async () => {
      let detail = '';
      if (explain) {
        try {
          detail = `; ${await explain()}`;
        } catch (e) {
          detail = `; (could not explain: ${e.message})`;
        }
      }
      reject(new Error(`timed out after ${ms} ms waiting for ${what}${detail}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Start peers at once — each of `starters` is an async function that launches one, hands it
 * to the caller's cleanup list and resolves to it once started — report every failure
 * together, and wait until they all list each other as direct.
 */
export async function launchMesh(starters) {
  const launched = await Promise.allSettled(starters.map((start) => start()));
  const failed = launched.filter((r) => r.status === 'rejected');
  if (failed.length) throw new Error(failed.map((r) => r.reason.message).join('; '));
  const peers = launched.map((r) => r.value);
  await waitMeshDirect(peers);
  return peers;
}

/** Wait until every peer in `peers` lists every other one with path "direct" in shoal.peers(). */
export async function waitMeshDirect(peers, { timeout = WAIT_MS } = {}) {
  await Promise.all(
    peers.flatMap((from) =>
      peers
        .filter((to) => to !== from)
        .map((to) =>
          waitFor(
            `${from.name} to list ${to.name} (${to.peerId}) with path "direct" in shoal.peers()`,
            from.peers,
            (ps) => ps.some((p) => p.peerId === to.peerId && p.path === 'direct'),
            { timeout },
          ),
        ),
    ),
  );
}
