// Folders and several files under one link (manifest version 2): the
// folder picker, reading a dropped folder, the tree of a download with a
// checkbox and progress per file, and saving the tree.
//
// A share of files downloads as one byte stream (the files one after the
// other); each file is `file.slice(offset, offset + size)` of the `File`
// the node resolves to, so nothing is ever read whole into memory. Paths
// come from peers: they are shown with textContent only, and were checked
// by the node (relative, no `..`, no `\`, no control or bidi characters)
// before any of them reaches this page.

import { el, setText, syncChildren } from './dom.js';
import { formatBytes } from './format.js';
import { saveFile } from './save.js';
import { playable } from './stream.js';

/** Most files in one share (share/src/limits.rs MAX_FILES). */
export const MAX_FILES = 10_000;

/** `[{ path, file }]` and a share name from an `<input webkitdirectory>`. */
export function fromDirectoryInput(files) {
  const list = [...files];
  const name = (list[0]?.webkitRelativePath ?? '').split('/')[0] || 'folder';
  const entries = list.map((file) => ({
    // "photos/2024/a.jpg" → "2024/a.jpg": paths are relative to the folder.
    path: file.webkitRelativePath.split('/').slice(1).join('/') || file.name,
    file,
  }));
  return { name, entries };
}

const readEntries = (reader) => new Promise((resolve, reject) => reader.readEntries(resolve, reject));
const entryFile = (entry) => new Promise((resolve, reject) => entry.file(resolve, reject));

async function walk(entry, prefix, out) {
  if (out.length > MAX_FILES) throw new Error(`more than ${MAX_FILES} files in one share`);
  if (entry.isFile) {
    out.push({ path: prefix + entry.name, file: await entryFile(entry) });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    // readEntries answers in batches (100 in Chromium) until it answers none.
    for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`, out);
    }
  }
}

/**
 * `[{ path, file }]` and a share name from dropped entries
 * (`DataTransferItem.webkitGetAsEntry()`, taken during the drop event).
 * One folder: paths relative to it, named after it; else paths start with
 * each dropped item's name.
 */
export async function fromDroppedEntries(entries) {
  const out = [];
  if (entries.length === 1 && entries[0].isDirectory) {
    const reader = entries[0].createReader();
    for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
      for (const child of batch) await walk(child, '', out);
    }
    return { name: entries[0].name, entries: out };
  }
  for (const entry of entries) await walk(entry, '', out);
  return { name: `${out.length} files`, entries: out };
}

/**
 * The folder picker and a "several files, one link" picker, put after the
 * file picker button; each calls `onPick({ name, entries })`.
 */
export function setupFolderPicker(after, onPick) {
  const picker = (id, text, attrs, read) => {
    const input = el('input', { type: 'file', hidden: true, ...attrs });
    const button = el('button', { type: 'button', class: 'secondary', id, text });
    button.addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      if (input.files.length) onPick(read([...input.files]));
      input.value = ''; // picking the same again fires change again
    });
    return [button, input];
  };
  after.after(
    ' ',
    ...picker('folder-button', 'Choose a folder', { webkitdirectory: true, 'aria-label': 'Folder to share' }, fromDirectoryInput),
    ' ',
    ...picker('files-button', 'Several files, one link', { multiple: true, 'aria-label': 'Files to share under one link' }, (files) => ({
      name: `${files.length} files`,
      entries: files.map((file) => ({ path: file.name, file })),
    })),
  );
}

/**
 * The file tree of a download of a share of files: one row per directory
 * and per file, a checkbox per file (which files to fetch: `node.want`, also
 * after the download finished), per-file progress, and a "Play" button for
 * files that `canPlay(path, state)`, which calls `onPlay(path)`.
 * `update(node, d)` with the node's download view.
 */
export function createTree(shareId, { canPlay = () => false, onPlay = () => {} } = {}) {
  const list = el('ul', { class: 'tree', 'aria-label': 'Files in this share' });
  const rows = new Map();
  let node = null;
  let files = [];

  function want() {
    const boxes = [...rows.values()].filter((r) => r.box);
    const picked = boxes.filter((r) => r.box.checked).map((r) => r.path);
    // Resolves once the choice is on disk; the page shows its effect from downloads().
    Promise.resolve()
      .then(() => node?.want(shareId, picked.length === boxes.length ? null : picked))
      .catch((e) => console.warn('shoal: choosing files failed', e));
  }

  function fileRow(path, depth) {
    const box = el('input', { type: 'checkbox', checked: true, 'aria-label': `Fetch ${path}` });
    box.addEventListener('change', want);
    const name = el('span', { class: 'tree-name', text: path.split('/').at(-1) });
    const size = el('span', { class: 'item-size' });
    const progress = el('span', { class: 'tree-progress' });
    const play = el('button', { type: 'button', class: 'play secondary', text: playable(path)?.kind === 'frame' ? 'Open' : 'Play', 'aria-label': `${playable(path)?.kind === 'frame' ? 'Open' : 'Play'} ${path}`, hidden: true });
    play.addEventListener('click', () => onPlay(path));
    const li = el('li', { class: 'tree-file', dataset: { path } }, el('label', {}, box, ' ', name), ' ', size, ' ', progress, ' ', play);
    li.style.paddingLeft = `${depth * 1.25}em`;
    return { li, path, box, size, progress, play };
  }

  function dirRow(dir, depth) {
    const li = el('li', { class: 'tree-dir', text: `${dir.split('/').at(-1)}/` });
    li.style.paddingLeft = `${depth * 1.25}em`;
    return { li };
  }

  function update(n, d) {
    node = n;
    files = d?.files ?? [];
    const items = [];
    let openDirs = [];
    for (const f of files) {
      const dirs = f.path.split('/').slice(0, -1);
      // Paths are sorted by bytes, so a directory's files are together.
      let same = 0;
      while (same < openDirs.length && same < dirs.length && openDirs[same] === dirs[same]) same += 1;
      for (let i = same; i < dirs.length; i++) {
        const key = `dir:${dirs.slice(0, i + 1).join('/')}`;
        if (!rows.has(key)) rows.set(key, dirRow(dirs.slice(0, i + 1).join('/'), i));
        items.push(rows.get(key).li);
      }
      openDirs = dirs;
      let row = rows.get(f.path);
      if (!row) rows.set(f.path, (row = fileRow(f.path, dirs.length)));
      setText(row.size, formatBytes(f.size));
      const done = f.chunksTotal === 0 || f.chunksDone === f.chunksTotal;
      setText(row.progress, done ? (f.wanted || f.size === 0 ? 'done' : 'have') : `${Math.floor((100 * f.chunksDone) / f.chunksTotal)}%`);
      row.li.dataset.done = String(done);
      if (row.box.checked !== f.wanted && document.activeElement !== row.box) row.box.checked = f.wanted;
      // A finished download takes more files too: ticking one whose chunks are
      // not all here reopens it for them (node.want).
      row.box.disabled = d.state === 'failed';
      const playHere = f.wanted && f.size > 0 && canPlay(f.path, d.state);
      if (row.play.hidden === playHere) row.play.hidden = !playHere;
      items.push(row.li);
    }
    syncChildren(list, items);
  }

  return { list, update };
}

/**
 * Saves the complete files of a share of files: into a directory the user
 * picks (File System Access API), each file streamed from its slice of the
 * download; where the browser has no directory picker, as a zip written
 * into the private storage as it is made, then offered as a download.
 * Resolves to 'saved', 'started' or 'cancelled'.
 */
export async function saveTree(file, d) {
  const files = (d.files ?? []).filter((f) => f.wanted && f.chunksDone === f.chunksTotal);
  if (typeof window.showDirectoryPicker === 'function') {
    let dir = null;
    try {
      dir = await window.showDirectoryPicker({ id: 'shoal-save', mode: 'readwrite' });
    } catch (e) {
      if (e?.name === 'AbortError') return 'cancelled';
      console.warn('shoal: directory picker refused, saving a zip instead', e);
    }
    if (dir) {
      await writeTree(await dir.getDirectoryHandle(d.name, { create: true }), file, files);
      return 'saved';
    }
  }
  return saveZip(file, d.name, files);
}

/**
 * Files written at once by writeTree. Each file costs the browser a few round
 * trips (handle, writable, close) whatever its size: for many small files
 * they add up unless several are under way.
 */
const SAVE_AT_ONCE = 8;

/** Writes `files` (slices of `file`) under the directory handle `root`, a few at a time. */
export async function writeTree(root, file, files) {
  // Each directory is looked up (or made) once, not once per file in it.
  const dirs = new Map([['', Promise.resolve(root)]]);
  const dirOf = (parts) => {
    const key = parts.join('/');
    if (!dirs.has(key)) dirs.set(key, dirOf(parts.slice(0, -1)).then((parent) => parent.getDirectoryHandle(parts.at(-1), { create: true })));
    return dirs.get(key);
  };
  let next = 0;
  let failed = false;
  const writer = async () => {
    while (!failed && next < files.length) {
      const f = files[next++];
      const parts = f.path.split('/');
      try {
        const handle = await (await dirOf(parts.slice(0, -1))).getFileHandle(parts.at(-1), { create: true });
        const writable = await handle.createWritable();
        // pipeTo closes the writable when done and aborts it on error.
        await file.slice(f.offset, f.offset + f.size).stream().pipeTo(writable);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SAVE_AT_ONCE, files.length) }, writer));
}

const ZIP_NAME = 'shoal-save.zip';

/**
 * The zip of `files` streamed into a file of the private storage (OPFS) as
 * it is made (client-zip: stored, zip64 when needed), then that file handed
 * to the browser's downloads: never whole in memory.
 */
export async function zipInto(handle, file, files) {
  const { downloadZip } = await import('/pkg/zip.js');
  const inputs = files.map((f) => ({ name: f.path, input: file.slice(f.offset, f.offset + f.size), size: f.size }));
  const writable = await handle.createWritable();
  await downloadZip(inputs).body.pipeTo(writable);
  return handle.getFile();
}

async function saveZip(file, name, files) {
  const root = await navigator.storage.getDirectory();
  const handle = await root.getFileHandle(ZIP_NAME, { create: true });
  const zip = await zipInto(handle, file, files);
  return saveFile(new File([zip], `${name}.zip`, { type: 'application/zip' }));
}
