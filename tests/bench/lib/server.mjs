// A tiny HTTP server on 127.0.0.1 for the tabs that do not run shoal (raw data
// channel, WebTorrent): a blank page and WebTorrent's ESM browser bundle.
// A real loopback server, not a Playwright route: Chromium's Local Network
// Access checks block ws://127.0.0.1 (the tracker) from a page whose response
// did not come from a local address.

import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const WEBTORRENT_BUNDLE = require.resolve('webtorrent/dist/webtorrent.min.js');
const BLANK = '<!doctype html><meta charset="utf-8"><title>shoal bench</title><body></body>';

/** Start the server; { url, stop }. */
export function startBenchServer() {
  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://x');
    if (pathname === '/webtorrent.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      createReadStream(WEBTORRENT_BUNDLE).pipe(res);
    } else if (pathname === '/blank.html' || pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(BLANK);
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}
