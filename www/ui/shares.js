// "Send files": the drop zone, the file picker and the "Your shares" list.
//
// Files are hashed one at a time (the node is single-threaded; hashing two
// GiB files at once would only make both slower). Entries are keyed and
// updated in place so that focus and a text selection survive re-renders.

import { coalesce, copyFromInput, el, errorText, setAttr, setClass, setHidden, setText, syncChildren } from './dom.js';
import { formatBytes, formatDuration } from './format.js';
import { fromDroppedEntries, setupFolderPicker } from './folders.js';
import { shareIdOf } from './links.js';

const $ = (id) => document.getElementById(id);

export function createShares({ ready, announce }) {
  /** { key, name, size, state: 'queued'|'hashing'|'ready'|'failed', error, shareId, link, startedAt } */
  const entries = [];
  const rows = new Map();
  let seq = 0;
  let queue = Promise.resolve();
  let node = null;
  let downloadIds = new Set();
  const schedule = coalesce(() => render());

  /** A new row in the list of shares, queued for hashing. */
  function newEntry(name, size) {
    const entry = { key: `local-${(seq += 1)}`, name, size, state: 'queued', error: null, shareId: null, link: null, startedAt: 0 };
    entries.push(entry);
    return entry;
  }

  function add(files) {
    for (const file of files) {
      const entry = newEntry(file.name || 'shared-file', file.size);
      queue = queue.then(() => hash(entry, file));
    }
    if (files.length) announce(files.length === 1 ? `Preparing ${files[0].name || 'the file'}…` : `Preparing ${files.length} files…`);
    schedule();
  }

  /** A folder (or several files) under one link: `{ name, entries: [{ path, file }] }`. */
  function addFolder({ name, entries: files }) {
    if (!files.length) {
      announce(`${name} has no files to share.`);
      return;
    }
    const entry = newEntry(
      `${name} (${files.length} ${files.length === 1 ? 'file' : 'files'})`,
      files.reduce((n, f) => n + f.file.size, 0),
    );
    queue = queue.then(() => hash(entry, null, (n) => n.shareFiles(name, files)));
    announce(`Preparing ${entry.name}…`);
    schedule();
  }

  async function hash(entry, file, share = (n) => n.share(file)) {
    let n;
    try {
      n = await ready;
    } catch {
      entry.state = 'failed';
      entry.error = 'The peer did not start, so nothing can be shared (see the error above).';
      schedule();
      return;
    }
    entry.state = 'hashing';
    entry.startedAt = performance.now();
    schedule();
    try {
      const link = await share(n);
      const shareId = shareIdOf(link);
      const existing = entries.find((e) => e !== entry && e.shareId && e.shareId === shareId);
      if (existing) {
        // Same content as an earlier share: one entry is enough.
        entries.splice(entries.indexOf(entry), 1);
        announce(`${entry.name} has the same content as ${existing.name}, which is already shared.`);
        flash(existing.key);
      } else {
        Object.assign(entry, { state: 'ready', shareId, link });
        announce(`${entry.name} is ready: copy its link and open it in another browser.`);
      }
    } catch (e) {
      entry.state = 'failed';
      entry.error = errorText(e);
      announce(`Could not share ${entry.name}: ${entry.error}`);
    }
    schedule();
  }

  function flash(key) {
    const row = rows.get(key);
    if (!row) return;
    row.li.classList.remove('flash');
    void row.li.offsetWidth; // restart the animation
    row.li.classList.add('flash');
  }

  function makeRow(key) {
    const name = el('span', { class: 'item-name' });
    const size = el('span', { class: 'item-size' });
    const badge = el('span');
    const progress = el('progress', { class: 'hashing-progress' });
    const status = el('p', { class: 'item-meta' });
    const linkInput = el('input', { type: 'text', readonly: true, class: 'link-text', spellcheck: 'false' });
    const copyStatus = el('p', { class: 'hint', role: 'status', 'aria-live': 'polite' });
    const copy = el('button', { type: 'button', text: 'Copy link' });
    copy.addEventListener('click', () => copyFromInput(linkInput, copyStatus));
    // Clicking into the read-only link selects all of it (easy manual copy).
    linkInput.addEventListener('focus', () => linkInput.select());
    const linkRow = el('div', { class: 'input-row link-row' }, linkInput, copy);
    const error = el('p', { class: 'inline-error', role: 'alert' });
    const dismiss = el('button', { type: 'button', class: 'secondary', text: 'Remove' });
    dismiss.addEventListener('click', () => {
      const i = entries.findIndex((e) => e.key === key);
      if (i >= 0) entries.splice(i, 1);
      $('file-button').focus();
      schedule();
    });
    const li = el(
      'li',
      { class: 'item share', dataset: { key } },
      el('div', { class: 'item-head' }, name, size, badge),
      progress,
      status,
      linkRow,
      copyStatus,
      error,
      el('div', { class: 'actions' }, dismiss),
    );
    return { li, name, size, badge, progress, status, linkInput, linkRow, copy, error, dismiss };
  }

  function updateRow(row, entry) {
    row.li.dataset.state = entry.state;
    setAttr(row.li, 'data-share-id', entry.shareId);
    setText(row.name, entry.name);
    row.name.title = entry.name;
    setText(row.size, formatBytes(entry.size));
    const badge = {
      queued: ['badge badge-pending', 'waiting'],
      hashing: ['badge badge-pending', 'hashing…'],
      ready: ['badge badge-ok', 'sharing'],
      failed: ['badge badge-bad', 'failed'],
    }[entry.state];
    setClass(row.badge, badge[0]);
    setText(row.badge, badge[1]);

    setHidden(row.progress, entry.state !== 'hashing');
    setAttr(row.progress, 'aria-label', `Hashing ${entry.name}`);
    let status = '';
    if (entry.state === 'queued') status = 'Waiting its turn: files are hashed one at a time.';
    else if (entry.state === 'hashing') {
      const secs = (performance.now() - entry.startedAt) / 1000;
      status = `Computing the BLAKE3 hashes that let others verify every chunk… ${secs >= 2 ? formatDuration(secs) : ''}`.trim();
    } else if (entry.state === 'ready') status = 'Keep this tab open: others download straight from this browser.';
    setText(row.status, status);
    setHidden(row.status, !status);

    const ready = entry.state === 'ready';
    setHidden(row.linkRow, !ready);
    if (ready && row.linkInput.value !== entry.link) row.linkInput.value = entry.link;
    row.li.dataset.link = entry.link ?? '';
    setAttr(row.linkInput, 'aria-label', `Share link for ${entry.name}`);
    setAttr(row.copy, 'aria-label', `Copy the link for ${entry.name}`);

    const failed = entry.state === 'failed';
    setText(row.error, failed ? `Could not share: ${entry.error}` : '');
    setHidden(row.error, !failed);
    setHidden(row.dismiss.parentElement, !failed);
    setAttr(row.dismiss, 'aria-label', `Remove ${entry.name} from the list`);
  }

  function render() {
    // Shares made outside this UI (the console, tests) show up too; files
    // fetched through "Downloads" are listed there instead.
    if (node) {
      let shares = [];
      try {
        shares = node.shares();
      } catch (e) {
        console.error('shoal: shares() failed', e);
      }
      for (const s of shares) {
        if (downloadIds.has(s.shareId) || entries.some((e) => e.shareId === s.shareId)) continue;
        entries.push({ key: `share-${s.shareId}`, name: s.name, size: s.size, state: 'ready', error: null, shareId: s.shareId, link: s.link, startedAt: 0 });
      }
    }
    const list = $('shares');
    const seen = new Set();
    const items = entries.map((entry) => {
      let row = rows.get(entry.key);
      if (!row) {
        row = makeRow(entry.key);
        rows.set(entry.key, row);
      }
      updateRow(row, entry);
      seen.add(entry.key);
      return row.li;
    });
    syncChildren(list, items);
    for (const key of rows.keys()) if (!seen.has(key)) rows.delete(key);
    setHidden($('shares-empty'), entries.length > 0);
    setText($('share-count'), entries.length ? `(${entries.length})` : '');
  }

  // Drag and drop anywhere on the page: a file dropped outside the zone
  // would otherwise make the browser open it and leave the swarm.
  function setupDrop() {
    const zone = $('dropzone');
    let depth = 0;
    const hasFiles = (ev) => [...(ev.dataTransfer?.types ?? [])].includes('Files');
    addEventListener('dragenter', (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      depth += 1;
      zone.classList.add('dragging');
    });
    addEventListener('dragleave', (ev) => {
      if (!hasFiles(ev)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove('dragging');
    });
    addEventListener('dragover', (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = 'copy';
    });
    addEventListener('drop', (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      depth = 0;
      zone.classList.remove('dragging');
      const files = [];
      const folders = [];
      const items = [...(ev.dataTransfer.items ?? [])];
      if (items.length) {
        for (const item of items) {
          if (item.kind !== 'file') continue;
          // Entries can only be had during the event; read them after.
          const entry = item.webkitGetAsEntry?.();
          if (entry?.isDirectory) {
            folders.push(entry);
            continue;
          }
          const f = item.getAsFile();
          if (f) files.push(f);
        }
      } else {
        files.push(...ev.dataTransfer.files);
      }
      // Each dropped folder gets one link for all its files.
      for (const folder of folders) {
        fromDroppedEntries([folder]).then(addFolder, (e) => announce(`Could not read the folder ${folder.name}: ${errorText(e)}`));
      }
      add(files);
    });
  }

  function setupPicker() {
    const input = $('file-input');
    $('file-button').addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      add([...input.files]);
      input.value = ''; // picking the same file again fires change again
    });
  }

  setupDrop();
  setupPicker();
  setupFolderPicker($('file-button'), addFolder);
  render();

  return {
    add,
    addFolder,
    /** Called on every page render with the running node. */
    update(n, ids) {
      node = n;
      downloadIds = ids;
      render();
    },
  };
}
