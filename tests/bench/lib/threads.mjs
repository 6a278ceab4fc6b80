// CPU time by thread, for every process of a browser: where a transfer's
// CPU-seconds go below the process level (a tab's main thread, Chromium's
// WebRTC network thread that runs SCTP/DTLS, workers, the storage service).
// Read from /proc/<pid>/task/<tid>/stat; thread names are the kernel's `comm`
// (at most 15 characters, as Chromium set them).

import { readdirSync, readFileSync } from 'node:fs';
import { processTree } from './browsers.mjs';

const CLK_TCK = 100;

function threads(pid) {
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out = [];
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ tid: Number(tid), name, cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

// Pool threads carry a number or a role suffix; one row per kind of thread.
const threadKind = (name) => name.replace(/[/:#]?\d+$/, '').replace(/ThreadPoolForeg|ThreadPoolBackg|ThreadPoolSingl/, 'ThreadPool').trim() || name;

// `renderer` here means any renderer of the browser; the tab's own is the busiest.
const processKind = (type) => {
  const t = type.toLowerCase();
  if (t === 'renderer') return 'renderer';
  if (t.includes('network')) return 'network service';
  if (t.includes('storage')) return 'storage service';
  if (t === 'gpu-process') return 'gpu';
  if (t === 'browser') return 'browser';
  return t;
};

/** { `${process} / ${thread kind}`: CPU seconds so far } over the browser's process tree. */
export function threadSnapshot(browserPid) {
  const snap = new Map();
  for (const { pid, type } of processTree(browserPid)) {
    for (const t of threads(pid)) {
      // A process's first thread carries the process's name ("chromium"): call it what it is.
      const thread = t.tid === pid ? 'main thread' : threadKind(t.name);
      snap.set(`${pid}/${t.tid}`, { key: `${processKind(type)} / ${thread}`, cpu: t.cpu });
    }
  }
  return snap;
}

/** CPU seconds per `process / thread kind` between two snapshots, largest first. */
export function threadDelta(before, after) {
  const sums = new Map();
  for (const [id, { key, cpu }] of after) {
    const used = Math.max(0, cpu - (before.get(id)?.cpu ?? 0));
    if (used > 0) sums.set(key, (sums.get(key) ?? 0) + used);
  }
  return [...sums.entries()].map(([key, seconds]) => ({ key, seconds })).sort((a, b) => b.seconds - a.seconds);
}
