// The NAT lab for tests: real browsers behind real NATs (network namespaces, nft
// masquerade) against the real relay. Built on tests/e2e/harness.mjs.
//
//   A (ns a, 10.200.1.2) -- rtr-a (NAT) --+
//                                          +-- pub: 10.200.0.10 (relay, STUN)
//   B (ns b, 10.200.2.2) -- rtr-b (NAT) --+
//
// scripts/nat-lab.sh builds and removes the namespaces (`up cone|symmetric`, `down`,
// `udp-block ROUTER`, `udp-unblock ROUTER`). startLab() brings the lab up, starts the
// relay (HTTPS, STUN) in `pub`, and gives `launch(name, host)` for a Chromium process in
// namespace `a` or `b` (through a generated wrapper that execs Chromium inside it).
// The lab is torn down by `lab.down()`, and also on SIGINT/SIGTERM and at process exit.
//
// Nothing here talks to 10.200.x from the root namespace (such a packet may leave through
// the machine's real gateway): health checks run inside `pub`, browsers inside `a`/`b`.
//
// The relay serves HTTPS (a self-signed certificate the browsers trust) and STUN itself.
// Needs root, `ip`, `nft`, `curl`;
// labUnavailable() says why not, and the tests skip.

import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as F from '../e2e/files.mjs';
import * as h from '../e2e/harness.mjs';
import { startTurn } from '../e2e/turn.mjs';
import { selfSignedCert, trustArgs } from '../e2e/tls.mjs';

const run = promisify(execFile);

export const LAB_SCRIPT = path.join(h.REPO, 'scripts', 'nat-lab.sh');
// One lab per test process: two runs at once (other checkouts on the same machine) must not
// share namespaces, since `up` first tears down whatever has its names.
export const PREFIX = process.env.SHOAL_LAB_PREFIX ?? `shoal-lab-${process.pid}`;
/** Namespace names, as scripts/nat-lab.sh makes them. */
export const NS = {
  a: `${PREFIX}-a`,
  b: `${PREFIX}-b`,
  'rtr-a': `${PREFIX}-rtr-a`,
  'rtr-b': `${PREFIX}-rtr-b`,
  pub: `${PREFIX}-pub`,
};

export const RELAY_IP = '10.200.0.10';
// Fixed ports: a restarted relay must come back where the pages knew it.
const HTTP_PORT = 8443;
// HTTPS with a self-signed certificate for 10.200.0.10 that the lab's Chromiums trust
// (by its key): a secure context, as on a real server, and wss to the relay.
export const RELAY_URL = `https://${RELAY_IP}:${HTTP_PORT}`;

/** The relay's own STUN server (UDP), which the page learns from /api/info. */
const STUN_PORT = 3478;

/** The relay's arguments besides --listen, --identity and --www (the harness adds those). */
function relayArgs() {
  return ['--stun-listen', `${RELAY_IP}:${STUN_PORT}`];
}


/** Why the lab cannot run here (a string), or null when it can. */
export async function labUnavailable() {
  if (process.platform !== 'linux') return `the NAT lab needs Linux network namespaces (platform: ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'the NAT lab needs root (ip netns, nft)';
  for (const [tool, pkg] of [['ip', 'iproute2'], ['nft', 'nftables'], ['curl', 'curl'], ['openssl', 'openssl']]) {
    try {
      await run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `\`${tool}\` is missing (apt-get install -y ${pkg}; scripts/setup.sh test installs it)`;
    }
  }
  if (!existsSync(h.CHROMIUM)) return `no Chromium at ${h.CHROMIUM}`;
  const probe = `${PREFIX}-probe-${process.pid}`;
  try {
    await run('ip', ['netns', 'add', probe]);
  } catch (e) {
    return `\`ip netns add\` failed: ${(e.stderr || e.message).trim()}`;
  } finally {
    await run('ip', ['netns', 'del', probe]).catch(() => {});
  }
  return null;
}

async function labScript(...args) {
  const { stdout, stderr } = await run(LAB_SCRIPT, args, { env: { ...process.env, SHOAL_LAB_PREFIX: PREFIX } });
  for (const line of `${stdout}${stderr}`.split('\n').filter(Boolean)) h.log('lab', line);
}

function labDownSync() {
  try {
    execFileSync(LAB_SCRIPT, ['down'], { env: { ...process.env, SHOAL_LAB_PREFIX: PREFIX }, stdio: 'ignore' });
  } catch {
    // Nothing more to do while exiting.
  }
}

// Torn down even when the run is interrupted: a lab left up keeps its namespaces and the
// browsers and relay inside them.
let labIsUp = false;
/** Temporary directories of labs not yet torn down (removed at exit too). */
const labDirs = new Set();
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      if (labIsUp) {
        process.stderr.write(`\nnat-lab: ${signal}: tearing the lab down\n`);
        labDownSync();
        labIsUp = false;
      }
      process.exit(130);
    });
  }
  process.on('exit', () => {
    if (labIsUp) labDownSync();
    for (const dir of labDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** GET ${url}/healthz from inside `pub` (never from the root namespace). */
function healthzInPub(url, cacert) {
  return getInPub(`${url}/healthz`, cacert);
}

/** GET `url` from inside `pub`: { status, body }. */
async function getInPub(url, cacert) {
  try {
    const { stdout } = await run('ip', ['netns', 'exec', NS.pub, 'curl', '-sS', '-m', '2', '--cacert', cacert, '-w', '\n%{http_code}', url]);
    const i = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
  } catch (e) {
    throw new Error((e.stderr || e.message).trim());
  }
}

/**
 * Bring the lab up in `mode` ('cone' | 'symmetric'): namespaces and NATs, STUN, the relay.
 * `extraRelayArgs`: more relay flags (kept in `lab.extraRelayArgs`, which a later
 * `lab.startRelay()` reads again). Returns the lab; call `lab.down()` in `after` (it is safe
 * to call twice). With `turn`, coturn runs in `pub` too (lab.turn) and the relay offers it to
 * the pages, so they gather TURN relay candidates.
 */
export async function startLab(mode, { extraRelayArgs = [], turn = false } = {}) {
  hookExit();
  const dir = mkdtempSync(path.join(tmpdir(), 'shoal-lab-'));
  labDirs.add(dir);
  labIsUp = true;
  const lab = {
    mode,
    dir,
    relay: null,
    relayUrl: RELAY_URL,
    identity: path.join(dir, 'relay.key'),
    wrappers: {},
    cert: selfSignedCert('shoal-lab', [RELAY_IP]),
    extraRelayArgs,
  };
  try {
    await labScript('up', mode);
    // Chromium inside a namespace: Playwright's debugging pipe survives `ip netns exec`.
    for (const host of ['a', 'b']) {
      const file = path.join(dir, `chromium-${host}.sh`);
      writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${NS[host]} ${h.CHROMIUM} "$@"\n`);
      chmodSync(file, 0o755);
      lab.wrappers[host] = file;
    }
    if (turn) {
      lab.turn = await startLabTurn(dir);
      lab.extraRelayArgs = [...lab.turn.relayArgs, ...extraRelayArgs];
    }
    lab.relay = await startLabRelay(lab);
  } catch (e) {
    await stopLab(lab);
    throw e;
  }

  /** Start the relay again (same identity, same ports); `startRelay` waits for /healthz. */
  lab.startRelay = async () => {
    lab.relay = await startLabRelay(lab);
    return lab.relay;
  };
  /** Stop the relay (SIGKILL: killed, not a clean shutdown, unless told otherwise). */
  lab.stopRelay = async ({ signal = 'SIGKILL' } = {}) => {
    await lab.relay?.stop({ signal });
    lab.relay = null;
  };
  /** Launch options for Chromium in namespace `host`, trusting the relay's certificate. */
  const browserOptions = (host) => ({ executablePath: lab.wrappers[host], args: trustArgs(lab.cert.spki) });
  /**
   * A Chromium process of its own in namespace `host` ('a' | 'b') with a page from the relay.
   * Resolves once the node started (window.shoal).
   */
  lab.launch = async (name, host, { swarm, initScripts = [] }) => {
    const peer = await h.launchPeer(RELAY_URL, {
      name,
      swarm,
      launch: browserOptions(host),
      initScripts: [recordConnectionStates, ...initScripts],
    });
    await peer.started();
    return peer;
  };
  /** A Chromium process in namespace `host` without a page (for several pages over time: lab.openPage). */
  lab.launchBrowser = (host) => h.launchBrowser(browserOptions(host));
  /** A page from the relay in a fresh context of `browser` (from lab.launchBrowser); call `peer.started()`. */
  lab.openPage = (browser, name, { swarm, initScripts = [] }) =>
    h.openPage(browser, RELAY_URL, { name, swarm, initScripts: [recordConnectionStates, ...initScripts] });
  /** Drop every UDP packet forwarded through router 'rtr-a' | 'rtr-b' (both directions). */
  /**
   * Bytes through the relay's libp2p WebSockets so far, both directions (its /metrics:
   * relayed circuits plus signaling and control; not the page loads).
   */
  lab.relayBytes = async () => {
    const res = await getInPub(`${RELAY_URL}/metrics`, lab.cert.cert);
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
    return h.relayBytesIn(res.body);
  };
  lab.udpBlock = (router) => labScript('udp-block', router);
  lab.udpUnblock = (router) => labScript('udp-unblock', router);
  lab.down = () => stopLab(lab);
  return lab;
}

function startLabRelay(lab) {
  return h.startRelay({
    listen: `${RELAY_IP}:${HTTP_PORT}`,
    identity: lab.identity,
    wrap: ['ip', 'netns', 'exec', NS.pub],
    healthz: (url) => healthzInPub(url, lab.cert.cert),
    tls: lab.cert,
    extraArgs: [...relayArgs(), ...lab.extraRelayArgs],
  });
}

async function stopLab(lab) {
  await h.closeAll();
  await lab.relay?.stop().catch(() => {});
  lab.relay = null;
  await lab.turn?.stop().catch(() => {});
  lab.turn = null;
  // Kills whatever is still inside the namespaces, then deletes them.
  if (labIsUp) {
    await labScript('down').catch((e) => h.log('lab', `down failed: ${e.message}`));
    labIsUp = false;
  }
  rmSync(lab.dir, { recursive: true, force: true });
  rmSync(lab.cert.dir, { recursive: true, force: true });
  labDirs.delete(lab.dir);
}

// ---- files: made, shared and downloaded inside the pages ----

export { MiB, brief, entryOf, shareIdOf, shareRandom } from '../e2e/files.mjs';

/** Bound for one whole 32 MiB download (relayed through a debug-build relay on 2 busy cores). */
export const DOWNLOAD_MS = Number(process.env.SHOAL_DOWNLOAD_MS ?? 8 * h.WAIT_MS);

/** Start `peer` downloading `link`; the promise (bounded by DOWNLOAD_MS) gives { name, size, sha256 }. */
export const startDownload = (peer, link) => F.startDownload(peer, link, { timeout: DOWNLOAD_MS });

/**
 * Wait until `peer`'s download of `shareId` has `bytes` done (polling often), and return the
 * entry. Throws if the download finished first: then the run did not test "mid-transfer".
 */
export async function waitProgress(peer, shareId, bytes) {
  const entry = await h.waitFor(
    `${peer.name}'s download of ${shareId} to reach ${bytes} bytes`,
    () => F.entryOf(peer, shareId),
    (e) => e && (e.bytesDone >= bytes || e.state === 'done' || e.state === 'failed'),
    { timeout: DOWNLOAD_MS, interval: 25 },
  );
  if (entry.state !== 'downloading') {
    throw new Error(`${peer.name}'s download was not in progress at ${bytes} bytes: ${JSON.stringify(F.brief(entry))}`);
  }
  return entry;
}

// ---- paths and WebRTC stats ----

/** Wait until `from` lists `to` with `path` ('direct' | 'relayed'); returns from's list. */
export function waitPath(from, to, path, { timeout = h.WAIT_MS } = {}) {
  return h.waitFor(
    `${from.name} to list ${to.name} (${to.peerId}) as "${path}"`,
    from.peers,
    (ps) => ps.some((p) => p.peerId === to.peerId && p.path === path),
    { timeout },
  );
}

// Runs in every lab page after the harness's RTCPeerConnection recorder: keep every
// connectionState each RTCPeerConnection went through, in window.__pcStates (one list per
// connection, in creation order), so a test sees a state even if it did not last.
function recordConnectionStates() {
  const Base = window.RTCPeerConnection;
  window.__pcStates = [];
  if (typeof Base !== 'function') return;
  window.RTCPeerConnection = class extends Base {
    constructor(...args) {
      super(...args);
      const states = [this.connectionState];
      window.__pcStates.push(states);
      this.addEventListener('connectionstatechange', () => states.push(this.connectionState));
    }
  };
}

/** Every connectionState of every RTCPeerConnection `peer`'s page made: [[...states], ...]. */
export const connectionStates = (peer) => peer.page.evaluate(() => window.__pcStates);

/** The selected ICE pairs of `peer`'s connected RTCPeerConnections (from window.__pcs). */
export async function connectedPairs(peer) {
  const pcs = await peer.page.evaluate(h.selectedPairsInPage);
  return pcs.filter((pc) => pc.connectionState === 'connected').flatMap((pc) => pc.selected);
}

/** The types of local ICE candidates (host, srflx, relay) `peer`'s connected RTCPeerConnections gathered. */
export async function gatheredTypes(peer) {
  const pcs = await peer.page.evaluate(h.selectedPairsInPage);
  return [...new Set(pcs.filter((pc) => pc.connectionState === 'connected').flatMap((pc) => pc.gathered))];
}

/** coturn's UDP port in `pub`, beside the relay (whose own STUN keeps 3478). */
export const TURN_PORT = 3479;
/**
 * The NAT'd subnets, unreachable from `pub`: a send to a peer's host candidate there fails with
 * ENETUNREACH (on the Internet it would be dropped silently), and with that coturn 4.6.1 stopped
 * relaying for the allocation about a second after ICE connected (measured here). Denying those
 * peers keeps the pages from asking coturn to send there.
 */
export const TURN_DENIED = '10.200.1.0-10.200.2.255';

/** coturn in `pub` on TURN_PORT (see tests/e2e/turn.mjs); `dir` holds its pid file. */
export function startLabTurn(dir) {
  return startTurn({ dir, ip: RELAY_IP, port: TURN_PORT, netns: NS.pub, deniedPeers: [TURN_DENIED] });
}

/** A live pair through the NATs: succeeded, no relay candidate, and a srflx or prflx candidate. */
export const natPair = (s) =>
  s.pairState === 'succeeded' &&
  s.localType && s.remoteType &&
  s.localType !== 'relay' && s.remoteType !== 'relay' &&
  ['srflx', 'prflx'].some((t) => s.localType === t || s.remoteType === t);
