// What both benchmarks share: their command line, the machine they ran on,
// and rewriting their own section of BENCHMARKS.md.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../../e2e/harness.mjs';

/** `flag('--x')` and `option('--n', fallback)` over this process's arguments. */
export function cliArgs(argv = process.argv.slice(2)) {
  const flag = (name) => argv.includes(name);
  const option = (name, fallback) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
  };
  return { argv, flag, option };
}

/**
 * What every benchmark runs against, unless told otherwise: the release relay and the
 * release page (`www/`, no test switches). Returns the command line to print and record.
 */
export function benchCommand(script, argv) {
  if (!process.env.SHOAL_RELAY_BIN) {
    const release = path.join(REPO, 'target', 'release', 'relay');
    if (existsSync(release)) process.env.SHOAL_RELAY_BIN = release;
  }
  process.env.SHOAL_WWW ??= path.join(REPO, 'www');
  return [
    process.env.SHOAL_RELAY_BIN ? `SHOAL_RELAY_BIN=${path.relative(REPO, process.env.SHOAL_RELAY_BIN)}` : '',
    `node ${script}`,
    ...argv,
  ].filter(Boolean).join(' ');
}

/** Architecture, core count, CPU model, memory. */
export function machine() {
  let cpu = 'unknown';
  try {
    cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux: keep "unknown".
  }
  return { arch: os.machine(), cpus: os.availableParallelism(), cpu, memGiB: os.totalmem() / 2 ** 30 };
}

/** Replaces the text between `start` and `end` in BENCHMARKS.md (or appends it); returns the path. */
export function writeSection(start, end, text) {
  const file = path.join(REPO, 'BENCHMARKS.md');
  let doc = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Benchmarks\n\nMeasured figures. Each section is rewritten by the command it names.\n';
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  if (a >= 0 && b > a) doc = doc.slice(0, a) + text + doc.slice(b + end.length);
  else doc = `${doc.trimEnd()}\n\n${text}\n`;
  writeFileSync(file, doc);
  return file;
}

/** Which build of the peer the pages load: short SHA-256, size and mtime of `<www>/pkg/peer_wasm_bg.wasm`. */
export function wasmBuild(www = path.join(REPO, 'www')) {
  const file = path.resolve(REPO, www, 'pkg', 'peer_wasm_bg.wasm');
  try {
    const buf = readFileSync(file);
    return `${createHash('sha256').update(buf).digest('hex').slice(0, 12)}, ${(buf.length / 1e6).toFixed(2)} MB, built ${statSync(file).mtime.toISOString()}`;
  } catch {
    return 'missing';
  }
}
