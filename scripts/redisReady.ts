/**
 * Where the redis-server binary is, and how to know a freshly spawned one is ready, for
 * test/support/redis.ts, which starts the tests' Redis and the bench's alike.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The flags every Redis of ours starts with: loopback only, data in `dir`, no snapshots, in the foreground, logging to stdout. */
export const baseRedisArgs = (dir: string): string[] => [
  ...['--bind', '127.0.0.1', '--dir', dir, '--save', ''],
  ...['--daemonize', 'no', '--logfile', '', '--loglevel', 'notice'],
];

/** Where Debian's package (which CI installs with apt) puts it; PATH otherwise. */
export const REDIS_SERVER = existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : 'redis-server';

/**
 * Resolves once `child` says it accepts connections; rejects when it exits or fails to
 * start first, or after `timeoutMs`, with the end of what it printed (`output()`).
 */
export function whenRedisReady(child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      child.stdout?.off('data', look);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error) reject(error);
      else resolve();
    };
    const look = () => {
      if (output().includes('Ready to accept connections')) done();
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`redis-server exited (${signal ?? code}) before it was ready: ${output().slice(-600)}`));
    const onError = (error: Error) => done(new Error(`redis-server could not start (${REDIS_SERVER}): ${error.message}`));
    const timer = setTimeout(
      () => done(new Error(`redis-server was not ready within ${timeoutMs} ms: ${output().slice(-600)}`)),
      timeoutMs,
    );
    child.stdout?.on('data', look);
    child.once('exit', onExit);
    child.once('error', onError);
    look();
  });
}
