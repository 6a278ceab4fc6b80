// Issue: "Two browsers meet through the relay and connect directly over WebRTC".
//
// One relay for the whole file; browsers A and B from the start, C joins later,
// X sits in another swarm. The tests run in order and build on each other.
// All waits are bounded (harness WAIT_MS); nothing asserts on durations.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as h from './harness.mjs';

const TEST = { timeout: 4 * h.WAIT_MS };

const listsDirect = (peers, id) => peers.some((p) => p.peerId === id && p.path === 'direct');

function waitDirect(from, to) {
  return h.waitFor(`${from.name} to list ${to.name} (${to.peerId}) with path "direct" in shoal.peers()`, from.peers, (ps) =>
    listsDirect(ps, to.peerId),
  );
}

/** Wait until `peer` has at least `n` live, direct selected ICE pairs; return all pcs seen. */
function waitDirectPairs(peer, n) {
  return h.waitFor(
    `${peer.name}: ${n} RTCPeerConnection(s) whose selected candidate pair is "succeeded" between non-relay candidates`,
    () => peer.page.evaluate(h.selectedPairsInPage),
    (pcs) => h.directPairs(pcs).length >= n,
  );
}

describe('two browsers meet through the relay and connect directly over WebRTC', () => {
  let relay;
  const open = [];
  let a;
  let b;
  let c;
  let x;
  let abDirect = false;

  async function launch(name, swarm) {
    const peer = await h.launchPeer(relay.url, { name, swarm });
    open.push(peer);
    await peer.started();
    return peer;
  }

  // A failed set-up is reported by every test (as a failure with the reason),
  // rather than by the hook, which node:test would count as "cancelled".
  let setupError = null;
  before(async () => {
    try {
      relay = await h.startRelay();
      // allSettled: a failing peer must not leave the other one launching unseen.
      const launched = await Promise.allSettled([launch('A'), launch('B')]);
      const failed = launched.filter((r) => r.status === 'rejected');
      if (failed.length) throw new Error(failed.map((r) => r.reason.message).join('; '));
      [a, b] = launched.map((r) => r.value);
    } catch (e) {
      h.dumpLogs('logs of the failed set-up');
      await h.screenshots(open, 'set-up');
      setupError = e;
    }
  }, TEST);

  after(async () => {
    await h.closeAll();
    await relay?.stop();
  });

  const it = (name, fn) =>
    test(name, TEST, async (t) => {
      if (setupError) throw new Error(`set-up failed: ${setupError.message}`);
      await h.withLogs(fn, () => open)(t);
    });
  const needAB = () => {
    if (!abDirect) throw new Error('A and B never listed each other as direct (see the first test); not running this one');
  };

  it('two pages in the same swarm list each other with path "direct"', async () => {
    const [psA, psB] = await Promise.all([waitDirect(a, b), waitDirect(b, a)]);
    assert.ok(listsDirect(psA, b.peerId));
    assert.ok(listsDirect(psB, a.peerId));
    abDirect = true;
  });

  it('WebRTC stats: the selected candidate pair succeeded and neither candidate is of type relay', async () => {
    for (const peer of [a, b]) {
      const pcs = await waitDirectPairs(peer, 1);
      assert.ok(pcs.length >= 1, `${peer.name} created no RTCPeerConnection`);
      // Every pair that carries traffic must be direct, not only the one we waited for.
      // (Chromium gathers no TURN candidate from a server on loopback, so here this only
      // rules out surprises; tests/lab/cone.test.mjs offers coturn and checks it for real.)
      for (const pc of pcs) {
        for (const s of pc.selected.filter((s) => s.pairState === 'succeeded')) {
          assert.notEqual(s.localType, 'relay', `${peer.name}: local candidate of a selected pair is a TURN relay: ${JSON.stringify(pc)}`);
          assert.notEqual(s.remoteType, 'relay', `${peer.name}: remote candidate of a selected pair is a TURN relay: ${JSON.stringify(pc)}`);
        }
      }
    }
  });

  it('a libp2p ping works over the direct connection: rttMs becomes a number >= 0', async () => {
    const hasRtt = (to) => (ps) =>
      ps.some((p) => p.peerId === to.peerId && p.path === 'direct' && typeof p.rttMs === 'number' && p.rttMs >= 0);
    const [psA, psB] = await Promise.all([
      h.waitFor(`A's direct entry for B to get a numeric rttMs >= 0`, a.peers, hasRtt(b)),
      h.waitFor(`B's direct entry for A to get a numeric rttMs >= 0`, b.peers, hasRtt(a)),
    ]);
    const rtt = psA.find((p) => p.peerId === b.peerId).rttMs;
    assert.equal(typeof rtt, 'number');
    assert.ok(Number.isFinite(rtt) && rtt >= 0, `rttMs = ${rtt}`);
    assert.ok(hasRtt(a)(psB));
  });

  it('the page shows its own PeerId and its peers as text', async () => {
    for (const [self, other] of [[a, b], [b, a]]) {
      const text = await h.waitFor(
        `${self.name}'s page to show its PeerId and ${other.name}'s PeerId`,
        () => self.page.evaluate(() => ({
          self: document.getElementById('self-id')?.innerText ?? '',
          peers: document.getElementById('peers')?.innerText ?? '',
          body: document.body.innerText,
        })),
        (t) => t.body.includes(self.peerId) && t.peers.includes(other.peerId),
      );
      assert.equal(text.self.trim(), self.peerId);
      assert.ok(text.peers.includes(other.peerId));
    }
  });

  it('a third browser joins and all three list the two others as direct', async () => {
    needAB();
    c = await launch('C');
    const trio = [a, b, c];
    await Promise.all(trio.flatMap((from) => trio.filter((to) => to !== from).map((to) => waitDirect(from, to))));
    // Cross-check against WebRTC itself: two live direct pairs per page (one per remote browser).
    await Promise.all(trio.map((p) => waitDirectPairs(p, 2)));
    for (const from of trio) {
      const ps = await from.peers();
      for (const to of trio.filter((p) => p !== from)) assert.ok(listsDirect(ps, to.peerId), `${from.name} lost ${to.name}`);
    }
  });

  it('a page in another swarm sees none of them, and they do not see it', async () => {
    needAB();
    x = await launch('X', 'other');
    await h.waitFor(`X (swarm "other") to get a relay reservation`, x.relay, (r) => r.state === 'reserved');
    const ours = [a, b, c].filter(Boolean);
    const ourIds = new Set(ours.map((p) => p.peerId));
    // Give discovery several rounds to (wrongly) introduce X; any sighting fails.
    await h.holdsFor(
      'X to list no peers, and nobody in swarm "default" to list X',
      async () => ({ x: await x.peers(), ours: await Promise.all(ours.map((p) => p.peers())) }),
      (v) => v.x.length === 0 && v.ours.every((ps) => !ps.some((p) => p.peerId === x.peerId)),
      { duration: 5_000 },
    );
    const seenByX = (await x.peers()).filter((p) => ourIds.has(p.peerId));
    assert.deepEqual(seenByX, []);
  });
});
