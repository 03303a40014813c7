import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ChatClient } from '../support/chatClient.js';
import { isAlive, portAnswers, startServerProcess } from '../support/processes.js';

const SHUTDOWN_BOUND_MS = 5_000;

describe('graceful shutdown of the real process', () => {
  it('on SIGTERM tells both members of every room "shutdown", closes the streams and exits 0', async () => {
    const server = await startServerProcess();
    const { child, url } = server;

    const [a, b, c] = await Promise.all([1, 2, 3].map(() => ChatClient.connect(url, { reconnectDelayMs: 5_000 })));
    await a!.call('enter_queue');
    const { room_id: roomId } = await b!.call('enter_queue');
    await c!.call('enter_queue');
    await a!.waitFor('chatroom.found');
    await b!.waitFor('chatroom.found');
    // d and e chat by tools alone; d is holding a wait_for_events call when the server stops.
    const [d, e] = await Promise.all([1, 2].map(() => ChatClient.connect(url, { listen: false, reconnectDelayMs: 5_000 })));
    await c!.call('leave_chat');
    await d!.call('enter_queue');
    const { room_id: toolRoom } = await e!.call('enter_queue');
    const { cursor } = await d!.call('wait_for_events');
    const held = d!.call('wait_for_events', { after: cursor, timeout_s: 30 });
    await new Promise((resolve) => setTimeout(resolve, 100));

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const bound = new Promise((_, reject) => setTimeout(() => reject(new Error('did not exit in 5 s')), SHUTDOWN_BOUND_MS));
    const [code, signal] = (await Promise.race([exited, bound])) as [number | null, string | null];
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(await portAnswers(url)).toBe(false);
    expect(isAlive(server.serverPid)).toBe(false);

    expect(a!.received('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'shutdown' }]);
    expect(b!.received('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'shutdown' }]);
    expect(c!.received('partner.disconnected')).toEqual([]);
    // The held call answered with the shutdown instead of being cut off.
    const { events } = (await held) as { events: { method: string; params: unknown }[] };
    expect(events).toEqual([{ id: expect.any(String), method: 'partner.disconnected', params: { room_id: toolRoom, reason: 'shutdown' } }]);
    await Promise.all([a, b, c, d, e].map((client) => client!.client.close()));
  });
});
