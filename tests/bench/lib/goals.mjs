// Issue #10's goals, each benchmark's verdict on the ones it measures.
//
// Each script records its rows in tests/.artifacts/bench/goals-<script>.json
// (rewritten by every run of it); tests/bench/goals.mjs prints them side by
// side and writes the "Goals" section of BENCHMARKS.md. `make bench` clears
// the files first, so the summary it prints is of one run.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../../e2e/harness.mjs';

export const GOALS_DIR = path.join(REPO, 'tests', '.artifacts', 'bench');
const PREFIX = 'goals-';

/**
 * A goal's row: what is measured, the figure (text, with its unit), the goal
 * (text) and whether it is met (`null`: reported, no goal).
 */
export const goalRow = (what, figure, target, met) => ({ what, figure, target, met });

/** Replace `script`'s rows (e.g. 'transfer', 'connect') with `rows`. */
export function recordGoals(script, date, rows) {
  mkdirSync(GOALS_DIR, { recursive: true });
  const file = path.join(GOALS_DIR, `${PREFIX}${script}.json`);
  writeFileSync(file, `${JSON.stringify({ script, date, rows }, null, 2)}\n`);
  return file;
}

/** The goal files of the runs on record, by name. */
function goalFiles() {
  try {
    return readdirSync(GOALS_DIR).filter((f) => f.startsWith(PREFIX) && f.endsWith('.json')).sort();
  } catch {
    return [];
  }
}

/** Every script's rows, by script name. */
export function readGoals() {
  return goalFiles().map((f) => JSON.parse(readFileSync(path.join(GOALS_DIR, f), 'utf8')));
}

/** Forget the rows of earlier runs (`make bench` starts with this). */
export function clearGoals() {
  for (const f of goalFiles()) rmSync(path.join(GOALS_DIR, f), { force: true });
}
