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
