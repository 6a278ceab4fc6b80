// Stored shares in the origin-private file system (OPFS), and the Web Locks
// that let several tabs of one origin use them without deleting what another
// tab uses. What the files mean (names, the `.have` record, what is stray) is
// decided in Rust (shoal_share::resume); this file only moves bytes.
//
// - Each share is three files in the directory `shoal/` (resume::DIR):
//   `<id>.manifest`, `<id>.data` and `<id>.have`.
// - The data file of a download in progress is written and read at any offset
//   through a synchronous access handle, which only workers get: one dedicated
//   worker holds them all. Bytes travel as transferred ArrayBuffers.
// - Locks, named `shoal:<id>`: a tab downloading a share holds it exclusive;
//   a tab serving a complete one holds it shared. A tab deletes a share's
//   files only while it holds the lock exclusive and at once
//   (`ifAvailable`), so it never deletes what another tab holds. Locks die
//   with their tab (reload, crash), so nothing stays locked forever.
//
// Errors reject with an Error whose `name` is the DOMException's name
// (`QuotaExceededError` when the disk or the origin's quota is full).

const DIR = 'shoal';
const LEGACY_PREFIX = 'shoal-';
// After a reload the old page's lock and access handle go away a moment
// after the new page starts: wait this long for them before saying that
// another tab has the share.
const LOCK_WAIT_MS = 3000;
const OPEN_RETRIES = 30;
const OPEN_RETRY_MS = 100;

const WORKER_SOURCE = `
const handles = new Map();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function dir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(${JSON.stringify(DIR)}, { create: true });
}
// The old page's handle on this file closes shortly after a reload.
async function openHandle(file) {
  for (let i = 0; ; i++) {
    try {
      return await file.createSyncAccessHandle();
    } catch (e) {
      if (e.name !== 'NoModificationAllowedError' || i >= ${OPEN_RETRIES}) throw e;
      await sleep(${OPEN_RETRY_MS});
    }
  }
}
onmessage = async (ev) => {
  const { seq, op, name, offset, data, len } = ev.data;
  try {
    if (op === 'open') {
      const file = await (await dir()).getFileHandle(name, { create: true });
      const h = await openHandle(file);
      // The whole length at once: a disk or quota too small for the file
      // fails now (QuotaExceededError), not part-way; the holes cost nothing.
      try {
        if (h.getSize() < len) h.truncate(len);
      } catch (e) {
        h.close();
        throw e;
      }
      handles.set(name, h);
      postMessage({ seq });
    } else if (op === 'write') {
      const h = handles.get(name);
      const bytes = new Uint8Array(data, 0, len);
      let done = 0;
      while (done < bytes.length) done += h.write(bytes.subarray(done), { at: offset + done });
      // The buffer goes back to the page's pool.
      postMessage({ seq, data }, [data]);
    } else if (op === 'read') {
      const h = handles.get(name);
      const got = h.read(new Uint8Array(data, 0, len), { at: offset });
      postMessage({ seq, data, got }, [data]);
    } else if (op === 'flush') {
      handles.get(name)?.flush();
      postMessage({ seq });
    } else if (op === 'close') {
      const h = handles.get(name);
      if (h) { h.flush(); h.close(); handles.delete(name); }
      postMessage({ seq });
    }
  } catch (e) {
    postMessage({ seq, error: String(e && e.message || e), name: e && e.name });
  }
};`;

let worker = null;
let nextSeq = 0;
const pending = new Map();

// Chunk buffers shuttle between the page and the worker and are reused, so a
// long download makes no garbage per chunk (and the tab's memory stays flat).
const POOL_MAX = 16;
const pool = [];
// Buffers lent out for reads (here and in read.js) and given back once copied.
export function takeBuffer(len) {
  const i = pool.findIndex((b) => b.byteLength >= len && b.byteLength <= 2 * len);
  return i >= 0 ? pool.splice(i, 1)[0] : new ArrayBuffer(len);
}
export function giveBack(buf) {
  if (buf && buf.byteLength > 0 && pool.length < POOL_MAX) pool.push(buf);
}

function namedError(message, name) {
  const e = new Error(message);
  if (name) e.name = name;
  return e;
}

/**
 * Starts the worker if it is not running: a download calls this as it
 * begins, so that the thread is up by the time the data file opens.
 */
export function opfsWarm() {
  if (worker) return;
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  worker = new Worker(url);
  worker.onmessage = (ev) => {
    const p = pending.get(ev.data.seq);
    if (!p) return;
    pending.delete(ev.data.seq);
    if (ev.data.error !== undefined) p.reject(namedError(ev.data.error, ev.data.name));
    else p.resolve(ev.data);
  };
  worker.onerror = (ev) => {
    for (const p of pending.values()) p.reject(new Error(`OPFS worker: ${ev.message}`));
    pending.clear();
  };
}

function call(message, transfer = []) {
  opfsWarm();
  const seq = nextSeq++;
  return new Promise((resolve, reject) => {
    pending.set(seq, { resolve, reject });
    worker.postMessage({ seq, ...message }, transfer);
  });
}

async function shoalDir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(DIR, { create: true });
}

// ---- locks ----

const lockName = (key) => `shoal:${key}`;
/** key → { mode, token, release, done } for the locks this tab holds (`done`: settles once let go). */
const held = new Map();
let nextToken = 1;

// Resolves to a token (> 0) once `mode` is held on `key` (kept until
// opfsUnlock), or 0 if it cannot be had within `waitMs` (0: only if free now).
function acquire(key, mode, waitMs) {
  return new Promise((resolve, reject) => {
    const options = waitMs > 0 ? { mode, signal: AbortSignal.timeout(waitMs) } : { mode, ifAvailable: true };
    const done = navigator.locks.request(lockName(key), options, (lock) => {
      if (!lock) {
        resolve(0);
        return undefined;
      }
      return new Promise((release) => {
        const token = nextToken++;
        held.set(key, { mode, token, release, done });
        resolve(token);
      });
    });
    done.catch((e) => (e.name === 'AbortError' || e.name === 'TimeoutError' ? resolve(0) : reject(e)));
  });
}

/**
 * Takes `key`'s lock for this tab: 'exclusive' (to write) or 'shared' (to
 * serve a complete file); at once, or with `wait` within a moment (for a
 * page that is going away). Resolves to a token for opfsUnlock, or 0 if not
 * held. A lock is held once per tab: asking again while it is held here gives 0.
 */
export async function opfsLock(key, mode, wait) {
  if (held.has(key)) return 0;
  return acquire(key, mode, wait ? LOCK_WAIT_MS : 0);
}

/** Turns this tab's exclusive lock `token` on `key` into a shared one, never unlocked in between. */
export async function opfsDowngrade(key, token) {
  const mine = held.get(key);
  if (!mine || mine.token !== token || mine.mode !== 'exclusive') return;
  // Queued behind our own exclusive lock, so it is granted as that goes.
  const shared = new Promise((resolve, reject) => {
    const done = navigator.locks.request(lockName(key), { mode: 'shared' }, () => new Promise((release) => {
      held.set(key, { mode: 'shared', token, release, done });
      resolve();
    }));
    done.catch(reject);
  });
  mine.release();
  await shared;
}

/**
 * Releases lock `token` on `key` (nothing if that lock is no longer held);
 * resolves once other tabs can have it.
 */
export function opfsUnlock(key, token) {
  const mine = held.get(key);
  if (!mine || mine.token !== token) return Promise.resolve();
  held.delete(key);
  mine.release();
  return mine.done.then(() => {}, () => {});
}

/** Names of the shares some tab of this origin (this one included) holds a lock on. */
export async function opfsLockedKeys() {
  const { held: locks = [] } = await navigator.locks.query();
  return locks.map((l) => l.name).filter((n) => n.startsWith('shoal:')).map((n) => n.slice(6));
}

// ---- files ----

/** The names in `shoal/`. */
export async function opfsList() {
  const names = [];
  for await (const name of (await shoalDir()).keys()) names.push(name);
  return names;
}

/** A file in `shoal/` as a File (backed by disk), or null if there is none. */
export async function opfsFile(name) {
  try {
    const handle = await (await shoalDir()).getFileHandle(name);
    return await handle.getFile();
  } catch (e) {
    if (e.name === 'NotFoundError') return null;
    throw e;
  }
}

/** name → the latest replace of it in this tab (settled or not). */
const replacing = new Map();

/**
 * Replaces file `name` in `shoal/` with `bytes`, whole or not at all.
 * Replaces of one name run one after another, in the order called: two
 * writables closed out of order would leave the older bytes.
 */
// `bytes` may be a view of wasm memory: copied before the first await.
export function opfsReplace(name, bytes) {
  const copy = bytes.slice();
  const before = replacing.get(name) ?? Promise.resolve();
  const mine = before.catch(() => {}).then(() => replaceNow(name, copy));
  replacing.set(name, mine);
  const forget = () => {
    if (replacing.get(name) === mine) replacing.delete(name);
  };
  mine.then(forget, forget);
  return mine;
}

async function replaceNow(name, copy) {
  const handle = await (await shoalDir()).getFileHandle(name, { create: true });
  const writable = await handle.createWritable();
  try {
    await writable.write(copy);
    await writable.close();
  } catch (e) {
    await writable.abort().catch(() => {});
    throw e;
  }
}

/**
 * Deletes `names` from `shoal/` if no tab (this one included) holds `key`'s
 * lock: resolves to false, deleting nothing, if one does.
 */
export async function opfsRemove(key, names) {
  const remove = async () => {
    const dir = await shoalDir();
    for (const name of names) {
      try {
        await dir.removeEntry(name);
      } catch (e) {
        if (e.name !== 'NotFoundError') throw e;
      }
    }
    return true;
  };
  if (held.has(key)) return false;
  return navigator.locks.request(lockName(key), { ifAvailable: true }, (lock) => (lock ? remove() : false));
}

/** Removes the single-file downloads of earlier versions (never resumable). */
export async function opfsRemoveLegacy() {
  const root = await navigator.storage.getDirectory();
  for await (const name of root.keys()) {
    if (name.startsWith(LEGACY_PREFIX)) {
      // A file another tab of an old version still has open cannot be removed: left.
      try { await root.removeEntry(name, { recursive: true }); } catch (_) {}
    }
  }
}

// ---- a download's data file, through the worker ----

/** Opens data file `name` for writing, `size` bytes long (holes where nothing is written yet). */
export function opfsOpen(name, size) {
  return call({ op: 'open', name, len: size });
}

// `bytes` may be a view of wasm memory: it is copied before this returns.
export async function opfsWrite(name, offset, bytes) {
  const len = bytes.length;
  const buf = takeBuffer(len);
  new Uint8Array(buf, 0, len).set(bytes);
  const r = await call({ op: 'write', name, offset, data: buf, len }, [buf]);
  giveBack(r.data);
}

// Resolves to a Uint8Array; hand it to opfsRecycle once copied.
export async function opfsRead(name, offset, len) {
  const buf = takeBuffer(len);
  const r = await call({ op: 'read', name, offset, data: buf, len }, [buf]);
  if (r.got !== len) {
    giveBack(r.data);
    throw new Error(`short read: ${r.got} of ${len} bytes`);
  }
  return new Uint8Array(r.data, 0, len);
}

export function opfsRecycle(bytes) {
  giveBack(bytes.buffer);
}

/** Flushes the data file (before a checkpoint names its chunks). */
export function opfsFlush(name) {
  return call({ op: 'flush', name });
}

/** Closes the data file's handle; resolves to the file (backed by disk). */
export async function opfsClose(name) {
  await call({ op: 'close', name });
  return opfsFile(name);
}
