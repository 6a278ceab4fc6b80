#!/usr/bin/env node
// Benchmark: play while downloading (issue #9).
//
//   node tests/bench/stream.mjs [--runs N] [--mib M] [--no-write]      (make bench-stream)
//
// A peer shares a WebM video of about M MiB (default 256; VP8 made by ffmpeg,
// cached in target/media/) and waits in its swarm. Then, per run, the share link
// is opened in a fresh Chromium process (cold cache, empty storage); the page
// starts the download by itself, and its "Play" button is pressed as soon as it
// shows. Measured from the navigation start of that page:
// - first frame: the first `requestVideoFrameCallback` of the player (a frame was
//   presented), and the `playing` event;
// - then, after a second of playing, a seek to 80 %: from setting currentTime to
//   the first frame presented after `seeked`, and to `playing`; with how much of
//   the file was downloaded when the seek was made.
// Writes the figures into BENCHMARKS.md (its own section).
//
// Relay binary: $SHOAL_RELAY_BIN, else target/release/relay; page: $SHOAL_WWW, else www/.

import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as h from '../e2e/harness.mjs';
import { makeVideo } from '../e2e/video.mjs';
import { benchCommand, cliArgs, machine, writeSection } from './lib/report.mjs';
import { median } from './lib/util.mjs';

const { argv, flag, option } = cliArgs();
const RUNS = Math.max(1, Number.parseInt(option('--runs', '3'), 10) || 3);
const MIB = Math.max(8, Number.parseInt(option('--mib', '256'), 10) || 256);
const WRITE = !flag('--no-write');
const COMMAND = benchCommand('tests/bench/stream.mjs', argv);
const SECTION_START = '<!-- bench:stream -->';
const SECTION_END = '<!-- /bench:stream -->';
/** The video's bitrate: 40 Mbit/s, so that M MiB is M / 4.77 seconds of it. */
const BITRATE_MBIT = 40;
const LAUNCH = { args: ['--autoplay-policy=no-user-gesture-required'] };

/** In the measured page, before its scripts: note media events and presented frames. */
function recordPlayback() {
  window.__media = [];
  const note = (type, v, extra = {}) => {
    const d = window.shoal?.downloads?.()[0];
    window.__media.push({ type, at: performance.now(), currentTime: v.currentTime, bytesDone: d?.bytesDone ?? null, bytesTotal: d?.bytesTotal ?? null, ...extra });
  };
  const frames = (v) => {
    if (!v.requestVideoFrameCallback) return;
    v.requestVideoFrameCallback((now, meta) => {
      note('frame', v, { frameAt: now, mediaTime: meta.mediaTime });
      frames(v);
    });
  };
  document.addEventListener('loadstart', (ev) => frames(ev.target), true);
  for (const type of ['playing', 'seeking', 'seeked', 'error']) {
    document.addEventListener(type, (ev) => note(type, ev.target, ev.target.error ? { error: ev.target.error.message } : {}), true);
  }
}

const events = (page) => page.evaluate(() => window.__media);
const fmt = (x) => (x === null || x === undefined ? '—' : `${Math.round(x)}`);

async function run(relay, link, size, i) {
  const peer = await h.launchPeer(relay.url, { name: `B${i}`, swarm: 'stream', launch: LAUNCH, url: `${relay.url}/healthz`, initScripts: [recordPlayback] });
  try {
    const { page } = peer;
    await page.goto(link);
    const id = link.slice(link.indexOf('share=') + 'share='.length);
    const play = page.locator(`li.download[data-share-id="${id}"] button.play`);
    await play.waitFor({ state: 'visible', timeout: 4 * h.WAIT_MS });
    const clickedAt = await page.evaluate(() => performance.now());
    await play.click();
    const first = await h.waitFor(`B${i} to present a frame`, () => events(page), (e) => e.some((x) => x.type === 'frame' || x.type === 'error'), { timeout: 4 * h.WAIT_MS, interval: 50 });
    if (first.some((x) => x.type === 'error')) throw new Error(`the video failed: ${JSON.stringify(first)}`);
    await h.waitFor(`B${i}'s video to play 1 s`, () => page.evaluate(() => document.querySelector('video.player-media').currentTime), (t) => t >= 1, { timeout: 4 * h.WAIT_MS, interval: 50 });
    const seek = await page.evaluate(() => {
      const v = document.querySelector('video.player-media');
      const d = window.shoal.downloads()[0];
      const at = performance.now();
      v.currentTime = v.duration * 0.8;
      return { at, target: v.currentTime, bytesDone: d.bytesDone, bytesTotal: d.bytesTotal };
    });
    const after = await h.waitFor(`B${i} to play after the seek`, () => events(page), (e) => {
      const s = e.findIndex((x) => x.type === 'seeked');
      return s >= 0 && e.slice(s).some((x) => x.type === 'frame' && x.mediaTime >= seek.target - 1) && e.slice(s).some((x) => x.type === 'playing');
    }, { timeout: 4 * h.WAIT_MS, interval: 50 });
    const firstFrame = after.find((x) => x.type === 'frame');
    const firstPlaying = after.find((x) => x.type === 'playing');
    const s = after.findIndex((x) => x.type === 'seeked');
    const seekFrame = after.slice(s).find((x) => x.type === 'frame');
    const seekPlaying = after.slice(s).find((x) => x.type === 'playing');
    const stateAfter = await page.evaluate(() => window.shoal.downloads()[0]);
    return {
      frameMs: firstFrame.frameAt,
      playingMs: firstPlaying.at,
      clickedMs: clickedAt,
      framePct: (100 * firstFrame.bytesDone) / size,
      seekFrameMs: seekFrame.frameAt - seek.at,
      seekPlayingMs: seekPlaying.at - seek.at,
      seekPct: (100 * seek.bytesDone) / size,
      stillDownloading: stateAfter.state === 'downloading',
    };
  } finally {
    await peer.close();
  }
}

async function main() {
  const seconds = Math.round((MIB * 1024 * 1024 * 8) / (BITRATE_MBIT * 1e6));
  const file = path.join(h.REPO, 'target', 'media', `bench-${MIB}MiB.webm`);
  console.log(`video: ${file} (${seconds} s at ${BITRATE_MBIT} Mbit/s; made once)`);
  const t0 = Date.now();
  makeVideo(file, { seconds, bitrate: `${BITRATE_MBIT}M`, size: '1280x720' });
  const size = statSync(file).size;
  console.log(`video ready: ${(size / 2 ** 20).toFixed(1)} MiB (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  const relay = await h.startRelay();
  const results = [];
  try {
    const a = await h.launchPeer(relay.url, { name: 'A', swarm: 'stream', launch: LAUNCH });
    await a.started();
    await a.page.setInputFiles('#file-input', file);
    const link = await h.waitFor('A to share the video', () => a.page.evaluate(() => window.shoal.shares()[0]?.link ?? null), Boolean, { timeout: 8 * h.WAIT_MS });
    for (let i = 1; i <= RUNS; i++) {
      const r = await run(relay, link, size, i);
      console.log(`run ${i}: first frame ${fmt(r.frameMs)} ms (playing ${fmt(r.playingMs)} ms, Play shown and pressed at ${fmt(r.clickedMs)} ms, ${r.framePct.toFixed(1)} % downloaded); after a seek to 80 % (at ${r.seekPct.toFixed(1)} % downloaded): frame ${fmt(r.seekFrameMs)} ms, playing ${fmt(r.seekPlayingMs)} ms; still downloading: ${r.stillDownloading}`);
      results.push(r);
    }
    await a.close();
  } catch (e) {
    h.dumpLogs();
    throw e;
  } finally {
    await h.closeAll();
    await relay.stop();
  }
  const m = machine();
  const med = (k) => median(results.map((r) => r[k]));
  const rows = results.map((r, i) => `| ${i + 1} | ${fmt(r.clickedMs)} | ${fmt(r.frameMs)} | ${fmt(r.playingMs)} | ${r.framePct.toFixed(1)} % | ${r.seekPct.toFixed(1)} % | ${fmt(r.seekFrameMs)} | ${fmt(r.seekPlayingMs)} | ${r.stillDownloading ? 'yes' : 'no'} |`);
  const text = `${SECTION_START}
## Play while downloading

A ${(size / 2 ** 20).toFixed(0)} MiB WebM video (VP8, ${BITRATE_MBIT} Mbit/s, 1280×720, ${seconds} s, made by ffmpeg) shared by one
page; its share link opened in a fresh Chromium process (cold cache, empty storage) on the same
machine (loopback), the page's Play button pressed as soon as it shows. Times in ms from the
measured page's navigation start (page load included); the seek from setting \`currentTime\`.
"first frame": the player's first \`requestVideoFrameCallback\`.

| run | Play shown | first frame | \`playing\` | downloaded at first frame | downloaded at the seek | seek → frame | seek → \`playing\` | download still running |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Median of ${results.length}: first frame **${fmt(med('frameMs'))} ms** (\`playing\` ${fmt(med('playingMs'))} ms) after navigation start; after a seek to
80 %, a frame in **${fmt(med('seekFrameMs'))} ms** (\`playing\` ${fmt(med('seekPlayingMs'))} ms), while the download went on.

Machine: ${m.arch}, ${m.cpus} cores (${m.cpu}), ${m.memGiB.toFixed(1)} GiB; ${new Date().toISOString().slice(0, 10)}.
Command: \`${COMMAND}\`.
${SECTION_END}`;
  console.log(text);
  if (WRITE) console.log(`wrote ${writeSection(SECTION_START, SECTION_END, text)}`);
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
