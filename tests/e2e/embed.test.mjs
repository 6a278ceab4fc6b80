// The npm package, embedded: `npm pack` of the package `make test` built (target/www-test/pkg),
// installed into a copy of examples/embed, served from an origin of its own. Two such pages
// name the relay, meet, connect directly and move a file (SHA-256 equal).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as F from './files.mjs';
import * as h from './harness.mjs';

const TEST = { timeout: 6 * h.WAIT_MS + F.DOWNLOAD_MS };
const PKG = path.join(h.wwwDir(), 'pkg');

describe('the npm package in a page on another origin', () => {
  let relay;
  let server;
  let dir;
  let site;
  const open = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'shoal-embed-'));
    const example = path.join(dir, 'embed');
    cpSync(path.join(h.REPO, 'examples', 'embed'), example, { recursive: true, filter: (src) => !src.includes('node_modules') });
    execFileSync('npm', ['pack', PKG, '--pack-destination', dir], { stdio: 'pipe' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote no tarball');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', path.join(dir, tarball)], { cwd: example, stdio: 'pipe' });
    const { serve } = await import(path.join(example, 'serve.mjs'));
    server = await serve(0);
    site = `http://127.0.0.1:${server.address().port}`;
    relay = await h.startRelay();
  });

  after(async () => {
    await h.closeAll();
    await relay?.stop();
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the package has its module, wasm and TypeScript types', () => {
    const pkg = JSON.parse(readFileSync(path.join(PKG, 'package.json'), 'utf8'));
    assert.equal(pkg.name, '@shoal/peer-wasm');
    for (const f of [pkg.main, pkg.types, 'peer_wasm_bg.wasm']) assert.ok(pkg.files.includes(f), `${f} is not in the package`);
    assert.match(readFileSync(path.join(PKG, pkg.types), 'utf8'), /export class Node/);
  });

  test('two embedding pages name the relay, connect directly and move a file', TEST, h.withLogs(async (t) => {
    assert.notEqual(new URL(site).origin, new URL(relay.url).origin);
    const swarm = `embed-${Date.now().toString(36)}`;
    const url = `${site}/?relay=${encodeURIComponent(relay.url)}&swarm=${swarm}`;
    const [a, b] = await h.launchMesh(['A', 'B'].map((name) => async () => {
      const peer = await h.launchPeer(relay.url, { name, swarm, url });
      open.push(peer);
      await peer.started();
      return peer;
    }));
    const orig = await F.shareRandom(a, 4 * F.MiB, 'embedded.bin');
    const got = await F.startDownload(b, orig.link);
    assert.equal(got.sha256, orig.sha256);
    t.diagnostic(`link: ${orig.link}`);
    // The page shows what the node said, as text.
    const me = await b.page.evaluate(() => document.getElementById('me').textContent);
    assert.equal(me, b.peerId);
  }, () => open));
});
