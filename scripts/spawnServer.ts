/**
 * Starts the built server (`dist/src/cli.js`) as its own process on a free loopback
 * port, the way a user runs it, and resolves once it prints where it listens.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface SpawnedServer {
  readonly child: ChildProcessByStdio<null, Readable, null>;
  readonly url: URL;
}

/** How long a server may take to start before it is given up on. */
const START_TIMEOUT_MS = 15_000;

/** `node`: the Node.js binary to run it on (this process's own by default). */
export async function spawnServer(args: string[] = [], node = process.execPath): Promise<SpawnedServer> {
  const child = spawn(node, ['dist/src/cli.js', '--port', '0', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<URL>((resolve, reject) => {
    let output = '';
    const done = (error?: Error, url?: URL) => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      // Keep draining stdout so the server never blocks on a full pipe.
      child.stdout.resume();
      if (error) reject(error);
      else resolve(url!);
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) done(undefined, new URL(match[1]!));
    };
    const onExit = (code: number | null) => done(new Error(`mcp-chat exited with ${code} before listening: ${output}`));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done(new Error(`mcp-chat did not start within ${START_TIMEOUT_MS / 1000} s: ${output}`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
  return { child, url };
}
