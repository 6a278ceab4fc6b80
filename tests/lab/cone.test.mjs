// NAT lab, cone NATs: A (namespace a) and B (namespace b) each behind a masquerading router
// that drops unsolicited inbound packets (a home router), the relay and a STUN server on the
// public side. Hole punching works, so the browsers connect directly through both NATs.
//
// 1. direct through the NATs (srflx/prflx selected pair), 32 MiB A -> B, SHA-256 equal.
//    coturn runs beside the relay and the pages gather TURN relay candidates, so "the
//    selected pair has no relay candidate" is a check that fails when traffic goes via TURN.
// 3. direct, then UDP dropped at rtr-a mid-transfer: the download completes over the relay;
//    UDP restored: the peers go direct again.
// 4. the relay killed and restarted (same identity and ports) mid-transfer on a direct path:
//    the download completes, and both pages are reserved at the new relay process.
// 5. A closes its RTCPeerConnection while UDP is dropped at rtr-a, so its goodbye (the SCTP
//    ABORT) never reaches B, whose direct connection still looks alive. A redials B through
//    the relay; that dial tells B the direct path is dead on A's side, and B closes it at
//    once (the stale-path rule of proto/src/paths.rs), before ICE could notice. UDP back:
//    direct again.
//
// Each case launches its own two browsers in a swarm of its own. Waits are bounded; nothing
// asserts on durations. Skips (with the reason) when the lab cannot run here (not root, no
// network namespaces, missing tools).

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import * as h from '../e2e/harness.mjs';
import * as L from './lab.mjs';

const SIZE = 32 * L.MiB;
/** Act "mid-transfer" once this much has arrived. */
const MID = 4 * L.MiB;
const TEST = { timeout: 8 * h.WAIT_MS + 2 * L.DOWNLOAD_MS };
/**
 * A direct connection this old was up before any dial through the relay that arrives now
 * could have begun (DIAL_TIMEOUT 20 s + ARRIVAL_SLACK 5 s in proto/src/paths.rs, and 1 s
 * more): younger ones may have overtaken such a dial, and the rule leaves them alone.
 */
const OLDER_THAN_ANY_DIAL_MS = 26_000;
const STALE_CLOSE = 'the peer dialed us, so it has lost this connection';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const unavailable = await L.labUnavailable();
if (unavailable) process.stderr.write(`NAT lab tests skipped: ${unavailable}\n`);

// Evaluated in a page: record every change of relay().state (onChange fires on each one).
function recordRelayStates() {
  const log = (window.__relayStates = [window.shoal.relay().state]);
  window.shoal.onChange(() => {
    const state = window.shoal.relay().state;
    if (log[log.length - 1] !== state) log.push(state);
  });
}
const relayStates = (peer) => peer.page.evaluate(() => window.__relayStates);

describe('NAT lab: cone NATs', () => {
  let lab;
  let setupError = null;
  const open = [];
  let swarms = 0;

  before(async () => {
    if (unavailable) return;
    try {
      lab = await L.startLab('cone', { turn: true });
    } catch (e) {
      setupError = e;
      h.dumpLogs('lab set-up logs');
    }
  });

  after(async () => {
    await lab?.down();
  });

  /** A in namespace a, B in namespace b, in a fresh swarm; resolves once both list each other as direct. */
  async function pair() {
    const swarm = `cone-${++swarms}-${Date.now().toString(36)}`;
    return h.launchMesh(
      [['A', 'a'], ['B', 'b']].map(([name, host]) => async () => {
        const peer = await lab.launch(name, host, { swarm });
        open.push(peer);
        await peer.page.evaluate(recordRelayStates);
        return peer;
      }),
    );
  }

  const it = h.peerTest(open, TEST, () => {
    if (unavailable) return unavailable;
    if (setupError) throw new Error(`lab set-up failed: ${setupError.message}`);
    return null;
  });

  it('1. both browsers connect directly through their NATs (srflx), and 32 MiB arrive intact', async (t) => {
    const [a, b] = await pair();
    for (const peer of [a, b]) {
      const pairs = await h.waitFor(
        `${peer.name}: a connected RTCPeerConnection whose selected pair is succeeded, srflx/prflx and not relay`,
        () => L.connectedPairs(peer),
        (ps) => ps.some(L.natPair),
      );
      t.diagnostic(`${peer.name}'s selected pairs: ${JSON.stringify(pairs)}`);
      // TURN was on offer: the pair above was chosen over a relay candidate, not for want of one.
      const gathered = await h.waitFor(`${peer.name} to gather a TURN relay candidate (coturn in pub)`, () => L.gatheredTypes(peer), (types) => types.includes('relay'));
      t.diagnostic(`${peer.name} gathered candidate types: ${gathered.join(', ')}`);
      const relayPairs = (await L.connectedPairs(peer)).filter((s) => s.localType === 'relay' || s.remoteType === 'relay');
      assert.deepEqual(relayPairs, [], `${peer.name} selected a TURN pair`);
    }

    const orig = await L.shareRandom(a, SIZE);
    assert.equal(orig.size, SIZE);
    const relayBefore = await lab.relayBytes();
    const got = await L.startDownload(b, orig.link);
    const relayed = (await lab.relayBytes()) - relayBefore;
    t.diagnostic(`the relay's WebSockets carried ${relayed} bytes during the download (file: ${SIZE})`);
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
    // The file took the direct path: the relay saw only signaling and control traffic.
    assert.ok(relayed < SIZE / 100, `${relayed} bytes crossed the relay for a ${SIZE}-byte file sent directly`);
    assert.equal(got.size, SIZE);

    const entry = await L.entryOf(b, L.shareIdOf(orig.link));
    assert.equal(entry?.state, 'done', `B's entry: ${JSON.stringify(L.brief(entry))}`);
    assert.deepEqual(entry.sources.map((s) => [s.peerId, s.path]), [[a.peerId, 'direct']], `B's sources: ${JSON.stringify(entry.sources)}`);
  });

  it('3. UDP dropped at rtr-a mid-transfer: the download completes over the relay; UDP back: direct again', async (t) => {
    const [a, b] = await pair();
    const orig = await L.shareRandom(a, SIZE);
    const shareId = L.shareIdOf(orig.link);

    const pending = L.startDownload(b, orig.link);
    pending.catch(() => {});
    let blocked = false;
    let pcsWhileBlocked = [0, 0];
    try {
      await L.waitProgress(b, shareId, MID);
      await lab.udpBlock('rtr-a');
      blocked = true;
      const tBlock = Date.now();
      const since = (what) => (value) => {
        t.diagnostic(`${what} ${((Date.now() - tBlock) / 1000).toFixed(1)} s after the block`);
        return value;
      };
      const atBlock = await L.entryOf(b, shareId);
      t.diagnostic(`B when UDP was blocked: ${JSON.stringify(L.brief(atBlock))}`);
      assert.equal(atBlock?.state, 'downloading', `B was no longer downloading when UDP was blocked, so this run did not test it: ${JSON.stringify(L.brief(atBlock))}`);

      // No UDP through rtr-a: the direct path is dead. Both must fall back to the relayed
      // connection, and the download must finish while UDP is still blocked.
      const [, , got] = await Promise.all([
        L.waitPath(a, b, 'relayed', { timeout: 2 * h.WAIT_MS }).then(since('A listed B as relayed')),
        L.waitPath(b, a, 'relayed', { timeout: 2 * h.WAIT_MS }).then(since('B listed A as relayed')),
        pending.then(since('the download completed')),
      ]);
      assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
      assert.equal(got.size, SIZE);
      const entry = await L.entryOf(b, shareId);
      assert.equal(entry?.state, 'done', `B's entry: ${JSON.stringify(L.brief(entry))}`);
      t.diagnostic(`B's sources at the end: ${JSON.stringify(entry.sources)}`);
    } finally {
      if (blocked) {
        // How many RTCPeerConnections each page had made while UDP was blocked (below).
        pcsWhileBlocked = await Promise.all([a, b].map((p) => p.page.evaluate(() => (window.__pcs ?? []).length)));
        await lab.udpUnblock('rtr-a');
      }
    }

    // UDP is back: the peers must find the direct path again.
    const tUnblock = Date.now();
    await Promise.all([
      L.waitPath(a, b, 'direct', { timeout: 3 * h.WAIT_MS }),
      L.waitPath(b, a, 'direct', { timeout: 3 * h.WAIT_MS }),
    ]);
    // A /webrtc attempt that gathered its candidates while UDP was blocked has no srflx
    // candidate on A's side, so only TURN can connect it, and it keeps its TURN pair once
    // UDP is back (seen twice in CI: the node retried /webrtc 2 s before the unblock, and
    // the pair local relay → remote srflx was selected 0.1 s after it). Such a connection
    // says nothing about the NATs now: it is closed, and the attempt that follows, made
    // with UDP back, is the one checked.
    for (const [i, peer] of [a, b].entries()) {
      const pcs = await peer.page.evaluate(h.selectedPairsInPage);
      const stale = pcs
        .filter((pc) => pc.index < pcsWhileBlocked[i] && pc.connectionState === 'connected')
        .filter((pc) => pc.selected.some((s) => s.localType === 'relay' || s.remoteType === 'relay'))
        .map((pc) => pc.index);
      if (stale.length === 0) continue;
      t.diagnostic(`${peer.name}: closing ${stale.length} connection(s) over TURN made while UDP was blocked`);
      await peer.page.evaluate((indices) => indices.forEach((k) => window.__pcs[k].close()), stale);
    }
    for (const peer of [a, b]) {
      await h.waitFor(
        `${peer.name}: a connected RTCPeerConnection with a srflx/prflx pair again`,
        () => L.connectedPairs(peer),
        (ps) => ps.some(L.natPair),
      );
    }
    t.diagnostic(`direct again ${((Date.now() - tUnblock) / 1000).toFixed(1)} s after UDP was unblocked`);
    t.diagnostic(`RTCPeerConnection states: A ${JSON.stringify(await L.connectionStates(a))}, B ${JSON.stringify(await L.connectionStates(b))}`);
  });

  it('4. the relay killed and restarted mid-transfer on a direct path: the download completes, both pages reserved again', async (t) => {
    const [a, b] = await pair();
    const orig = await L.shareRandom(a, SIZE);
    const shareId = L.shareIdOf(orig.link);
    const initial = await Promise.all([a, b].map(relayStates));
    assert.deepEqual(initial.map((s) => s[s.length - 1]), ['reserved', 'reserved'], `relay states before: ${JSON.stringify(initial)}`);

    const pending = L.startDownload(b, orig.link);
    pending.catch(() => {});
    await L.waitProgress(b, shareId, MID);
    const marks = await Promise.all([a, b].map(async (p) => (await relayStates(p)).length));
    await lab.stopRelay({ signal: 'SIGKILL' });
    const atKill = await L.entryOf(b, shareId);
    t.diagnostic(`B when the relay was killed: ${JSON.stringify(L.brief(atKill))}`);
    assert.equal(atKill?.state, 'downloading', `B was no longer downloading when the relay was killed, so this run did not test it: ${JSON.stringify(L.brief(atKill))}`);
    const tKill = Date.now();
    await lab.startRelay();
    t.diagnostic(`relay answering /healthz again ${((Date.now() - tKill) / 1000).toFixed(1)} s after the kill`);

    // The direct path does not need the relay: the download goes on.
    const got = await pending;
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
    assert.equal(got.size, SIZE);
    const entry = await L.entryOf(b, shareId);
    assert.equal(entry?.state, 'done', `B's entry: ${JSON.stringify(L.brief(entry))}`);
    t.diagnostic(`B's sources: ${JSON.stringify(entry.sources)}`);

    // Both pages lost the old relay process and reserved again at the new one: after the
    // kill their relay state left "reserved" and came back to it.
    await Promise.all(
      [a, b].map((p, i) =>
        h.waitFor(
          `${p.name}'s relay state to leave "reserved" after the kill and be "reserved" again`,
          async () => ({ since: (await relayStates(p)).slice(marks[i] - 1), now: (await p.relay()).state }),
          (v) => v.now === 'reserved' && v.since.slice(1).some((s) => s !== 'reserved') && v.since[v.since.length - 1] === 'reserved',
          { timeout: 2 * h.WAIT_MS },
        ),
      ),
    );
    t.diagnostic(`relay states: A ${JSON.stringify(await relayStates(a))}, B ${JSON.stringify(await relayStates(b))}`);
  });

  it('5. A closes its RTCPeerConnection and its goodbye is lost: its redial through the relay makes B close the dead direct path at once', async (t) => {
    const [a, b] = await pair();
    await sleep(OLDER_THAN_ANY_DIAL_MS);
    const staleBefore = h.logLines('B').filter((l) => l.includes(STALE_CLOSE)).length;
    await lab.udpBlock('rtr-a');
    try {
      const closed = await a.page.evaluate(() => {
        const live = window.__pcs.filter((pc) => pc.connectionState === 'connected');
        for (const pc of live) pc.close();
        return live.length;
      });
      assert.ok(closed >= 1, `A had no connected RTCPeerConnection to close (${closed})`);
      // B heard nothing of it (UDP is dropped at rtr-a); A's dial through the relay tells it.
      await h.waitFor(
        `B to close its direct connection to A because A dialed it through the relay ("${STALE_CLOSE}")`,
        () => h.logLines('B').filter((l) => l.includes(STALE_CLOSE)).length,
        (n) => n > staleBefore,
        { timeout: 2 * h.WAIT_MS },
      );
      t.diagnostic(`B's RTCPeerConnection states: ${JSON.stringify(await L.connectionStates(b))}`);
    } finally {
      await lab.udpUnblock('rtr-a');
    }
    // UDP is back: the peers go direct again, over new RTCPeerConnections.
    await Promise.all([
      L.waitPath(a, b, 'direct', { timeout: 3 * h.WAIT_MS }),
      L.waitPath(b, a, 'direct', { timeout: 3 * h.WAIT_MS }),
    ]);
    const fresh = await a.page.evaluate(() => window.__pcs.filter((pc) => pc.connectionState === 'connected').length);
    assert.ok(fresh >= 1, 'A lists B as direct without a connected RTCPeerConnection');
  });
});
