/**
 * Starts the built server as its own process on a free loopback port, the way a user
 * runs it — `npm start`, or the `mcp-chat` bin (`dist/src/cli.js`) on a given Node.js —
 * and resolves once it prints where it listens. `stop()` signals the process that was
 * started, as a supervisor would, and waits for it to exit.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

export interface SpawnedServer {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly url: URL;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** Signals the started process and resolves with how it exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /** `bin` runs dist/src/cli.js on `node`; `npm` runs `npm start` (on the Node that runs npm). */
  via?: 'bin' | 'npm';
  /** Extra flags; `--port 0` and `--log-level warn` come first, so these win. */
  args?: string[];
  /** Environment added to this process's own. */
  env?: NodeJS.ProcessEnv;
  /** The Node.js binary for `bin` (this process's own by default). */
  node?: string;
  /** Leave out the default `--port 0` (to test PORT from the environment). */
  noDefaultPort?: boolean;
}

/** How long a server may take to start before it is given up on. */
const START_TIMEOUT_MS = 15_000;

export async function spawnServer(options: SpawnOptions = {}): Promise<SpawnedServer> {
  const { via = 'bin', args = [], env = {}, node = process.execPath } = options;
  const flags = [...(options.noDefaultPort ? [] : ['--port', '0']), '--log-level', 'warn', ...args];
  const [command, commandArgs] = via === 'npm' ? ['npm', ['start', '--silent', '--', ...flags]] : [node, ['dist/src/cli.js', ...flags]];
  const child = spawn(command, commandArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  // Keep reading both pipes for the whole life of the process, so it never blocks on one.
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
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
    const onExit = (code: number | null) => done(new Error(`mcp-chat exited with ${code} before listening: ${output}`));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done(new Error(`mcp-chat did not start within ${START_TIMEOUT_MS / 1000} s: ${output}`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', look);
    child.once('exit', onExit);
  });
  return {
    child,
    url,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const [code, by] = await exited;
      return { code, signal: by };
    },
  };
}
