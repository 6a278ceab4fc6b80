// OPFS file access through a dedicated worker: a download is one file,
// written and read at any offset with a synchronous access handle (which only
// workers get). One handle per file for the whole download, instead of a
// swap file and a rename per chunk with createWritable().
//
// The wasm side calls opfsOpen / opfsWrite / opfsRead / opfsClose; each
// returns a Promise. Bytes travel as transferred ArrayBuffers (no copies).

const WORKER_SOURCE = `
const handles = new Map();
let cleaned = false;
// Files of earlier page loads: removed at the first download. Files another
// tab still has open are locked, so their removal fails and is ignored.
async function cleanOnce(root) {
  if (cleaned) return;
  cleaned = true;
  for await (const name of root.keys()) {
    if (name.startsWith('shoal-')) {
      try { await root.removeEntry(name, { recursive: true }); } catch (_) {}
    }
  }
}
onmessage = async (ev) => {
  const { seq, op, name, offset, data, len } = ev.data;
  try {
    if (op === 'open') {
      const root = await navigator.storage.getDirectory();
      await cleanOnce(root);
      const file = await root.getFileHandle(name, { create: true });
      handles.set(name, await file.createSyncAccessHandle());
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
    } else if (op === 'close') {
      const h = handles.get(name);
      if (h) { h.flush(); h.close(); handles.delete(name); }
      postMessage({ seq });
    }
  } catch (e) {
    postMessage({ seq, error: String(e && e.message || e) });
  }
};`;

let worker = null;
let nextSeq = 0;
const pending = new Map();

// Chunk buffers shuttle between the page and the worker and are reused, so a
// long download makes no garbage per chunk (and the tab's memory stays flat).
const POOL_MAX = 16;
const pool = [];
function takeBuffer(len) {
  const i = pool.findIndex((b) => b.byteLength >= len && b.byteLength <= 2 * len);
  return i >= 0 ? pool.splice(i, 1)[0] : new ArrayBuffer(len);
}
function giveBack(buf) {
  if (buf && buf.byteLength > 0 && pool.length < POOL_MAX) pool.push(buf);
}

function call(message, transfer = []) {
  if (!worker) {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
    worker = new Worker(url);
    worker.onmessage = (ev) => {
      const p = pending.get(ev.data.seq);
      if (!p) return;
      pending.delete(ev.data.seq);
      if (ev.data.error !== undefined) p.reject(new Error(ev.data.error));
      else p.resolve(ev.data);
    };
    worker.onerror = (ev) => {
      for (const p of pending.values()) p.reject(new Error(`OPFS worker: ${ev.message}`));
      pending.clear();
    };
  }
  const seq = nextSeq++;
  return new Promise((resolve, reject) => {
    pending.set(seq, { resolve, reject });
    worker.postMessage({ seq, ...message }, transfer);
  });
}

export function opfsOpen(name) {
  return call({ op: 'open', name });
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

// Closes the handle and returns the file (backed by disk) for the page.
export async function opfsClose(name) {
  await call({ op: 'close', name });
  const root = await navigator.storage.getDirectory();
  const handle = await root.getFileHandle(name);
  return handle.getFile();
}
