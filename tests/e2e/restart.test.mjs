// Issue "Across the internet": the relay may restart.
//
// A relay with fixed ports and a fixed identity; two pages connect directly;
// A shares a random 64 MiB file and B starts downloading it; the relay is
// killed (SIGKILL, as a crash) mid-transfer and started again on the same
// ports with the same identity. Checked: the download carries on over the
// direct path while the relay is down and arrives intact (SHA-256); both pages
// showed the relay as `reconnecting` meanwhile (recorded in the page through
// onChange); afterwards both hold a reservation again and still list each
// other; a third page opened after the restart finds both (so they registered
// again). Nothing asserts on durations; every wait is bounded.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as F from './files.mjs';
import * as h from './harness.mjs';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const { DOWNLOAD_MS } = F;
const TEST = { timeout: 10 * h.WAIT_MS + DOWNLOAD_MS };

/**
 * How the relay is started, both times: the one place that knows its ports.
 */
function relayOptions({ httpPort, identity }) {
  return { listen: `127.0.0.1:${httpPort}`, identity };
}

// ---- evaluated in pages ----

/** Record every relay state the page sees, in order (consecutive repeats dropped). */
function recordRelayStates() {
  const seen = [window.shoal.relay().state];
  window.__relayStates = seen;
  window.shoal.onChange(() => {
    const state = window.shoal.relay().state;
    if (seen[seen.length - 1] !== state) seen.push(state);
  });
}


// ---- the test ----

describe('the relay restarts', () => {
  let dir;
  let options;
  let relay;
  const open = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'shoal-restart-'));
    options = relayOptions({ httpPort: await h.freePort(), identity: path.join(dir, 'relay.key') });
    relay = await h.startRelay(options);
  });

  after(async () => {
    await h.closeAll();
    await relay?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('pages reconnect by themselves; a direct transfer continues; peers find each other again', TEST, h.withLogs(async (t) => {
    const swarm = `restart-${Date.now().toString(36)}`;
    const [a, b] = await Promise.all(['A', 'B'].map((name) => h.launchPeer(relay.url, { name, swarm })));
    open.push(a, b);
    await Promise.all([a.started(), b.started()]);
    await h.waitMeshDirect([a, b]);
    for (const p of [a, b]) {
      await h.waitFor(`${p.name}'s relay reservation`, p.relay, (r) => r.state === 'reserved');
      await p.page.evaluate(recordRelayStates);
    }

    const orig = await F.shareRandom(a, SIZE, 'restart.bin');
    const shareId = F.shareIdOf(orig.link);
    const entryOfB = () => F.entryOf(b, shareId);
    const pending = F.startDownload(b, orig.link);

    // Kill the relay once B is on its way, well before the end.
    const atKill = await h.waitFor('B to have some of the file', entryOfB, (e) => e?.bytesDone > 0, {
      timeout: DOWNLOAD_MS,
      interval: 20,
    });
    await relay.stop({ signal: 'SIGKILL' });
    assert.ok(atKill.state === 'downloading' && atKill.bytesDone < atKill.bytesTotal, `B was done before the relay died: ${JSON.stringify(atKill)}`);

    // While it is down: both pages say so, and B keeps receiving over the direct path.
    for (const p of [a, b]) {
      await h.waitFor(`${p.name} to show the relay as reconnecting`, p.relay, (r) => r.state === 'reconnecting');
    }
    const whileDown = await h.waitFor(
      'B to receive more of the file while the relay is down',
      entryOfB,
      (e) => e && (e.bytesDone > atKill.bytesDone || e.state === 'done'),
      { timeout: DOWNLOAD_MS, interval: 50 },
    );
    t.diagnostic(`B when the relay died: ${atKill.bytesDone} B; later, relay still down: ${whileDown.bytesDone} B`);

    relay = await h.startRelay(options);

    const got = await pending;
    assert.equal(got.size, SIZE);
    assert.equal(got.sha256, orig.sha256, "B's file differs from A's");

    for (const p of [a, b]) {
      await h.waitFor(`${p.name} to hold a reservation at the restarted relay`, p.relay, (r) => r.state === 'reserved');
      const states = await p.page.evaluate(() => window.__relayStates);
      assert.ok(states.includes('reconnecting'), `${p.name} never showed 'reconnecting': ${JSON.stringify(states)}`);
      assert.equal(states.at(-1), 'reserved', `${p.name}'s relay states: ${JSON.stringify(states)}`);
    }
    await h.waitMeshDirect([a, b]);

    // A newcomer finds both: they registered again at the restarted relay.
    const c = await h.launchPeer(relay.url, { name: 'C', swarm });
    open.push(c);
    await c.started();
    await h.waitMeshDirect([a, b, c]);
  }, () => open));
});
