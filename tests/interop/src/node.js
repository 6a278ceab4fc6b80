// A js-libp2p browser node for the interop test, exposed as `window.jsnode`.
// Built by build.mjs into dist/jsnode.js and injected into a page that does not start shoal.
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record';
import { ping } from '@libp2p/ping';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';

const PING = '/ipfs/ping/1.0.0';
const RENDEZVOUS = '/rendezvous/1.0.0';
/** shoal's test-only echo protocol (peer-wasm/src/echo.rs, in builds with `test-hooks`). */
const ECHO = '/shoal/test/echo/1.0.0';

/** How the echo streams js served ended: { served, fin, reset, other, bytes }. */
const echoStats = { served: 0, fin: 0, reset: 0, other: 0, bytes: 0 };

/** The byte at `offset` of stream `id`'s pattern (the same as echo.rs). */
const patternByte = (id, offset) => (Math.imul(offset, 31) + Math.imul(id, 7)) & 0xff;

function pattern(id, from, len) {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = patternByte(id, from + i);
  return out;
}

/** How a stream ended, from its final state: 'fin' (both closed cleanly), 'reset' or 'other'. */
function endOf(stream, closeEvent) {
  if (stream.status === 'reset' || /reset/i.test(String(closeEvent?.error?.name ?? ''))) return 'reset';
  return closeEvent?.error ? 'other' : 'fin';
}

/** Serve one echo stream: send back what arrives; close the write end after the remote's. */
function echoServe(stream) {
  echoStats.served++;
  stream.addEventListener('message', (e) => {
    const data = e.data.subarray ? e.data.subarray() : e.data;
    echoStats.bytes += data.length;
    if (!stream.send(data)) {
      stream.pause();
      stream.onDrain().then(() => stream.resume(), () => {});
    }
  });
  stream.addEventListener('remoteCloseWrite', () => { stream.close().catch(() => {}); });
  stream.addEventListener('close', (e) => { echoStats[endOf(stream, e)]++; });
}

/** At most this many bytes sent and not yet echoed back (the same as echo.rs's WINDOW: /webrtc streams have no flow control, each end resets past 4 MiB unread). */
const WINDOW = 1024 * 1024;

/**
 * One echo round trip on a new stream to `peer`: write `len` bytes of pattern `id` (waiting for
 * drain, and while more than WINDOW is unanswered), half-close, check every byte that comes back
 * and that the stream then ends cleanly. Resolves to { ok, got, error, remoteAddr }.
 */
async function echoRoundTrip(peer, id, len, timeoutMs) {
  const stream = await node.dialProtocol(peerIdFromString(peer), ECHO, { signal: AbortSignal.timeout(10_000) });
  const conn = node.getConnections(peerIdFromString(peer)).find((c) => c.streams?.includes?.(stream));
  let got = 0;
  let bad = null;
  let wake = null;
  let closeError = null;
  const ended = new Promise((resolve) => {
    stream.addEventListener('message', (e) => {
      const data = e.data.subarray ? e.data.subarray() : e.data;
      if (bad == null) {
        for (let i = 0; i < data.length; i++) {
          if (data[i] !== patternByte(id, got + i)) { bad = got + i; break; }
        }
      }
      got += data.length;
      wake?.();
    });
    stream.addEventListener('close', (e) => { closeError = e?.error ?? null; wake?.(); resolve(endOf(stream, e)); });
  });
  const deadline = Date.now() + timeoutMs;
  const CHUNK = 64 * 1024;
  let sent = 0;
  const why = (e) => {
    const err = e?.error ?? closeError ?? e;
    return `${err?.name ?? err?.type ?? 'error'}: ${err?.message ?? ''} (stream ${stream.status}, sent ${sent}, got ${got})`;
  };
  try {
    while (sent < len) {
      while (sent - got > WINDOW && stream.status === 'open') {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
        await new Promise((r) => { wake = r; setTimeout(r, 100); });
      }
      const n = Math.min(CHUNK, len - sent);
      if (!stream.send(pattern(id, sent, n))) await stream.onDrain({ signal: AbortSignal.timeout(timeoutMs) });
      sent += n;
    }
    await stream.close({ signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new Error(why(e));
  }
  const end = await Promise.race([ended, new Promise((r) => setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())))]);
  const error = bad != null ? `byte ${bad} differs` : got !== len ? `${got} of ${len} bytes came back` : end !== 'fin' ? `ended by ${end}` : null;
  return { ok: error == null, got, error, remoteAddr: conn?.remoteAddr?.toString() ?? null };
}

let node = null;
let privateKey = null;

function cmpBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Generate an Ed25519 key whose PeerId bytes compare `order` ('less'|'greater') to `other`. */
async function keyOrdered(other, order) {
  const otherBytes = peerIdFromString(other).toMultihash().bytes;
  for (;;) {
    const key = await generateKeyPair('Ed25519');
    const c = cmpBytes(peerIdFromPrivateKey(key).toMultihash().bytes, otherBytes);
    if ((order === 'less' && c < 0) || (order === 'greater' && c > 0)) return key;
  }
}

const describe = (c) => ({
  id: c.id,
  remotePeer: c.remotePeer.toString(),
  remoteAddr: c.remoteAddr.toString(),
  direction: c.direction,
  status: c.status,
  direct: c.direct,
  limited: c.limits != null,
  multiplexer: c.multiplexer ?? null,
  encryption: c.encryption ?? null,
});

/** Collect a stream's incoming bytes. */
function reader(stream) {
  const chunks = [];
  let waiter = null;
  let ended = false;
  stream.addEventListener('message', (e) => {
    chunks.push(e.data.subarray ? e.data.subarray() : e.data);
    waiter?.();
  });
  stream.addEventListener('remoteCloseWrite', () => { ended = true; waiter?.(); });
  stream.addEventListener('close', () => { ended = true; waiter?.(); });
  const total = () => chunks.reduce((n, c) => n + c.length, 0);
  const concat = () => {
    const out = new Uint8Array(total());
    let o = 0;
    for (const c of chunks) { out.set(c, o); o += c.length; }
    return out;
  };
  return {
    /** Resolve with all bytes once at least n arrived (or the stream ended). */
    async atLeast(n, ms) {
      const deadline = Date.now() + ms;
      while (total() < n && !ended) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms with ${total()}/${n} bytes`);
        await new Promise((r) => { waiter = r; setTimeout(r, Math.min(left, 100)); });
      }
      return concat();
    },
  };
}

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Uint8Array.from(out);
}
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
const lenField = (tag, bytes) => cat(Uint8Array.of(tag), varint(bytes.length), bytes);
function readVarint(buf, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (!(b & 0x80)) return [v, pos];
  }
}
/** Decode a protobuf message into {fieldNo: [values]} (varints as BigInt, len-delimited as Uint8Array). */
function pbFields(buf) {
  const out = {};
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const no = Number(key >> 3n), wt = Number(key & 7n);
    let val;
    if (wt === 0) [val, pos] = readVarint(buf, pos);
    else if (wt === 2) { let len; [len, pos] = readVarint(buf, pos); val = buf.subarray(pos, pos + Number(len)); pos += Number(len); }
    else throw new Error(`unsupported wire type ${wt}`);
    (out[no] ??= []).push(val);
  }
  return out;
}

/** One rendezvous request on its own stream, one length-prefixed answer back, decoded to fields. */
async function rendezvousRpc(relayAddr, msg) {
  const stream = await node.dialProtocol(multiaddr(relayAddr), RENDEZVOUS, { signal: AbortSignal.timeout(10_000) });
  const rd = reader(stream);
  stream.send(cat(varint(msg.length), msg));
  const buf = await rd.atLeast(2, 10_000);
  if (buf.length === 0) throw new Error(`rendezvous: the relay closed the stream without a response (stream ${stream.status}, read ${stream.readStatus})`);
  const [len, pos] = readVarint(buf, 0);
  const full = buf.length >= pos + Number(len) ? buf : await rd.atLeast(pos + Number(len), 10_000);
  await stream.close().catch(() => {});
  return pbFields(full.subarray(pos, pos + Number(len)));
}

window.jsnode = {
  /**
   * Start a node. `order`/`other`: pick a key whose PeerId is 'less'/'greater' than `other`.
   * `listenRelay`: a relay multiaddr to reserve on (listen on /p2p-circuit and /webrtc).
   */
  async start({ other = null, order = null, listenRelay = null } = {}) {
    privateKey = other && order ? await keyOrdered(other, order) : await generateKeyPair('Ed25519');
    node = await createLibp2p({
      privateKey,
      addresses: { listen: listenRelay ? [`${listenRelay}/p2p-circuit`, '/webrtc'] : [] },
      transports: [
        // @libp2p/websockets 10 has no `filter` option: it dials ws:// and wss:// alike.
        webSockets(),
        webRTC({ rtcConfiguration: { iceServers: [] } }),
        circuitRelayTransport(),
      ],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr: () => false },
      services: { identify: identify(), ping: ping() },
    });
    await node.handle(ECHO, (stream) => echoServe(stream), { maxInboundStreams: 256, maxOutboundStreams: 256 });
    node.addEventListener('connection:open', (e) => console.log('jsnode connection:open', JSON.stringify(describe(e.detail))));
    node.addEventListener('connection:close', (e) => console.log('jsnode connection:close', JSON.stringify(describe(e.detail))));
    node.addEventListener('self:peer:update', () => console.log('jsnode addrs', node.getMultiaddrs().map(String).join(' ')));
    console.log('jsnode started', node.peerId.toString());
    return node.peerId.toString();
  },
  addrs: () => node.getMultiaddrs().map(String),
  connections: () => node.getConnections().map(describe),
  async dial(addr) {
    const t = performance.now();
    const conn = await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(20_000) });
    return { ms: Math.round(performance.now() - t), conn: describe(conn) };
  },
  /**
   * Ping over one specific connection (by id): 32 random bytes out, the same 32 back.
   * Then time stream.close() (FIN → FIN_ACK on /webrtc).
   */
  async pingConn(connId, { settleMs = 3_000 } = {}) {
    const conn = node.getConnections().find((c) => c.id === connId);
    if (!conn) throw new Error(`no connection ${connId}`);
    const t0 = performance.now();
    const stream = await conn.newStream(PING, { signal: AbortSignal.timeout(10_000) });
    const tOpen = performance.now();
    const rd = reader(stream);
    const data = crypto.getRandomValues(new Uint8Array(32));
    const t1 = performance.now();
    stream.send(data);
    const back = await rd.atLeast(32, 10_000);
    const rttMs = performance.now() - t1;
    if (back.length !== 32 || back.some((b, i) => b !== data[i])) throw new Error(`wrong pong (${back.length} bytes)`);
    const t2 = performance.now();
    await stream.close({ signal: AbortSignal.timeout(15_000) });
    const closeMs = performance.now() - t2;
    // Our side closes its write end after echoing (rust ping sees our FIN); wait for the stream to end fully.
    const t3 = performance.now();
    while (stream.status === 'open' && performance.now() - t3 < settleMs) await new Promise((r) => setTimeout(r, 10));
    const endedMs = stream.status !== 'open' ? Math.round(performance.now() - t3) : null;
    return {
      endedMs,
      openMs: Math.round(tOpen - t0), rttMs: Math.round(rttMs * 10) / 10, closeMs: Math.round(closeMs),
      status: stream.status, readStatus: stream.readStatus, writeStatus: stream.writeStatus,
    };
  },
  /** The ping service's own ping to a peer id (whatever connection it picks). */
  async pingService(peer) {
    return node.services.ping.ping(peerIdFromString(peer), { signal: AbortSignal.timeout(10_000) });
  },
  /**
   * Register at the relay's rendezvous server (shoal's own, /rendezvous/1.0.0). The record is
   * signed by @libp2p/peer-record's stock `RecordEnvelope.seal`, no hand-signing:
   * form 'standard' seals the stock PeerRecord (domain "libp2p-peer-record", payload type 0x0301,
   * what js-libp2p and go-libp2p read); form 'legacy' seals the same record under rust-libp2p's
   * domain "libp2p-routing-state" / "/libp2p/routing-state-record", the only form rust-libp2p's
   * rendezvous *client* (our pages) can read. There is no rendezvous client package for js-libp2p
   * 3 on npm, so the protobuf REGISTER message itself is encoded here.
   * 5 minutes: what pages use (the relay grants 1 to 10 minutes).
   */
  async register(relayAddr, namespace, { ttl = 300, form = 'standard' } = {}) {
    const record = new PeerRecord({ peerId: node.peerId, multiaddrs: node.getMultiaddrs().map((m) => multiaddr(m.toString())), seqNumber: BigInt(Date.now()) });
    const enc = new TextEncoder();
    const sealed = form === 'standard'
      ? record
      : { domain: 'libp2p-routing-state', codec: enc.encode('/libp2p/routing-state-record'), marshal: () => record.marshal(), equals: () => false };
    const envelope = (await RecordEnvelope.seal(sealed, privateKey)).marshal();
    const register = cat(lenField(0x0a, enc.encode(namespace)), lenField(0x12, envelope), Uint8Array.of(0x18), varint(ttl));
    const m = await rendezvousRpc(relayAddr, cat(Uint8Array.of(0x08, 0x00), lenField(0x12, register)));
    const resp = m[3] ? pbFields(m[3][0]) : {};
    return {
      type: Number(m[1]?.[0] ?? -1),
      status: Number(resp[1]?.[0] ?? 0),
      statusText: resp[2] ? new TextDecoder().decode(resp[2][0]) : null,
      ttl: resp[3] ? Number(resp[3][0]) : null,
    };
  },
  /**
   * DISCOVER in `namespace` (null: none, which the relay refuses). Each record returned is opened
   * with the stock `RecordEnvelope.openAndCertify` for the standard domain: it must verify.
   */
  async discover(relayAddr, namespace, { limit = null } = {}) {
    const enc = new TextEncoder();
    const body = cat(namespace == null ? new Uint8Array() : lenField(0x0a, enc.encode(namespace)), limit == null ? new Uint8Array() : cat(Uint8Array.of(0x10), varint(limit)));
    const m = await rendezvousRpc(relayAddr, cat(Uint8Array.of(0x08, 0x03), lenField(0x2a, body)));
    const resp = m[6] ? pbFields(m[6][0]) : {};
    const peers = [];
    for (const reg of resp[1] ?? []) {
      const r = pbFields(reg);
      const env = await RecordEnvelope.openAndCertify(r[2][0], PeerRecord.DOMAIN);
      const rec = PeerRecord.createFromProtobuf(env.payload);
      peers.push({ peerId: rec.peerId.toString(), addrs: rec.multiaddrs.map(String), ttl: r[3] ? Number(r[3][0]) : null, ns: new TextDecoder().decode(r[1][0]) });
    }
    return {
      type: Number(m[1]?.[0] ?? -1),
      status: Number(resp[3]?.[0] ?? 0),
      statusText: resp[4] ? new TextDecoder().decode(resp[4][0]) : null,
      cookie: resp[2] ? Array.from(resp[2][0]).length : 0,
      peers,
    };
  },
  /**
   * Hostile signaling: over the circuit to `target` (`<relay>/p2p-circuit/p2p/<target>`), open
   * /webrtc-signaling/0.0.1 (runOnLimitedConnection), write `hex` raw bytes (may be empty: a silent
   * peer), then watch until the remote resets/closes the stream or `waitMs` passes.
   * Returns { outcome: 'reset'|'closed'|'timeout', ms (since the write), bytesIn, status, ... }.
   */
  async rawSignal(relayAddr, target, hex, { waitMs = 15_000 } = {}) {
    const conn = await node.dial(multiaddr(`${relayAddr}/p2p-circuit/p2p/${target}`), { signal: AbortSignal.timeout(10_000) });
    const stream = await conn.newStream('/webrtc-signaling/0.0.1', { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) });
    let bytesIn = 0;
    let outcome = null;
    let detail = null;
    let done;
    const ended = new Promise((r) => { done = r; });
    const t0 = performance.now();
    let endMs = null;
    const finish = (o, d) => { if (outcome) return; outcome = o; detail = d; endMs = Math.round(performance.now() - t0); done(); };
    stream.addEventListener('message', (e) => { bytesIn += (e.data.byteLength ?? e.data.length ?? 0); });
    stream.addEventListener('remoteCloseWrite', () => finish('closed', 'remoteCloseWrite'));
    stream.addEventListener('close', (e) => {
      const reset = stream.status === 'reset' || e?.constructor?.name === 'StreamResetEvent' || /reset/i.test(String(e?.error?.name ?? ''));
      finish(reset ? 'reset' : 'closed', `close event: status=${stream.status} error=${e?.error?.name ?? ''} ${e?.error?.message ?? ''} local=${e?.local}`);
    });
    const bytes = Uint8Array.from((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
    if (bytes.length) stream.send(bytes);
    await Promise.race([ended, new Promise((r) => setTimeout(r, waitMs))]);
    const res = {
      outcome: outcome ?? 'timeout', ms: endMs ?? Math.round(performance.now() - t0), detail, bytesIn, sent: bytes.length,
      status: stream.status, readStatus: stream.readStatus, writeStatus: stream.writeStatus,
      conn: { id: conn.id, status: conn.status, limited: conn.limits != null },
    };
    if (!outcome) stream.abort(new Error('rawSignal: timed out'));
    return res;
  },
  /** `streams` echo round trips to `peer` at once, `bytesEach` bytes each way: { intact, errors, remoteAddrs }. */
  async echo(peer, streams, bytesEach, { timeoutMs = 120_000 } = {}) {
    const runs = await Promise.allSettled(Array.from({ length: streams }, (_, i) => echoRoundTrip(peer, i, bytesEach, timeoutMs)));
    const ok = runs.filter((r) => r.status === 'fulfilled' && r.value.ok).length;
    const errors = runs.map((r) => (r.status === 'rejected' ? String(r.reason?.message ?? r.reason) : r.value.error)).filter(Boolean);
    return { streams, intact: ok, errors: errors.slice(0, 5), remoteAddrs: [...new Set(runs.map((r) => r.value?.remoteAddr).filter(Boolean))] };
  },
  /** Open an echo stream to `peer`, send `bytes`, then abort it (a RESET on the wire). */
  async echoReset(peer, bytes) {
    const stream = await node.dialProtocol(peerIdFromString(peer), ECHO, { signal: AbortSignal.timeout(10_000) });
    stream.send(pattern(0, 0, bytes));
    await new Promise((r) => setTimeout(r, 100));
    stream.abort(new Error('interop test: reset'));
  },
  echoStats: () => ({ ...echoStats }),
  /** Close every limited (relayed) connection to `peer`; resolves to how many there were. */
  async closeLimited(peer) {
    const limited = node.getConnections(peerIdFromString(peer)).filter((c) => c.limits != null);
    await Promise.all(limited.map((c) => c.close()));
    return limited.length;
  },
  /** ICE state of every RTCPeerConnection in this page (recorded by the test's init script). */
  async pcs() {
    return Promise.all((window.__pcs ?? []).map(async (pc) => {
      const e = { connectionState: pc.connectionState, selected: [] };
      if (pc.connectionState === 'closed') return e;
      const stats = await pc.getStats();
      for (const r of stats.values()) {
        if (r.type !== 'transport' || !r.selectedCandidatePairId) continue;
        const pair = stats.get(r.selectedCandidatePairId);
        e.selected.push({ state: pair?.state, local: stats.get(pair?.localCandidateId)?.candidateType, remote: stats.get(pair?.remoteCandidateId)?.candidateType });
      }
      return e;
    }));
  },
  stop: () => node?.stop(),
};
