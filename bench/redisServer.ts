/**
 * A redis-server of the bench's own, for the scale-out run (scaleOut.ts): a free
 * loopback port, a temp directory, no persistence (`--save '' --appendonly no`). It is a
 * tracked child (children.ts), so it is killed with the servers when the bench exits
 * for any reason, and its directory goes with it; `stop()` is SIGTERM, then SIGKILL.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseRedisArgs, REDIS_SERVER, whenRedisReady } from '../scripts/redisReady.js';
import { stopChild } from '../test/support/serverProcess.js';
import { spawnTracked } from './children.js';

const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

export interface BenchRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The first line of `redis-server --version`-like output it printed at start, if any. */
  readonly version: string | undefined;
  /** SIGTERM, SIGKILL after a few seconds; removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** A loopback port nobody listens on now (it may be taken before it is used: the caller retries). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts a redis-server, trying a few free ports in case one is taken in between. */
export async function startRedis(attempts = 3): Promise<BenchRedis> {
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      return await launch(await freePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function launch(port: number): Promise<BenchRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-chat-bench-redis-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  // Also on an abrupt exit (the run's deadline), after which the child is SIGKILLed.
  process.once('exit', removeDir);
  const args = ['--port', String(port), ...baseRedisArgs(dir), '--appendonly', 'no'];
  let child: ChildProcess;
  try {
    child = spawnTracked(REDIS_SERVER, args);
  } catch (error) {
    removeDir();
    throw error;
  }
  let output = '';
  // Keep reading both pipes for the life of the process, so it never blocks on one.
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-4000)));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-4000)));
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= stopChild(child, STOP_GRACE_MS).then(removeDir, removeDir));
  try {
    await whenRedisReady(child, () => output, START_TIMEOUT_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  const version = /Redis version=([^\s,]+)/.exec(output)?.[1];
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    version,
    stop,
  };
}
