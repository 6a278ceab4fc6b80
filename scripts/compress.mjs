// Pre-compress the page's assets for the relay, which serves `x.br` or `x.gz` in place of `x`
// when the browser accepts it (tower-http ServeDir, precompressed_br/_gzip).
//
//   node scripts/compress.mjs DIR...
//
// Writes `.br` (quality 11) and `.gz` (level 9) beside every .wasm, .js, .css, .html and .svg
// under each DIR, and deletes compressed copies whose original is gone. A copy is rewritten
// only when it is older than its original, so a second run is a no-op.

import { existsSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const EXTS = new Set(['.wasm', '.js', '.css', '.html', '.svg']);
const KINDS = {
  '.br': (b) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: b.length } }),
  '.gz': (b) => gzipSync(b, { level: 9 }),
};

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* files(p);
    else yield p;
  }
}

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error('usage: node scripts/compress.mjs DIR...');
  process.exit(2);
}
let written = 0;
for (const dir of dirs) {
  for (const file of files(dir)) {
    const ext = path.extname(file);
    if (ext in KINDS) {
      if (!existsSync(file.slice(0, -ext.length))) unlinkSync(file);
      continue;
    }
    if (!EXTS.has(ext)) continue;
    const mtime = statSync(file).mtimeMs;
    let bytes = null;
    for (const [suffix, compress] of Object.entries(KINDS)) {
      const out = file + suffix;
      if (existsSync(out) && statSync(out).mtimeMs >= mtime) continue;
      bytes ??= readFileSync(file);
      writeFileSync(out, compress(bytes));
      written++;
    }
  }
}
console.log(`compress: ${written} file(s) written in ${dirs.join(' ')}`);
