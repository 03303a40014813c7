/**
 * A real balancer: Debian's nginx running the README's block ("Behind nginx") — round
 * robin, no stickiness — in front of three server processes on one real Redis, started
 * with `--trust-proxy 1`. Every kind of client the README promises chats through it:
 * SDK clients with sessions and GET streams, legacy HTTP+SSE, clients with no session or
 * a session per call, a 2026-07-28 client with `subscriptions/listen`, and a person on the
 * page; a `wait_for_events` held for 50 s outlasts the proxy; and each process, forwarded
 * requests included, counts what a client holds by the client's own address.
 */

import { readFileSync } from 'node:fs';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { processOf } from '../../src/chat/processDirectory.js';
import { launchBrowser } from '../support/browser.js';
import { ChatClient, type RecordedNotification } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { callOrThrow, fetchFrom, type OpenResponse, requestFrom, type Structured } from '../support/fromAddress.js';
import { jsonHeaders, rpcAnswerOf } from '../support/jsonRpcWire.js';
import { startNginx, type TestNginx } from '../support/nginx.js';
import type { ServerProcess } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { type ChatEvent, SessionlessClient, SessionPerCallClient, type TokenClient } from '../support/tokenClient.js';
import { startChatProcesses } from './scaleOutSupport.js';

/** Pairing on Redis goes through the queue holder: a generous bound for a pair to meet. */
const MEET_MS = 15_000;
/** The longest hold `wait_for_events` takes (its `timeout_s` maximum). */
const LONGEST_HOLD_S = 50;

/**
 * The README's nginx block, with its upstream servers replaced by `servers` and its
 * `listen` by `listen`: what an operator copies is what runs here.
 */
function readmeNginxSite(servers: readonly ServerProcess[], listen: string): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /^### Behind nginx\n[\s\S]*?^```nginx\n([\s\S]*?)^```$/m.exec(readme)?.[1];
  if (block === undefined) throw new Error('README.md has no ```nginx block under "### Behind nginx"');
  const upstreams = /^( *)server 127\.0\.0\.1:\d+;\n(?:\1server 127\.0\.0\.1:\d+;\n)*/m;
  const listens = /^( *)listen 80;$/m;
  if (!upstreams.test(block) || !listens.test(block))
    throw new Error(`the README's nginx block has no "server 127.0.0.1:<port>;" lines or no "listen 80;":\n${block}`);
  return block
    .replace(upstreams, (_, indent: string) => servers.map((server) => `${indent}server ${server.url.host};\n`).join(''))
    .replace(listens, (_, indent: string) => `${indent}listen ${listen};`);
}

interface Balanced {
  /** The MCP endpoint, through nginx. */
  readonly mcp: URL;
  readonly nginx: TestNginx;
  stop(): Promise<void>;
}

/** A Redis, three processes on it (`--trust-proxy 1` and `extra`), and nginx in front of them. */
async function startBalanced(extra: string[] = []): Promise<Balanced> {
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const each of stops.reverse()) await each();
  };
  try {
    const redis: TestRedis = await startRedis();
    stops.push(() => redis.stop());
    const servers = await startChatProcesses(redis.url, 3, { extra: ['--trust-proxy', '1', ...extra] });
    stops.push(() => Promise.all(servers.map((server) => server.stop())));
    const nginx = await startNginx((listen) => readmeNginxSite(servers, listen));
    stops.push(() => nginx.stop());
    return { mcp: new URL('/mcp', nginx.url), nginx, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Reads a client's events until one of `method` arrives; answers that one. */
async function heard(client: TokenClient, method: string, ms = MEET_MS): Promise<ChatEvent> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const found = (await client.waitForEvents(2)).find((event) => event.method === method);
    if (found) return found;
  }
  throw new Error(`no ${method} within ${ms} ms`);
}

/** The texts of `count` messages a client reads, in the order it reads them, with their seqs. */
async function readMessages(client: TokenClient, count: number): Promise<{ texts: string[]; seqs: number[] }> {
  const messages: ChatEvent[] = [];
  const deadline = Date.now() + MEET_MS;
  while (messages.length < count && Date.now() < deadline)
    messages.push(...(await client.waitForEvents(2)).filter((event) => event.method === 'message.received'));
  return { texts: messages.map((event) => String(event.params.message)), seqs: messages.map((event) => Number(event.params.seq)) };
}

/** A v2 SDK client pinned to 2026-07-28. */
async function modernClient(url: URL): Promise<Client> {
  const client = new Client({ name: 'modern-behind-nginx', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(url));
  return client;
}

const ascending = (seqs: number[]) => seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!);

describe('three processes on one Redis behind nginx (round robin, no stickiness)', () => {
  let balanced: Balanced;
  const closers: (() => Promise<unknown>)[] = [];
  /** The tokens of the users the tests made (each starts with the id of the process holding it). */
  const tokens: string[] = [];
  /**
   * Started before the tests, checked after them: `wait_for_events` held 50 s through
   * nginx, by a 2026-07-28 client (its answer is one JSON body, silent until then) and by
   * a 2025 client without a session (an SSE answer, with keep-alive comments).
   */
  let longHolds: Promise<{ era: string; answer: Structured; heldMs: number }[]>;
  let modernHolder: Client | undefined;

  beforeAll(async () => {
    balanced = await startBalanced();
    // Nobody waits yet, so these users meet nobody: idle, their waits end by their timeout.
    modernHolder = await modernClient(balanced.mcp);
    const { user_token: token } = await callOrThrow(modernHolder, 'enter_queue');
    expect(await callOrThrow(modernHolder, 'leave_chat', { user_token: token })).toEqual({ status: 'idle' });
    const sessionless = new SessionlessClient(balanced.mcp);
    await sessionless.call('enter_queue');
    expect(await sessionless.call('leave_chat')).toEqual({ status: 'idle' });
    const timed = async (era: string, hold: () => Promise<Structured>) => {
      const started = Date.now();
      const answer = await hold();
      return { era, answer, heldMs: Date.now() - started };
    };
    const holder = modernHolder;
    longHolds = Promise.all([
      timed(
        '2026-07-28',
        async () =>
          (
            await holder.callTool(
              { name: 'wait_for_events', arguments: { user_token: token, timeout_s: LONGEST_HOLD_S } },
              { timeout: 2 * LONGEST_HOLD_S * 1000 },
            )
          ).structuredContent as Structured,
      ),
      timed('2025 without a session', () => sessionless.call('wait_for_events', { timeout_s: LONGEST_HOLD_S })),
    ]);
    // A failure is reported by the test that awaits it.
    longHolds.catch(() => {});
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
  });
  afterAll(async () => {
    await modernHolder?.close();
    await balanced?.stop();
  });

  it('two SDK clients with sessions and GET streams chat both ways: every message arrives once, in order', async () => {
    const [alice, bob] = await Promise.all([ChatClient.connect(balanced.mcp, 'alice'), ChatClient.connect(balanced.mcp, 'bob')]);
    closers.push(
      () => alice.end(),
      () => bob.end(),
    );
    await alice.call('enter_queue', { interests: ['balancer-sessions'] });
    await bob.call('enter_queue', { interests: ['balancer-sessions'] });
    const [[aliceFound], [bobFound]] = await Promise.all([
      alice.waitFor('chatroom.found', 1, MEET_MS),
      bob.waitFor('chatroom.found', 1, MEET_MS),
    ]);
    const roomId = aliceFound!.room_id;
    expect(bobFound!.room_id).toBe(roomId);
    for (const user of [alice, bob]) {
      tokens.push(user.token!);
      expect(user.stats.freshStreams).toBeGreaterThanOrEqual(1);
    }

    const said = (who: string) => Array.from({ length: 5 }, (_, n) => `${who} ${n + 1}`);
    for (const text of said('alice'))
      expect(await alice.call('send_message', { room_id: roomId, message: text })).toMatchObject({ status: 'sent' });
    for (const text of said('bob'))
      expect(await bob.call('send_message', { room_id: roomId, message: text })).toMatchObject({ status: 'sent' });
    for (const [reader, writer] of [
      [bob, 'alice'],
      [alice, 'bob'],
    ] as const) {
      const received = await reader.waitFor('message.received', 5, MEET_MS);
      expect(received.map((m) => m.message)).toEqual(said(writer));
      expect(ascending(received.map((m) => Number(m.seq)))).toBe(true);
    }
    expect(await alice.call('leave_chat')).toEqual({ status: 'idle' });
    expect(await bob.waitFor('partner.disconnected', 1, MEET_MS)).toEqual([{ room_id: roomId, reason: 'left' }]);
    // Nothing came twice meanwhile.
    expect([alice.received('message.received').length, bob.received('message.received').length]).toEqual([5, 5]);
  });

  it('a legacy HTTP+SSE client chats with a client that keeps no session', async () => {
    const legacy = new V1Client({ name: 'legacy-behind-nginx', version: '1.0.0' });
    const notifications: RecordedNotification[] = [];
    legacy.fallbackNotificationHandler = async (n) =>
      void notifications.push({ method: n.method, params: (n.params ?? {}) as Record<string, unknown> });
    await legacy.connect(new SSEClientTransport(new URL('/sse', balanced.nginx.url)));
    closers.push(() => legacy.close());
    const legacyCall = async (name: string, args: Record<string, unknown>) => {
      const result = (await legacy.callTool({ name, arguments: args })) as CallToolResult;
      if (result.isError) throw new Error(`${name} refused: ${JSON.stringify(result.content)}`);
      return result.structuredContent as Structured;
    };
    const sessionless = new SessionlessClient(balanced.mcp);
    tokens.push(String((await legacyCall('enter_queue', { interests: ['balancer-legacy'] })).user_token));
    await sessionless.call('enter_queue', { interests: ['balancer-legacy'] });
    tokens.push(sessionless.token!);
    const roomId = (await heard(sessionless, 'chatroom.found')).params.room_id;
    await eventually(() => expect(notifications.find((n) => n.method === 'chatroom.found')?.params.room_id).toBe(roomId), MEET_MS);

    for (const text of ['old 1', 'old 2', 'old 3'])
      expect(await legacyCall('send_message', { room_id: roomId, message: text })).toMatchObject({ status: 'sent' });
    const fromLegacy = await readMessages(sessionless, 3);
    expect(fromLegacy.texts).toEqual(['old 1', 'old 2', 'old 3']);
    expect(ascending(fromLegacy.seqs)).toBe(true);
    for (const text of ['new 1', 'new 2', 'new 3'])
      expect(await sessionless.call('send_message', { room_id: roomId, message: text })).toMatchObject({ status: 'sent' });
    const received = () => notifications.filter((n) => n.method === 'message.received').map((n) => n.params.message);
    await eventually(() => expect(received()).toEqual(['new 1', 'new 2', 'new 3']), MEET_MS);

    expect(await sessionless.call('leave_chat')).toEqual({ status: 'idle' });
    await eventually(
      () => expect(notifications.find((n) => n.method === 'partner.disconnected')?.params).toEqual({ room_id: roomId, reason: 'left' }),
      MEET_MS,
    );
    expect(received()).toHaveLength(3);
    expect(sessionless.sessionHeaders.every((header) => header === null)).toBe(true);
  });

  it('a 2026-07-28 client hears updates through subscriptions/listen and reads its events, chatting with a client that opens a session per call', async () => {
    const modern = await modernClient(balanced.mcp);
    closers.push(() => modern.close());
    const entered = await callOrThrow(modern, 'enter_queue', { interests: ['balancer-modern'] });
    const token = entered.user_token as string;
    const uri = entered.events_uri as string;
    tokens.push(token);
    const updates: string[] = [];
    modern.setNotificationHandler('notifications/resources/updated', (notification) => void updates.push(notification.params.uri));
    const subscription = await modern.listen({ resourceSubscriptions: [uri] });
    closers.push(() => subscription.close());

    const perCall = new SessionPerCallClient(balanced.mcp);
    await perCall.call('enter_queue', { interests: ['balancer-modern'] });
    tokens.push(perCall.token!);
    const roomId = (await heard(perCall, 'chatroom.found')).params.room_id;
    /** The events after `cursor`, read as the update says to. */
    const read = async (cursor: string) => {
      const contents = (await modern.readResource({ uri: `${uri}?after=${cursor}` })).contents[0] as { text: string };
      return JSON.parse(contents.text) as { events: ChatEvent[]; cursor: string };
    };
    await eventually(() => expect(updates).toContain(uri), MEET_MS);
    const found = await read('0');
    expect(found.events).toMatchObject([{ method: 'chatroom.found', params: { room_id: roomId } }]);

    const updatesBefore = updates.length;
    await perCall.call('send_message', { room_id: roomId, message: 'hello from a session per call' });
    await eventually(() => expect(updates.length).toBeGreaterThan(updatesBefore), MEET_MS);
    const said = await eventually(async () => {
      const page = await read(found.cursor);
      expect(page.events.map((event) => event.params.message)).toEqual(['hello from a session per call']);
      return page;
    }, MEET_MS);
    expect(await callOrThrow(modern, 'send_message', { user_token: token, room_id: roomId, message: 'hello from 2026' })).toMatchObject({
      status: 'sent',
    });
    expect((await readMessages(perCall, 1)).texts).toEqual(['hello from 2026']);

    expect(await callOrThrow(modern, 'leave_chat', { user_token: token })).toEqual({ status: 'idle' });
    expect((await heard(perCall, 'partner.disconnected')).params).toEqual({ room_id: roomId, reason: 'left' });
    // Its own message and leave are no events of its own: nothing more to read.
    expect((await read(said.cursor)).events).toEqual([]);
    expect(perCall.deleteStatuses.every((status) => status === 200)).toBe(true);
  });

  it('a person on the page chats with an SDK agent', async () => {
    const browser = await launchBrowser();
    closers.push(() => browser.close());
    const page = await (await browser.newContext({ viewport: { width: 640, height: 560 } })).newPage();
    const problems: string[] = [];
    page.on('console', (message) => void (message.type() === 'error' && problems.push(message.text())));
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(balanced.nginx.url.href);
    // What went wrong in the page, if anything, says why a phase did not come.
    const phase = (name: string) =>
      eventually(async () => expect(await page.locator('#app').getAttribute('data-phase'), problems.join('\n')).toBe(name), MEET_MS);
    const lines = (kind: 'me' | 'stranger' | 'system') => page.locator(`#log li.${kind}`).allTextContents();

    await phase('start');
    const agent = await ChatClient.connect(balanced.mcp, 'agent');
    closers.push(() => agent.end());
    await page.locator('#start').click();
    await phase('waiting');
    await agent.call('enter_queue', { i_am: 'agent' });
    tokens.push(agent.token!);
    const [{ room_id: roomId }] = (await agent.waitFor('chatroom.found', 1, MEET_MS)) as [{ room_id: string }];
    await phase('chatting');
    expect(await page.locator('#status').textContent()).toBe('Chatting with an AI agent');
    await agent.call('send_message', { room_id: roomId, message: 'Hello through nginx' });
    await eventually(async () => expect(await lines('stranger')).toEqual(['Hello through nginx']), MEET_MS);
    await page.locator('#message').fill('Hello back, through nginx');
    await page.locator('#message').press('Enter');
    expect((await agent.waitFor('message.received', 1, MEET_MS)).map((m) => m.message)).toEqual(['Hello back, through nginx']);
    await agent.call('leave_chat');
    await phase('ended');
    expect((await lines('system')).at(-1)).toBe('The stranger left the chat.');
    expect(problems).toEqual([]);
  });

  it(`a wait_for_events held ${LONGEST_HOLD_S} s (started before the other tests) answers through nginx, empty, when its time is up, in both eras`, async () => {
    for (const { era, answer, heldMs } of await longHolds) {
      expect(answer, era).toEqual({ events: [], cursor: expect.any(String) });
      expect(heldMs, era).toBeGreaterThanOrEqual(LONGEST_HOLD_S * 1000 - 1_000);
    }
    // Round robin spread the users the tests made over more than one process.
    const owners = tokens.map(processOf);
    expect(owners).not.toContain(undefined);
    expect(new Set(owners).size).toBeGreaterThan(1);
    expect(balanced.nginx.errorLog()).toBe('');
  });
});

describe('behind nginx with --trust-proxy 1, each client address has its own allowance', () => {
  let balanced: Balanced;
  const open: OpenResponse[] = [];
  beforeAll(async () => {
    balanced = await startBalanced(['--max-per-address', '2']);
  });
  afterAll(async () => {
    for (const response of open) response.close();
    await balanced?.stop();
  });

  /** A `tools/call` without a session from `address`; answers its result. */
  const callFrom = async (address: string, name: string, args: Structured = {}) => {
    const response = await fetchFrom(address)(balanced.mcp, {
      method: 'POST',
      headers: jsonHeaders(),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
    });
    return rpcAnswerOf(await response.text())!.result!;
  };
  /** A `wait_for_events` from `address` for the user of `token`, with a progress token: held once its first progress note arrives. */
  const holdFrom = async (address: string, token: string) => {
    const response = await requestFrom(address, balanced.mcp, {
      method: 'POST',
      headers: jsonHeaders(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'wait_for_events', arguments: { user_token: token, timeout_s: 30 }, _meta: { progressToken: 'hold' } },
      }),
    });
    open.push(response);
    return response;
  };
  const held = (response: OpenResponse) => response.until('notifications/progress', 10_000);

  it('the processes that hold the waits see the addresses nginx saw: 2 waits from 127.0.0.2, a 3rd refused, while 127.0.0.3 still holds one', async () => {
    // One user, so every wait below is held by the same process, whichever took it from nginx.
    const entered = await callFrom('127.0.0.2', 'enter_queue');
    const token = (entered.structuredContent as { user_token: string }).user_token;
    expect(await callFrom('127.0.0.2', 'leave_chat', { user_token: token })).toMatchObject({ structuredContent: { status: 'idle' } });

    await Promise.all([held(await holdFrom('127.0.0.2', token)), held(await holdFrom('127.0.0.2', token))]);
    // Were it held, it would answer an empty page after its 5 s.
    const refusal = await callFrom('127.0.0.2', 'wait_for_events', { user_token: token, timeout_s: 5 });
    expect(refusal.isError).toBe(true);
    expect(JSON.stringify(refusal.content)).toMatch(/Too many held wait_for_events calls from your address \(at most 2 at once\)/);
    await held(await holdFrom('127.0.0.3', token));
  });
});
