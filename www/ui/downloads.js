// "Downloads": the paste form, the automatic download of the link the page
// was opened with, and the list with progress, speed, ETA and sources.

import { el, errorText, setAttr, setClass, setHidden, setText, syncChildren } from './dom.js';
import { formatBytes, formatDuration, formatPercent, formatSpeed, shortId, SpeedMeter } from './format.js';
import { hasShare, shareIdOf, targetOf } from './links.js';
import { createTree, saveTree } from './folders.js';
import { saveFile } from './save.js';
import { canStream, openPlayer, playable, streamReady } from './stream.js';

const $ = (id) => document.getElementById(id);

const STATE_BADGE = {
  starting: ['badge badge-pending', 'starting'],
  looking: ['badge badge-pending', 'looking'],
  checking: ['badge badge-pending', 'checking'],
  downloading: ['badge badge-active', 'downloading'],
  done: ['badge badge-ok', 'done'],
  failed: ['badge badge-bad', 'failed'],
};

const PATH_BADGE = {
  direct: ['badge badge-direct', 'direct', 'Direct WebRTC connection between the two browsers'],
  relayed: ['badge badge-relayed', 'relayed', 'Through the relay (no direct path yet)'],
};

export function createDownloads({ ready, announce, swarm, onChange }) {
  /** shareId → { link, file, error, settled, startedAt, doneAt, firstBytesAt } for downloads started here. */
  const records = new Map();
  const meters = new Map();
  const lastState = new Map();
  const dismissed = new Set();
  const rows = new Map();
  let node = null;
  let peerCount = 0;

  function formStatus(text, { error = false, link = null } = {}) {
    const status = $('paste-status');
    status.replaceChildren(text, ...(link ? [' ', link] : []));
    status.classList.toggle('is-error', error);
  }

  /**
   * Start downloading `link`. Returns an explanation when it was not started
   * (`null` when it was), for the paste form to show.
   */
  async function start(link, { fromPage = false } = {}) {
    const text = String(link).trim();
    if (!text) return 'Paste a share link first.';
    if (!hasShare(text) && !shareIdOf(text)) return 'That is not a share link: it has no #share=… part.';
    const target = targetOf(text);
    if (target && !target.web) return 'That is not a shoal link: share links start with http:// or https://.';
    if (target && target.origin !== location.origin) {
      return { text: `That link belongs to another shoal server (${target.origin}).`, href: target.href, label: 'Open it there' };
    }
    if (target && target.swarm !== swarm) {
      return {
        text: `That link is for swarm “${target.swarm}”, and this page is in “${swarm}”.`,
        href: target.href,
        label: 'Open it in a new tab',
      };
    }
    const id = shareIdOf(text);
    if (id && records.has(id) && !records.get(id).error) {
      focusRow(id);
      return fromPage ? null : 'That file is already in your downloads.';
    }

    let n;
    try {
      n = await ready;
    } catch {
      return 'The peer did not start, so nothing can be downloaded (see the error above).';
    }
    if (id && !records.has(id) && n.shares().some((s) => s.shareId === id) && !n.downloads().some((d) => d.shareId === id)) {
      return 'That is one of your own shares: this browser already has the file.';
    }

    const record = { link: text, file: null, error: null, settled: false, startedAt: performance.now(), doneAt: 0, firstBytesAt: 0 };
    const key = id ?? `link-${records.size}`;
    records.set(key, record);
    dismissed.delete(key);
    meters.delete(key);
    onChange();
    n.download(text).then(
      (file) => {
        record.file = file;
        record.settled = true;
        record.doneAt ||= performance.now();
        onChange();
      },
      (e) => {
        record.error = errorText(e);
        record.settled = true;
        onChange();
      },
    );
    return null;
  }

  function focusRow(id) {
    const row = rows.get(id);
    if (!row) return;
    row.li.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    row.li.classList.remove('flash');
    void row.li.offsetWidth;
    row.li.classList.add('flash');
  }

  async function saveDownload(id, row) {
    const record = records.get(id);
    row.save.disabled = true;
    setText(row.saveStatus, 'Saving…');
    try {
      // Started elsewhere (console, another tab of code): ask the node for the
      // File; for a finished download it resolves at once.
      let file = record?.file;
      if (!file) file = await node.download(id);
      const d = node.downloads().find((x) => x.shareId === id);
      const result = d?.files ? await saveTree(file, d) : await saveFile(file);
      setText(
        row.saveStatus,
        result === 'saved' ? 'Saved.' : result === 'started' ? 'Handed to your browser’s downloads.' : '',
      );
    } catch (e) {
      setText(row.saveStatus, `Could not save: ${errorText(e)}`);
    } finally {
      row.save.disabled = false;
    }
  }

  /** Whether `name` can be played now: streamed while it downloads, or once done. */
  function canPlay(name, state) {
    return playable(name) !== null && (state === 'done' || (state === 'downloading' && canStream()));
  }

  /** Opens a player for `path` of download `id` (a single file: its name) under its row. */
  async function play(id, row, path) {
    const d = node.downloads().find((x) => x.shareId === id);
    if (!d) return;
    let file = null;
    // Complete: play the finished File. Else stream it through the worker.
    if (d.state === 'done') {
      file = records.get(id)?.file ?? (await node.download(id));
      const f = d.files?.find((x) => x.path === path);
      if (f) file = file.slice(f.offset, f.offset + f.size, playable(path)?.type);
    }
    try {
      await openPlayer(row.player, { shareId: id, path, name: d.files ? path : d.name, file });
      setText(row.saveStatus, '');
    } catch (e) {
      setText(row.saveStatus, `Could not play: ${errorText(e)}`);
    }
  }

  function makeRow(id) {
    const name = el('span', { class: 'item-name' });
    const size = el('span', { class: 'item-size' });
    const badge = el('span');
    const progress = el('progress', { max: '1' });
    const pct = el('span', { class: 'pct' });
    const detail = el('span', { class: 'detail' });
    const meta = el('p', { class: 'item-meta' }, pct, detail);
    const tree = createTree(id, { canPlay, onPlay: (path) => play(id, row, path) });
    tree.list.hidden = true;
    const sourcesLabel = el('p', { class: 'sources-label' });
    const sources = el('ul', { class: 'sources' });
    const error = el('p', { class: 'inline-error', role: 'alert' });
    const save = el('button', { type: 'button', class: 'save', text: 'Save' });
    const playButton = el('button', { type: 'button', class: 'play secondary', text: 'Play' });
    const player = el('div', { class: 'player-slot' });
    const saveStatus = el('span', { class: 'hint', role: 'status', 'aria-live': 'polite' });
    const dismiss = el('button', { type: 'button', class: 'secondary', text: 'Remove' });
    const actions = el('div', { class: 'actions' }, save, playButton, dismiss, saveStatus);
    const li = el(
      'li',
      { class: 'item download', dataset: { shareId: id } },
      el('div', { class: 'item-head' }, name, size, badge),
      progress,
      meta,
      tree.list,
      sourcesLabel,
      sources,
      error,
      actions,
      player,
    );
    const row = { li, name, size, badge, progress, pct, detail, tree, sourcesLabel, sources, sourceRows: new Map(), error, save, playButton, player, saveStatus, dismiss, actions };
    save.addEventListener('click', () => saveDownload(id, row));
    playButton.addEventListener('click', () => {
      const d = node?.downloads().find((x) => x.shareId === id);
      if (d?.name) play(id, row, d.name);
    });
    dismiss.addEventListener('click', () => {
      dismissed.add(id);
      $('paste-input').focus();
      onChange();
    });
    return row;
  }

  function sourceRow(src) {
    const id = el('code', { class: 'ident' });
    const path = el('span');
    const counts = el('span', { class: 'counts' });
    const flag = el('span');
    return { li: el('li', { class: 'source' }, id, path, counts, flag), id, path, counts, flag };
  }

  function updateSources(row, sources) {
    const sorted = [...sources].sort((a, b) => b.bytes - a.bytes || (a.peerId < b.peerId ? -1 : 1));
    const items = sorted.map((src) => {
      let r = row.sourceRows.get(src.peerId);
      if (!r) {
        r = sourceRow(src);
        row.sourceRows.set(src.peerId, r);
      }
      setText(r.id, shortId(src.peerId));
      r.id.title = src.peerId;
      const p = PATH_BADGE[src.path] ?? ['badge badge-pending', 'disconnected', 'No connection to this peer right now'];
      setClass(r.path, p[0]);
      setText(r.path, p[1]);
      r.path.title = p[2];
      setText(r.counts, `${src.chunks} ${src.chunks === 1 ? 'chunk' : 'chunks'} · ${formatBytes(src.bytes)}`);
      let flag = '';
      let cls = 'badge badge-bad';
      if (src.banned) flag = `banned: sent ${src.badChunks} bad ${src.badChunks === 1 ? 'chunk' : 'chunks'}`;
      else if (src.badChunks > 0) {
        flag = `${src.badChunks} bad ${src.badChunks === 1 ? 'chunk' : 'chunks'} rejected`;
        cls = 'badge badge-relayed';
      }
      setText(r.flag, flag);
      setClass(r.flag, cls);
      setHidden(r.flag, !flag);
      r.li.classList.toggle('banned', Boolean(src.banned));
      return r.li;
    });
    const keep = new Set(sorted.map((s) => s.peerId));
    for (const k of row.sourceRows.keys()) if (!keep.has(k)) row.sourceRows.delete(k);
    syncChildren(row.sources, items);
    setText(row.sourcesLabel, `Sources (${sorted.length} ${sorted.length === 1 ? 'peer' : 'peers'}):`);
    setHidden(row.sourcesLabel, sorted.length === 0);
    setHidden(row.sources, sorted.length === 0);
  }

  function updateRow(id, row, d, record) {
    const now = performance.now();
    const state = d?.state ?? (record?.error ? 'failed' : 'starting');
    row.li.dataset.state = state;
    const name = d?.name ?? null;
    const label = name ?? (state === 'failed' ? 'Unknown file' : 'Looking for peers that have it…');
    setText(row.name, label);
    row.name.title = name ?? '';
    row.name.classList.toggle('pending-name', !name);
    setText(row.size, d?.size != null ? formatBytes(d.size) : '');
    const [bcls, btext] = STATE_BADGE[state] ?? ['badge badge-pending', String(state)];
    setClass(row.badge, bcls);
    setText(row.badge, btext);

    const total = d?.bytesTotal ?? 0;
    const done = d?.bytesDone ?? 0;
    let meter = meters.get(id);
    if (!meter) meters.set(id, (meter = new SpeedMeter()));
    if (state === 'downloading') meter.add(done, now);
    if (record && done > 0 && !record.firstBytesAt) record.firstBytesAt = now;
    if (record && state === 'done' && !record.doneAt) record.doneAt = now;
    // Files picked after it finished reopened it: the File it gave is stale
    // (Save asks the node for the new one), and its timing starts over.
    if (record?.file && state !== 'done') {
      record.file = null;
      record.startedAt = now;
      record.doneAt = 0;
      record.firstBytesAt = 0;
    }

    if (total > 0) {
      setAttr(row.progress, 'max', total);
      setAttr(row.progress, 'value', state === 'done' ? total : done);
    } else if (state === 'done') {
      setAttr(row.progress, 'max', 1);
      setAttr(row.progress, 'value', 1);
    } else {
      setAttr(row.progress, 'value', null); // indeterminate while looking
    }
    setAttr(row.progress, 'aria-label', `Download progress of ${name ?? 'the file'}`);
    setHidden(row.progress, state === 'failed' && total === 0);

    let pct = '';
    let detail = '';
    if (state === 'starting') detail = 'Starting…';
    else if (state === 'looking') {
      detail = peerCount === 0
        ? 'No peers in this swarm yet. The download starts as soon as someone who has the file is online.'
        : `Asking ${peerCount} ${peerCount === 1 ? 'peer' : 'peers'} for the file…`;
    } else if (state === 'checking') {
      detail = 'Verifying the chunks stored earlier before using them…';
    } else if (state === 'downloading') {
      pct = formatPercent(done, total);
      const rate = meter.rate();
      const parts = [`${formatBytes(done)} of ${formatBytes(total)}`];
      parts.push(rate === null ? 'measuring speed…' : formatSpeed(rate));
      const sources = d?.sources ?? [];
      if (rate !== null && rate > 0) parts.push(`about ${formatDuration((total - done) / rate)} left`);
      else if (sources.length > 0 && sources.every((src) => src.banned)) parts.push('waiting for a peer that sends valid data');
      else if (rate === 0) parts.push('stalled');
      detail = parts.join(' · ');
    } else if (state === 'done') {
      pct = '100%';
      const t0 = record?.firstBytesAt || record?.startedAt;
      const secs = record?.doneAt && t0 ? (record.doneAt - t0) / 1000 : null;
      detail = secs !== null && secs > 0
        ? `${formatBytes(total)} in ${formatDuration(secs)} (${formatSpeed(total / secs)} average) · verified`
        : `${formatBytes(total)} · every chunk verified`;
    } else if (state === 'failed' && total > 0) {
      pct = formatPercent(done, total);
      detail = `${formatBytes(done)} of ${formatBytes(total)} when it stopped`;
    }
    setText(row.pct, pct);
    setHidden(row.pct, !pct);
    setText(row.detail, detail);

    // A share of files: its tree, a checkbox and progress per file.
    setHidden(row.tree.list, !d?.files);
    if (d?.files) row.tree.update(node, d);
    updateSources(row, d?.sources ?? []);

    const error = state === 'failed' ? (d?.error ?? record?.error ?? 'No reason was given.') : null;
    setText(row.error, error ? `Download failed: ${error}` : '');
    setHidden(row.error, !error);

    setHidden(row.save, state !== 'done');
    setAttr(row.save, 'aria-label', `Save ${name ?? 'the file'}`);
    setHidden(row.dismiss, state !== 'failed');
    setAttr(row.dismiss, 'aria-label', `Remove ${name ?? 'this download'} from the list`);
    // A single file that plays here: "Play" (audio, video) or "Open" (PDF, text).
    const playKind = d && !d.files && d.name ? playable(d.name) : null;
    const showPlay = playKind !== null && canPlay(d.name, state);
    setHidden(row.playButton, !showPlay);
    // Something may be played while it downloads: have the worker ready
    // before Play is pressed (registering it takes a moment).
    if ((showPlay || d?.files?.some((f) => f.wanted && canPlay(f.path, state))) && state === 'downloading') {
      streamReady().catch((e) => console.warn('shoal: the streaming worker did not start', e));
    }
    setText(row.playButton, playKind?.kind === 'frame' ? 'Open' : 'Play');
    setAttr(row.playButton, 'aria-label', `${playKind?.kind === 'frame' ? 'Open' : 'Play'} ${name ?? 'the file'}${state === 'done' ? '' : ' while it downloads'}`);
    setHidden(row.actions, state !== 'done' && state !== 'failed' && !showPlay);

    // Announce state changes once.
    const prev = lastState.get(id);
    if (prev !== state) {
      lastState.set(id, state);
      if (state === 'downloading' && prev) announce(`Downloading ${name ?? 'the file'}.`);
      else if (state === 'done' && prev) announce(`${name ?? 'The file'} downloaded and verified. Press Save to keep it.`);
      else if (state === 'failed') announce(`Download of ${name ?? 'the file'} failed.`);
    }
  }

  function render(n, peers) {
    node = n;
    peerCount = peers;
    let list = [];
    if (node) {
      try {
        list = node.downloads();
      } catch (e) {
        console.error('shoal: downloads() failed', e);
      }
    }
    const byId = new Map(list.map((d) => [d.shareId, d]));
    // Ours in the order they were started, then any started elsewhere.
    const ids = [...records.keys(), ...list.map((d) => d.shareId).filter((id) => !records.has(id))];
    const shown = ids.filter((id) => !dismissed.has(id));
    const items = shown.map((id) => {
      let row = rows.get(id);
      if (!row) {
        row = makeRow(id);
        rows.set(id, row);
      }
      updateRow(id, row, byId.get(id), records.get(id));
      return row.li;
    });
    syncChildren($('downloads'), items);
    const keep = new Set(shown);
    for (const id of rows.keys()) if (!keep.has(id)) rows.delete(id);
    setHidden($('downloads-empty'), shown.length > 0);
    return new Set(list.map((d) => d.shareId));
  }

  function setupForm() {
    const form = $('paste-form');
    const input = $('paste-input');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      formStatus('');
      try {
        const problem = await start(input.value);
        if (problem === null) {
          input.value = '';
          formStatus('Download started.');
        } else if (typeof problem === 'string') {
          formStatus(problem, { error: true });
        } else {
          formStatus(problem.text, { link: el('a', { href: problem.href, target: '_blank', rel: 'noopener', text: problem.label }) });
        }
      } finally {
        button.disabled = false;
      }
    });
  }

  setupForm();

  return { start, render, formStatus };
}
