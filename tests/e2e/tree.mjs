// The tree of files the folder tests share: made and hashed in the sharer's
// page, and what a test needs to check a download of some of its files.

/** Chunk size of a share this small (share/src/chunk.rs DEFAULT_CHUNK_SIZE). */
export const CHUNK = 256 * 1024;

/** In A's page: make the tree, share it; return { link, files: [{ path, size, sha256 }] }. */
export async function shareTreeInPage() {
  const hex = async (blob) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())), (b) => b.toString(16).padStart(2, '0')).join('');
  const random = (size) => {
    const parts = [];
    for (let off = 0; off < size; off += 65536) {
      const part = new Uint8Array(Math.min(65536, size - off));
      crypto.getRandomValues(part);
      parts.push(part);
    }
    return new Blob(parts);
  };
  const dirs = ['', 'docs/', 'docs/заметки/', 'photos/2024/', 'photos/2024/夏/', 'src/a/b/c/', 'Ελληνικά/', 'emoji 🐟/'];
  const entries = [];
  for (let i = 0; i < 60; i++) {
    // Empty, small, a few hundred KiB (crossing chunk boundaries), some larger.
    const size = i % 7 === 0 ? 0 : i % 5 === 0 ? 300_000 + i * 1000 : i % 11 === 0 ? 700_000 : 1 + ((i * 7919) % 40_000);
    const names = ['file', 'Привет', '日本語', 'café', 'naïve résumé', 'x'];
    entries.push({ path: `${dirs[i % dirs.length]}${names[i % names.length]} ${i}.bin`, file: random(size) });
  }
  const files = [];
  for (const e of entries) files.push({ path: e.path, size: e.file.size, sha256: await hex(e.file) });
  const link = await window.shoal.shareFiles('Фото & files', entries);
  return { link, files };
}

export const byPath = (a, b) => (Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));

/** The chunks holding any byte of `files` ({ offset, size }). */
export function chunksOf(files) {
  const set = new Set();
  for (const f of files) {
    if (f.size === 0) continue;
    for (let c = Math.floor(f.offset / CHUNK); c <= Math.floor((f.offset + f.size - 1) / CHUNK); c++) set.add(c);
  }
  return set;
}
