/**
 * A real `redis-server` for a test: its own free loopback port and temp directory,
 * no persistence unless asked (`persistence: 'aof'` turns on `appendonly yes`), and
 * handles to do to it what production does — stop it, kill it, restart it on the same
 * port with or without its data, freeze it (SIGSTOP), cut every client's connection.
 *
 * The process carries the running test's environment marker (test/support/processes.ts),
 * so the leak check fails the file naming the test if it outlives it: every test that
 * starts one stops it (`await redis.stop()`, usually in a `finally`). The bench starts its
 * Redis here too (no marker there; `onSpawn` tells it of the process to kill on exit).
 *
 * As operators run it: `password` (`--requirepass`, carried in `url`), ACL users, and
 * `tls` (TLS only, with a certificate for 127.0.0.1 from a private CA that `openssl`
 * makes in its temp directory; `url` is then `rediss://`, `caFile` the CA).
 *
 * `startCutProxy` puts a TCP proxy (in the test's own process) in front of it, to cut
 * connections the way a network does: commands already sent still run, their replies
 * are lost — the case in which ioredis resends a command Redis already executed.
 */
import { type ChildProcess, type ChildProcessByStdio, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { baseRedisArgs, REDIS_SERVER, whenRedisReady } from '../../scripts/redisReady.js';
import { freePort, markedEnv } from './processes.js';

/** How long redis-server may take to say it accepts connections. */
const START_TIMEOUT_MS = 10_000;

export interface RedisServerOptions {
  /** `none` (default): nothing survives a restart. `aof`: `appendonly yes`, fsync always. */
  persistence?: 'none' | 'aof';
  /** The default user's password (`--requirepass`); `url` carries it. */
  password?: string;
  /** ACL users, each as a `user` directive's words (`['alice', 'on', '>pw', '~*', '+@all']`). */
  aclUsers?: string[][];
  /** TLS only: no plain port, `url` is `rediss://`, `caFile` the private CA that signed its certificate. */
  tls?: boolean;
  /** Told of each redis-server process as soon as it is spawned. */
  onSpawn?: (child: ChildProcess) => void;
}

export interface TestRedis {
  /** `redis://127.0.0.1:<port>` (`rediss://`, with the password if any) — stays the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** With `tls`: the PEM file of the CA that signed the server's certificate. */
  readonly caFile?: string;
  /** The pid of the running redis-server (changes on restart). */
  readonly pid: number;
  /** Everything the current process printed. */
  output(): string;
  /** SIGTERM, and wait for it to exit. Idempotent. Deletes the temp directory. */
  stop(): Promise<void>;
  /** SIGKILL, and wait for it to exit (no shutdown save, clients see a reset). */
  kill(): Promise<void>;
  /** Stops it (SIGTERM) and starts it again on the same port; `wipe` deletes its data files first. */
  restart(options?: { wipe?: boolean }): Promise<void>;
  /** SIGSTOP: connections stay open, nothing answers. */
  freeze(): void;
  /** SIGCONT after `freeze()`. */
  thaw(): void;
  /** Freezes it for `ms`, then thaws it. */
  pause(ms: number): Promise<void>;
  /** Closes every normal client connection (`CLIENT KILL TYPE normal`); resolves with how many. */
  cutClients(): Promise<number>;
}

/** Starts a redis-server for the running test. */
export async function startRedis(options: RedisServerOptions = {}): Promise<TestRedis> {
  const { persistence = 'none', password, aclUsers = [], tls = false, onSpawn } = options;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mcp-chat-redis-'));
  const url = `${tls ? 'rediss' : 'redis'}://${password ? `:${encodeURIComponent(password)}@` : ''}127.0.0.1:${port}`;
  // Apart from the data, which a restart may wipe.
  const certs = tls ? mkdtempSync(join(tmpdir(), 'mcp-chat-redis-tls-')) : undefined;
  const caFile = certs && makeCertificates(certs);
  const args = [
    ...(tls ? ['--port', '0', '--tls-port', String(port), '--tls-auth-clients', 'no'] : ['--port', String(port)]),
    ...(tls
      ? ['--tls-cert-file', join(certs!, 'server.pem'), '--tls-key-file', join(certs!, 'server.key'), '--tls-ca-cert-file', caFile!]
      : []),
    ...(password ? ['--requirepass', password] : []),
    ...aclUsers.flatMap((words) => ['--user', ...words]),
    ...baseRedisArgs(dir),
    '--appendonly',
    persistence === 'aof' ? 'yes' : 'no',
    '--appendfsync',
    'always',
    // Redis's process title is written over its environment, marker included: keep both.
    '--set-proc-title',
    'no',
  ];
  // The marker is taken once, while a test runs, and reused by every restart.
  const env = { ...process.env, ...markedEnv() };

  let child = await launch(args, env, onSpawn);
  let stopped = false;

  const waitExit = async (signal: NodeJS.Signals) => {
    const current = child.process;
    if (current.exitCode !== null || current.signalCode !== null) return;
    const exited = once(current, 'exit');
    current.kill(signal);
    await exited;
  };

  return {
    url,
    port,
    ...(caFile && { caFile }),
    get pid() {
      return child.process.pid!;
    },
    output: () => child.output(),
    async stop() {
      if (stopped) return;
      stopped = true;
      // A frozen server ignores SIGTERM until it runs again.
      child.process.kill('SIGCONT');
      await waitExit('SIGTERM');
      for (const made of [dir, certs]) if (made) rmSync(made, { recursive: true, force: true });
    },
    async kill() {
      await waitExit('SIGKILL');
    },
    async restart({ wipe = false } = {}) {
      child.process.kill('SIGCONT');
      await waitExit('SIGTERM');
      if (wipe) for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
      child = await launch(args, env, onSpawn);
    },
    freeze: () => void child.process.kill('SIGSTOP'),
    thaw: () => void child.process.kill('SIGCONT'),
    async pause(ms) {
      child.process.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, ms));
      child.process.kill('SIGCONT');
    },
    async cutClients() {
      // Its own short-lived connection: CLIENT KILL skips the connection that sends it.
      const admin = new Redis(url, {
        protocol: 2,
        maxRetriesPerRequest: 0,
        lazyConnect: true,
        retryStrategy: () => null,
        ...(caFile && { tls: { ca: readFileSync(caFile) } }),
      });
      admin.on('error', () => {});
      try {
        await admin.connect();
        return Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal'));
      } finally {
        admin.disconnect();
      }
    },
  };
}

/**
 * Makes, in `dir`, a private CA (`ca.pem`) and a certificate it signed for 127.0.0.1
 * (`server.pem`, `server.key`, subjectAltName IP:127.0.0.1); returns the CA's path.
 */
function makeCertificates(dir: string): string {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...key,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=mcp-chat test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  openssl('req', '-new', ...key, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  );
  return join(dir, 'ca.pem');
}

interface Launched {
  process: ChildProcessByStdio<null, Readable, Readable>;
  output(): string;
}

async function launch(args: string[], env: NodeJS.ProcessEnv, onSpawn?: (child: ChildProcess) => void): Promise<Launched> {
  const child = spawn(REDIS_SERVER, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  onSpawn?.(child);
  let output = '';
  // Keep reading both pipes for the life of the process, so it never blocks on one.
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await whenRedisReady(child, () => output, START_TIMEOUT_MS);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return { process: child, output: () => output };
}

export interface CutProxy {
  /** `redis://127.0.0.1:<proxy port>`. */
  readonly url: string;
  /**
   * Cuts every connection through the proxy: for `loseRepliesMs` Redis's replies are
   * dropped while commands still reach it, then both sides are closed.
   */
  cut(loseRepliesMs?: number): Promise<number>;
  close(): Promise<void>;
}

/** A proxy to `redis` on a free loopback port, whose connections a test can cut. */
export async function startCutProxy(redis: TestRedis): Promise<CutProxy> {
  const pairs = new Set<{ client: Socket; server: Socket; loseReplies: boolean }>();
  const proxy = createServer((client) => {
    const server = connect({ host: '127.0.0.1', port: redis.port });
    const pair = { client, server, loseReplies: false };
    pairs.add(pair);
    client.on('data', (chunk) => server.write(chunk));
    server.on('data', (chunk) => {
      if (!pair.loseReplies) client.write(chunk);
    });
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    for (const socket of [client, server]) {
      socket.on('error', close);
      socket.on('close', close);
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    async cut(loseRepliesMs = 30) {
      const cutting = [...pairs];
      for (const pair of cutting) pair.loseReplies = true;
      await new Promise((resolve) => setTimeout(resolve, loseRepliesMs));
      for (const { client, server } of cutting) {
        client.destroy();
        server.destroy();
      }
      return cutting.length;
    },
    async close() {
      for (const { client, server } of pairs) {
        client.destroy();
        server.destroy();
      }
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}
