import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { LegacySseSession } from '../../src/session/legacySseSession.js';
import { ChatClient, type RecordedNotification } from '../support/chatClient.js';
import { readSse } from '../support/rawSession.js';
import { health, startTestServer } from '../support/server.js';

const GRACE_MS = 300;

let server: RunningChatServer;

beforeAll(async () => {
  server = await startTestServer({ graceMs: GRACE_MS });
});
afterAll(async () => {
  await server.close();
});

/** A client on the legacy HTTP+SSE transport, as FastMCP's SSE client would be. */
async function connectLegacy() {
  const client = new Client({ name: 'legacy-client', version: '1.0.0' });
  const notifications: RecordedNotification[] = [];
  client.fallbackNotificationHandler = async (n) => {
    notifications.push({ method: n.method, params: (n.params ?? {}) as Record<string, unknown> });
  };
  const transport = new SSEClientTransport(new URL('/sse', server.url));
  await client.connect(transport);
  const call = async (name: string, args: Record<string, unknown> = {}) => {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    if (result.isError) throw new Error(JSON.stringify(result.content));
    return result.structuredContent as Record<string, unknown>;
  };
  const waitFor = async (method: string, count = 1) => {
    const deadline = Date.now() + 5000;
    while (notifications.filter((n) => n.method === method).length < count) {
      if (Date.now() > deadline) throw new Error(`no ${method}: ${JSON.stringify(notifications)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return notifications.filter((n) => n.method === method).map((n) => n.params);
  };
  return { client, transport, notifications, call, waitFor };
}

describe('legacy HTTP+SSE transport (protocol 2024-11-05)', () => {
  it('opens with an endpoint event that names POST /messages?sessionId=…', async () => {
    const response = await fetch(new URL('/sse', server.url), { headers: { accept: 'text/event-stream' } });
    expect(response.status).toBe(200);
    const text = await readSse(response, (t) => t.includes('\n\n'));
    // The session id names its process (`<processId>.<uuid>`): any process can send its POSTs on to it.
    expect(text).toMatch(/^event: endpoint\ndata: \/messages\?sessionId=[a-z2-7]{10}\.[0-9a-f-]{36}\n\n/);
  });

  it('pairs a legacy client with a Streamable HTTP client, and they chat both ways', async () => {
    const legacy = await connectLegacy();
    const modern = await ChatClient.connect(server.url);
    expect(await legacy.call('enter_queue')).toEqual({ status: 'waiting', position: 1, user_token: expect.any(String) });
    const { room_id: roomId } = await modern.call('enter_queue');
    expect(await legacy.waitFor('chatroom.found')).toEqual([{ room_id: roomId, common_interests: [] }]);

    await legacy.call('send_message', { room_id: roomId, message: 'hello from 2024' });
    await modern.call('send_message', { room_id: roomId, message: 'hello from 2025' });
    expect((await modern.waitFor('message.received')).map((m) => m.message)).toEqual(['hello from 2024']);
    expect((await legacy.waitFor('message.received')).map((m) => m.message)).toEqual(['hello from 2025']);

    // wait_for_events reads the same events on the legacy transport.
    const page = await legacy.call('wait_for_events', { after: '0', timeout_s: 0 });
    expect((page.events as { method: string }[]).map((e) => e.method)).toEqual(['chatroom.found', 'message.received']);

    await legacy.call('leave_chat', { room_id: roomId });
    expect(await modern.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'left' }]);
    await legacy.client.close();
    await modern.end();
  });

  it('ends the session when the SSE stream closes for good, and its user after the grace period', async () => {
    const legacy = await connectLegacy();
    const modern = await ChatClient.connect(server.url);
    await modern.call('enter_queue');
    const { room_id: roomId } = await legacy.call('enter_queue');
    await modern.waitFor('chatroom.found');
    const legacySessions = () => [...server.services.sessions.values()].filter((s) => s instanceof LegacySseSession);
    expect(legacySessions().length).toBeGreaterThanOrEqual(1);
    await legacy.client.close(); // closes the SSE stream
    // Within the grace period nothing is said yet.
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS / 3));
    expect(modern.received('partner.disconnected')).toEqual([]);
    expect(await modern.waitFor('partner.disconnected', 1, 5000)).toEqual([{ room_id: roomId, reason: 'disconnected' }]);
    expect(legacySessions()).toEqual([]);
    expect((await health(server)).actors.users).toBe(1);
    await modern.end();
  });

  it('answers 404 for an unknown legacy session id', async () => {
    const response = await fetch(new URL('/messages?sessionId=nope', server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(response.status).toBe(404);
  });
});

describe('MCP logging', () => {
  it('narrates queue and room events at info once the client sets a level, and filters by it', async () => {
    const a = await ChatClient.connect(server.url);
    const b = await ChatClient.connect(server.url);
    await a.client.setLoggingLevel('info');
    await b.client.setLoggingLevel('warning');
    await a.call('enter_queue');
    const { room_id: roomId } = await b.call('enter_queue');
    await b.call('leave_chat', { room_id: roomId });
    const logs = await a.waitFor('notifications/message', 3);
    expect(logs.map((l) => l.data)).toEqual([
      expect.stringMatching(/entered the queue/),
      `You were paired with a stranger in room ${roomId}.`,
      `Your partner left room ${roomId} (left).`,
    ]);
    expect(logs.every((l) => l.level === 'info' && l.logger === 'mcp-chat')).toBe(true);
    expect(b.received('notifications/message')).toEqual([]);
    await Promise.all([a.end(), b.end()]);
  });
});

describe('legacy session after its stream closed', () => {
  it('answers 404 to a POST during the grace period, and the POST does not keep the session present', async () => {
    const response = await fetch(new URL('/sse', server.url), { headers: { accept: 'text/event-stream' } });
    const text = await readSse(response, (t) => t.includes('\n\n')); // reads the endpoint event, then drops the stream
    const endpoint = /data: (\S+)/.exec(text)![1]!;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const post = await fetch(new URL(endpoint, server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(post.status).toBe(404);
    expect(await post.json()).toMatchObject({ error: { message: expect.stringContaining('GET /sse') } });
    const sessionId = new URL(endpoint, server.url).searchParams.get('sessionId')!;
    const deadline = Date.now() + 5000;
    while (server.services.sessions.get(sessionId) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.services.sessions.get(sessionId)).toBeUndefined();
  });
});
