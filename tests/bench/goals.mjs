// Issue #10's goals side by side: what each benchmark of the last `make bench`
// measured against its goal (the rows lib/goals.mjs keeps), printed and written
// into the "Goals" section of BENCHMARKS.md.
//
//   node tests/bench/goals.mjs [--no-write]   (`make bench` runs it last)
//   node tests/bench/goals.mjs --clear        (forget earlier runs' rows; `make bench` runs it first)

import { clearGoals, readGoals } from './lib/goals.mjs';
import { cliArgs, machine, writeSection } from './lib/report.mjs';

const SECTION_START = '<!-- bench:goals -->';
const SECTION_END = '<!-- /bench:goals -->';
const { flag } = cliArgs();

const verdict = (met) => (met === null ? '—' : met ? 'met' : '**NOT met**');

function section(scripts) {
  const m = machine();
  const L = [SECTION_START, '## Goals of issue #10, as the last `make bench` measured them', ''];
  L.push(`- Machine: ${m.arch}, ${m.cpus} CPUs, ${m.cpu}`);
  L.push('- Command: `make bench` (connect.mjs, transfer.mjs; each writes its rows, then `node tests/bench/goals.mjs` prints them)');
  L.push(`- Runs: ${scripts.map((s) => `${s.script} ${s.date}`).join('; ')}`);
  L.push('', '| measure | figure | goal | |', '| --- | ---: | --- | --- |');
  for (const s of scripts) for (const r of s.rows) L.push(`| ${r.what} | ${r.figure} | ${r.target} | ${verdict(r.met)} |`);
  const rows = scripts.flatMap((s) => s.rows).filter((r) => r.met !== null);
  L.push('', `${rows.filter((r) => r.met).length} of ${rows.length} goals met in this run. The sections below have each figure's method and its runs.`, '');
  L.push(SECTION_END);
  return L.join('\n');
}

if (flag('--clear')) {
  clearGoals();
} else {
  const scripts = readGoals();
  if (!scripts.length) {
    console.error('no goal rows: run the benchmarks first (make bench)');
    process.exitCode = 1;
  } else {
    const text = section(scripts);
    console.log(`\n${text}\n`);
    if (!flag('--no-write')) console.log(`wrote ${writeSection(SECTION_START, SECTION_END, text)}`);
  }
}
