/**
 * Any process serves any request, behind a plain round-robin balancer: two real servers
 * in this process, each listed in a process directory on a real redis-server at its own
 * address. A call for a user or a session of the other process is sent on to it and
 * answered on the response it came on — held calls and session streams included — and
 * real SDK clients whose every request goes to the next server in turn chat through
 * both eras. (Users of two processes cannot be paired yet: the queue is per process.)
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport as V1StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addressesKey, redisProcessDirectory } from '../../src/chat/broker/redis/addresses.js';
import { connectRedis, type Redis } from '../../src/chat/broker/redis/connection.js';
import { memoryProcessDirectory, newProcessId, processOf } from '../../src/chat/processDirectory.js';
import type { ChatConfig } from '../../src/config.js';
import { FORWARDED_HEADER, forwardHeaders } from '../../src/http/forwardTrust.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import { mcpRequestOwner } from '../../src/http/routing.js';
import { eventsUri, keyOfEventsUri } from '../../src/mcp/eventsResource.js';
import { ChatClient, type RecordedNotification } from '../support/chatClient.js';
import { eventually, sleep } from '../support/eventually.js';
import { fetchFrom } from '../support/fromAddress.js';
import { jsonHeaders, type RpcAnswer, rpcAnswerOf } from '../support/jsonRpcWire.js';
import { freePort } from '../support/processes.js';
import { openRawSession } from '../support/rawSession.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { health, startTestServer } from '../support/server.js';

let redis: TestRedis;
let admin: Redis;
const servers: RunningChatServer[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = connectRedis(redis.url, { name: 'routing-test' });
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});
afterAll(async () => {
  admin.disconnect();
  await redis.stop();
});

/** A server listed in the Redis process directory; answers it and its process id. */
async function serve(config: Partial<ChatConfig> = {}): Promise<RunningChatServer & { processId: string }> {
  const processDirectory = await redisProcessDirectory({ url: redis.url });
  const server = await startTestServer(config, { processDirectory });
  servers.push(server);
  return Object.assign(server, { processId: processDirectory.self });
}

/** Two servers sharing one directory. */
async function two(config: Partial<ChatConfig> = {}) {
  const [a, b] = await Promise.all([serve(config), serve(config)]);
  return { a, b };
}

/** Where `a` and `b` are: the directory lists each at its own base URL. */
const baseOf = (server: RunningChatServer) => server.url.origin;

/**
 * A fetch that sends each request to the next server in turn, as a round-robin balancer
 * does, whatever host the client meant; `hits` counts the requests each server got.
 */
function roundRobin(targets: RunningChatServer[]) {
  let next = 0;
  const hits = new Map<string, number>(targets.map((server) => [server.url.host, 0]));
  const send = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input);
    const target = targets[next++ % targets.length]!;
    url.host = target.url.host;
    hits.set(target.url.host, hits.get(target.url.host)! + 1);
    return input instanceof Request ? fetch(new Request(url, input), init) : fetch(url, init);
  };
  return { fetch: send, hits };
}

/** One `tools/call` POSTed to `server`, with no session unless given one; answers the JSON-RPC answer. */
async function callAt(
  server: RunningChatServer,
  name: string,
  args: Record<string, unknown>,
  options: { sessionId?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { ...jsonHeaders(options.sessionId), ...options.headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
    signal: options.signal,
  });
  const text = await response.text();
  return {
    status: response.status,
    answer: rpcAnswerOf(text) ?? (JSON.parse(text) as RpcAnswer),
    sessionHeader: response.headers.get('mcp-session-id'),
  };
}

const structured = (answer: RpcAnswer) => answer.result?.structuredContent as Record<string, unknown>;
const refusalText = (answer: RpcAnswer) => JSON.stringify(answer.result?.content);

/** Records the requests a server takes that another process sent on, with their responses. */
function forwardedTo(server: RunningChatServer): { request: IncomingMessage; response: ServerResponse }[] {
  const seen: { request: IncomingMessage; response: ServerResponse }[] = [];
  server.httpServer.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.headers[FORWARDED_HEADER] !== undefined) seen.push({ request, response });
  });
  return seen;
}

describe('names that say their process', () => {
  it('starts tokens and session ids with the id of the process that made them', async () => {
    const { a } = await two();
    expect(a.processId).toMatch(/^[a-z2-7]{10}$/);
    const entered = await callAt(a, 'enter_queue', {});
    const token = structured(entered.answer).user_token as string;
    expect(token).toMatch(new RegExp(`^${a.processId}\\.[A-Za-z0-9_-]{32}$`));
    expect(processOf(await openRawSession(a.url))).toBe(a.processId);
    expect(await admin.hgetall(addressesKey())).toMatchObject({ [a.processId]: baseOf(a) });
  });

  it('says whose a request is: the token’s for a call, else the session’s, else the events resource’s', () => {
    const call = (args: Record<string, unknown>) => ({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'get_status', arguments: args },
    });
    expect(mcpRequestOwner(undefined, call({ user_token: 'aaaa.secret' }))).toEqual({ processId: 'aaaa', withoutSession: false });
    expect(mcpRequestOwner('bbbb.uuid', call({ user_token: 'aaaa.secret' }))).toEqual({ processId: 'aaaa', withoutSession: true });
    expect(mcpRequestOwner('aaaa.uuid', call({ user_token: 'aaaa.secret' }))).toEqual({ processId: 'aaaa', withoutSession: false });
    expect(mcpRequestOwner('bbbb.uuid', call({}))).toEqual({ processId: 'bbbb', withoutSession: false });
    expect(mcpRequestOwner(undefined, call({}))).toBeUndefined();
    expect(mcpRequestOwner(undefined, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })).toBeUndefined();
    const listen = {
      jsonrpc: '2.0',
      id: 2,
      method: 'subscriptions/listen',
      params: { notifications: { resourceSubscriptions: ['other://x', eventsUri('cccc.secret')] } },
    };
    expect(mcpRequestOwner(undefined, listen)).toEqual({ processId: 'cccc', withoutSession: false });
    const read = { jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: `${eventsUri('dddd.secret')}?after=4` } };
    expect(mcpRequestOwner(undefined, read)).toEqual({ processId: 'dddd', withoutSession: false });
    expect(keyOfEventsUri(eventsUri('ab-_.c/d e'))).toBe('ab-_.c/d e');
  });
});

describe('a user of one process, called on the other', () => {
  it('answers get_status, a held wait_for_events released by an event, and leave_chat on the response they came on', async () => {
    const { a, b } = await two();
    const atA = forwardedTo(a);
    const first = structured((await callAt(a, 'enter_queue', {})).answer);
    const token = first.user_token as string;
    expect(first).toMatchObject({ status: 'waiting' });

    expect(structured((await callAt(b, 'get_status', { user_token: token })).answer)).toMatchObject({ state: 'waiting' });

    let released = false;
    const held = callAt(b, 'wait_for_events', { user_token: token, after: '0', timeout_s: 20 }).finally(() => (released = true));
    await sleep(500);
    expect(released).toBe(false);
    const partner = structured((await callAt(a, 'enter_queue', {})).answer);
    expect(partner).toMatchObject({ status: 'matched' });
    const waited = await held;
    expect(waited.status).toBe(200);
    expect(structured(waited.answer).events).toEqual([
      { id: '1', method: 'chatroom.found', params: { room_id: partner.room_id, common_interests: [] } },
    ]);

    expect(structured((await callAt(b, 'leave_chat', { user_token: token })).answer)).toEqual({ status: 'idle' });
    const partnerPage = structured(
      (await callAt(a, 'wait_for_events', { user_token: partner.user_token, after: '1', timeout_s: 5 })).answer,
    );
    expect(partnerPage.events).toMatchObject([{ method: 'partner.disconnected', params: { room_id: partner.room_id, reason: 'left' } }]);

    expect(atA.length).toBe(3);
    expect((await health(a)).actors.users).toBe(2);
    expect((await health(b)).actors.users).toBe(0);
  });

  it('ends the call on its owner when the client goes away from a held call', async () => {
    const { a, b } = await two();
    const atA = forwardedTo(a);
    const token = structured((await callAt(a, 'enter_queue', {})).answer).user_token as string;
    const gaveUp = new AbortController();
    const held = callAt(b, 'wait_for_events', { user_token: token, after: '0', timeout_s: 30 }, { signal: gaveUp.signal }).catch(
      (error: unknown) => error,
    );
    await eventually(() => expect(atA.length).toBe(1));
    const { response } = atA[0]!;
    let closedAtOwner: { finished: boolean } | undefined;
    response.once('close', () => (closedAtOwner = { finished: response.writableFinished }));
    await sleep(200);
    expect(closedAtOwner).toBeUndefined();
    gaveUp.abort();
    expect(await held).toBeInstanceOf(Error);
    // The owner's response closed unfinished (its connection went), long before the hold would end.
    await eventually(() => expect(closedAtOwner).toEqual({ finished: false }), 2_000);
  });

  it('serves a call in a session of one process for a user of the other where the user lives, without the session', async () => {
    const { a, b } = await two();
    const token = structured((await callAt(a, 'enter_queue', {})).answer).user_token as string;
    const sessionAtB = await openRawSession(b.url);
    // Arriving where the session lives: sent on to the user's process without it.
    const there = await callAt(b, 'get_status', { user_token: token }, { sessionId: sessionAtB });
    expect(structured(there.answer)).toMatchObject({ state: 'waiting' });
    // Arriving where the user lives: served there, without the session.
    const here = await callAt(a, 'get_status', { user_token: token }, { sessionId: sessionAtB });
    expect(structured(here.answer)).toMatchObject({ state: 'waiting' });
    // The session is still B's, and still open.
    expect((await callAt(a, 'get_status', {}, { sessionId: sessionAtB })).answer.result?.isError).toBe(true);
    expect((await health(b)).sessions).toBe(1);
    expect((await health(a)).sessions).toBe(0);
  });
});

describe('clients whose every request goes to the next server in turn', () => {
  it('a 2025 session (v1 SDK client) initializes, calls tools and hears its stream through either server', async () => {
    const { a, b } = await two();
    // In turn a, b, b: initialize lands on a, and the session stream (the third request) on b.
    const balancer = roundRobin([a, b, b]);
    const client = new V1Client({ name: 'round-robin', version: '1.0.0' });
    const notifications: RecordedNotification[] = [];
    client.fallbackNotificationHandler = async (n) =>
      void notifications.push({ method: n.method, params: (n.params ?? {}) as Record<string, unknown> });
    const transport = new V1StreamableHTTPClientTransport(a.url, { fetch: balancer.fetch });
    const atOwner = forwardedTo(a);
    await client.connect(transport);
    closers.push(() => client.close());
    const call = async (name: string, args: Record<string, unknown> = {}) => {
      const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
      if (result.isError) throw new Error(JSON.stringify(result.content));
      return result.structuredContent as Record<string, unknown>;
    };
    const owner = processOf(transport.sessionId!) === a.processId ? a : b;
    const other = owner === a ? b : a;
    expect(owner).toBe(a);

    expect(await call('enter_queue')).toMatchObject({ status: 'waiting' });
    const peer = await ChatClient.connect(owner.url);
    closers.push(() => peer.end());
    const { room_id: roomId } = await peer.call('enter_queue');
    await eventually(() => expect(notifications.map((n) => n.method)).toContain('chatroom.found'));
    await peer.call('send_message', { room_id: roomId, message: 'hello over the stream' });
    await eventually(() =>
      expect(notifications.filter((n) => n.method === 'message.received').map((n) => n.params.message)).toEqual(['hello over the stream']),
    );
    for (const text of ['one', 'two', 'three']) await call('send_message', { room_id: roomId, message: text });
    expect((await peer.waitFor('message.received', 3)).map((m) => m.message)).toEqual(['one', 'two', 'three']);
    expect(await call('get_status')).toMatchObject({ state: 'chatting' });
    expect(await call('leave_chat')).toEqual({ status: 'idle' });
    expect(await peer.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'left' }]);

    expect(balancer.hits.get(other.url.host)).toBeGreaterThanOrEqual(3);
    expect(atOwner.map(({ request }) => request.method)).toContain('GET');
    expect((await health(owner)).sessions).toBe(2);
    expect((await health(other)).sessions).toBe(0);
    await transport.terminateSession();
    await eventually(async () => expect((await health(owner)).sessions).toBe(1));
  });

  it('a 2026-07-28 client (v2 SDK) chats by token, listens to its events and reads them through either server', async () => {
    const { a, b } = await two();
    const balancer = roundRobin([a, b]);
    const agent = new Client({ name: 'modern-round-robin', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await agent.connect(new StreamableHTTPClientTransport(a.url, { fetch: balancer.fetch }));
    closers.push(() => agent.close());
    const call = async (name: string, args: Record<string, unknown> = {}) => {
      const result = await agent.callTool({ name, arguments: args });
      if (result.isError) throw new Error(`${name} refused: ${JSON.stringify(result.content)}`);
      return result.structuredContent as Record<string, unknown>;
    };
    const entered = await call('enter_queue');
    const token = entered.user_token as string;
    const owner = processOf(token) === a.processId ? a : b;
    const uri = entered.events_uri as string;
    expect(uri).not.toContain(token);

    const updates: string[] = [];
    agent.setNotificationHandler('notifications/resources/updated', (notification) => void updates.push(notification.params.uri));
    const subscription = await agent.listen({ resourceSubscriptions: [uri] });
    closers.push(() => subscription.close());
    const peer = await ChatClient.connect(owner.url);
    closers.push(() => peer.end());
    const { room_id: roomId } = await peer.call('enter_queue');
    await eventually(() => expect(updates).toContain(uri));
    const read = await agent.readResource({ uri: `${uri}?after=0` });
    const page = JSON.parse((read.contents[0] as { text: string }).text) as { events: { method: string }[]; cursor: string };
    expect(page.events.map((e) => e.method)).toEqual(['chatroom.found']);

    await peer.call('send_message', { room_id: roomId, message: 'hello from 2025' });
    const waited = await call('wait_for_events', { user_token: token, after: page.cursor, timeout_s: 5 });
    expect((waited.events as { params: { message: string } }[]).map((e) => e.params.message)).toEqual(['hello from 2025']);
    expect(await call('send_message', { user_token: token, room_id: roomId, message: 'hello from 2026' })).toMatchObject({
      status: 'sent',
      seq: 2,
    });
    expect((await peer.waitFor('message.received')).map((m) => m.message)).toEqual(['hello from 2026']);

    // A held call streams its progress through the other server as it comes.
    const progress: number[] = [];
    const held = await agent.callTool(
      { name: 'wait_for_events', arguments: { user_token: token, after: waited.cursor, timeout_s: 1.2 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(held.structuredContent).toMatchObject({ events: [] });
    expect(progress.length).toBeGreaterThanOrEqual(2);

    expect(await call('leave_chat', { user_token: token })).toEqual({ status: 'idle' });
    expect(await peer.waitFor('partner.disconnected')).toEqual([{ room_id: roomId, reason: 'left' }]);
    expect(balancer.hits.get(a.url.host)).toBeGreaterThanOrEqual(3);
    expect(balancer.hits.get(b.url.host)).toBeGreaterThanOrEqual(3);
    expect((await health(owner)).actors.users).toBe(2);
    expect((await health(owner === a ? b : a)).actors.users).toBe(0);
  });

  it('a legacy HTTP+SSE client (2024-11-05) posts its messages to either server', async () => {
    const { a, b } = await two();
    const balancer = roundRobin([a, b]);
    const client = new V1Client({ name: 'legacy-round-robin', version: '1.0.0' });
    const notifications: RecordedNotification[] = [];
    client.fallbackNotificationHandler = async (n) =>
      void notifications.push({ method: n.method, params: (n.params ?? {}) as Record<string, unknown> });
    const transport = new SSEClientTransport(new URL('/sse', a.url), { fetch: balancer.fetch });
    await client.connect(transport);
    closers.push(() => client.close());
    const result = (await client.callTool({ name: 'enter_queue', arguments: {} })) as CallToolResult;
    const token = (result.structuredContent as { user_token: string }).user_token;
    const owner = processOf(token) === a.processId ? a : b;
    const peer = await ChatClient.connect(owner.url);
    closers.push(() => peer.end());
    await peer.call('enter_queue');
    await eventually(() => expect(notifications.map((n) => n.method)).toContain('chatroom.found'));
    for (let i = 0; i < 3; i++)
      expect(((await client.callTool({ name: 'get_status', arguments: {} })) as CallToolResult).structuredContent).toMatchObject({
        state: 'chatting',
      });
    expect(balancer.hits.get(a.url.host)).toBeGreaterThanOrEqual(2);
    expect(balancer.hits.get(b.url.host)).toBeGreaterThanOrEqual(2);
  });
});

describe('the client behind a forwarded request', () => {
  it('is the client, not the process that forwarded it: limits per address count the real client on the owner', async () => {
    const { a, b } = await two({ maxPerAddress: 2 });
    const hold = (from: string, token: string) => {
      const abort = new AbortController();
      closers.push(async () => abort.abort());
      const answer = fetchFrom(from)(b.url, {
        method: 'POST',
        headers: jsonHeaders(),
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 7,
          method: 'tools/call',
          params: { name: 'wait_for_events', arguments: { user_token: token, timeout_s: 5 } },
        }),
        signal: abort.signal,
      })
        .then((response) => response.text())
        .catch(() => '');
      return answer;
    };
    // Users on A; every call goes through B.
    const tokens = [];
    for (let i = 0; i < 4; i++)
      tokens.push(structured((await callAt(a, 'enter_queue', { i_am: 'agent', meet: 'humans' })).answer).user_token as string);
    void hold('127.0.0.2', tokens[0]!);
    void hold('127.0.0.2', tokens[1]!);
    await sleep(300);
    // 127.0.0.2 holds its two waits on A; a third is refused there, though B forwarded it.
    const third = rpcAnswerOf(await hold('127.0.0.2', tokens[2]!));
    expect(third?.result?.isError).toBe(true);
    expect(JSON.stringify(third?.result?.content)).toMatch(/held wait_for_events calls from your address/);
    // Another client through the same B is its own address on A: its wait is held (and ends empty).
    const other = rpcAnswerOf(await hold('127.0.0.3', tokens[3]!));
    expect(other?.result?.isError).toBeFalsy();
    expect(other?.result?.structuredContent).toMatchObject({ events: [] });
  });
});

describe('owners that are not there, and loops', () => {
  it('never sends a forwarded request on again; a claim to be forwarded counts only when signed with the cluster secret', async () => {
    const { a, b } = await two();
    // Both processes read the one secret the first made in Redis.
    expect(b.services.processDirectory.secret).toBe(a.services.processDirectory.secret);
    expect(a.services.processDirectory.secret).toMatch(/^[0-9a-f]{64}$/);
    const token = structured((await callAt(a, 'enter_queue', {})).answer).user_token as string;
    // Signed by a member: served here, where the user is unknown.
    const path = new URL(b.url).pathname;
    const signed = forwardHeaders(b.services.processDirectory.secret, { sender: a.processId, client: '127.0.0.1' }, 'POST', path);
    const marked = await callAt(b, 'get_status', { user_token: token }, { headers: signed });
    expect(marked.answer.result?.isError).toBe(true);
    expect(refusalText(marked.answer)).toMatch(/names no user/);
    // Claimed by a client (no signature, a forged one, or one too old): an ordinary request, sent on to its owner.
    const forged = forwardHeaders('not-the-secret', { sender: a.processId, client: '127.0.0.1' }, 'POST', path);
    const stale = forwardHeaders(
      b.services.processDirectory.secret,
      { sender: a.processId, client: '127.0.0.1' },
      'POST',
      path,
      Date.now() - 120_000,
    );
    for (const headers of [{ [FORWARDED_HEADER]: 'someone' }, forged, stale])
      expect(structured((await callAt(b, 'get_status', { user_token: token }, { headers })).answer)).toMatchObject({ state: 'waiting' });
    // A directory that lists A at B's address: B sends the call to itself once, then answers it.
    const atB = forwardedTo(b);
    await admin.hset(addressesKey(), a.processId, baseOf(b));
    const looped = await callAt(b, 'get_status', { user_token: token });
    expect(refusalText(looped.answer)).toMatch(/names no user/);
    expect(atB.length).toBe(1);
  });

  it('refuses a token or session of a process that is gone as unknown, promptly', async () => {
    const { b } = await two();
    const ghost = newProcessId();
    const started = performance.now();
    const unknown = await callAt(b, 'get_status', { user_token: `${ghost}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA` });
    expect(refusalText(unknown.answer)).toMatch(/names no user/);
    const noSession = await callAt(b, 'get_status', {}, { sessionId: `${ghost}.00000000-0000-4000-8000-000000000000` });
    expect(noSession.status).toBe(404);
    expect(noSession.answer.error?.code).toBe(-32001);
    // Listed, but nothing listens there (it died without leaving the directory).
    await admin.hset(addressesKey(), ghost, `http://127.0.0.1:${await freePort()}`);
    const dead = await callAt(b, 'get_status', { user_token: `${ghost}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA` });
    expect(refusalText(dead.answer)).toMatch(/names no user/);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('refuses for now (503) when the directory cannot be read, within the command timeout', async () => {
    const { a, b } = await two();
    const token = structured((await callAt(a, 'enter_queue', {})).answer).user_token as string;
    redis.freeze();
    try {
      const started = performance.now();
      const refused = await callAt(b, 'get_status', { user_token: token });
      expect(refused.status).toBe(503);
      expect(refused.answer).toMatchObject({ id: 1, error: { message: expect.stringMatching(/directory is unavailable/) } });
      expect(performance.now() - started).toBeLessThan(4_000);
      // Its own users need no directory.
      expect(structured((await callAt(a, 'get_status', { user_token: token })).answer)).toMatchObject({ state: 'waiting' });
    } finally {
      redis.thaw();
    }
  });

  it('serves alone with the in-memory directory, its names prefixed all the same', async () => {
    const directory = memoryProcessDirectory();
    const server = await startTestServer({}, { processDirectory: directory });
    servers.push(server);
    expect(await directory.addressOf(directory.self)).toBe(baseOf(server));
    const token = structured((await callAt(server, 'enter_queue', {})).answer).user_token as string;
    expect(processOf(token)).toBe(directory.self);
    expect(structured((await callAt(server, 'get_status', { user_token: token })).answer)).toMatchObject({ state: 'waiting' });
  });
});
