// Human-readable sizes, speeds and durations (decimal units: 1 MB = 10^6 bytes).

const UNITS = ['kB', 'MB', 'GB', 'TB'];

export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '—';
  if (n < 1000) return `${Math.round(n)} B`;
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i += 1;
  }
  const digits = v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${v.toFixed(digits)} ${UNITS[i]}`;
}

export function formatSpeed(bytesPerSecond) {
  if (typeof bytesPerSecond !== 'number' || !Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) return '—';
  const mb = bytesPerSecond / 1e6;
  return `${mb < 10 ? mb.toFixed(2) : mb.toFixed(1)} MB/s`;
}

export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m % 60).padStart(2, '0')} min`;
}

export function formatPercent(done, total) {
  if (!(total > 0)) return '0%';
  const p = (100 * done) / total;
  // Never show 100% before it is really complete.
  return done < total ? `${Math.min(p, 99.9).toFixed(p < 10 ? 1 : 0)}%` : '100%';
}

/** `12D3KooW…x9Yz`: peer ids are long; the full id goes in a title attribute. */
export function shortId(id) {
  const s = String(id);
  return s.length > 20 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s;
}

/**
 * Download speed smoothed over the last few seconds of (time, bytes) samples.
 */
export class SpeedMeter {
  constructor(windowMs = 4000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  add(bytes, now = performance.now()) {
    const last = this.samples[this.samples.length - 1];
    if (last && bytes < last.bytes) this.samples = []; // restarted: start over
    if (last && now - last.t < 200 && bytes === last.bytes) return;
    this.samples.push({ t: now, bytes });
    while (this.samples.length > 2 && now - this.samples[1].t >= this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or null until there is half a second of history. */
  rate() {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || last.t - first.t < 500) return null;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }
}
