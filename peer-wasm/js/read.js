// Reads of a Blob (a picked File, or a finished download) into reused
// buffers: from start to end for hashing a share (blobReader), and one chunk
// at a time for serving it (blobRead).
//
// Blob.slice().arrayBuffer() per chunk makes a fresh ArrayBuffer per chunk,
// and Chromium collects them late: a tab hashing a 4 GiB file that way
// reached 443 MiB RSS (make bench-transfer --only memory), 1 GiB read in
// 256 KiB slices left +190 MiB behind, and the same read with a gc() every
// 64 slices stayed flat. A BYOB reader of blob.stream() fills the same buffer
// again and again: flat, and about 5× faster (1 GiB in 1.0 s against 5 s).
// Where a blob's stream has no BYOB reader, this falls back to slices.
//
// No read is issued past the blob's size: Chromium was seen to leave a read
// pending for good once a blob stream's bytes were all taken.

import { giveBack, takeBuffer } from './opfs.js';

/**
 * `len` bytes at `offset` of `blob` (fewer at its end) in a pooled buffer:
 * hand the view to opfsRecycle once copied. A BYOB reader of the slice's
 * stream, cancelled after it, instead of slice().arrayBuffer(), whose fresh
 * buffer per served chunk is the garbage the header above describes.
 */
export async function blobRead(blob, offset, len) {
  const part = blob.slice(offset, offset + len);
  const want = part.size;
  let reader;
  try {
    reader = part.stream().getReader({ mode: 'byob' });
  } catch {
    return new Uint8Array(await part.arrayBuffer());
  }
  let buf = takeBuffer(Math.max(want, 1));
  let filled = 0;
  try {
    while (filled < want) {
      const { done, value } = await reader.read(new Uint8Array(buf, filled, want - filled));
      if (value) buf = value.buffer;
      if (done) break;
      filled += value.byteLength;
    }
  } catch (e) {
    giveBack(buf);
    throw e;
  } finally {
    reader.cancel().catch(() => {});
  }
  return new Uint8Array(buf, 0, filled);
}

export function blobReader(blob) {
  let reader = null;
  try {
    reader = blob.stream().getReader({ mode: 'byob' });
  } catch {
    reader = null;
  }
  let buf = null;
  let offset = 0;
  return {
    /** The next `len` bytes (fewer only at the end), as a view that is valid until the next call. */
    async read(len) {
      const want = Math.max(0, Math.min(len, blob.size - offset));
      if (!reader) {
        const ab = await blob.slice(offset, offset + want).arrayBuffer();
        offset += ab.byteLength;
        return new Uint8Array(ab);
      }
      if (!buf || buf.byteLength < want) buf = new ArrayBuffer(Math.max(want, 1));
      let filled = 0;
      while (filled < want) {
        const { done, value } = await reader.read(new Uint8Array(buf, filled, want - filled));
        if (value) buf = value.buffer;
        if (done) throw new Error(`the file ended after ${offset + filled} of ${blob.size} bytes: it changed while it was read`);
        filled += value.byteLength;
      }
      offset += filled;
      return new Uint8Array(buf, 0, filled);
    },
    close() {
      if (reader) reader.cancel().catch(() => {});
      reader = null;
    },
  };
}
