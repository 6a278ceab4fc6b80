// A tab's main thread from a CDP Profiler profile: self time by category
// (the peer's wasm by crate, when the build keeps its name section; the JS
// glue; the page's own JS; the browser's work) and the top functions.

import path from 'node:path';

export const CATEGORIES = [
  ['BLAKE3 hashing (wasm)', (fn) => /blake3/i.test(fn)],
  ['memcpy / memmove / memset (wasm)', (fn) => /\bmem(cpy|move|set|cmp)\b|compiler_builtins::mem/.test(fn)],
  ['allocator (wasm)', (fn) => /dlmalloc|__rust_(alloc|dealloc|realloc)|__rdl_|alloc::raw_vec|\bmalloc\b|\bfree\b/.test(fn)],
  ['libp2p and its codecs (wasm)', (fn) => /libp2p|multistream|multiaddr|quick_protobuf|prost|unsigned_varint|asynchronous_codec/.test(fn)],
  ['shoal share: blocks protocol, scheduler, store rules (wasm)', (fn) => /shoal_share|shoal_proto/.test(fn)],
  ['peer-wasm: drivers, data-channel framing, storage glue (wasm)', (fn) => /peer_wasm/.test(fn)],
  ['futures, executor, wasm-bindgen runtime (wasm)', (fn) => /futures|wasm_bindgen|js_sys|web_sys|send_wrapper/.test(fn)],
  ['other wasm', (fn, url) => url.startsWith('wasm://') || /^wasm-function\[/.test(fn)],
  // peer_wasm.js has the peer's own JS (opfs.js, read.js) bundled in; older builds kept it in snippets/.
  ['peer JS: wasm-bindgen glue, OPFS and file reads (peer_wasm.js)', (fn, url) => url.endsWith('peer_wasm.js') || url.includes('/snippets/')],
  ['the page\'s JS (page.js: app.js and ui/)', (fn, url) => /\/(page\.js|app\.js|ui\/)/.test(url)],
  ['garbage collector', (fn) => fn === '(garbage collector)'],
  ['(program): Chromium\'s own work on the main thread', (fn) => fn === '(program)'],
  ['(idle)', (fn) => fn === '(idle)'],
  ['other JS and built-ins', () => true],
];

export function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const cf = byId.get(profile.samples[i]).callFrame;
    const key = JSON.stringify([cf.functionName || '(anonymous)', cf.url || '']);
    self.set(key, (self.get(key) ?? 0) + (dt[i + 1] ?? 0));
  }
  return [...self.entries()].map(([k, us]) => {
    const [fn, url] = JSON.parse(k);
    return { fn, url, ms: us / 1000 };
  });
}

export function attribute(profile) {
  const rows = selfTimes(profile);
  const busy = rows.filter((r) => r.fn !== '(idle)').reduce((a, r) => a + r.ms, 0);
  const cats = new Map(CATEGORIES.map(([name]) => [name, 0]));
  for (const r of rows) {
    if (r.fn === '(idle)') continue;
    const [name] = CATEGORIES.find(([, test]) => test(r.fn, r.url));
    cats.set(name, cats.get(name) + r.ms);
  }
  const pct = (ms) => (100 * ms) / busy;
  return {
    busyMs: busy,
    categories: [...cats.entries()].filter(([, ms]) => ms > 0).map(([name, ms]) => ({ name, pct: pct(ms) })).sort((a, b) => b.pct - a.pct),
    top: rows
      .filter((r) => r.fn !== '(idle)')
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 12)
      .map((r) => ({ fn: shortName(r.fn, r.url), pct: pct(r.ms) })),
  };
}

// Rust symbols with their hash and generic noise trimmed, JS with its file.
export function shortName(fn, url) {
  const name = fn.replace(/::h[0-9a-f]{16}$/, '').replace(/<[^<>]*>/g, '<…>');
  const clipped = name.length > 90 ? `${name.slice(0, 87)}…` : name;
  return url && !url.startsWith('wasm://') ? `${clipped} (${path.basename(url)})` : clipped;
}


/** Start the CDP Profiler on `page` (sampling every `intervalUs`); returns a stop() that resolves to the profile. */
export async function startProfiler(page, intervalUs = 500) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: intervalUs });
  await cdp.send('Profiler.start');
  return async () => {
    const { profile } = await cdp.send('Profiler.stop');
    await cdp.detach().catch(() => {});
    return profile;
  };
}
