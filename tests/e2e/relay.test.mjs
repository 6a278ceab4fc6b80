// The relay's HTTP side, against the real binary: health, info, the page, the wasm.

import assert from 'node:assert/strict';
import http from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import * as h from './harness.mjs';

const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;

describe('relay HTTP endpoints', () => {
  let relay;
  let setupError = null;

  before(async () => {
    try {
      relay = await h.startRelay();
    } catch (e) {
      setupError = e;
    }
  });
  after(async () => {
    await relay?.stop();
  });

  const it = (name, fn) =>
    test(name, { timeout: h.WAIT_MS }, async (t) => {
      if (setupError) throw new Error(`set-up failed: ${setupError.message}`);
      await h.withLogs(fn)(t);
    });
  const get = (path) => fetch(`${relay.url}${path}`, { signal: AbortSignal.timeout(h.WAIT_MS) });

  it('GET /healthz answers "ok"', async () => {
    const res = await get('/healthz');
    assert.equal(res.status, 200);
    assert.equal((await res.text()).trim(), 'ok');
  });

  it('GET /api/info describes the relay', async () => {
    const res = await get('/api/info');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const info = await res.json();
    assert.equal(typeof info.peerId, 'string');
    assert.match(info.peerId, BASE58);
    // One port: the libp2p WebSocket is at /p2p on the page's own origin.
    assert.equal(info.p2pPath, '/p2p');
    const port = new URL(relay.url).port;
    assert.ok(Array.isArray(info.listenAddrs) && info.listenAddrs.length > 0, `listenAddrs = ${JSON.stringify(info.listenAddrs)}`);
    for (const addr of info.listenAddrs) assert.match(addr, /^\//, `not a multiaddr: ${addr}`);
    assert.ok(
      info.listenAddrs.some((a) => a.includes(`/tcp/${port}/ws/p2p/${info.peerId}`)),
      `no listen address on the page's port ${port}: ${JSON.stringify(info.listenAddrs)}`,
    );
    assert.ok(Number.isInteger(info.stunPort) && info.stunPort > 0, `stunPort = ${info.stunPort}`);
    assert.deepEqual(info.iceServers, []);
    assert.equal(typeof info.version, 'string');
    assert.ok(info.version.length > 0);
  });

  it('serves the page: index.html, page.js (app.js bundled), style.css', async () => {
    const index = await get('/');
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    const html = await index.text();
    assert.match(html, /<script type="module" src="page\.js">/);

    const js = await get('/page.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);

    const css = await get('/style.css');
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
  });

  it('serves the wasm peer with content-type application/wasm', async () => {
    const js = await get('/pkg/peer_wasm.js');
    assert.equal(js.status, 200, 'GET /pkg/peer_wasm.js (is the wasm built? `make build`)');
    assert.match(js.headers.get('content-type') ?? '', /javascript/);

    const wasm = await get('/pkg/peer_wasm_bg.wasm');
    assert.equal(wasm.status, 200, 'GET /pkg/peer_wasm_bg.wasm');
    // WebAssembly.instantiateStreaming refuses anything else.
    assert.match(wasm.headers.get('content-type') ?? '', /^application\/wasm/);
    const bytes = new Uint8Array(await wasm.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], 'wasm magic number');

    // An import from "env" means a native dependency leaked into the wasm build.
    const fromEnv = WebAssembly.Module.imports(new WebAssembly.Module(bytes)).filter((i) => i.module === 'env');
    assert.deepEqual(fromEnv, [], 'the wasm imports from "env"');
  });

  it('serves the wasm pre-compressed: brotli or gzip as the client accepts, the same bytes', async () => {
    // node:http, not fetch: fetch decodes for us and hides what came over the wire.
    const raw = (encoding) =>
      new Promise((resolve, reject) => {
        const req = http.get(`${relay.url}/pkg/peer_wasm_bg.wasm`, { headers: { 'accept-encoding': encoding } }, (res) => {
          const parts = [];
          res.on('data', (d) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
        });
        req.on('error', reject);
        req.setTimeout(h.WAIT_MS, () => req.destroy(new Error('timeout')));
      });
    const plain = await raw('identity');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    const br = await raw('br, gzip');
    assert.equal(br.headers['content-encoding'], 'br');
    assert.match(br.headers['content-type'] ?? '', /^application\/wasm/);
    assert.ok(brotliDecompressSync(br.body).equals(plain.body), 'the .br copy is not the wasm that is served');
    const gz = await raw('gzip');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gunzipSync(gz.body).equals(plain.body), 'the .gz copy is not the wasm that is served');
    process.stderr.write(`wasm: ${plain.body.length} bytes, brotli ${br.body.length}, gzip ${gz.body.length}\n`);
  });
});
