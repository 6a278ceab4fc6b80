// Real certificates for tests: a self-signed one made with openssl, and how
// to make a headless Chromium trust exactly that key (no blanket "ignore
// certificate errors": a different certificate still fails).

import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A self-signed P-256 certificate for `ips` and localhost.
 * @returns {{ dir: string, cert: string, key: string, pem: string, spki: string }}
 *   `spki`: base64 SHA-256 of the public key, for `--ignore-certificate-errors-spki-list`.
 */
export function selfSignedCert(name = 'shoal-test', ips = ['127.0.0.1']) {
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-days', '2', '-subj', `/CN=${name}`,
    '-addext', `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')},DNS:localhost`,
    // An end-entity certificate (openssl's default is a CA, which rustls's
    // webpki refuses to accept as a server certificate).
    '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'keyUsage=critical,digitalSignature',
    '-addext', 'extendedKeyUsage=serverAuth',
    '-keyout', key, '-out', cert,
  ], { stdio: 'pipe' });
  const pem = readFileSync(cert, 'utf8');
  return { dir, cert, key, pem, spki: spkiHash(pem) };
}

/** base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate. */
export function spkiHash(pem) {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/** Chromium flags that make it accept certificates with exactly these keys. */
export function trustArgs(...spkis) {
  return [`--ignore-certificate-errors-spki-list=${spkis.join(',')}`];
}

/** Runs in a page before its scripts: record the URL of every WebSocket it opens. */
export function recordWebSockets() {
  const Native = window.WebSocket;
  window.__ws = [];
  class RecordedWebSocket extends Native {
    constructor(url, ...rest) {
      super(url, ...rest);
      window.__ws.push(String(url));
    }
  }
  window.WebSocket = RecordedWebSocket;
}
