// Automatic certificates: the relay orders one over ACME from Debian's
// `pebble` (Let's Encrypt's test CA) on loopback, answers the TLS-ALPN-01
// challenge on its own port, serves the certificate it got, and after a
// restart serves it again from its cache without a new order.
//
// Pebble validates the challenge for real: it connects to localhost on the
// relay's port (its `tlsPort`) and checks the acme-tls/1 certificate.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';

import * as h from './harness.mjs';
import { selfSignedCert } from './tls.mjs';

const PEBBLE = '/usr/bin/pebble';

/** The certificate chain a TLS server on localhost:port presents (not verified). */
function peerCertificate(port) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate(true);
      socket.end();
      resolve(cert);
    });
    socket.setTimeout(2_000, () => socket.destroy(new Error('timed out')));
    socket.on('error', reject);
  });
}

describe('ACME (pebble on loopback, TLS-ALPN-01)', () => {
  let pebble;
  let pebbleCert;
  let dir;
  let port;
  let root;
  let relay;
  const pebbleLines = [];
  let acmeArgs = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'shoal-acme-'));
    pebbleCert = selfSignedCert('pebble');
    port = await h.freePort();
    const [api, mgmt] = [await h.freePort(), await h.freePort()];
    const config = path.join(dir, 'pebble.json');
    writeFileSync(config, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${api}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: pebbleCert.cert,
        privateKey: pebbleCert.key,
        httpPort: 5002,
        tlsPort: port,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }));
    // NOSLEEP: no random pause before validating; validation itself is real.
    const env = { ...process.env, PEBBLE_VA_NOSLEEP: '1' };
    delete env.PEBBLE_VA_ALWAYS_VALID;
    pebble = spawn(PEBBLE, ['-config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [pebble.stdout, pebble.stderr]) s.on('data', (d) => pebbleLines.push(...String(d).split('\n').filter(Boolean)));
    const rootRes = await h.waitFor('pebble to hand out its root', () => h.httpGet(`https://127.0.0.1:${mgmt}/roots/0`, { ca: pebbleCert.pem }), (r) => r.status === 200);
    root = rootRes.body;
    acmeArgs = [
      '--acme-domain', 'localhost',
      '--acme-directory', `https://127.0.0.1:${api}/dir`,
      '--acme-directory-ca', pebbleCert.cert,
      '--acme-cache', path.join(dir, 'cache'),
    ];
  });

  after(async () => {
    await relay?.stop();
    pebble?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    rmSync(pebbleCert.dir, { recursive: true, force: true });
  });

  const start = () => h.startRelay({ listen: `127.0.0.1:${port}`, https: true, host: 'localhost', ca: root, extraArgs: acmeArgs });

  it('orders a certificate, passes the challenge and serves it', h.withLogs(async () => {
    // startRelay waits for /healthz over https verified against pebble's root.
    relay = await start();
    const cert = await peerCertificate(port);
    assert.match(cert.subjectaltname ?? '', /DNS:localhost/);
    assert.match(cert.issuer?.CN ?? '', /Pebble/i, `issued by pebble: ${JSON.stringify(cert.issuer)}`);
    // A challenge was answered, and pebble (run without PEBBLE_VA_ALWAYS_VALID)
    // validated it by connecting back to the relay.
    assert.ok(pebbleLines.some((l) => l.includes('POST /chalZ/')), `a challenge was answered:\n${pebbleLines.join('\n')}`);
    assert.ok(readdirSync(path.join(dir, 'cache')).length > 0, 'the certificate is cached on disk');
  }));

  it('serves the cached certificate after a restart, without a new order', h.withLogs(async () => {
    const before = await peerCertificate(port);
    await relay.stop();
    const orders = () => pebbleLines.filter((l) => l.includes('Added order')).length;
    const issued = orders();
    relay = await start();
    const again = await peerCertificate(port);
    assert.equal(again.fingerprint256, before.fingerprint256, 'the same certificate, from the cache');
    assert.equal(orders(), issued, 'no new certificate was issued');
  }));
});
