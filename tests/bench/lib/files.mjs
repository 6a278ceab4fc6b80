// Random test files on disk (so no tab holds them in memory: pages get them
// through <input type=file>, i.e. disk-backed File objects), and spot checks
// that a downloaded File holds the same bytes.

import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

export const MiB = 1024 * 1024;

/** Write `bytes` random bytes to `file`, 4 MiB at a time. */
export function writeRandomFile(file, bytes) {
  const fd = openSync(file, 'w');
  try {
    const buf = Buffer.alloc(4 * MiB);
    for (let done = 0; done < bytes; ) {
      const n = Math.min(buf.length, bytes - done);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Byte ranges to compare: start, end, and two in between (each ≤ 1 MiB). */
export function spotRanges(size) {
  const len = Math.min(MiB, size);
  const starts = [0, Math.floor(size / 3), Math.floor((2 * size) / 3), size - len];
  return [...new Set(starts)].map((s) => [s, Math.min(size, s + len)]);
}

/** SHA-256 (hex) of each range of the file on disk. */
export function hashRanges(file, ranges) {
  const fd = openSync(file, 'r');
  try {
    return ranges.map(([a, b]) => {
      const buf = Buffer.alloc(b - a);
      readSync(fd, buf, 0, buf.length, a);
      return createHash('sha256').update(buf).digest('hex');
    });
  } finally {
    closeSync(fd);
  }
}

/** Evaluated in a page: SHA-256 (hex) of each range of the File at `window[key]`. */
export async function hashRangesInPage([key, ranges]) {
  const file = key.split('.').reduce((o, k) => o[k], window);
  const out = [];
  for (const [a, b] of ranges) {
    const digest = await crypto.subtle.digest('SHA-256', await file.slice(a, b).arrayBuffer());
    out.push([...new Uint8Array(digest)].map((x) => x.toString(16).padStart(2, '0')).join(''));
  }
  return out;
}
