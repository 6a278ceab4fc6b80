// Issue #9: "play while downloading".
//
// A shares a WebM video made by ffmpeg (cached under target/media/) and serves
// it slowly (test switch setTestServeDelay: each chunk waits before it is
// sent), so the download takes many seconds. B opens the share link and
// presses the page's own Play button: the <video> plays from the service
// worker, which asks the page for ranges, which the node answers from
// verified chunks while the scheduler fetches the playhead's chunks first.
// It must start playing before a quarter of the file is downloaded (rarest
// first alone would need most of the file for the first seconds), and a
// seek to 80 % must play while the download is still going. The bounds are
// liveness bounds (WAIT_MS), not performance thresholds.
//
// Then the worker's HTTP: a bad Range gets 416, an unknown share 404, a
// small range 206 with the right Content-Range, and the bytes it serves
// while a peer sends corrupted chunks are the source's bytes. And a Firefox
// page streams through the same worker, and plays the video with its Play
// button while the download runs, a seek to 80 % included.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe } from 'node:test';
import * as F from './files.mjs';
import { firefoxUnavailable, launchFirefoxPeer } from './firefox.mjs';
import * as h from './harness.mjs';
import { makeVideo } from './video.mjs';

const TEST = { timeout: 10 * h.WAIT_MS + F.DOWNLOAD_MS };
/** Each chunk A serves waits this long first: ≈2.5 MB/s from one session. */
const SERVE_DELAY_MS = 100;
const VIDEO_SECONDS = 30;

/** In a page: note every media event of interest, with the download's progress then. */
function recordMediaEvents(shareId) {
  window.__media = [];
  for (const type of ['playing', 'seeking', 'seeked', 'error', 'waiting']) {
    // Media events do not bubble; a capturing listener on the document sees them.
    document.addEventListener(type, (ev) => {
      const v = ev.target;
      const d = window.shoal.downloads().find((x) => x.shareId === shareId);
      window.__media.push({
        type,
        at: performance.now(),
        currentTime: v.currentTime,
        duration: v.duration,
        error: v.error ? `${v.error.code} ${v.error.message}` : null,
        bytesDone: d?.bytesDone ?? null,
        bytesTotal: d?.bytesTotal ?? null,
        state: d?.state ?? null,
      });
    }, true);
  }
}

const mediaEvents = (peer) => peer.page.evaluate(() => window.__media);
const currentTime = (peer) => peer.page.evaluate(() => document.querySelector('video.player-media').currentTime);

/**
 * `peer`'s page (Chromium or Firefox) pressed Play: the video plays while the download
 * runs, from the service worker, and advances 1 s. Returns the first `playing` event.
 */
async function playsWhileDownloading(peer) {
  const playing = await h.waitFor(`${peer.name}'s video to play`, () => mediaEvents(peer), (e) => e.some((x) => x.type === 'playing' || x.type === 'error'));
  const first = playing.find((x) => x.type === 'playing');
  assert.ok(first, `the video failed in ${peer.name}: ${JSON.stringify(playing)}`);
  h.log('test', `first playing: ${JSON.stringify(first)}`);
  assert.equal(first.state, 'downloading', 'the download was over before the video played');
  assert.ok(first.bytesDone < first.bytesTotal, JSON.stringify(first));
  assert.ok(await peer.page.evaluate(() => navigator.serviceWorker.controller !== null), 'the page is not controlled by the service worker');
  await h.waitFor(`${peer.name}'s video to advance 1 s`, () => currentTime(peer), (x) => x > 1);
  return first;
}

/**
 * Seeks `peer`'s video to 80 % (a range far ahead of what is here): it plays again, and
 * advances, while the download still runs. Returns the `seeked` event.
 */
async function seekPlaysWhileDownloading(peer) {
  const target = await peer.page.evaluate(() => {
    const v = document.querySelector('video.player-media');
    v.currentTime = v.duration * 0.8;
    return v.currentTime;
  });
  const events = await h.waitFor(`${peer.name} to play after the seek to 80 %`, () => mediaEvents(peer), (e) => {
    const seeked = e.findIndex((x) => x.type === 'seeked');
    return seeked >= 0 && e.slice(seeked).some((x) => x.type === 'playing' || x.type === 'error');
  });
  const seeked = events.find((x) => x.type === 'seeked');
  h.log('test', `seeked: ${JSON.stringify(seeked)}`);
  assert.ok(!events.some((x) => x.type === 'error'), JSON.stringify(events));
  assert.equal(seeked.state, 'downloading', 'the download was over before the seek played');
  assert.ok(seeked.bytesDone < seeked.bytesTotal, JSON.stringify(seeked));
  await h.waitFor(`${peer.name}'s video to advance past the seek`, () => currentTime(peer), (x) => x > target + 0.5);
  return seeked;
}

const percent = (part, whole) => `${((100 * part) / whole).toFixed(1)} %`;

describe('play while downloading', () => {
  const { it, relay, open, swarm } = h.relaySuite('stream', TEST);
  // Media may start without a gesture (the click on Play is one anyway).
  const launch = { args: ['--autoplay-policy=no-user-gesture-required'] };
  const launchSwarm = (...names) => h.launchSwarm(relay.url, open, swarm(), names, { launch });
  const video = path.join(h.REPO, 'target', 'media', `stream-test-${VIDEO_SECONDS}s.webm`);
  // A (Chromium) and F (Firefox) in a swarm of their own, connected directly.
  const chromiumAndFirefox = async () => {
    const s = swarm();
    const [a] = await h.launchSwarm(relay.url, open, s, ['A']);
    const f = await launchFirefoxPeer(relay.url, { name: 'F', swarm: s });
    open.push(f);
    await f.started();
    await h.waitMeshDirect([a, f]);
    return [a, f];
  };

  it('a video plays before a quarter of it is here, and a seek to 80 % plays while it downloads', async (t) => {
    makeVideo(video, { seconds: VIDEO_SECONDS, bitrate: '6M' });
    const size = readFileSync(video).length;
    const [a, b] = await launchSwarm('A', 'B');
    assert.equal(await b.page.evaluate(() => document.createElement('video').canPlayType('video/webm; codecs="vp8"')), 'probably');
    await a.page.evaluate((ms) => window.shoal.setTestServeDelay(ms), SERVE_DELAY_MS);
    // A shares it through the page's file picker, as a user would.
    await a.page.setInputFiles('#file-input', video);
    const link = await h.waitFor('A to share the video', () => a.page.evaluate(() => window.shoal.shares()[0]?.link ?? null));
    const id = F.shareIdOf(link);

    await b.page.evaluate(recordMediaEvents, id);
    await b.page.fill('#paste-input', link);
    await b.page.click('#paste-form button[type="submit"]');
    const play = b.page.locator(`li.download[data-share-id="${id}"] button.play`);
    await play.waitFor({ state: 'visible' });
    await play.click();

    const first = await playsWhileDownloading(b);
    t.diagnostic(`playing at ${first.bytesDone} of ${size} bytes (${percent(first.bytesDone, size)})`);
    assert.equal(first.bytesTotal, size);
    assert.ok(first.bytesDone < size / 4, `playing began only after ${first.bytesDone} of ${size} bytes were here`);
    const seeked = await seekPlaysWhileDownloading(b);
    t.diagnostic(`seeked to ${seeked.currentTime.toFixed(1)} s of ${seeked.duration.toFixed(1)} s at ${percent(seeked.bytesDone, size)} downloaded`);

    // The download completes, and is the file A shared.
    await a.page.evaluate(() => window.shoal.setTestServeDelay(0));
    await h.waitFor('B\'s download to complete', () => F.entryOf(b, id), (d) => d?.state === 'done', { timeout: F.DOWNLOAD_MS });
    const got = await b.page.evaluate(F.downloadInPage, link);
    assert.equal(got.size, size);
    assert.equal(got.sha256, createHash('sha256').update(readFileSync(video)).digest('hex'));
  });

  it('the worker answers 206, 200, 416 and 404, and serves only verified bytes', async () => {
    const [a, c, b] = await launchSwarm('A', 'C', 'B');
    const SIZE = 2 * F.MiB + 12_345;
    // A and C share the same bytes (the same share); C corrupts every chunk it sends.
    const shareSeeded = ({ size, name }) => {
      const bytes = new Uint8Array(size);
      let x = 0x9e3779b9;
      for (let i = 0; i < size; i++) {
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
        bytes[i] = x & 0xff;
      }
      return window.shoal.share(new Blob([bytes]), name);
    };
    const link = await a.page.evaluate(shareSeeded, { size: SIZE, name: 'notes.txt' });
    assert.equal(await c.page.evaluate(shareSeeded, { size: SIZE, name: 'notes.txt' }), link);
    await c.page.evaluate(() => window.shoal.setTestCorruption(true));
    // A is slow: C is asked for chunks too, whenever its session comes up.
    await a.page.evaluate((ms) => window.shoal.setTestServeDelay(ms), 2 * SERVE_DELAY_MS);
    const source = await a.page.evaluate(async (size) => {
      const bytes = new Uint8Array(size);
      let x = 0x9e3779b9;
      for (let i = 0; i < size; i++) {
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
        bytes[i] = x & 0xff;
      }
      const hex = (b) => Array.from(new Uint8Array(b), (v) => v.toString(16).padStart(2, '0')).join('');
      return { sha256: hex(await crypto.subtle.digest('SHA-256', bytes)), slice: Array.from(bytes.subarray(10, 20)) };
    }, SIZE);
    const id = F.shareIdOf(link);

    const r = await b.page.evaluate(async ({ link, id }) => {
      const { streamReady, streamUrl } = await import('/ui/stream.js');
      await streamReady();
      const download = window.shoal.download(link);
      download.catch(() => {});
      // The manifest first: the worker needs the size.
      while (!window.shoal.downloads().find((d) => d.shareId === id)?.size) await new Promise((r) => setTimeout(r, 50));
      const url = streamUrl(id, 'notes.txt');
      const hex = (b) => Array.from(new Uint8Array(b), (v) => v.toString(16).padStart(2, '0')).join('');
      const whole = await fetch(url, { headers: { Range: 'bytes=0-' } });
      const wholeBytes = await whole.arrayBuffer().catch((e) => { throw new Error(`reading the whole file: ${e}`); });
      const small = await fetch(url, { headers: { Range: 'bytes=10-19' } });
      const past = await fetch(url, { headers: { Range: 'bytes=999999999-' } });
      const garbled = await fetch(url, { headers: { Range: 'pages=1-2' } });
      const several = await fetch(url, { headers: { Range: 'bytes=0-1,5-9' } });
      const badList = await fetch(url, { headers: { Range: 'bytes=0-1,x' } });
      const unknown = await fetch(streamUrl('x'.repeat(52), 'notes.txt'));
      const plain = await fetch(url);
      const d = window.shoal.downloads().find((x) => x.shareId === id);
      return {
        whole: { status: whole.status, range: whole.headers.get('Content-Range'), type: whole.headers.get('Content-Type'), length: whole.headers.get('Content-Length'), sha256: hex(await crypto.subtle.digest('SHA-256', wholeBytes)) },
        small: { status: small.status, range: small.headers.get('Content-Range'), bytes: Array.from(new Uint8Array(await small.arrayBuffer())) },
        past: { status: past.status, range: past.headers.get('Content-Range') },
        garbled: garbled.status,
        several: { status: several.status, range: several.headers.get('Content-Range'), got: (await several.arrayBuffer()).byteLength },
        badList: badList.status,
        unknown: unknown.status,
        plain: { status: plain.status, length: Number(plain.headers.get('Content-Length')), got: (await plain.arrayBuffer()).byteLength },
        sources: d.sources,
      };
    }, { link, id });
    h.log('test', JSON.stringify(r));
    assert.deepEqual(r.whole, { status: 206, range: `bytes 0-${SIZE - 1}/${SIZE}`, type: 'text/plain; charset=utf-8', length: String(SIZE), sha256: source.sha256 });
    assert.deepEqual(r.small, { status: 206, range: `bytes 10-19/${SIZE}`, bytes: source.slice });
    assert.deepEqual(r.past, { status: 416, range: `bytes */${SIZE}` });
    assert.equal(r.garbled, 416);
    assert.deepEqual(r.several, { status: 200, range: null, got: SIZE }, 'several ranges: the whole file');
    assert.equal(r.badList, 416);
    assert.equal(r.unknown, 404);
    assert.deepEqual(r.plain, { status: 200, length: SIZE, got: SIZE });
    // C's chunks were refused: what the worker served came from A's verified ones.
    const fromC = r.sources.find((s) => s.peerId === c.peerId);
    assert.ok(fromC && fromC.badChunks > 0 && fromC.banned, JSON.stringify(r.sources));
  });

  it('a text the sharer calls text/html runs no script, streamed or finished', async () => {
    const [a, b] = await launchSwarm('A', 'B');
    // The manifest's media type is the sharer's word; the page must not believe it.
    const link = await a.page.evaluate(() => {
      const html = '<p id="x">hello</p><script>top.pwned = (top.pwned || 0) + 1</script>';
      return window.shoal.share(new File([html], 'page.txt', { type: 'text/html' }), 'page.txt');
    });
    const id = F.shareIdOf(link);
    const r = await b.page.evaluate(async ({ link, id }) => {
      const { streamReady, streamUrl, openPlayer } = await import('/ui/stream.js');
      await streamReady();
      const file = await window.shoal.download(link);
      const res = await fetch(streamUrl(id, 'page.txt'));
      const headers = { type: res.headers.get('Content-Type'), csp: res.headers.get('Content-Security-Policy') };
      const box = document.createElement('div');
      document.body.append(box);
      // Both of the page's ways to show it: from the worker, and from the finished File.
      const shown = [];
      for (const from of [{}, { file }]) {
        const frame = await openPlayer(box, { shareId: id, path: 'page.txt', name: 'page.txt', ...from });
        await new Promise((resolve) => frame.addEventListener('load', resolve, { once: true }));
        shown.push({ sandbox: frame.getAttribute('sandbox'), scripted: window.pwned ?? 0 });
      }
      return { fileType: file.type, headers, shown };
    }, { link, id });
    h.log('test', JSON.stringify(r));
    assert.equal(r.fileType, 'text/html', 'the sharer did not claim text/html, so this run tests nothing');
    assert.deepEqual(r.headers, { type: 'text/plain; charset=utf-8', csp: "sandbox; default-src 'none'" });
    assert.deepEqual(r.shown, [{ sandbox: '', scripted: 0 }, { sandbox: '', scripted: 0 }]);
  });

  it('a Firefox page streams a file through the worker while it downloads', async (t) => {
    const unavailable = firefoxUnavailable();
    if (unavailable) return t.skip(unavailable);
    const [a, f] = await chromiumAndFirefox();
    const orig = await F.shareRandom(a, 3 * F.MiB, 'notes.txt');
    await a.page.evaluate((ms) => window.shoal.setTestServeDelay(ms), SERVE_DELAY_MS);
    const id = F.shareIdOf(orig.link);
    const r = await f.page.evaluate(async ({ link, id }) => {
      const { canStream, streamReady, streamUrl } = await import('/ui/stream.js');
      if (!canStream()) return { canStream: false };
      await streamReady();
      window.shoal.download(link).catch(() => {});
      while (!window.shoal.downloads().find((d) => d.shareId === id)?.size) await new Promise((r) => setTimeout(r, 50));
      const res = await fetch(streamUrl(id, 'notes.txt'), { headers: { Range: 'bytes=0-' } });
      const reader = res.body.getReader();
      let first = null;
      const parts = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        first ??= window.shoal.downloads().find((d) => d.shareId === id).bytesDone;
        parts.push(value);
      }
      const bytes = await new Blob(parts).arrayBuffer();
      const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (v) => v.toString(16).padStart(2, '0')).join('');
      return { canStream: true, status: res.status, range: res.headers.get('Content-Range'), first, sha256: hex };
    }, { link: orig.link, id });
    assert.deepEqual({ ...r, first: undefined }, { canStream: true, status: 206, range: `bytes 0-${orig.size - 1}/${orig.size}`, first: undefined, sha256: orig.sha256 });
    // The first bytes came while most of the file was still to come.
    assert.ok(r.first < orig.size, JSON.stringify(r));
    t.diagnostic(`Firefox: first piece read at ${r.first} of ${orig.size} bytes downloaded`);
  });

  it("a Firefox page's Play button plays the video while it downloads", async (t) => {
    const unavailable = firefoxUnavailable();
    if (unavailable) return t.skip(unavailable);
    makeVideo(video, { seconds: VIDEO_SECONDS, bitrate: '6M' });
    const size = readFileSync(video).length;
    const [a, f] = await chromiumAndFirefox();
    assert.equal(await f.page.evaluate(() => document.createElement('video').canPlayType('video/webm; codecs="vp8"')), 'probably');
    await a.page.evaluate((ms) => window.shoal.setTestServeDelay(ms), SERVE_DELAY_MS);
    await a.page.setInputFiles('#file-input', video);
    const link = await h.waitFor('A to share the video', () => a.page.evaluate(() => window.shoal.shares()[0]?.link ?? null));
    const id = F.shareIdOf(link);

    // As a user would: paste the link, press Play (a real click: a user gesture).
    await f.page.evaluate(recordMediaEvents, id);
    await f.page.type('#paste-input', link);
    await f.page.click('#paste-form button[type="submit"]');
    const play = `li.download[data-share-id="${id}"] button.play`;
    await f.page.waitForSelector(play, { visible: true });
    await f.page.click(play);

    const first = await playsWhileDownloading(f);
    t.diagnostic(`Firefox: playing at ${first.bytesDone} of ${size} bytes (${percent(first.bytesDone, size)})`);
    const seeked = await seekPlaysWhileDownloading(f);
    t.diagnostic(`Firefox: seeked to ${seeked.currentTime.toFixed(1)} s of ${seeked.duration.toFixed(1)} s at ${percent(seeked.bytesDone, size)} downloaded`);
    await a.page.evaluate(() => window.shoal.setTestServeDelay(0));
  });
});

