// The ceiling: a bare RTCPeerConnection pair between two tabs (one per browser
// process), SDP passed through Playwright (no trickle: the full description
// once ICE gathering completes), iceServers: [], one ordered data channel.
// The sender reads the same disk-backed File that the other contenders get
// (4 MiB slices, read ahead) and sends messages of one size, pausing while
// bufferedAmount is above a high-water mark until `bufferedamountlow` (see
// RAW_CONFIGS for the sizes and marks tried).
// The receiver only counts bytes. Rate = bytes / (first byte sent → last byte
// received), both stamped with performance.timeOrigin + performance.now()
// (wall clock, same machine).

import { poll, throttle } from './util.mjs';

export const RAW = { message: 64 * 1024, highWater: 1024 * 1024, lowWater: 256 * 1024 };

/** The configurations the benchmark tries; the fastest is the reference (issue 10). */
export const RAW_CONFIGS = [
  RAW,
  { message: 64 * 1024, highWater: 8 * 1024 * 1024, lowWater: 2 * 1024 * 1024 },
  { message: 256 * 1024, highWater: 1024 * 1024, lowWater: 256 * 1024 },
  { message: 256 * 1024, highWater: 8 * 1024 * 1024, lowWater: 2 * 1024 * 1024 },
];

/** "64 KiB messages, pause above 1 MiB buffered until 256 KiB" */
export const describeRaw = (c) =>
  `${c.message / 1024} KiB messages, pause above ${c.highWater / 1048576} MiB buffered until ${c.lowWater >= 1048576 ? `${c.lowWater / 1048576} MiB` : `${c.lowWater / 1024} KiB`}`;

// ---- evaluated in the pages --------------------------------------------------

async function rawOffer() {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const dc = pc.createDataChannel('raw', { ordered: true });
  dc.binaryType = 'arraybuffer';
  window.__raw = { pc, dc };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve, reject) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(() => reject(new Error(`ICE gathering still ${pc.iceGatheringState} after 10 s`)), 10_000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });
  return pc.localDescription.toJSON();
}

async function rawAnswer([offer, total]) {
  const now = () => performance.timeOrigin + performance.now();
  const pc = new RTCPeerConnection({ iceServers: [] });
  const st = (window.__raw = { pc, total, received: 0, messages: 0, firstRecv: null, lastRecv: null });
  pc.ondatachannel = (ev) => {
    const dc = ev.channel;
    dc.binaryType = 'arraybuffer';
    dc.onmessage = (m) => {
      if (st.firstRecv === null) st.firstRecv = now();
      st.received += m.data.byteLength;
      st.messages++;
      if (st.received >= st.total && st.lastRecv === null) st.lastRecv = now();
    };
  };
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((resolve, reject) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(() => reject(new Error(`ICE gathering still ${pc.iceGatheringState} after 10 s`)), 10_000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });
  return pc.localDescription.toJSON();
}

async function rawConnect(answer) {
  const { pc, dc } = window.__raw;
  await pc.setRemoteDescription(answer);
  if (dc.readyState !== 'open') {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`data channel still ${dc.readyState} after 15 s (ICE ${pc.iceConnectionState})`)), 15_000);
      dc.addEventListener('open', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
  return { maxMessageSize: pc.sctp?.maxMessageSize ?? null };
}

// Starts sending in the background; window.__raw.send holds the outcome.
function rawStartSend({ message, highWater, lowWater }) {
  const now = () => performance.timeOrigin + performance.now();
  const { dc } = window.__raw;
  const file = window.__benchFile;
  const st = (window.__raw.send = { firstSent: null, sentAt: null, sent: 0, error: null, pauses: 0 });
  dc.bufferedAmountLowThreshold = lowWater;
  const SLICE = 4 * 1024 * 1024;
  (async () => {
    let next = file.slice(0, SLICE).arrayBuffer();
    for (let off = 0; off < file.size; off += SLICE) {
      const buf = await next;
      if (off + SLICE < file.size) next = file.slice(off + SLICE, off + 2 * SLICE).arrayBuffer();
      for (let i = 0; i < buf.byteLength; i += message) {
        if (dc.bufferedAmount > highWater) {
          st.pauses++;
          await new Promise((r) => dc.addEventListener('bufferedamountlow', r, { once: true }));
        }
        if (st.firstSent === null) st.firstSent = now();
        dc.send(new Uint8Array(buf, i, Math.min(message, buf.byteLength - i)));
        st.sent += Math.min(message, buf.byteLength - i);
      }
    }
    st.sentAt = now();
  })().catch((e) => { st.error = String(e?.stack ?? e); });
}

function rawClose() {
  try { window.__raw?.dc?.close(); } catch { /* gone */ }
  try { window.__raw?.pc?.close(); } catch { /* gone */ }
}

// ---- driven from node -------------------------------------------------------

/**
 * One raw transfer of `size` bytes from tab `a` (which has window.__benchFile) to tab `b`.
 * @returns {Promise<{bytes, seconds, mbps, recvOnlyMbps, pauses}>}
 */
export async function rawTransfer(a, b, size, { timeoutMs, progress = () => {}, config = RAW }) {
  try {
    const offer = await a.evaluate(rawOffer);
    const answer = await b.evaluate(rawAnswer, [offer, size]);
    await a.evaluate(rawConnect, answer);
    await a.evaluate(rawStartSend, config);
    const tick = throttle(progress);
    const done = await poll(
      `raw: B to receive ${size} bytes`,
      async () => {
        const [s, r] = await Promise.all([a.evaluate(() => window.__raw.send), b.evaluate(() => ({ ...window.__raw, pc: undefined }))]);
        if (s.error) throw new Error(`raw sender failed: ${s.error}`);
        tick(r.received);
        return { s, r };
      },
      ({ r }) => r.lastRecv !== null,
      { timeout: timeoutMs, interval: 200 },
    );
    const { s, r } = done;
    const seconds = (r.lastRecv - s.firstSent) / 1000;
    return {
      bytes: r.received,
      seconds,
      mbps: r.received / 1e6 / seconds,
      recvOnlyMbps: r.received / 1e6 / ((r.lastRecv - r.firstRecv) / 1000),
      pauses: s.pauses,
    };
  } finally {
    await Promise.all([a.evaluate(rawClose).catch(() => {}), b.evaluate(rawClose).catch(() => {})]);
  }
}
