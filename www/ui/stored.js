// "Stored in this browser": the shares kept on disk (every tab of this site
// shares them), with name, size, how much is there, and a Delete button each.
// Opening a stored share's link resumes the download, or serves the file
// again when it is complete.
//
// Names come from manifests other peers made: they are only ever text.

import { el, errorText, setAttr, setClass, setHidden, setText, syncChildren } from './dom.js';
import { formatBytes, formatPercent } from './format.js';

const $ = (id) => document.getElementById(id);

// Listing reads every stored share's record from disk: not on every render.
const REFRESH_MS = 5000;

export function createStored({ announce, open }) {
  const rows = new Map();
  let node = null;
  let list = [];
  let loading = false;
  let again = false;
  let lastLoad = 0;

  async function load() {
    if (!node) return;
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    lastLoad = performance.now();
    try {
      list = await node.storedShares();
      showError('');
    } catch (e) {
      showError(`Could not list stored files: ${errorText(e)}`);
    } finally {
      loading = false;
    }
    render();
    if (again) {
      again = false;
      load();
    }
  }

  function showError(text) {
    setText($('stored-error'), text);
    setHidden($('stored-error'), !text);
  }

  async function remove(s, row) {
    row.remove.disabled = true;
    setText(row.status, 'Deleting…');
    try {
      await node.deleteStored(s.shareId);
      announce(`${s.name} deleted from this browser.`);
      setText(row.status, '');
    } catch (e) {
      setText(row.status, `Could not delete: ${errorText(e)}`);
    } finally {
      row.remove.disabled = false;
    }
    load();
  }

  function makeRow() {
    const name = el('span', { class: 'item-name' });
    const size = el('span', { class: 'item-size' });
    const badge = el('span');
    const meta = el('p', { class: 'item-meta' });
    const openButton = el('button', { type: 'button', class: 'secondary', text: 'Open' });
    const remove = el('button', { type: 'button', class: 'secondary', text: 'Delete' });
    const status = el('span', { class: 'hint', role: 'status', 'aria-live': 'polite' });
    const li = el(
      'li',
      { class: 'item stored' },
      el('div', { class: 'item-head' }, name, size, badge),
      meta,
      el('div', { class: 'actions' }, openButton, remove, status),
    );
    const row = { li, name, size, badge, meta, open: openButton, remove, status, share: null };
    openButton.addEventListener('click', () => row.share && open(row.share.link));
    remove.addEventListener('click', () => row.share && removeRow(row));
    return row;
  }

  const removeRow = (row) => remove(row.share, row);

  function updateRow(row, s) {
    row.share = s;
    row.li.dataset.shareId = s.shareId;
    row.li.dataset.state = s.state;
    setText(row.name, s.name);
    row.name.title = s.name;
    setText(row.size, formatBytes(s.size));
    const complete = s.state === 'complete';
    setClass(row.badge, complete ? 'badge badge-ok' : 'badge badge-pending');
    setText(row.badge, complete ? 'complete' : `partial ${formatPercent(s.bytesDone, s.size)}`);
    let what;
    if (s.inUse === 'here') what = complete ? 'Every chunk is here; this tab shares it.' : 'This tab is downloading it.';
    else if (complete) what = 'Every chunk is here. Open it to share it again.';
    else what = `${formatBytes(s.bytesDone)} of ${formatBytes(s.size)} stored. Open it to resume the download.`;
    if (s.inUse === 'elsewhere') what += ' Another tab of this browser is using it.';
    setText(row.meta, what);
    // Open here already; a download running here cannot be deleted until it ends.
    setHidden(row.open, s.inUse === 'here');
    setHidden(row.remove, s.inUse === 'here' && !complete);
    setAttr(row.open, 'aria-label', `Open ${s.name}`);
    setAttr(row.remove, 'aria-label', `Delete ${s.name} from this browser`);
  }

  function render() {
    const items = list.map((s) => {
      let row = rows.get(s.shareId);
      if (!row) {
        row = makeRow();
        rows.set(s.shareId, row);
      }
      updateRow(row, s);
      return row.li;
    });
    syncChildren($('stored'), items);
    const keep = new Set(list.map((s) => s.shareId));
    for (const id of rows.keys()) if (!keep.has(id)) rows.delete(id);
    setHidden($('stored-empty'), list.length > 0);
    setText($('stored-count'), list.length ? `(${list.length})` : '');
  }

  return {
    load,
    /** Called on every page render; `changed` when a download started or ended. */
    update(n, changed) {
      const first = !node;
      node = n;
      if (first || changed || performance.now() - lastLoad >= REFRESH_MS) load();
    },
  };
}
