/**
 * Child processes of the bench — the servers under test and the load workers — started
 * from compiled JS, tracked in one place, and killed when the bench exits for any reason.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Spawns any program (redis-server) as a child killed with the others when the bench exits. */
export function spawnTracked(command: string, args: string[]): ChildProcess {
  return track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Kills every child still running; safe to call from an `exit` handler (synchronous). */
export function killAllChildren(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

process.once('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping the servers and workers\n`);
    process.exit(130);
  });
}

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly url: URL;
  /** How it ended, if it has: `exit code 1`, `signal SIGKILL`. */
  exited(): string | undefined;
  /** The last 2,000 characters it wrote to stderr. */
  stderrTail(): string;
  /** SIGTERM; SIGKILL if it has not exited after `graceMs`. Says how long it took. */
  stop(graceMs?: number): Promise<StopReport>;
}

export interface StopReport {
  seconds: number;
  /** True when it had to be killed: it did not finish its graceful shutdown in time. */
  killed: boolean;
}

/**
 * Starts `node <args>` and resolves once it prints `listening on http://…`, which must
 * happen within `deadlineMs`.
 */
export async function startServer(name: string, args: string[], deadlineMs = 15_000): Promise<ServerProcess> {
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  const url = await new Promise<URL>((resolve, reject) => {
    let settled = false;
    const lines = createInterface({ input: child.stdout! });
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name} ${why}${stderr ? `; stderr: ${stderr}` : ''}`));
    };
    const timer = setTimeout(() => fail(`did not print its URL within ${deadlineMs} ms`), deadlineMs);
    // The listener stays, so stdout keeps draining and a chatty server never blocks on a full pipe.
    lines.on('line', (line) => {
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (settled || !match?.[1]) return;
      settled = true;
      clearTimeout(timer);
      resolve(new URL(match[1]));
    });
    child.once('exit', (code, signal) => fail(`exited (${signal ?? code}) before listening`));
  });
  let ended: string | undefined;
  child.once('exit', (code, signal) => (ended = signal ? `signal ${signal}` : `exit code ${code}`));
  return {
    name,
    pid: child.pid!,
    url,
    exited: () => ended,
    stderrTail: () => stderr,
    // Long enough for a graceful shutdown of thousands of sessions (and a --cpu-prof write).
    stop: (graceMs = 30_000) => stopChild(child, graceMs),
  };
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<StopReport> {
  if (child.exitCode !== null || child.signalCode !== null) return { seconds: 0, killed: false };
  const startedAt = performance.now();
  let killed = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
  return { seconds: (performance.now() - startedAt) / 1000, killed };
}

/** Forks a compiled bench module (a load worker) with an IPC channel. */
export function forkModule(modulePath: string, execArgv: string[] = []): ChildProcess {
  return track(fork(modulePath, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' }));
}
