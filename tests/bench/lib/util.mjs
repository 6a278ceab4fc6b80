// Small helpers shared by the benchmark modules.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `probe` until `done(value)` holds and return the value. Unlike the
 * harness's waitFor, an error thrown by `probe` ends the wait at once (a failed
 * transfer must not be waited out). Throws on timeout with the last value.
 */
export async function poll(what, probe, done, { timeout, interval = 250 }) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() >= deadline) break;
    await sleep(interval);
  }
  throw new Error(`timed out after ${Math.round(timeout / 1000)} s waiting for ${what}; last value: ${JSON.stringify(last)?.slice(0, 500)}`);
}

/** A progress printer that prints at most every `everyMs`. */
export function throttle(fn, everyMs = 5_000) {
  let last = Date.now();
  return (...args) => {
    if (Date.now() - last < everyMs) return;
    last = Date.now();
    fn(...args);
  };
}

/** Generous bound for moving `bytes`: 60 s plus 1 s per MB (a working transfer here does 5–20 MB/s). */
export const transferTimeout = (bytes) => 60_000 + bytes / 1e3;

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
