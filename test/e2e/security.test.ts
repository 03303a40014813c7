import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listen, type RunningChatServer } from '../../src/http/listen.js';
import { createChatServer } from '../../src/server.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { jsonHeaders } from '../support/jsonRpcWire.js';
import { deleteRawSession, openRawSession, rawRequest } from '../support/rawSession.js';
import { health, startTestServer } from '../support/server.js';

const TOKEN = 'correct-horse-battery-staple';

let server: RunningChatServer;
let guarded: RunningChatServer;
let tight: RunningChatServer;
const open: ChatClient[] = [];

async function connect(target = server): Promise<ChatClient> {
  const client = await ChatClient.connect(target.url);
  open.push(client);
  return client;
}

const initialize = (extra: Record<string, string> = {}, target = server) =>
  fetch(target.url, {
    method: 'POST',
    headers: { ...jsonHeaders(), ...extra },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '1' } },
    }),
  });

beforeAll(async () => {
  // Users whose sessions ended go after a short grace period, so each test starts alone.
  server = await startTestServer({ graceMs: 100 });
  guarded = await startTestServer({ token: TOKEN });
  // A rate so low (one message per 100 s) that no machine is slow enough to refill a token mid-test.
  tight = await startTestServer({ maxSessions: 2, maxBodyBytes: 2048, messagesPerSecond: 0.01, messageBurst: 2, maxWaitsPerUser: 1 });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
  await eventually(async () => expect((await health(server)).actors.users).toBe(0));
});
afterAll(async () => {
  await Promise.all([server.close(), guarded.close(), tight.close()]);
});

describe('who may connect', () => {
  it('listens on loopback by default', async () => {
    // No host given: the default decides.
    const fromDefaults = await listen(await createChatServer({ config: { port: 0 }, log: pino({ level: 'silent' }) }));
    try {
      expect(fromDefaults.httpServer.address()).toMatchObject({ address: '127.0.0.1' });
      expect(fromDefaults.url.hostname).toBe('127.0.0.1');
    } finally {
      await fromDefaults.close();
    }
  });

  it('refuses a Host that is not allowed with 403 and a JSON-RPC error (DNS rebinding)', async () => {
    const response = await rawRequest(server.url, {
      method: 'POST',
      headers: { ...jsonHeaders(), host: 'evil.example:3000' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: {} }),
    });
    expect(response.status).toBe(403);
    expect(JSON.parse(response.text)).toMatchObject({ jsonrpc: '2.0', error: { message: expect.stringContaining('--allowed-hosts') } });
    const allowed = await rawRequest(new URL('/healthz', server.url), { headers: { host: `localhost:${server.url.port}` } });
    expect(allowed.status).toBe(200);
  });

  it('refuses an Origin that is not allowed with 403, and allows a local one with CORS headers', async () => {
    const refused = await initialize({ origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { message: expect.stringContaining('--allowed-origins') } });

    const allowed = await initialize({ origin: 'http://localhost:5173' });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(allowed.headers.get('access-control-expose-headers')).toMatch(/mcp-session-id/i);
    expect(allowed.headers.get('mcp-session-id')).toBeTruthy();
    await allowed.text();
  });

  it('answers a CORS preflight from an allowed origin', async () => {
    const response = await fetch(server.url, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://127.0.0.1:8080',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, mcp-session-id, mcp-protocol-version',
      },
    });
    expect(response.status).toBeLessThan(300);
    expect(response.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8080');
    expect(response.headers.get('access-control-allow-headers')).toMatch(/mcp-session-id/i);
  });

  it('requires the bearer token when one is set: 401 with WWW-Authenticate without it or with a wrong one', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-wrong-token', `Basic ${TOKEN}`]) {
      const response = await initialize(authorization ? { authorization } : {}, guarded);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await response.json()).toMatchObject({ error: { message: expect.stringContaining('Authorization: Bearer') } });
    }
    const metrics = await fetch(new URL('/metrics', guarded.url));
    expect(metrics.status).toBe(401);
    expect((await fetch(new URL('/healthz', guarded.url))).status).toBe(200);
    const ok = await initialize({ authorization: `Bearer ${TOKEN}` }, guarded);
    expect(ok.status).toBe(200);
    const sessionId = ok.headers.get('mcp-session-id')!;
    await ok.text();
    // The session id alone is not enough: every request needs the token too.
    const stolen = await fetch(guarded.url, {
      method: 'POST',
      headers: jsonHeaders(sessionId),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(stolen.status).toBe(401);
  });
});

describe('limits', () => {
  it('refuses a body over the size limit with 413', async () => {
    const sessionId = await openRawSession(tight.url);
    const response = await fetch(tight.url, {
      method: 'POST',
      headers: jsonHeaders(sessionId),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'get_status', arguments: { pad: 'x'.repeat(4096) } },
      }),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { message: expect.stringContaining('2048 bytes') } });
    // Without Content-Length the body is counted as it streams in.
    const chunked = await rawRequest(tight.url, {
      method: 'POST',
      headers: { ...jsonHeaders(sessionId), host: `127.0.0.1:${tight.url.port}` },
      chunks: ['{"jsonrpc":"2.0","id":2,"method":"ping","params":{"pad":"', ...Array.from({ length: 8 }, () => 'y'.repeat(512)), '"}}'],
    });
    expect(chunked.status).toBe(413);
    expect(chunked.headers['content-length']).toBeDefined();
    await deleteRawSession(tight.url, sessionId);
  });

  it('refuses sessions over the cap with 503, and the open ones keep working', async () => {
    const [a, b] = [await connect(tight), await connect(tight)];
    const response = await initialize({}, tight);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(await response.json()).toMatchObject({ error: { message: expect.stringContaining('full') } });
    expect(await a.call('enter_queue')).toEqual({ status: 'waiting', position: 1 });
    expect(await b.call('enter_queue')).toMatchObject({ status: 'matched' });
  });

  it('limits messages per second per user, and tells the user the rate', async () => {
    const [a, b] = [await connect(tight), await connect(tight)];
    await a.call('enter_queue');
    const { room_id } = await b.call('enter_queue');
    expect(await a.call('send_message', { room_id, message: '1' })).toMatchObject({ seq: 1 });
    expect(await a.call('send_message', { room_id, message: '2' })).toMatchObject({ seq: 2 });
    expect(await a.refusal('send_message', { room_id, message: '3' })).toMatch(
      /too fast: at most 0.01 message\(s\) per second, in bursts of up to 2/,
    );
    // The partner's own budget is untouched.
    expect(await b.call('send_message', { room_id, message: 'mine' })).toMatchObject({ seq: 3 });
    expect((await b.waitFor('message.received', 2)).map((m) => m.message)).toEqual(['1', '2']);
  });

  it('bounds the wait_for_events calls one user may have held at once: one more replaces the oldest', async () => {
    const a = await connect(tight);
    await a.call('enter_queue');
    const held = a.call('wait_for_events', { after: '0', timeout_s: 5 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const newer = a.call('wait_for_events', { timeout_s: 1 });
    expect(await held).toEqual({ events: [], cursor: '0', note: expect.stringMatching(/replaced this call: at most 1/) });
    expect(await newer).toEqual({ events: [], cursor: '0' });
  });

  it('limits the users one client address may make, and says what to do instead', async () => {
    const limited = await startTestServer({ newUsersPerMinute: 2 });
    try {
      const clients = await Promise.all([1, 2, 3].map(() => ChatClient.connect(limited.url)));
      await clients[0]!.call('enter_queue');
      await clients[1]!.call('enter_queue');
      expect(await clients[2]!.refusal('enter_queue')).toMatch(/Too many new users from your address \(at most 2 a minute\).*user_token/);
      // A user it already has is still served.
      expect(await clients[2]!.call('get_status', { user_token: clients[0]!.token })).toMatchObject({ state: 'chatting' });
      expect((await health(limited)).actors.users).toBe(2);
      await Promise.all(clients.map((client) => client.end()));
    } finally {
      await limited.close();
    }
  });

  it('refuses a made-up user_token, naming it as the problem, and counts the refusal', async () => {
    const a = await connect();
    const made = 'x'.repeat(32);
    expect(await a.refusal('get_status', { user_token: made })).toMatch(
      /user_token you passed \(xxxx…\) names no user.*enter_queue without a user_token/,
    );
    expect(await a.refusal('enter_queue', { user_token: made })).toMatch(/names no user/);
    const metrics = await (await fetch(new URL('/metrics', server.url))).text();
    expect(metrics).toMatch(/mcp_chat_refusals_total\{reason="unknown_token"\} 2/);
    expect(metrics).not.toContain(made);
    expect((await health(server)).actors.users).toBe(0);
  });
});

describe('privacy', () => {
  it("a partner never learns the other user's ids or client info, and outsiders cannot use the room", async () => {
    const a = await ChatClient.connect(server.url, 'alice-secret-client');
    const b = await ChatClient.connect(server.url, 'bob-secret-client');
    open.push(a, b);
    await a.call('enter_queue');
    const { room_id } = await b.call('enter_queue');
    await b.call('send_message', { room_id, message: 'hi' });
    await a.waitFor('message.received');
    const seenByA = JSON.stringify([a.notifications, await a.call('get_status')]);
    expect(seenByA).not.toContain(b.token!);
    expect(seenByA).not.toContain(b.sessionId);
    expect(seenByA).not.toContain('bob-secret-client');
    expect(seenByA).not.toContain('127.0.0.1');
    const userIds = [...server.services.users.values()].map((user) => user.userId);
    for (const id of userIds) expect(seenByA).not.toContain(id);

    const mallory = await connect();
    expect(await mallory.refusal('send_message', { room_id, message: 'let me in' })).toMatch(/call enter_queue first/);
    await mallory.call('enter_queue');
    await mallory.call('leave_chat');
    expect(await mallory.refusal('send_message', { room_id, message: 'let me in' })).toMatch(/not in a chat/);
    await mallory.call('enter_queue');
    expect(await mallory.refusal('leave_chat', { room_id })).toMatch(/not in room/);
  });
});

describe('observability', () => {
  it('scrapes Prometheus metrics after a chat', async () => {
    const [a, b] = [await connect(), await connect()];
    await a.call('enter_queue');
    const { room_id } = await b.call('enter_queue');
    await a.call('send_message', { room_id, message: 'counted' });
    await a.refusal('enter_queue');
    const text = await (await fetch(new URL('/metrics', server.url))).text();
    expect(text).toMatch(/^mcp_chat_sessions \d+$/m);
    expect(text).toMatch(/^mcp_chat_users\{state="chatting"\} [1-9]\d*$/m);
    expect(text).toMatch(/^mcp_chat_rooms [1-9]\d*$/m);
    expect(text).toMatch(/^mcp_chat_queue_length \d+$/m);
    expect(text).toMatch(/^mcp_chat_messages_relayed_total [1-9]\d*$/m);
    expect(text).toMatch(/^mcp_chat_relay_latency_seconds_count [1-9]\d*$/m);
    expect(text).toMatch(/^mcp_chat_refusals_total\{reason="already_chatting"\} [1-9]\d*$/m);
  });

  it('answers /healthz with status, uptime, users by state, rooms and queue length', async () => {
    const a = await connect();
    await a.call('enter_queue');
    expect(await health(server)).toMatchObject({
      status: 'ok',
      uptime_s: expect.any(Number),
      users: { idle: expect.any(Number), waiting: 1, chatting: expect.any(Number) },
      actors: { users: expect.any(Number), rooms: expect.any(Number) },
      queue: 1,
    });
  });
});
