// A relay that refuses a page says why, and the page shows it as text: with
// --max-connections-per-ip 1, a second page from the same address gets the
// WebSocket upgrade and at once a close frame (code 1013, "too many
// connections from your address"); its relay error line shows that reason,
// /metrics counts the refusal, and once the first page leaves the second one
// connects by itself.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as h from './harness.mjs';

let relay;
before(async () => {
  relay = await h.startRelay({ extraArgs: ['--max-connections-per-ip', '1'] });
});
after(async () => {
  await h.closeAll();
  await relay?.stop();
});

const relayErrorText = (peer) => peer.page.evaluate(() => {
  const el = document.getElementById('relay-error');
  return el && !el.hidden ? el.textContent : '';
});

test('a refused page says "too many connections from your address", then recovers', { timeout: 4 * h.WAIT_MS }, async (t) => {
  let first, second;
  await h.withLogs(async () => {
    first = await h.launchPeer(relay.url, { name: 'first', swarm: 'refusal' });
    await first.started();
    await h.waitFor('the first page to hold its reservation', first.relay, (r) => r?.state === 'reserved');

    second = await h.launchPeer(relay.url, { name: 'second', swarm: 'refusal' });
    const text = await h.waitFor('the second page to show why the relay refused it', () => relayErrorText(second),
      (s) => /too many connections from your address/.test(s));
    t.diagnostic(`second page shows: ${text}`);
    assert.match(text, /^The relay refused this connection: too many connections from your address\./);

    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    const refused = /shoal_relay_websockets_refused_total\{reason="address_full"\} (\d+)/.exec(metrics);
    assert.ok(refused && Number(refused[1]) >= 1, `refusals counted: ${refused?.[0]}`);

    // The slot comes back when the first page leaves; the second retries by itself (backoff ≤ 30 s).
    await first.close();
    await h.waitFor('the second page to connect once the slot is free', second.relay, (r) => r?.state === 'reserved',
      { timeout: 2 * h.WAIT_MS });
    assert.equal(await relayErrorText(second), '');
  }, () => [first, second].filter(Boolean))(t);
});
