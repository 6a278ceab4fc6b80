// Play while downloading: a player (video, audio, or a frame for PDF and
// text) whose source is `/stream/<shareId>/<path>`, which the service
// worker (sw.js) answers with bytes it asks this page for; this page reads
// them from the node (`node.read`, which resolves once they are verified,
// and meanwhile has the download fetch them first).
//
// - The worker is registered once a file that plays here starts downloading
//   (ui/downloads.js), not at load: pages that never stream never run it.
// - Without service workers (some private windows, old browsers), a file
//   plays once its download is complete, from the finished File.
// - The content type comes from the file name's extension, from the list
//   below only: a peer's media type could say text/html, and the stream is
//   served from this page's origin.

import { el, errorText } from './dom.js';

const TYPES = {
  webm: ['video', 'video/webm'],
  mp4: ['video', 'video/mp4'],
  m4v: ['video', 'video/mp4'],
  mov: ['video', 'video/quicktime'],
  ogv: ['video', 'video/ogg'],
  mkv: ['video', 'video/x-matroska'],
  mp3: ['audio', 'audio/mpeg'],
  m4a: ['audio', 'audio/mp4'],
  aac: ['audio', 'audio/aac'],
  ogg: ['audio', 'audio/ogg'],
  oga: ['audio', 'audio/ogg'],
  opus: ['audio', 'audio/ogg'],
  wav: ['audio', 'audio/wav'],
  flac: ['audio', 'audio/flac'],
  weba: ['audio', 'audio/webm'],
  pdf: ['frame', 'application/pdf'],
  txt: ['frame', 'text/plain; charset=utf-8'],
  md: ['frame', 'text/plain; charset=utf-8'],
  log: ['frame', 'text/plain; charset=utf-8'],
  csv: ['frame', 'text/plain; charset=utf-8'],
};

/** { kind: 'video'|'audio'|'frame', type } for a file name, or null if it does not play here. */
export function playable(name) {
  const ext = /\.([a-z0-9]+)$/i.exec(String(name))?.[1]?.toLowerCase();
  const t = ext ? TYPES[ext] : undefined;
  return t ? { kind: t[0], type: t[1] } : null;
}

/** The stream URL of one file of a share (a single file: its name). */
export function streamUrl(shareId, path) {
  return `/stream/${encodeURIComponent(shareId)}/${String(path).split('/').map(encodeURIComponent).join('/')}`;
}

/** Whether this browser can stream (service workers here); else play once complete. */
export function canStream() {
  return 'serviceWorker' in navigator && window.isSecureContext;
}

/** Where a file lies in its share's byte stream: { offset, size, type } or null. */
function locate(node, shareId, path) {
  const d = node.downloads().find((x) => x.shareId === shareId);
  if (d && d.size != null) {
    if (d.files) {
      const f = d.files.find((x) => x.path === path);
      return f ? { offset: f.offset, size: f.size, type: playable(f.path)?.type } : null;
    }
    return { offset: 0, size: d.size, type: playable(d.name)?.type };
  }
  const s = node.shares().find((x) => x.shareId === shareId);
  return s ? { offset: 0, size: s.size, type: playable(s.name)?.type } : null;
}

let listening = false;

/** Answers the worker's questions from `getNode()` (call once, at start). */
export function listen(getNode) {
  if (listening || !canStream()) return;
  listening = true;
  navigator.serviceWorker.addEventListener('message', async (ev) => {
    const msg = ev.data?.shoalStream;
    const port = ev.ports?.[0];
    if (!msg || !port) return;
    const node = getNode();
    const file = node ? locate(node, msg.share, msg.path) : null;
    if (!file) {
      port.postMessage({ error: 'unknown share or path', status: 404 });
      return;
    }
    if (msg.op === 'info') {
      port.postMessage({ size: file.size, type: file.type ?? 'application/octet-stream' });
      return;
    }
    try {
      const length = Math.max(0, Math.min(msg.length, file.size - msg.offset));
      const bytes = await node.read(msg.share, file.offset + msg.offset, length);
      port.postMessage({ bytes: bytes.buffer }, [bytes.buffer]);
    } catch (e) {
      console.warn(`shoal: a streaming read of ${msg.share} failed: ${errorText(e)}`);
      port.postMessage({ error: errorText(e) });
    }
  });
  navigator.serviceWorker.startMessages?.();
}

let ready = null;

/** Registers the worker (once) and resolves when it controls this page. */
export function streamReady() {
  ready ??= (async () => {
    await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    }
  })();
  ready.catch(() => {
    ready = null;
  });
  return ready;
}

/**
 * A player for `path` of share `shareId` in `container` (replacing what was
 * there): streamed when the browser can, else from `file()` (the finished
 * download's File, already sliced to the file). Resolves to the element.
 */
export async function openPlayer(container, { shareId, path, name, file = null }) {
  const kind = playable(name ?? path);
  if (!kind) throw new Error('this kind of file does not play in the page');
  let src;
  if (file) {
    // The type from the name's extension, never the File's own: a finished
    // download's type is the sharer's word, and a blob: URL is this origin's.
    src = URL.createObjectURL(file.slice(0, file.size, kind.type));
  } else {
    await streamReady();
    src = streamUrl(shareId, path);
  }
  const label = `Playing ${name ?? path}`;
  const media = kind.kind === 'frame'
    ? el('iframe', { class: 'player-frame', title: label, src, ...(kind.type.startsWith('text/') ? { sandbox: '' } : {}) })
    : el(kind.kind, { class: 'player-media', controls: true, autoplay: true, preload: 'auto', 'aria-label': label, src });
  const close = el('button', { type: 'button', class: 'secondary', text: 'Close player' });
  const box = el('div', { class: 'player', dataset: { path } }, media, close);
  close.addEventListener('click', () => {
    if (media.pause) media.pause();
    media.removeAttribute('src');
    if (src.startsWith('blob:')) URL.revokeObjectURL(src);
    box.remove();
  });
  container.replaceChildren(box);
  return media;
}
