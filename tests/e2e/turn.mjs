// Debian's coturn (`turnserver`) as a real TURN server for tests and benchmarks.
//
// startTurn() runs it in the foreground with long-term credentials and no TLS, on one
// UDP port, optionally inside a network namespace (`netns`). It resolves once the port
// listens and returns { url, relayArgs, version, pid, stop() }: `relayArgs` are the relay
// flags that hand the server to the pages through /api/info.

import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { freePort, log, pipeLines, waitFor } from './harness.mjs';

const USER = 'u';
const PASS = 'p';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {object} o
 * @param {string} o.dir        a scratch directory for the pid file
 * @param {string} [o.ip]       listening and relay address (default 127.0.0.1)
 * @param {number} [o.port]     UDP port (default: a free one)
 * @param {string} [o.netns]    run inside this network namespace
 * @param {string[]} [o.deniedPeers] `--denied-peer-ip` ranges
 * @param {boolean} [o.allowLoopback] let pages relay to loopback peers
 */
export async function startTurn({ dir, ip = '127.0.0.1', port, netns, deniedPeers = [], allowLoopback = false }) {
  port ??= await freePort();
  const server = [
    'turnserver',
    '-n', '--no-cli', '--no-tls', '--no-dtls',
    '-L', ip, '-E', ip, '-p', String(port),
    '--min-port', '49152', '--max-port', '49999',
    '--lt-cred-mech', '--user', `${USER}:${PASS}`, '--realm', 'shoal',
    '--fingerprint', '--no-software-attribute',
    ...deniedPeers.map((range) => `--denied-peer-ip=${range}`),
    ...(allowLoopback ? ['--allow-loopback-peers'] : []),
    '--log-file', 'stdout', '--simple-log', '--pidfile', path.join(dir, 'turnserver.pid'),
  ];
  // `ip netns exec` execs the server, so the pid we hold is the server's.
  const [cmd, ...args] = netns ? ['ip', 'netns', 'exec', netns, ...server] : server;
  const inNs = (argv) => (netns ? ['ip', ['netns', 'exec', netns, ...argv]] : [argv[0], argv.slice(1)]);
  log('harness', `starting ${cmd} ${args.join(' ')}`);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
    exited = { code, signal };
    log('turnserver', `exited (code ${code}, signal ${signal})`);
    resolve();
  }));
  pipeLines(proc, 'turnserver');
  await waitFor(`turnserver to listen on udp ${ip}:${port}${netns ? ` in ${netns}` : ''}`, async () => {
    if (exited) throw new Error(`turnserver exited: ${JSON.stringify(exited)}`);
    return execFileSync(...inNs(['ss', '-Hlun', `sport = :${port}`]), { encoding: 'utf8' }).trim();
  }, Boolean, { timeout: 10_000, interval: 100 });
  const version = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'coturn'], { encoding: 'utf8' }).trim();
  const url = `turn:${ip}:${port}?transport=udp`;
  return {
    url,
    relayArgs: ['--ice-server', url, '--ice-username', USER, '--ice-credential', PASS],
    version,
    pid: proc.pid,
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      await Promise.race([exit, sleep(5_000)]);
      if (!exited) proc.kill('SIGKILL');
      await exit;
    },
  };
}
