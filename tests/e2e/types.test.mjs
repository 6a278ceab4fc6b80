// The TypeScript declarations the npm package ships (peer_wasm.d.ts, written from
// peer-wasm/src/types.rs) name exactly the fields the API returns: each interface's keys are
// compared with the keys of real values from two pages that shared and downloaded a file.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import * as F from './files.mjs';
import * as h from './harness.mjs';

const DTS = readFileSync(path.join(h.wwwDir(), 'pkg', 'peer_wasm.d.ts'), 'utf8');

/** The top-level keys of `export interface name { ... }` in the .d.ts. */
function keysOf(name) {
  const start = DTS.indexOf(`export interface ${name} {`);
  assert.ok(start >= 0, `no interface ${name} in peer_wasm.d.ts`);
  let depth = 0;
  let body = '';
  for (let i = DTS.indexOf('{', start); i < DTS.length; i++) {
    const c = DTS[i];
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (depth === 1 && c !== '{') body += c;
    if (depth === 0) break;
  }
  const noComments = body.replace(/\/\*\*[\s\S]*?\*\//g, '');
  return [...noComments.matchAll(/(?:^|[;\n])\s*([A-Za-z]+)\??:/g)].map((m) => m[1]).sort();
}

const keys = (o) => Object.keys(o).sort();

describe('TypeScript declarations', () => {
  const { relay, open } = h.relaySuite('types');

  test('the methods are typed, not any', () => {
    for (const sig of ['peers(): PeerInfo[]', 'relay(): RelayStatus', 'downloads(): DownloadInfo[]', 'shares(): ShareInfo[]', 'storedShares(): Promise<StoredShare[]>', 'stats(): Stats', 'milestones(): Milestones', 'start(options: StartOptions): Promise<Node>', 'shareFiles(name: string, entries: ShareEntry[]): Promise<string>', 'download(link: string, paths?: string[] | null): Promise<File>', 'want(shareId: string, paths?: string[] | null): Promise<void>', 'read(shareId: string, offset: number, length: number): Promise<Uint8Array>']) {
      assert.ok(DTS.includes(sig), `peer_wasm.d.ts lacks "${sig}"`);
    }
  });

  test('every interface names exactly the fields of real values', { timeout: 6 * h.WAIT_MS }, h.withLogs(async () => {
    const [a, b] = await h.launchSwarm(relay.url, open, `types-${Date.now().toString(36)}`, ['A', 'B']);
    const orig = await F.shareRandom(a, F.MiB, 'types.bin');
    await F.startDownload(b, orig.link);
    const v = await b.page.evaluate(async () => ({
      peer: window.shoal.peers()[0],
      relay: window.shoal.relay(),
      download: window.shoal.downloads()[0],
      stats: window.shoal.stats(),
      milestones: window.shoal.milestones(),
      stored: (await window.shoal.storedShares())[0],
    }));
    const share = await a.page.evaluate(() => window.shoal.shares()[0]);
    assert.deepEqual(keys(v.peer), keysOf('PeerInfo'));
    assert.deepEqual(keys(v.relay), keysOf('RelayStatus'));
    assert.deepEqual(keys(v.download), keysOf('DownloadInfo'));
    assert.deepEqual(keys(v.download.sources[0]), keysOf('SourceInfo'));
    assert.deepEqual(keys(share), keysOf('ShareInfo'));
    assert.deepEqual(keys(v.stored), keysOf('StoredShare'));
    assert.deepEqual(keys(v.stats), keysOf('Stats'));
    assert.deepEqual(keys(v.milestones), keysOf('Milestones'));
    assert.deepEqual(keys(v.stats.peers[0].direct), keysOf('PathBytes'));
  }, () => open));
});
