/**
 * Starts a server as its own process on a free loopback port and resolves once it prints
 * where it listens: the built mcp-chat the way a user runs it (`npm start`, or the bin
 * `dist/src/cli.js` on a given Node.js), or another entry point (the bench's floor and
 * v2 peer). Shared by the tests, the bench and the scripts. `stop()` signals the process
 * that was started, as a supervisor would, and waits for it to exit.
 */
import { type ChildProcess, type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

export interface StopReport {
  seconds: number;
  /** True when it had to be killed: it did not exit within the grace period. */
  killed: boolean;
}

export interface SpawnedServer {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly pid: number;
  readonly url: URL;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** How it ended, if it has: `exit code 1`, `signal SIGKILL`. */
  exited(): string | undefined;
  /** Signals the started process and resolves with how it exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /** `bin` runs `entry` on `node`; `npm` runs `npm start` (on the Node that runs npm). */
  via?: 'bin' | 'npm';
  /** The script `node` runs: dist/src/cli.js by default. */
  entry?: string;
  /** Flags for node itself (`--expose-gc`, `--cpu-prof`), before `entry`. */
  nodeArgs?: string[];
  /** Extra flags; `--port 0` (and for mcp-chat `--log-level warn`) come first, so these win. */
  args?: string[];
  /** Environment added to this process's own. */
  env?: NodeJS.ProcessEnv;
  /** The Node.js binary for `bin` (this process's own by default). */
  node?: string;
  /** Leave out the default `--port 0` (to test PORT from the environment). */
  noDefaultPort?: boolean;
  /** Told of the child as soon as it is spawned (the bench kills its children when it exits). */
  onSpawn?: (child: ChildProcess) => void;
}

const CLI = 'dist/src/cli.js';
/** How long a server may take to start before it is given up on. */
const START_TIMEOUT_MS = 15_000;

export async function spawnServer(options: SpawnOptions = {}): Promise<SpawnedServer> {
  const { via = 'bin', entry = CLI, nodeArgs = [], args = [], env = {}, node = process.execPath } = options;
  const flags = [...(options.noDefaultPort ? [] : ['--port', '0']), ...(entry === CLI ? ['--log-level', 'warn'] : []), ...args];
  const [command, commandArgs] = via === 'npm' ? ['npm', ['start', '--silent', '--', ...flags]] : [node, [...nodeArgs, entry, ...flags]];
  const child = spawn(command, commandArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // Errors name the server as its user knows it.
  const name = entry === CLI ? 'mcp-chat' : entry;
  options.onSpawn?.(child);
  let output = '';
  // Keep reading both pipes for the whole life of the process, so it never blocks on one.
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let ended: string | undefined;
  void exited.then(([code, signal]) => (ended = signal ? `signal ${signal}` : `exit code ${code}`));
  const url = await new Promise<URL>((resolve, reject) => {
    const done = (error?: Error, url?: URL) => {
      clearTimeout(timer);
      child.stdout.off('data', look);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(url!);
    };
    const look = () => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) done(undefined, new URL(match[1]!));
    };
    const onExit = (code: number | null) => done(new Error(`${name} exited with ${code} before listening: ${output}`));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done(new Error(`${name} did not start within ${START_TIMEOUT_MS / 1000} s: ${output}`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', look);
    child.once('exit', onExit);
  });
  return {
    child,
    pid: child.pid!,
    url,
    output: () => output,
    exited: () => ended,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const [code, by] = await exited;
      return { code, signal: by };
    },
  };
}

/** SIGTERM, then SIGKILL after `graceMs`, for any child (a server, a load worker, redis-server); says how long it took. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<StopReport> {
  if (child.exitCode !== null || child.signalCode !== null) return { seconds: 0, killed: false };
  const startedAt = performance.now();
  let killed = false;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
  return { seconds: (performance.now() - startedAt) / 1000, killed };
}
