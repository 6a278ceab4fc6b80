// HTTPS end to end: the relay with a real (self-signed) certificate, and the
// relay behind a real nginx that terminates TLS. In both, two pages loaded
// over https connect to the relay over wss on the page's own origin (one
// port) and then directly to each other.
//
// Chromium trusts exactly the test certificate's key
// (--ignore-certificate-errors-spki-list); any other certificate still fails.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import * as h from './harness.mjs';
import { recordWebSockets, selfSignedCert, trustArgs } from './tls.mjs';

/** Open two peers on `origin` (trusting `cert`) in one new swarm; wait until they are direct. */
async function twoDirectPeers(origin, cert, swarm) {
  const options = (name) => ({ name, swarm, launch: { args: trustArgs(cert.spki) }, initScripts: [recordWebSockets] });
  const peers = [await h.launchPeer(origin, options('a')), await h.launchPeer(origin, options('b'))];
  await Promise.all(peers.map((p) => p.started()));
  await h.waitMeshDirect(peers);
  return peers;
}

/** What a page says about its origin and the WebSockets it opened. */
const pageFacts = (peer) =>
  peer.page.evaluate(() => ({ protocol: location.protocol, secure: window.isSecureContext, ws: window.__ws, opfs: !!navigator.storage?.getDirectory }));

function assertWssOnOrigin(facts, origin) {
  assert.equal(facts.protocol, 'https:');
  assert.equal(facts.secure, true);
  assert.ok(facts.opfs, 'OPFS is available in the secure context');
  const want = `${origin.replace(/^https:/, 'wss:')}/p2p`;
  assert.ok(facts.ws.length > 0, 'the page opened a WebSocket');
  for (const url of facts.ws) assert.equal(url, want, `every WebSocket goes to ${want}`);
}

describe('relay serving HTTPS itself', () => {
  let relay;
  let cert;
  let peers = [];

  before(async () => {
    cert = selfSignedCert();
    relay = await h.startRelay({ tls: cert });
  });
  after(async () => {
    await h.closeAll();
    await relay?.stop();
    rmSync(cert.dir, { recursive: true, force: true });
  });

  it('answers https with the certificate and refuses plain http on the same port', h.withLogs(async () => {
    const res = await h.httpGet(`${relay.url}/healthz`, { ca: cert.pem });
    assert.equal(res.status, 200);
    const plain = relay.url.replace(/^https:/, 'http:');
    const outcome = await h.httpGet(`${plain}/healthz`).then((r) => `HTTP ${r.status}`, (e) => `error: ${e.code ?? e.message}`);
    assert.ok(!outcome.startsWith('HTTP 200'), `plain http must not be served on the TLS port (got ${outcome})`);
  }));

  it('two pages over https reach the relay over wss on their origin and connect directly', h.withLogs(async () => {
    peers = await twoDirectPeers(relay.url, cert, `https-${Date.now()}`);
    for (const peer of peers) {
      assertWssOnOrigin(await pageFacts(peer), relay.url);
      assert.equal((await peer.relay()).state, 'reserved');
    }
  }, () => peers));
});

describe('relay behind nginx (TLS at nginx, X-Forwarded-For trusted)', () => {
  const NGINX = '/usr/sbin/nginx';
  let relay;
  let cert;
  let nginx;
  let dir;
  let origin;
  let peers = [];

  before(async () => {
    cert = selfSignedCert();
    // The proxy connects to the relay from 127.0.0.2, the browsers from
    // 127.0.0.1: the relay must name the browsers, not the proxy.
    // Per-connection lines (with the client's address) are debug-level.
    relay = await h.startRelay({ extraArgs: ['--trusted-proxy', '127.0.0.2'], env: { RUST_LOG: 'info,shoal_relay::p2p=debug' } });
    const port = await h.freePort();
    origin = `https://127.0.0.1:${port}`;
    dir = path.join(cert.dir, 'nginx');
    mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const site = readFileSync(path.join(h.REPO, 'deploy', 'nginx-shoal.conf'), 'utf8')
      .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
      .replace('listen [::]:443 ssl;', '')
      .replace(/ssl_certificate .*;/, `ssl_certificate ${cert.cert};`)
      .replace(/ssl_certificate_key .*;/, `ssl_certificate_key ${cert.key};`)
      .replace('proxy_pass http://127.0.0.1:8080;', `proxy_pass ${relay.url};\n        proxy_bind 127.0.0.2;`);
    assert.match(site, new RegExp(`proxy_pass ${relay.url}`), 'the documented config has the lines the test rewrites');
    writeFileSync(path.join(dir, 'nginx.conf'), [
      // Workers must reach the temporary directory (mode 0700) this test made.
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      'daemon off;', 'worker_processes 1;', 'pid nginx.pid;', 'error_log logs/error.log info;',
      'events { worker_connections 256; }',
      `http { access_log off; client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp;`,
      site, '}',
    ].join('\n'));
    nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'inherit', 'inherit'] });
    await h.waitFor(`nginx to answer ${origin}/healthz`, () => h.httpGet(`${origin}/healthz`, { ca: cert.pem }), (r) => r.status === 200 && r.body.trim() === 'ok');
  });
  after(async () => {
    await h.closeAll();
    nginx?.kill('SIGTERM');
    await relay?.stop();
    rmSync(cert.dir, { recursive: true, force: true });
  });

  it('nginx -t accepts the documented configuration', () => {
    const res = spawnSync(NGINX, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
  });

  it('two pages through the proxy connect directly, and the relay sees the browsers, not the proxy', h.withLogs(async () => {
    const mark = h.logLines('relay').length;
    peers = await twoDirectPeers(origin, cert, `nginx-${Date.now()}`);
    for (const peer of peers) assertWssOnOrigin(await pageFacts(peer), origin);
    const opened = h.logLines('relay').slice(mark).filter((l) => l.includes('connection opened'));
    assert.ok(opened.length >= 2, `the relay logged the pages' connections: ${opened.join('\n')}`);
    for (const line of opened) {
      assert.match(line, /addr=\/ip4\/127\.0\.0\.1\/tcp\/0\/ws/, `client address from X-Forwarded-For: ${line}`);
      assert.doesNotMatch(line, /127\.0\.0\.2/, `the proxy's own address must not be taken for the client: ${line}`);
    }
  }, () => peers));
});
