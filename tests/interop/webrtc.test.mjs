// Interop: a js-libp2p browser node (dist/jsnode.js, built from src/node.js) and the shoal
// Rust/wasm node, each in its own Chromium process, one real relay, over libp2p `/webrtc`.
//
// (1) JS dials Rust: js dials <relay>/p2p-circuit/webrtc/p2p/<rust> (circuit first, then
//     /webrtc-signaling/0.0.1 over it); the connection must be /webrtc and not limited, our
//     page must list js as "direct", and a ping over that very connection must succeed.
// (2) Rust dials JS: js reserves on the relay (listens on /p2p-circuit and /webrtc) and
//     registers at the relay's rendezvous under shoal/<swarm> with a record sealed by the stock
//     @libp2p/peer-record (no hand-signing): first the standard envelope, which js discovers
//     back and certifies; then the same record sealed under rust-libp2p's legacy domain, the
//     only form our page's rust-libp2p client reads. Our node discovers it, dials the circuit,
//     and, having the smaller PeerId, dials /webrtc. Then ping over the /webrtc connection from js.
// Both record how long js's stream.close() takes (FIN → our FIN_ACK; ≈10 s without it).
//
// Reuses tests/e2e/harness.mjs read-only (needs tests/node_modules: `cd tests && npm ci`).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { REPO, WAIT_MS, closeAll, dumpLogs, launchBrowser, launchPeer, relayBinary, startRelay, waitFor, within } from '../e2e/harness.mjs';

/** A connected RTCPeerConnection whose selected pair succeeded with no relay candidate. */
const directPair = (pcs) =>
  pcs.some((pc) => pc.connectionState === 'connected' && pc.selected.some((s) => s.state === 'succeeded' && s.local !== 'relay' && s.remote !== 'relay'));

/** How long to watch each ping stream end after js's close() (our side should FIN or RESET it). */
const SETTLE_MS = Number(process.env.INTEROP_SETTLE_MS ?? 3_000);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUNDLE = path.join(HERE, 'dist', 'jsnode.js');
// The relay `make test` built (or $SHOAL_RELAY_BIN), never a stale release build.
const relayBin = relayBinary();

let relay;
let info;
let relayAddr;
const jsLogs = [];
const t0 = Date.now();
const jsLog = (line) => jsLogs.push(`${((Date.now() - t0) / 1000).toFixed(2).padStart(7)}s [js] ${line}`);

before(async () => {
  assert.ok(existsSync(BUNDLE), `missing ${BUNDLE}: run \`npm run build\``);
  relay = await startRelay({ bin: relayBin });
  info = await (await fetch(`${relay.url}/api/info`)).json();
  // A stock `/ws` address: the relay takes libp2p WebSockets at `/` too.
  relayAddr = info.listenAddrs[0];
});

after(async () => {
  await closeAll();
  await relay?.stop();
});

function recordPeerConnections() {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
  };
}

/** A Chromium process of its own with a page at the relay's origin that does not start shoal; the js node is injected. */
async function launchJs() {
  const browser = await launchBrowser();
  const context = await browser.newContext();
  await context.grantPermissions(['camera', 'microphone'], { origin: relay.url });
  await context.addInitScript(recordPeerConnections);
  // js-libp2p's `debug` logger reads localStorage.debug when the bundle loads.
  await context.addInitScript(() => localStorage.setItem('debug', 'libp2p:webrtc*,libp2p:circuit-relay*'));
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('console', (m) => jsLog(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => jsLog(`pageerror: ${e.stack ?? e.message}`));
  await page.goto(`${relay.url}/healthz`);
  await page.addScriptTag({ path: BUNDLE });
  await page.waitForFunction(() => window.jsnode);
  const call = (fn, arg) => page.evaluate(([f, a]) => window.jsnode[f](...a), [fn, arg]);
  return { browser, page, call, close: () => browser.close().catch(() => {}) };
}

function failureDump(name) {
  dumpLogs(`relay + shoal page logs for "${name}"`);
  const tail = jsLogs.slice(-400);
  process.stderr.write(`\n----- js page logs (${tail.length} of ${jsLogs.length} lines) -----\n${tail.join('\n')}\n----- end -----\n`);
}

const results = {};

/**
 * Our page in `swarm` (holding its reservation) and a js node with the smaller PeerId (so our
 * node never starts a /webrtc dial of its own to js) that dials
 * `<relay>/p2p-circuit/webrtc/p2p/<ours>`. On failure it closes both itself.
 */
async function jsDialsRust(swarm) {
  const rust = await launchPeer(relay.url, { name: 'rust', swarm });
  let js;
  try {
    const rustId = await rust.started();
    await waitFor('our node to hold its relay reservation', rust.relay, (r) => /reserved/i.test(r?.state));
    js = await launchJs();
    const jsId = await js.call('start', [{ other: rustId, order: 'less' }]);
    const target = `${relayAddr}/p2p-circuit/webrtc/p2p/${rustId}`;
    const dial = await within(`js to dial ${target}`, js.call('dial', [target]), 20_000);
    return { rust, js, rustId, jsId, dial };
  } catch (e) {
    await js?.close();
    await rust.close();
    throw e;
  }
}

/**
 * Waits (bounded) until js's page has a connected RTCPeerConnection whose selected pair succeeded
 * between non-relay candidates, then pings three times on streams opened on js's connection
 * `connId`; returns the pings (each with a numeric `rttMs`).
 */
async function pingOverDirectPair(t, js, connId) {
  // Chromium may report the selected pair as "in-progress" for a moment
  // after "connected": wait (bounded) for "succeeded".
  const pcs = await waitFor('js page: a connected RTCPeerConnection whose selected pair succeeded between non-relay candidates',
    () => js.call('pcs', []), directPair);
  t.diagnostic(`js page ICE: ${JSON.stringify(pcs)}`);
  assert.ok(directPair(pcs));

  const pings = [];
  for (let i = 0; i < 3; i++) pings.push(await within('js ping over the /webrtc connection', js.call('pingConn', [connId, { settleMs: SETTLE_MS }]), 30_000));
  t.diagnostic(`js pings over /webrtc: ${JSON.stringify(pings)}`);
  for (const p of pings) assert.equal(typeof p.rttMs, 'number');
  return pings;
}

test('JS dials Rust over /webrtc, pings over it', async (t) => {
  let rust, js;
  try {
    let rustId, jsId, dial;
    ({ rust, js, rustId, jsId, dial } = await jsDialsRust(`interop-a-${process.pid}`));
    t.diagnostic(`js dial ${dial.ms} ms: ${JSON.stringify(dial.conn)}`);
    assert.match(dial.conn.remoteAddr, /\/webrtc\/p2p\//, 'js connection has a /webrtc remote address');
    assert.equal(dial.conn.limited, false, 'js connection is not limited (not relayed)');
    assert.equal(dial.conn.remotePeer, rustId);

    await waitFor(`our page to list js (${jsId}) as direct`, rust.peers, (ps) => ps.some((p) => p.peerId === jsId && p.path === 'direct'));
    const pings = await pingOverDirectPair(t, js, dial.conn.id);
    const service = await within('js ping service', js.call('pingService', [rustId]), 15_000);
    t.diagnostic(`ping service rtt ${service} ms`);
    const conns = await js.call('connections', []);
    t.diagnostic(`js connections after: ${JSON.stringify(conns)}`);
    const ours = await rust.peers();
    t.diagnostic(`our peers(): ${JSON.stringify(ours)}`);
    results.jsDialsRust = { dialMs: dial.ms, pings, service };
    assert.ok(pings.every((p) => p.closeMs < 5_000), `stream.close() took ${pings.map((p) => p.closeMs)} ms (FIN_ACK missing?)`);
  } catch (e) {
    failureDump(t.name);
    throw e;
  } finally {
    await js?.close();
    await rust?.close();
  }
});

test('Rust dials JS over /webrtc (js registered at the rendezvous), pings over it', async (t) => {
  let rust, js;
  try {
    const swarm = `interop-b-${process.pid}`;
    rust = await launchPeer(relay.url, { name: 'rust', swarm });
    const rustId = await rust.started();
    js = await launchJs();
    // js's PeerId is the larger: our node is the one that dials /webrtc.
    const jsId = await js.call('start', [{ other: rustId, order: 'greater', listenRelay: relayAddr }]);
    const addrs = await waitFor('js to hold a relay reservation (a /p2p-circuit listen address)', () => js.call('addrs', []), (a) => a.some((x) => x.includes('/p2p-circuit')));
    t.diagnostic(`js listens on ${JSON.stringify(addrs)}`);
    const ns = `shoal/${swarm}`;
    // The relay's policy, seen by a stock client: foreign namespaces and listing every swarm are refused.
    const foreign = await within('js REGISTER in a foreign namespace', js.call('register', [relayAddr, 'not-shoal']), 15_000);
    assert.equal(foreign.status, 100, `E_INVALID_NAMESPACE (got ${JSON.stringify(foreign)})`);
    const all = await within('js DISCOVER without a namespace', js.call('discover', [relayAddr, null]), 15_000);
    assert.equal(all.status, 100, `E_INVALID_NAMESPACE (got ${JSON.stringify(all)})`);
    // The standard envelope (what js-libp2p signs) registers and is discovered, certified.
    const reg = await within('js rendezvous REGISTER (standard envelope)', js.call('register', [relayAddr, ns]), 15_000);
    t.diagnostic(`rendezvous REGISTER response: ${JSON.stringify(reg)}`);
    assert.equal(reg.type, 1, 'REGISTER_RESPONSE');
    assert.equal(reg.status, 0, `REGISTER status OK (got ${reg.status} ${reg.statusText})`);
    assert.equal(reg.ttl, 300);
    const found = await within('js rendezvous DISCOVER', js.call('discover', [relayAddr, ns]), 15_000);
    t.diagnostic(`rendezvous DISCOVER response: ${JSON.stringify(found)}`);
    assert.equal(found.type, 4, 'DISCOVER_RESPONSE');
    assert.equal(found.status, 0);
    const self = found.peers.find((p) => p.peerId === jsId);
    assert.ok(self, 'js is discovered with its standard-envelope record');
    assert.ok(self.addrs.some((a) => a.includes('/p2p-circuit')), `its circuit address is in the record: ${self.addrs}`);
    assert.ok(found.peers.every((p) => p.peerId !== rustId), 'records js cannot read (legacy) are not served to it');
    // Our page (rust-libp2p's client) reads only the legacy form: re-register in it, sealed by the same stock code.
    const legacy = await within('js rendezvous REGISTER (legacy envelope)', js.call('register', [relayAddr, ns, { form: 'legacy' }]), 15_000);
    assert.equal(legacy.status, 0, `REGISTER status OK (got ${legacy.status} ${legacy.statusText})`);

    const started = Date.now();
    await waitFor(`our page to list js (${jsId}) as direct`, rust.peers, (ps) => ps.some((p) => p.peerId === jsId && p.path === 'direct'));
    // js may register its side of the connection a moment after ours is up.
    const isDirect = (c) => c.remotePeer === rustId && c.remoteAddr.includes('/webrtc') && c.status === 'open';
    const conns = await waitFor('js to list its /webrtc connection to our node', () => js.call('connections', []), (cs) => cs.some(isDirect));
    t.diagnostic(`direct after ${Date.now() - started} ms; js connections: ${JSON.stringify(conns)}`);
    const direct = conns.find(isDirect);
    assert.ok(direct, 'js has a /webrtc connection to our node');
    assert.equal(direct.limited, false);
    assert.equal(direct.direction, 'inbound');
    const pings = await pingOverDirectPair(t, js, direct.id);
    const ours = await rust.peers();
    t.diagnostic(`our peers(): ${JSON.stringify(ours)}`);
    results.rustDialsJs = { pings };
    assert.ok(pings.every((p) => p.closeMs < 5_000), `stream.close() took ${pings.map((p) => p.closeMs)} ms (FIN_ACK missing?)`);
  } catch (e) {
    failureDump(t.name);
    throw e;
  } finally {
    await js?.close();
    await rust?.close();
  }
});

// Streams in earnest (issue 9): over one /webrtc connection between the stacks, through shoal's
// test-only echo protocol (peer-wasm/src/echo.rs, built with `test-hooks`) and the same protocol
// in src/node.js: 64 MiB each way on one stream, in both directions; 100 streams at once, in
// both directions; every byte checked; half-close on every stream (the writer closes, the echo
// finishes and closes); a reset from each side seen by the other; then js hangs up and our page
// notices. All waits are bounded; nothing asserts on durations.
test('streams over /webrtc, both ways: 64 MiB, 100 at once, half-close, reset, hang-up', async (t) => {
  const BIG = 64 * 1024 * 1024;
  const MANY = 100;
  const EACH = 64 * 1024;
  const MOVE_MS = 240_000;
  let rust, js;
  try {
    let rustId, jsId, dial;
    ({ rust, js, rustId, jsId, dial } = await jsDialsRust(`interop-c-${process.pid}`));
    assert.match(dial.conn.remoteAddr, /\/webrtc\/p2p\//);
    await waitFor(`our page to list js (${jsId}) as direct`, rust.peers, (ps) => ps.some((p) => p.peerId === jsId && p.path === 'direct'));
    // Only the /webrtc connection is left (libp2p_stream, which our echo uses, opens streams on
    // any connection to the peer; the relayed one js dialed first is still up).
    await js.call('closeLimited', [rustId]);
    await waitFor('js to hold only its /webrtc connection to our node', () => js.call('connections', []),
      (cs) => cs.filter((c) => c.remotePeer === rustId && c.status === 'open').every((c) => c.remoteAddr.includes('/webrtc') && !c.limited));
    const rustEcho = (...a) => rust.page.evaluate(([f, args]) => window.shoal[f](...args), a);

    const big = await within('js: 64 MiB to our echo and back', js.call('echo', [rustId, 1, BIG, { timeoutMs: MOVE_MS }]), MOVE_MS + 10_000);
    t.diagnostic(`js → ours, 64 MiB: ${JSON.stringify(big)}`);
    assert.equal(big.intact, 1, `64 MiB js → ours: ${big.errors}`);
    assert.ok(big.remoteAddrs.every((a) => a.includes('/webrtc')), `the stream ran on ${big.remoteAddrs}`);
    const bigBack = await within('ours: 64 MiB to js\'s echo and back', rustEcho('testEcho', [jsId, 1, BIG]), MOVE_MS);
    t.diagnostic(`ours → js, 64 MiB: ${JSON.stringify(bigBack)}`);
    assert.equal(bigBack.intact, 1, `64 MiB ours → js: ${bigBack.error}`);

    const many = await within(`js: ${MANY} streams at once`, js.call('echo', [rustId, MANY, EACH, { timeoutMs: MOVE_MS }]), MOVE_MS + 10_000);
    t.diagnostic(`js → ours, ${MANY} × ${EACH}: ${JSON.stringify(many)}`);
    assert.equal(many.intact, MANY, `js → ours: ${many.errors}`);
    const manyBack = await within(`ours: ${MANY} streams at once`, rustEcho('testEcho', [jsId, MANY, EACH]), MOVE_MS);
    t.diagnostic(`ours → js, ${MANY} × ${EACH}: ${JSON.stringify(manyBack)}`);
    assert.equal(manyBack.intact, MANY, `ours → js: ${manyBack.error}`);

    // Half-close: every stream above was closed for writing by its opener and then by the echo.
    const half = await waitFor('both echo servers to count every stream ended by FIN', async () => ({ ours: await rustEcho('testEchoStats', []), js: await js.call('echoStats', []) }),
      (s) => s.ours.fin >= MANY + 1 && s.js.fin >= MANY + 1);
    t.diagnostic(`echo servers after the round trips: ${JSON.stringify(half)}`);
    assert.equal(half.ours.reset + half.ours.other, 0, 'our echo saw no reset or error');
    assert.equal(half.js.reset + half.js.other, 0, "js's echo saw no reset or error");

    // Reset, each way.
    await within('js to open and reset an echo stream', js.call('echoReset', [rustId, 1024]), 20_000);
    await waitFor('our echo server to see the reset', () => rustEcho('testEchoStats', []), (s) => s.reset === 1);
    await within('ours to open and reset an echo stream', rustEcho('testEchoReset', [jsId, 1024]), 20_000);
    await waitFor("js's echo server to see the reset", () => js.call('echoStats', []), (s) => s.reset === 1);

    // The connection is still up; js hangs up and our page notices.
    await js.call('stop', []);
    await waitFor('our page to drop js after it hung up', rust.peers, (ps) => !ps.some((p) => p.peerId === jsId));
  } catch (e) {
    failureDump(t.name);
    throw e;
  } finally {
    await js?.close();
    await rust?.close();
  }
});
