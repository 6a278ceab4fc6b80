// How busy the machine is before a benchmark starts (it has 2 cores shared
// with other work): machine-wide CPU and the busiest processes, from /proc.

import os from 'node:os';
import { allProcesses, machineTicks } from './browsers.mjs';
import { sleep } from './util.mjs';

/** Machine-wide CPU busy (in cores) over `ms`, the load average, and the busiest processes. */
export async function idleLoad(ms = 3_000) {
  const procs = () => new Map(allProcesses().map((p) => [p.pid, p]));
  const p0 = procs();
  const a = machineTicks();
  await sleep(ms);
  const b = machineTicks();
  const p1 = procs();
  const cpus = os.availableParallelism();
  const top = [...p1.values()]
    .map((p) => ({ comm: p.comm, cores: (p.cpu - (p0.get(p.pid)?.cpu ?? p.cpu)) / (ms / 1000) }))
    .filter((p) => p.cores >= 0.05)
    .sort((x, y) => y.cores - x.cores)
    .slice(0, 4);
  return { cores: ((b.busy - a.busy) / (b.total - a.total)) * cpus, loadavg: os.loadavg(), top };
}

/** One line for a section's header from idleLoad(). */
export function loadLine(idle) {
  const busiest = idle.top.map((p) => `${p.comm} ${p.cores.toFixed(2)}`).join(', ');
  const state = idle.cores > 0.3 ? `**machine was loaded by other work**${busiest ? ` (busiest, in cores: ${busiest})` : ''}` : 'machine idle at start';
  return `${idle.cores.toFixed(2)} cores busy (3 s sample), load average ${idle.loadavg.map((x) => x.toFixed(2)).join(' ')}; ${state}`;
}
