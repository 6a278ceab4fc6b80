// The page's service worker: play while downloading. It answers requests for
// `/stream/<shareId>/<path>` (a <video>, <audio> or <iframe> src) from the
// node in the page that asked, and leaves every other request alone.
//
// - The page (ui/stream.js) registers it only once a file that plays starts
//   downloading, so pages that never stream never run it.
// - For each request it asks the page, over a MessageChannel, what the file
//   is (`info`: size and type, or not found), then answers the Range header:
//   206 with Content-Range, 200 without a Range (or with several: the whole
//   file), 416 for a range outside the
//   file, 404 for a share or path the page does not know.
// - The body is a ReadableStream that asks the page for one piece at a time
//   (`read`: the node resolves once those bytes are verified and stored), so
//   a file is never whole in memory here, and a cancelled request (a seek,
//   a closed player) stops asking.

/** Bytes asked of the page per read: one chunk at the default chunk size. */
const PIECE = 256 * 1024;
/** How long the page may take to answer `info` before the request fails. */
const INFO_TIMEOUT_MS = 10_000;

self.addEventListener('install', () => self.skipWaiting());
// Control the page that registered it at once: it plays in this page load.
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith('/stream/')) return;
  if (event.request.method !== 'GET' && event.request.method !== 'HEAD') return;
  event.respondWith(answer(event, url));
});

/** One question to `client`; resolves to its answer (or rejects after `ms`). */
function ask(client, message, ms) {
  return new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    const timer = ms ? setTimeout(() => reject(new Error('the page did not answer')), ms) : 0;
    channel.port1.onmessage = (ev) => {
      clearTimeout(timer);
      channel.port1.close();
      if (ev.data?.error) reject(Object.assign(new Error(ev.data.error), { status: ev.data.status }));
      else resolve(ev.data);
    };
    client.postMessage({ shoalStream: message }, [channel.port2]);
  });
}

/**
 * The page that can serve `share`: the one that made the request, else
 * (an iframe's navigation, a new tab) any window of this origin that knows it.
 */
async function pageFor(event, share, path) {
  const candidates = [];
  const own = event.clientId ? await self.clients.get(event.clientId) : null;
  if (own) candidates.push(own);
  for (const c of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) {
    if (c.id !== own?.id) candidates.push(c);
  }
  for (const client of candidates) {
    try {
      return { client, info: await ask(client, { op: 'info', share, path }, INFO_TIMEOUT_MS) };
    } catch {
      // Not this page.
    }
  }
  return null;
}

/**
 * Several well-formed byte ranges (`bytes=0-1,5-9`): answered with the whole
 * file (200), which RFC 9110 allows a server to do rather than send a
 * multipart body; a player never asks for several.
 */
function severalRanges(header) {
  const m = /^bytes=(.*)$/.exec(header.trim());
  if (!m) return false;
  const specs = m[1].split(',');
  return specs.length > 1 && specs.every((r) => /^\s*(\d+-\d*|-\d+)\s*$/.test(r));
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` of a file of `size` bytes → [start, end] or null (416). */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start;
  let end;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return null;
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || start >= size || end < start) return null;
  return [start, end];
}

function plain(status, text, headers = {}) {
  return new Response(text, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers } });
}

async function answer(event, url) {
  const parts = url.pathname.slice('/stream/'.length).split('/');
  const share = parts[0];
  let path;
  try {
    path = parts.slice(1).map(decodeURIComponent).join('/');
  } catch {
    return plain(400, 'bad path');
  }
  const found = await pageFor(event, share, path);
  if (!found) return plain(404, 'no page of this site has that share');
  const { client, info } = found;
  const size = info.size;
  const headers = {
    'Content-Type': info.type || 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  };
  // The page picks the type from the name's extension (ui/stream.js), never
  // as the peer said; a text shown in a frame runs nothing besides (a
  // sandboxed document has no script and an origin of its own). Not for PDF:
  // Chromium's viewer does not open in a sandboxed frame.
  if (headers['Content-Type'].startsWith('text/')) headers['Content-Security-Policy'] = "sandbox; default-src 'none'";
  const header = event.request.headers.get('Range');
  let start = 0;
  let end = size - 1;
  let status = 200;
  if (header && !severalRanges(header)) {
    const range = parseRange(header, size);
    if (!range) return plain(416, 'range not satisfiable', { 'Content-Range': `bytes */${size}` });
    [start, end] = range;
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['Content-Length'] = String(size === 0 ? 0 : end - start + 1);
  if (event.request.method === 'HEAD' || size === 0) return new Response(null, { status, headers });
  let pos = start;
  const body = new ReadableStream({
    async pull(controller) {
      const len = Math.min(PIECE, end + 1 - pos);
      try {
        const { bytes } = await ask(client, { op: 'read', share, path, offset: pos, length: len });
        const view = new Uint8Array(bytes);
        if (view.byteLength === 0) throw new Error('the page read nothing');
        pos += view.byteLength;
        controller.enqueue(view);
        if (pos > end) controller.close();
      } catch (e) {
        controller.error(e);
      }
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status, headers });
}
