/**
 * Starts the built server (`dist/src/cli.js`) as its own process on a free loopback
 * port, the way a user runs it, and resolves once it prints where it listens.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface SpawnedServer {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: URL;
}

export async function spawnServer(args: string[] = []): Promise<SpawnedServer> {
  const child = spawn(process.execPath, ['dist/src/cli.js', '--port', '0', '--log-level', 'warn', ...args]);
  child.stderr.pipe(process.stderr);
  const url = await new Promise<URL>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(new URL(match[1]!));
    });
    child.once('exit', (code) => reject(new Error(`mcp-chat exited with ${code} before listening: ${output}`)));
  });
  return { child, url };
}
