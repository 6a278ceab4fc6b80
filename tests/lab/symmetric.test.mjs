// NAT lab, symmetric NATs: A and B each behind a router doing `masquerade fully-random`
// (a new public port per flow), so the address STUN sees is not the one the other peer's
// checks would reach: hole punching fails. The peers must stay connected through the relay
// and a file must still arrive.
//
// 2. WebRTC fails (recorded on the dialing side), both stay "relayed" for the whole test,
//    and 32 MiB A -> B arrive through the relay with equal SHA-256.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as h from '../e2e/harness.mjs';
import * as L from './lab.mjs';

const SIZE = 32 * L.MiB;
const TEST = { timeout: 8 * h.WAIT_MS + 2 * L.DOWNLOAD_MS };

const unavailable = await L.labUnavailable();
if (unavailable) process.stderr.write(`NAT lab tests skipped: ${unavailable}\n`);

describe('NAT lab: symmetric NATs', () => {
  let lab;
  let setupError = null;
  let open = [];

  before(async () => {
    if (unavailable) return;
    try {
      lab = await L.startLab('symmetric');
    } catch (e) {
      setupError = e;
      h.dumpLogs('lab set-up logs');
    }
  });

  after(async () => {
    await lab?.down();
  });

  test('2. no direct path: the peers stay relayed and 32 MiB arrive intact through the relay', TEST, async (t) => {
    if (unavailable) return t.skip(unavailable);
    if (setupError) throw new Error(`lab set-up failed: ${setupError.message}`);
    try {
      await h.withLogs(async () => {
        const swarm = `symmetric-${Date.now().toString(36)}`;
        const [a, b] = await Promise.all(
          [['A', 'a'], ['B', 'b']].map(async ([name, host]) => {
            const peer = await lab.launch(name, host, { swarm });
            open.push(peer);
            return peer;
          }),
        );

        // Watch for a "direct" listing on either side from now until the end of the test.
        const seenDirect = [];
        let watching = true;
        const watch = (async () => {
          while (watching) {
            for (const [from, to] of [[a, b], [b, a]]) {
              const ps = await from.peers().catch(() => []);
              if (ps.some((p) => p.peerId === to.peerId && p.path === 'direct')) seenDirect.push(`${from.name} listed ${to.name} as direct`);
            }
            await new Promise((r) => setTimeout(r, 250));
          }
        })();

        try {
          // A WebRTC attempt was made and failed (its reason is on the dialer's entry); both keep
          // the relayed connection.
          const failed = (ps, id) => ps.some((p) => p.peerId === id && p.path === 'relayed' && p.error);
          const [pa, pb] = await h.waitFor(
            'a WebRTC failure recorded on one side, both listing each other as relayed',
            async () => [await a.peers(), await b.peers()],
            ([pa, pb]) =>
              (failed(pa, b.peerId) || failed(pb, a.peerId)) &&
              pa.some((p) => p.peerId === b.peerId && p.path === 'relayed') &&
              pb.some((p) => p.peerId === a.peerId && p.path === 'relayed'),
            { timeout: 3 * h.WAIT_MS },
          );
          t.diagnostic(`A's peers: ${JSON.stringify(pa)}; B's peers: ${JSON.stringify(pb)}`);

          const orig = await L.shareRandom(a, SIZE);
          const relayBefore = await lab.relayBytes();
          const got = await L.startDownload(b, orig.link);
          const relayed = (await lab.relayBytes()) - relayBefore;
          t.diagnostic(`the relay's WebSockets carried ${relayed} bytes during the download (file: ${SIZE})`);
          assert.equal(got.sha256, orig.sha256, "B's file differs from A's");
          // The file went through the relay: in from A and out to B.
          assert.ok(relayed >= 2 * SIZE, `only ${relayed} bytes crossed the relay for a ${SIZE}-byte file`);
          assert.equal(got.size, SIZE);
          const entry = await L.entryOf(b, L.shareIdOf(orig.link));
          assert.equal(entry?.state, 'done', `B's entry: ${JSON.stringify(L.brief(entry))}`);
          assert.deepEqual(entry.sources.map((s) => [s.peerId, s.path]), [[a.peerId, 'relayed']], `B's sources: ${JSON.stringify(entry.sources)}`);
        } finally {
          watching = false;
          await watch;
        }
        assert.deepEqual(seenDirect, [], 'a direct path appeared through symmetric NATs');
        // Independently of our code: no RTCPeerConnection in either page was ever connected.
        for (const peer of [a, b]) {
          const states = await L.connectionStates(peer);
          t.diagnostic(`${peer.name}'s RTCPeerConnection states: ${JSON.stringify(states)}`);
          assert.ok(states.length > 0, `${peer.name} made no RTCPeerConnection at all, so nothing was tried`);
          assert.ok(!states.some((s) => s.includes('connected')), `${peer.name} had a connected RTCPeerConnection: ${JSON.stringify(states)}`);
        }
      }, () => open)(t);
    } finally {
      await Promise.all(open.map((p) => p.close()));
      open = [];
    }
  });
});
