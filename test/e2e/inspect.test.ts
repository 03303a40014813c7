import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ChatClient } from '../support/chatClient.js';
import { eventually, sleep } from '../support/eventually.js';
import { freePort, type ServerProcess, startServerProcess } from '../support/processes.js';

const running: ServerProcess[] = [];

/** Runs the built CLI as a user would; resolves once it printed where it listens. */
async function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const server = await startServerProcess({ args, env });
  running.push(server);
  return server;
}

/** The first match of `pattern` in what the server printed, once it has printed it. */
const printed = (server: ServerProcess, pattern: RegExp) =>
  eventually(() => {
    const match = pattern.exec(server.output());
    if (!match) throw new Error(`not printed: ${pattern}`);
    return match;
  });

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()));
});

interface Inspected {
  type: string;
  name?: string;
  definition?: string;
  event?: { type: string };
  snapshot?: { value?: unknown };
}

/** Listens to the bridge as the inspector page does, with a plain WebSocket client. */
async function receive(port: number) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  const events: Inspected[] = [];
  socket.on('message', (data) => events.push(JSON.parse(data.toString()) as Inspected));
  await once(socket, 'open');
  const machineOf = (event: Inspected) => (event.definition ? (JSON.parse(event.definition) as { id?: string }).id : undefined);
  return { socket, events, machineOf };
}

describe('mcp-chat --inspect', () => {
  it('streams the inspection events of user, queue and room actors to the bridge during a chat', async () => {
    const port = await freePort();
    const server = await startCli([`--inspect=${port}`]);
    const mcpUrl = server.url.href;
    const [, bridgeUrl] = await printed(server, /inspector: open (http:\/\/\S+) in a browser/);
    expect(bridgeUrl).toBe(`http://127.0.0.1:${port}/`);

    const receiver = await receive(port);
    const [a, b] = await Promise.all([ChatClient.connect(new URL(mcpUrl!)), ChatClient.connect(new URL(mcpUrl!))]);
    await a!.call('enter_queue');
    const { room_id: roomId } = await b!.call('enter_queue');
    await a!.waitFor('chatroom.found');
    await a!.call('send_message', { room_id: roomId, message: 'hello, inspector' });
    await b!.waitFor('message.received');
    await b!.call('leave_chat', { room_id: roomId });

    const { events, machineOf } = receiver;
    const actors = () => new Set(events.filter((e) => e.type === '@xstate.actor').map(machineOf));
    const sent = () => new Set(events.filter((e) => e.type === '@xstate.event').map((e) => e.event?.type));
    await eventually(() => {
      expect([...actors()]).toEqual(expect.arrayContaining(['user', 'presence', 'queue', 'room']));
      expect([...sent()]).toEqual(expect.arrayContaining(['queue.join', 'room.message', 'room.leave']));
    }, 5_000);
    expect(events.some((e) => e.type === '@xstate.snapshot' && e.snapshot?.value === 'chatting')).toBe(true);
    expect(events.some((e) => e.type === '@xstate.event' && JSON.stringify(e.event).includes('hello, inspector'))).toBe(true);

    receiver.socket.close();
    await Promise.all([a!.end(), b!.end()]);
  });

  it('serves the inspector page on 127.0.0.1, and lets no other web page read the events', async () => {
    const port = await freePort();
    await printed(await startCli([`--inspect=${port}`]), /inspector: open/);

    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<iframe id="inspector" src="https://stately.ai/inspect"');

    const foreign = new WebSocket(`ws://127.0.0.1:${port}`, { origin: 'https://elsewhere.example' });
    const [request, response] = (await once(foreign, 'unexpected-response')) as [{ destroy(): void }, { statusCode: number }];
    expect(response.statusCode).toBe(401);
    request.destroy();

    const own = new WebSocket(`ws://127.0.0.1:${port}`, { origin: `http://localhost:${port}` });
    await once(own, 'open');
    own.close();
  });

  it('takes the port from MCP_CHAT_INSPECT, and stops at once, naming the flag, when that port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const refused = startCli([], { MCP_CHAT_INSPECT: String(port) });
      await expect(refused).rejects.toThrow('mcp-chat exited with 2 before listening');
      await expect(refused).rejects.toThrow(`--inspect (MCP_CHAT_INSPECT): port ${port} on 127.0.0.1 is in use`);
    } finally {
      taken.close();
    }
  });

  it('is off by default: no bridge, no line about it', async () => {
    const server = await startCli([]);
    await sleep(200); // anything printed with the address would be there by now
    expect(server.output()).not.toContain('inspector');
  });
});
