// Reads of a Blob (a picked File, or a finished download) into reused
// buffers: from start to end for hashing a share (blobReader), and one chunk
// at a time for serving it (blobRead).
//
// Serving reads go through cursors: a BYOB reader of the blob's stream from
// some offset on, which the next read continues where the last one ended.
// Downloaders ask for equally rare chunks in runs of consecutive chunks
// (shoal_share::scheduler, Config::tie_run), so most chunks continue a
// cursor. A `Blob.slice` per 256 KiB chunk was the largest item on a
// sharer's main thread (a third of it: each slice is a round trip to the
// browser's blob registry, and each stream a new data pipe).
//
// Blob.slice().arrayBuffer() per chunk makes a fresh ArrayBuffer per chunk,
// and Chromium collects them late: a tab hashing a 4 GiB file that way
// reached 443 MiB RSS (make bench-transfer --only memory), 1 GiB read in
// 256 KiB slices left +190 MiB behind, and the same read with a gc() every
// 64 slices stayed flat. A BYOB reader of blob.stream() fills the same buffer
// again and again: flat, and about 5× faster (1 GiB in 1.0 s against 5 s).
//
// But Chromium 156 now and then leaves a BYOB read of a blob stream pending
// for good: in a page reading a 1 GiB file again and again, one of the first
// three passes hung, reading slice by slice and reading the whole stream
// alike. So every BYOB read has a deadline (READ_STALL_MS); a read that
// misses it is given up, and from then on this page reads by slices, as it
// also does where a blob's stream has no BYOB reader. No read is issued past
// a blob's size either.

import { giveBack, takeBuffer } from './opfs.js';

/** How long one BYOB read of a local file may take before it counts as stalled. */
const READ_STALL_MS = 3000;
const STALLED = Symbol('stalled');
/** Set for good at the first stalled read: slices from then on. */
let byobFailed = false;

/** `promise`, or STALLED thrown once READ_STALL_MS have passed without it. */
async function withDeadline(promise) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(STALLED), READ_STALL_MS);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A BYOB reader of `blob`'s stream, or null (none, or given up on). */
function byobReader(blob) {
  if (byobFailed) return null;
  try {
    return blob.stream().getReader({ mode: 'byob' });
  } catch {
    return null;
  }
}

/**
 * Fills `want` bytes from `reader` into `buf` (or a larger one) from its start.
 * Resolves to { buf, filled }; `filled` < `want` only when the stream ended.
 * A stalled read sets byobFailed and throws STALLED; `buf` is then lost (it
 * was handed to the pending read).
 */
async function fill(reader, buf, want) {
  let filled = 0;
  while (filled < want) {
    let r;
    try {
      r = await withDeadline(reader.read(new Uint8Array(buf, filled, want - filled)));
    } catch (e) {
      if (e === STALLED) byobFailed = true;
      throw e;
    }
    if (r.value) buf = r.value.buffer;
    if (r.done) break;
    filled += r.value.byteLength;
  }
  return { buf, filled };
}

/**
 * Open serving cursors, least recently used first: { blob, reader, next,
 * tail, used }. `next` is where the reads queued on it end; `tail` settles
 * when the last of them has.
 */
const cursors = [];
/**
 * Cursors open at once, over all blobs: a few downloaders' runs at a time.
 * Each holds a stream's data pipe (Chromium's blob streams buffer ahead), so
 * they are few, and one idle for CURSOR_IDLE_MS is closed by the next read.
 */
const MAX_CURSORS = 8;
const CURSOR_IDLE_MS = 10_000;

function closeCursor(c) {
  const i = cursors.indexOf(c);
  if (i >= 0) cursors.splice(i, 1);
  c.reader.cancel().catch(() => {});
}

/** The cursor that continues at `offset` of `blob`, or a new one (null: no BYOB reader). */
function cursorAt(blob, offset, now) {
  for (const c of [...cursors]) {
    if (c.blob === blob && c.next === offset) {
      cursors.splice(cursors.indexOf(c), 1);
      cursors.push(c);
      return c;
    }
    if (now - c.used > CURSOR_IDLE_MS) closeCursor(c);
  }
  const reader = byobReader(blob.slice(offset));
  if (!reader) return null;
  if (cursors.length >= MAX_CURSORS) closeCursor(cursors[0]);
  const c = { blob, reader, next: offset, tail: Promise.resolve(), used: now };
  cursors.push(c);
  return c;
}

/**
 * `len` bytes at `offset` of `blob` (fewer at its end) in a pooled buffer:
 * hand the view to opfsRecycle once copied.
 */
export async function blobRead(blob, offset, len) {
  const want = Math.max(0, Math.min(len, blob.size - offset));
  const now = performance.now();
  const c = cursorAt(blob, offset, now);
  if (c) {
    c.next = offset + want;
    c.used = now;
    const pooled = takeBuffer(Math.max(want, 1));
    // Reads on one cursor run one after another, in the order asked.
    const read = c.tail.then(() => fill(c.reader, pooled, want));
    c.tail = read.then(() => {}, () => {});
    try {
      const { buf, filled } = await read;
      if (filled === want) {
        if (c.next >= blob.size) closeCursor(c);
        return new Uint8Array(buf, 0, filled);
      }
      giveBack(buf);
    } catch (e) {
      // A stalled read keeps `pooled`; otherwise it may be back (or detached:
      // giveBack skips an empty buffer).
      if (e !== STALLED) giveBack(pooled);
    }
    // The cursor failed (a stall, or a stream that ended early or broke):
    // this read goes by a slice, which reports a file that changed.
    closeCursor(c);
  }
  return new Uint8Array(await blob.slice(offset, offset + want).arrayBuffer());
}

/** Reads `blob` from start to end: `read(len)` gives the next `len` bytes. */
export function blobReader(blob) {
  let reader = byobReader(blob);
  let buf = null;
  let offset = 0;
  return {
    /** The next `len` bytes (fewer only at the end), as a view that is valid until the next call. */
    async read(len) {
      const want = Math.max(0, Math.min(len, blob.size - offset));
      if (reader && !byobFailed) {
        if (!buf || buf.byteLength < want) buf = new ArrayBuffer(Math.max(want, 1));
        try {
          const r = await fill(reader, buf, want);
          buf = r.buf;
          if (r.filled < want) throw new Error(`the file ended after ${offset + r.filled} of ${blob.size} bytes: it changed while it was read`);
          offset += r.filled;
          return new Uint8Array(buf, 0, r.filled);
        } catch (e) {
          if (e !== STALLED) throw e;
          // Read this chunk again, and the rest, by slices.
          buf = null;
        }
      }
      if (reader) {
        reader.cancel().catch(() => {});
        reader = null;
      }
      const ab = await blob.slice(offset, offset + want).arrayBuffer();
      offset += ab.byteLength;
      return new Uint8Array(ab);
    },
    close() {
      if (reader) reader.cancel().catch(() => {});
      reader = null;
    },
  };
}

/** Reads by BYOB readers again (the browser-glue tests: one page runs them all). */
export function retryByob() {
  byobFailed = false;
}
