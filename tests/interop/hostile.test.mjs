// Hostile signaling: a js-libp2p node (dist/jsnode.js) opens /webrtc-signaling/0.0.1 to our
// shoal page over a relayed circuit and sends bad signaling. Our node must reset/abandon that
// attempt (stream ends: RESET or FIN, never left hanging), must not panic, and must not wedge:
// the page stays responsive, and a second, normal shoal page then connects to it directly.
//
// Cases (all against the same running shoal page):
//   1. a 200-byte message of 0xff (not protobuf);  2. a length prefix announcing 10 MiB (> our
//   64 KiB cap) + a few bytes;  3. SDP_OFFER whose data is "this is not sdp";  4. ICE_CANDIDATE
//   as the first message;  5. a silent peer (our node's bound is ~10 s).
// Each case asserts the reason our page logs for the failed attempt, and that the relayed
// connection under the stream stays open (only the stream is reset).
//
// Reuses tests/e2e/harness.mjs read-only (needs tests/node_modules: `cd tests && npm ci`).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { REPO, WAIT_MS, closeAll, dumpLogs, launchBrowser, launchPeer, relayBinary, startRelay, waitFor, within } from '../e2e/harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUNDLE = path.join(HERE, 'dist', 'jsnode.js');
// The relay `make test` built (or $SHOAL_RELAY_BIN), never a stale release build.
const relayBin = relayBinary();
/** How long rawSignal watches the stream after writing. */
const WATCH_MS = 15_000;

const swarm = `hostile-${process.pid}`;
let relay, relayAddr, rust, rustId, js;
const jsLogs = [];
/** Lines from our page that indicate a crash: pageerror, page crash, Rust panic. */
const rustBad = [];
/** Our page's log lines for failed inbound connections: each says why (the error chain). */
const rustFailures = [];
const t0 = Date.now();
const stamp = () => `${((Date.now() - t0) / 1000).toFixed(2).padStart(7)}s`;

// ---- signaling wire format: unsigned-varint length + Message { type = 1; data = 2 } ----
function varint(n) {
  const out = [];
  do { let b = n % 128; n = Math.floor(n / 128); if (n) b |= 0x80; out.push(b); } while (n);
  return Buffer.from(out);
}
function message(type, data) {
  const d = Buffer.from(data, 'utf8');
  const body = Buffer.concat([Buffer.from([0x08, type, 0x12]), varint(d.length), d]);
  return Buffer.concat([varint(body.length), body]);
}
const SDP_OFFER = 0, ICE_CANDIDATE = 2;

before(async () => {
  assert.ok(existsSync(BUNDLE), `missing ${BUNDLE}: run \`npm run build\``);
  relay = await startRelay({ bin: relayBin });
  const info = await (await fetch(`${relay.url}/api/info`)).json();
  // A stock `/ws` address: the relay takes libp2p WebSockets at `/` too.
  relayAddr = info.listenAddrs[0];

  rust = await launchPeer(relay.url, { name: 'rust', swarm });
  rust.page.on('console', (m) => {
    if (/panicked at|RuntimeError|unreachable/i.test(m.text())) rustBad.push(`${stamp()} console.${m.type()}: ${m.text()}`);
    if (/inbound connection failed/.test(m.text())) rustFailures.push(m.text());
  });
  rust.page.on('pageerror', (e) => rustBad.push(`${stamp()} pageerror: ${e.stack ?? e.message}`));
  rust.page.on('crash', () => rustBad.push(`${stamp()} page crashed`));
  rustId = await rust.started();
  await waitFor('our node to hold its relay reservation', rust.relay, (r) => /reserved/i.test(r?.state));

  const browser = await launchBrowser();
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('console', (m) => jsLogs.push(`${stamp()} [js] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => jsLogs.push(`${stamp()} [js] pageerror: ${e.stack ?? e.message}`));
  await page.goto(`${relay.url}/healthz`);
  await page.addScriptTag({ path: BUNDLE });
  await page.waitForFunction(() => window.jsnode);
  js = { page, call: (fn, arg) => page.evaluate(([f, a]) => window.jsnode[f](...a), [fn, arg]) };
  // js gets the smaller PeerId, so our node never starts a /webrtc dial of its own to js.
  await js.call('start', [{ other: rustId, order: 'less' }]);
});

after(async () => {
  await closeAll();
  await relay?.stop();
});

function failureDump(name) {
  dumpLogs(`relay + shoal page logs for "${name}"`);
  const tail = jsLogs.slice(-200);
  process.stderr.write(`\n----- js page logs (${tail.length} of ${jsLogs.length} lines) -----\n${tail.join('\n')}\n----- end -----\n`);
}

/** Send `bytes` raw on a fresh signaling stream; assert the stream ends, our page lives and did not panic. */
async function hostile(t, bytes, { maxMs = WATCH_MS, why: reason } = {}) {
  try {
    const failuresBefore = rustFailures.length;
    const r = await within('js rawSignal', js.call('rawSignal', [relayAddr, rustId, bytes.toString('hex'), { waitMs: WATCH_MS }]), WATCH_MS + 25_000);
    t.diagnostic(`sent ${bytes.length} bytes (head ${bytes.subarray(0, 4).toString('hex') || "-"}) -> ${r.outcome} after ${r.ms} ms (${r.detail}); got ${r.bytesIn} bytes back; stream ${r.status}; circuit ${JSON.stringify(r.conn)}`);
    assert.notEqual(r.outcome, 'timeout', `our node left the signaling stream open for ${r.ms} ms`);
    assert.ok(r.ms <= maxMs, `stream ended only after ${r.ms} ms`);
    const peers = await within('our page to answer shoal.peers()', rust.peers(), 5_000);
    assert.ok(Array.isArray(peers), 'shoal.peers() returns an array');
    const fresh = await rust.page.evaluate(() => window.shoal.peerId);
    assert.equal(fresh, rustId);
    assert.deepEqual(rustBad, [], 'our page panicked / threw / crashed');
    const why = await waitFor('our page to log why the signaling attempt failed', async () => rustFailures[failuresBefore], Boolean, { timeout: 5_000 });
    t.diagnostic(`our page: ${why}`);
    assert.match(why, reason, 'our page failed the attempt for another reason');
    // Only the signaling stream was reset: the relayed connection it ran on is still open.
    assert.equal(r.conn?.status, 'open', `the relayed connection did not survive: ${JSON.stringify(r.conn)}`);
    return { ...r, why };
  } catch (e) {
    failureDump(t.name);
    throw e;
  }
}

// Each case names the reason our node must give: a build that lost a check (the 64 KiB cap, the
// order rule, the decoder) would still end the stream, by its 10 s timeout, with another reason.
test('1. garbage: a 200-byte message of 0xff bytes', (t) =>
  hostile(t, Buffer.concat([varint(200), Buffer.alloc(200, 0xff)]), { why: /signaling failed: .*(protobuf|decode|varint|invalid|malformed)/i }));
test('2. length prefix announcing 10 MiB', (t) =>
  hostile(t, Buffer.concat([varint(10 * 1024 * 1024), Buffer.from([0x08, 0x00, 0x12, 0x03, 0x61, 0x62, 0x63])]), { why: /message of 10485760 bytes exceeds the limit of 65536/ }));
test('3. SDP_OFFER with data "this is not sdp"', (t) =>
  hostile(t, message(SDP_OFFER, 'this is not sdp'), { why: /setRemoteDescription/ }));
test('4. ICE_CANDIDATE first (wrong order)', (t) =>
  hostile(t, message(ICE_CANDIDATE, JSON.stringify({ candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host', sdpMid: '0', sdpMLineIndex: 0 })), { why: /expected SdpOffer, received IceCandidate/ }));
test('5. silent peer: nothing sent', (t) => hostile(t, Buffer.alloc(0), { why: /no WebRTC connection within/ }));

test('afterwards a normal shoal page connects to ours directly', async (t) => {
  let other;
  try {
    other = await launchPeer(relay.url, { name: 'good', swarm });
    const otherId = await other.started();
    const started = Date.now();
    await waitFor(`our page to list the good peer (${otherId}) as direct`, rust.peers, (ps) => ps.some((p) => p.peerId === otherId && p.path === 'direct'));
    await waitFor(`the good page to list ours (${rustId}) as direct`, other.peers, (ps) => ps.some((p) => p.peerId === rustId && p.path === 'direct'));
    t.diagnostic(`direct after ${Date.now() - started} ms; our peers(): ${JSON.stringify(await rust.peers())}`);
    assert.deepEqual(rustBad, [], 'our page panicked / threw / crashed');
  } catch (e) {
    failureDump(t.name);
    throw e;
  } finally {
    await other?.close();
  }
});
