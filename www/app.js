// The shoal page: loads the wasm peer, joins the swarm named in `?swarm=`
// through the relay that served this page, and renders the peer's state.
// Sharing and downloading live in ui/shares.js and ui/downloads.js.
//
// Rules of this page:
// - Everything that comes from the peer or the network (peer ids, file names,
//   errors) is written with textContent, never innerHTML.
// - Start-up failures are shown in the page, not only in the console, and
//   exposed as `window.shoalError` so tests fail fast instead of timing out.
// - Once started, the node is `window.shoal` (the tests use only that).

import { coalesce, copyFromInput, errorText, setText } from './ui/dom.js';
import { createDownloads } from './ui/downloads.js';
import { formatBytes } from './ui/format.js';
import { DEFAULT_SWARM, hasShare, swarmFromSearch } from './ui/links.js';
import { createShares } from './ui/shares.js';
import { createStored } from './ui/stored.js';
import { listen as listenForStreams } from './ui/stream.js';

const MAX_PEERS = 8;
// RTTs, speeds and elapsed times change without a change event; refresh this often anyway.
const REFRESH_MS = 1000;

const $ = (id) => document.getElementById(id);

const RELAY_STATES = {
  connecting: { cls: 'pending', text: 'Connecting to the relay…' },
  reconnecting: {
    cls: 'pending',
    text: 'Lost the relay; reconnecting. Direct connections keep working meanwhile.',
  },
  connected: { cls: 'pending', text: 'Connected; asking the relay for a reservation…' },
  reserved: { cls: 'ok', text: 'Reachable through the relay; looking for peers in this swarm.' },
  failed: { cls: 'bad', text: 'The connection to the relay failed.' },
  stopped: { cls: 'pending', text: 'This peer has left the swarm.' },
};

const PATHS = {
  direct: { cls: 'direct', title: 'Direct WebRTC connection between the two browsers' },
  relayed: { cls: 'relayed', title: 'Connected through the relay only (no direct path yet)' },
};

function swarmFromUrl() {
  return swarmFromSearch(location.search);
}

function shareUrl(swarm) {
  const url = new URL(location.href);
  url.search = '';
  url.hash = '';
  url.searchParams.set('swarm', swarm);
  return url.href;
}

function setState(state) {
  document.documentElement.dataset.shoal = state;
}

function showError(heading, detail) {
  $('error').querySelector('strong').textContent = heading;
  $('error-text').textContent = ` ${detail}`;
  $('error').hidden = false;
}

// The sharing UI works before the node is up: what is picked or pasted
// waits for `ready`, which rejects if the node never starts.
let resolveReady;
let rejectReady;
const ready = new Promise((resolve, reject) => {
  resolveReady = resolve;
  rejectReady = reject;
});
ready.catch(() => {});

function fail(heading, detail) {
  // The relay socket index.html opened for the peer, when no peer took it.
  if (!window.shoal) window.shoalEarly?.relay?.then(({ socket }) => socket?.close(), () => {});
  rejectReady(new Error(`${heading} ${detail}`));
  console.error(`shoal: ${heading} ${detail}`);
  window.shoalError = `${heading} ${detail}`;
  setState('error');
  showError(heading, detail);
  $('self-id').textContent = 'not started';
  const badge = $('relay-state');
  badge.textContent = 'not started';
  badge.className = 'badge badge-bad';
}

function renderSwarm(swarm) {
  $('swarm-name').textContent = swarm;
  $('share-link').value = shareUrl(swarm);
  $('share-open').href = shareUrl(swarm);
  $('swarm-input').placeholder = swarm === DEFAULT_SWARM ? 'e.g. team-photos' : DEFAULT_SWARM;
  document.title = `shoal · ${swarm}`;
}

function setupCopy() {
  $('copy-link').addEventListener('click', () => copyFromInput($('share-link'), $('copy-status')));
}

// One polite live region for short announcements (share ready, download done…).
function announce(message) {
  const region = $('announcer');
  region.textContent = '';
  // A fresh text node in a later task makes screen readers read repeats too.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

function renderStats(stats) {
  setText($('stat-up'), formatBytes(stats?.uploaded ?? 0));
  setText($('stat-down'), formatBytes(stats?.downloaded ?? 0));
}

function renderRelay(relay) {
  const info = RELAY_STATES[relay.state] ?? { cls: 'pending', text: '' };
  const badge = $('relay-state');
  badge.textContent = String(relay.state);
  badge.className = `badge badge-${info.cls}`;
  $('relay-state-text').textContent = info.text;
  $('relay-id').textContent = relay.peerId ?? '—';

  const err = $('relay-error');
  const message = relay.error ?? (relay.state === 'failed' ? 'No detail was given.' : null);
  err.hidden = message === null;
  // The relay says why it refused (WebSocket close 1013): "the relay is full",
  // "too many connections from your address". Show that, not the error chain.
  const refused = message === null ? null : /the relay refused this connection: ([^)\]]+)/.exec(message);
  err.textContent = message === null ? ''
    : refused ? `The relay refused this connection: ${refused[1].trim()}. It keeps trying by itself.`
      : `Relay error: ${message}`;
}

function formatRtt(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

// Rows are kept per PeerId and updated in place, so that a periodic refresh
// does not wipe a text selection or move focus.
const rows = new Map();

function makeRow(peerId) {
  const li = document.createElement('li');
  li.className = 'peer';
  li.dataset.peerId = peerId;
  const id = document.createElement('code');
  id.className = 'ident';
  id.textContent = peerId;
  const badge = document.createElement('span');
  const rtt = document.createElement('span');
  rtt.className = 'rtt';
  const error = document.createElement('p');
  error.className = 'peer-error';
  error.hidden = true;
  li.append(id, badge, rtt, error);
  return { li, badge, rtt, error };
}

function updateRow(row, peer) {
  const path = PATHS[peer.path] ?? { cls: 'pending', title: '' };
  row.li.dataset.path = String(peer.path);
  row.badge.className = `badge badge-${path.cls}`;
  row.badge.textContent = String(peer.path);
  row.badge.title = path.title;
  row.rtt.textContent = `RTT ${formatRtt(peer.rttMs)}`;
  row.rtt.title = peer.path === 'direct'
    ? 'Round-trip time of a libp2p ping over the direct connection'
    : 'Round-trip time through the relay, if measured';
  // Why the direct path failed, when it did (the peer stays relayed).
  const error = typeof peer.error === 'string' && peer.error ? `Direct connection failed: ${peer.error}` : '';
  if (row.error.textContent !== error) row.error.textContent = error;
  row.error.hidden = !error;
}

function renderPeers(peers) {
  const list = $('peers');
  const sorted = [...peers].sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
  const seen = new Set();
  sorted.forEach((peer, i) => {
    let row = rows.get(peer.peerId);
    if (!row) {
      row = makeRow(peer.peerId);
      rows.set(peer.peerId, row);
    }
    updateRow(row, peer);
    if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] ?? null);
    seen.add(peer.peerId);
  });
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }

  const direct = sorted.filter((p) => p.path === 'direct').length;
  $('peer-count').textContent = `(${sorted.length})`;
  // Only this summary is a live region: announcing every RTT change would be noise.
  const summary = sorted.length === 0
    ? 'No peers yet. Open a link from this page in another browser.'
    : `${sorted.length} ${sorted.length === 1 ? 'peer' : 'peers'}: ${direct} direct, ${sorted.length - direct} relayed.`;
  if ($('peers-summary').textContent !== summary) $('peers-summary').textContent = summary;
}

// A download that starts, ends or fails changes what is stored.
let lastDownloadStates = '';
function downloadsChanged(node) {
  const states = node.downloads().map((d) => `${d.shareId}:${d.state}`).join(',');
  const changed = states !== lastDownloadStates;
  lastDownloadStates = states;
  return changed;
}

function render(node, ui) {
  try {
    renderRelay(node.relay());
    const peers = node.peers();
    renderPeers(peers);
    const downloading = ui.downloads.render(node, peers.length);
    ui.shares.update(node, downloading);
    ui.stored.update(node, downloadsChanged(node));
    renderStats(node.stats());
  } catch (e) {
    console.error('shoal: reading the node state failed', e);
    showError('The peer stopped working.', errorText(e));
  }
}

async function start() {
  setState('starting');
  const swarm = swarmFromUrl();
  renderSwarm(swarm);
  setupCopy();

  let node = null;
  // The service worker's questions about files played while they download.
  listenForStreams(() => node);
  const schedule = coalesce(() => {
    if (node) render(node, ui);
  });
  const ui = {
    shares: createShares({ ready, announce }),
    downloads: createDownloads({ ready, announce, swarm, onChange: () => (node ? schedule() : ui.downloads.render(null, 0)) }),
    stored: createStored({
      announce,
      open: async (link) => {
        const problem = await ui.downloads.start(link);
        if (problem) ui.downloads.formStatus(typeof problem === 'string' ? problem : problem.text, { error: !!problem });
      },
    }),
  };
  // Opened with a share link (or one typed into the address bar later): download it.
  const downloadFromUrl = async () => {
    if (!hasShare(location.hash)) return;
    const problem = await ui.downloads.start(location.href, { fromPage: true });
    if (problem) ui.downloads.formStatus(typeof problem === 'string' ? problem : problem.text, { error: true });
  };
  addEventListener('hashchange', downloadFromUrl);
  // Someone opened a link to get a file: put "Downloads" first (in the DOM,
  // so that reading and tab order match what is seen).
  if (hasShare(location.hash)) $('send').before($('receive'));
  downloadFromUrl();

  if (typeof RTCPeerConnection === 'undefined') {
    fail('This browser has no WebRTC.', 'shoal needs RTCPeerConnection to connect browsers directly.');
    return;
  }

  let mod;
  try {
    performance.mark('shoal:app');
    mod = await import('./pkg/peer_wasm.js');
    // The module compiled early by index.html, else let init fetch it.
    const compiled = await window.shoalEarly?.wasm?.catch(() => undefined);
    await mod.default(compiled ? { module_or_path: compiled } : undefined);
    performance.mark('shoal:wasm-ready');
  } catch (e) {
    fail('Could not load the peer (WebAssembly).', errorText(e));
    return;
  }

  try {
    // Undefined when index.html did not start early: the option is then absent.
    const early = window.shoalEarly?.relay;
    node = await mod.Node.start({ relay: location.origin, swarm, maxPeers: MAX_PEERS, early });
  } catch (e) {
    fail(`Could not join the swarm through the relay at ${location.origin}.`, errorText(e));
    return;
  }

  performance.mark('shoal:node-started');
  window.shoal = node;
  setState('running');
  $('self-id').textContent = node.peerId;
  resolveReady(node);

  // Change events (≤ 10/s during downloads) are coalesced into one render per
  // frame, at most four a second.
  node.onChange(schedule);
  addEventListener('visibilitychange', schedule);
  setInterval(schedule, REFRESH_MS);
  schedule();

  // Leave the swarm promptly so the others drop this peer.
  addEventListener('pagehide', () => {
    try {
      node.stop();
    } catch (e) {
      console.warn('shoal: stop failed', e);
    }
  });
  // A page restored from the back/forward cache has a stopped node: start anew.
  addEventListener('pageshow', (ev) => {
    if (ev.persisted) location.reload();
  });
}

start().catch((e) => fail('Unexpected error while starting.', errorText(e)));
