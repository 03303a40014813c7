/**
 * The stateless 2026-07-28 revision on the same /mcp as the 2025 sessions: the v2 SDK
 * client in modern mode discovers the server, chats by user_token, is told of new events
 * through subscriptions/listen on its user's event log, and reads them; a pair may mix
 * eras.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { node22 } from '../../scripts/node22.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { callOrThrow, type Structured } from '../support/fromAddress.js';
import { markedEnv } from '../support/processes.js';
import { health, startTestServer } from '../support/server.js';

const servers: RunningChatServer[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(): Promise<RunningChatServer> {
  const server = await startTestServer();
  servers.push(server);
  return server;
}

/** A v2 SDK client pinned to 2026-07-28. */
async function modernClient(url: URL): Promise<Client> {
  const client = new Client({ name: 'modern-agent', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(url));
  closers.push(() => client.close());
  return client;
}

const call = callOrThrow;

describe('the 2026-07-28 revision on /mcp', () => {
  it('discovers the server without a session: its versions, capabilities and instructions', async () => {
    const server = await serve();
    const client = await modernClient(server.url);
    expect(client.getProtocolEra()).toBe('modern');
    expect(client.getServerCapabilities()).toMatchObject({ tools: {}, resources: { subscribe: true } });
    expect(client.getInstructions()).toMatch(/user_token.*subscriptions\/listen/s);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'enter_queue',
      'get_status',
      'leave_chat',
      'next',
      'send_message',
      'wait_for_events',
    ]);
    expect((await health(server)).sessions).toBe(0);
  });

  it('chats by user_token with a 2025-era SDK client, and hears of events through subscriptions/listen', async () => {
    const server = await serve();
    const agent = await modernClient(server.url);
    const peer = await ChatClient.connect(server.url);
    closers.push(() => peer.end());
    const entered = await call(agent, 'enter_queue');
    expect(entered).toMatchObject({ status: 'waiting', position: 1, user_token: expect.any(String) });
    const token = entered.user_token as string;
    // The events URI names the user by a read-only key, never by its token.
    const uri = entered.events_uri as string;
    expect(uri).toMatch(/^chat:\/\/users\/[^/]+\/events$/);
    expect(uri).not.toContain(token.slice(token.indexOf('.') + 1));

    const updates: string[] = [];
    agent.setNotificationHandler('notifications/resources/updated', (notification) => void updates.push(notification.params.uri));
    const subscription = await agent.listen({ resourceSubscriptions: [uri] });
    closers.push(() => subscription.close());
    expect(subscription.honoredFilter).toMatchObject({ resourceSubscriptions: [uri] });

    const { room_id: roomId } = await peer.call('enter_queue');
    await eventually(() => expect(updates).toContain(uri));
    const read = await agent.readResource({ uri: `${uri}?after=0` });
    const page = JSON.parse((read.contents[0] as { text: string }).text) as {
      events: { method: string; params: Structured }[];
      cursor: string;
    };
    expect(page.events).toEqual([{ id: '1', method: 'chatroom.found', params: { room_id: roomId, common_interests: [] } }]);

    await peer.call('send_message', { room_id: roomId, message: 'hello from 2025' });
    await eventually(() => expect(updates.length).toBeGreaterThanOrEqual(2));
    const waited = await call(agent, 'wait_for_events', { user_token: token, after: page.cursor, timeout_s: 5 });
    expect((waited.events as { params: Structured }[]).map((e) => e.params.message)).toEqual(['hello from 2025']);

    expect(await call(agent, 'send_message', { user_token: token, room_id: roomId, message: 'hello from 2026' })).toMatchObject({
      status: 'sent',
      seq: 2,
    });
    expect((await peer.waitFor('message.received')).map((m) => m.message)).toEqual(['hello from 2026']);
    expect(await call(agent, 'leave_chat', { user_token: token })).toEqual({ status: 'idle' });
    expect(await peer.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'left' }]);
    expect((await health(server)).sessions).toBe(1); // the 2025 peer's; the modern client holds none
  });

  it('streams progress for a held wait_for_events in its own response', async () => {
    const server = await serve();
    const agent = await modernClient(server.url);
    const { user_token: token } = await call(agent, 'enter_queue');
    const progress: number[] = [];
    const result = await agent.callTool(
      { name: 'wait_for_events', arguments: { user_token: token, after: '0', timeout_s: 1.2 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(result.structuredContent).toEqual({ events: [], cursor: '0' });
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[0]).toBe(0);
  });

  it('refuses a call without a token that needs a user, and a made-up token, with the reason', async () => {
    const server = await serve();
    const agent = await modernClient(server.url);
    const noUser = await agent.callTool({ name: 'get_status', arguments: {} });
    expect(noUser.isError).toBe(true);
    expect(JSON.stringify(noUser.content)).toMatch(/call enter_queue first/);
    const madeUp = await agent.callTool({ name: 'get_status', arguments: { user_token: 'not-a-token-at-all' } });
    expect(JSON.stringify(madeUp.content)).toMatch(/names no user/);
  });

  it('holds Host and Origin to the allow-lists and the bearer token, as in the 2025 era', async () => {
    const server = await serve();
    const modernPost = (headers: Record<string, string>) =>
      fetch(server.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'server/discover',
          ...headers,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 7,
          method: 'server/discover',
          params: {
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientCapabilities': {},
              'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
            },
          },
        }),
      });
    expect((await modernPost({ origin: 'https://evil.example' })).status).toBe(403);
    const ok = await modernPost({});
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('"supportedVersions":["2026-07-28"]');
    const guarded = await startTestServer({ token: 'a-secret-of-16-chars-or-more' });
    servers.push(guarded);
    const refused = await fetch(guarded.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28' },
      body: '{}',
    });
    expect(refused.status).toBe(401);
  });

  it('keeps the JSON-RPC id in an error answer to a malformed modern request', async () => {
    const server = await serve();
    const response = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/list',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'req-9',
        method: 'tools/list',
        params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } },
      }),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(await response.json()).toMatchObject({ id: 'req-9', error: { message: expect.stringMatching(/clientCapabilities/) } });
  });
});

describe("the AI SDK's MCP client 2.x (on Node 22)", () => {
  it('stays on 2026-07-28 — no transport error, no fallback — and chats with a 2025-era SDK client', async () => {
    const server = await serve();
    const agent = spawn(node22(), [fileURLToPath(new URL('../support/aiSdkModernAgent.mjs', import.meta.url)), server.url.href], {
      env: { ...process.env, ...markedEnv() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    closers.push(async () => void agent.kill());
    const steps: Record<string, Structured> = {};
    let errors = '';
    agent.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    agent.stdout.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const { step, ...data } = JSON.parse(line) as { step: string } & Structured;
        steps[step] = data;
      }
    });
    const exited = once(agent, 'exit');
    await eventually(() => expect(steps.entered, errors).toBeDefined(), 15_000);
    const peer = await ChatClient.connect(server.url);
    closers.push(() => peer.end());
    const matched = await peer.call('enter_queue');
    expect(matched).toMatchObject({ status: 'matched' });
    await eventually(() => expect(steps.found, errors).toBeDefined(), 15_000);
    expect((await peer.waitFor('message.received')).map((m) => m.message)).toEqual(['hello from the AI SDK on 2026-07-28']);
    await peer.call('send_message', { room_id: matched.room_id, message: 'hello from 2025' });
    const [code] = await exited;
    expect(code, errors).toBe(0);
    expect((steps.heard!.events as { params: Structured }[]).map((e) => e.params.message)).toEqual(['hello from 2025']);
    expect(await peer.waitFor('partner.disconnected')).toEqual([{ room_id: matched.room_id, reason: 'left' }]);
    const { seen } = steps.done as { seen: { versions: (string | null)[]; statuses: number[]; methods: (string | null)[] } };
    expect(seen.statuses.filter((status) => status >= 400)).toEqual([]);
    expect(seen.methods).not.toContain('initialize');
    expect(new Set(seen.versions)).toEqual(new Set(['2026-07-28']));
  });
});
