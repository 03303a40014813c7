/**
 * Anonymous strangers cannot break it (README "Running it on the open internet"): the
 * real server process, attacked as one laptop would — listens naming made-up or too many
 * URIs, one address holding every session, stream, held wait and listen it can get, a
 * spoofed X-Forwarded-For, more users than the server takes, event logs filled past
 * their budget, file descriptors run out — while other clients chat on unharmed. And no
 * credential in its whole log.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient } from '../support/chatClient.js';
import { eventually, sleep } from '../support/eventually.js';
import { callOrThrow, fetchFrom, listenFrom, type OpenResponse, requestFrom, type Structured } from '../support/fromAddress.js';
import { jsonHeaders } from '../support/jsonRpcWire.js';
import { type ServerProcess, startServerProcess } from '../support/processes.js';

const servers: ServerProcess[] = [];
const closers: (() => unknown)[] = [];
afterEach(async () => {
  await Promise.all(
    closers
      .splice(0)
      .reverse()
      .map(async (close) => {
        try {
          await close();
        } catch {
          /* gone already */
        }
      }),
  );
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function start(args: string[]): Promise<{ server: ServerProcess; mcp: URL }> {
  const server = await startServerProcess({ args: ['--host', '127.0.0.1', ...args] });
  servers.push(server);
  return { server, mcp: new URL('/mcp', server.url) };
}

/** A v2 SDK client pinned to 2026-07-28, its connections leaving from `from`, sending `headers` on every request. */
async function modernClient(mcp: URL, from = '127.0.0.1', headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'stranger', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(mcp, { fetch: fetchFrom(from), requestInit: { headers } }));
  closers.push(() => client.close());
  return client;
}

const call = callOrThrow;
async function refusal(client: Client, name: string, args: Structured = {}): Promise<string> {
  const result = await client.callTool({ name, arguments: args });
  if (!result.isError) throw new Error(`${name} answered ${JSON.stringify(result.structuredContent)}`);
  return (result.content as { text: string }[]).map((part) => part.text).join('');
}

/** The JSON-RPC error in a response body. */
const errorOf = (text: string) => JSON.parse(text) as { id: unknown; error: { code: number; message: string } };

async function metric(server: ServerProcess, line: string): Promise<number> {
  const text = await (await fetch(new URL('/metrics', server.url))).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? 0 : Number(found.slice(line.length + 1));
}

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

function keep(response: OpenResponse): OpenResponse {
  closers.push(() => response.close());
  return response;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** The time of each of `count` messages a pair sends in turn, send_message call to answer, in ms. */
async function sendTimes(sender: Client, token: string, roomId: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await call(sender, 'send_message', { user_token: token, room_id: roomId, message: `m${i}` });
    times.push(performance.now() - started);
  }
  return times;
}

describe('subscriptions/listen', () => {
  it('refuses a listen naming too many URIs, a URI that is no events URI, or a user that is not there — naming it, with the request id — and serves a good one', async () => {
    const { server, mcp } = await start(['--max-listen-uris', '3']);
    const agent = await modernClient(mcp);
    const entered = await call(agent, 'enter_queue');
    const uri = entered.events_uri as string;

    const tooMany = keep(await listenFrom('127.0.0.1', mcp, 'l-1', [uri, uri, uri, uri]));
    expect(tooMany.status).toBe(400);
    const many = errorOf(await tooMany.until('}'));
    expect(many).toMatchObject({ id: 'l-1', error: { code: -32602 } });
    expect(many.error.message).toMatch(/names 4 resource URIs; at most 3/);

    for (const [id, bad] of [
      ['l-2', 'chat://users/nobody/events?after=3'],
      ['l-3', 'https://example.com/'],
      ['l-4', 'chat://users/x.y/events/more'],
    ] as const) {
      const refused = keep(await listenFrom('127.0.0.1', mcp, id, [uri, bad]));
      expect(refused.status).toBe(400);
      const answer = errorOf(await refused.until('}'));
      expect(answer).toMatchObject({ id, error: { code: -32602 } });
      expect(answer.error.message).toContain(JSON.stringify(bad));
    }
    const madeUp = uri.replace(/\.[^/]+\/events$/, '.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/events');
    const ghost = keep(await listenFrom('127.0.0.1', mcp, 'l-5', [madeUp]));
    expect(ghost.status).toBe(400);
    expect(errorOf(await ghost.until('}')).error.message).toMatch(
      new RegExp(`${JSON.stringify(madeUp).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} names no user`),
    );
    expect(await metric(server, 'mcp_chat_refusals_total{reason="bad_listen"}')).toBe(5);

    // A good listen hears its user's news.
    const good = keep(await listenFrom('127.0.0.1', mcp, 'l-6', [uri]));
    expect(good.status).toBe(200);
    await good.until('notifications/subscriptions/acknowledged');
    const peer = await modernClient(mcp);
    await call(peer, 'enter_queue');
    await good.until(`"uri":${JSON.stringify(uri)}`);
    expect(await metric(server, 'mcp_chat_listens')).toBe(1);
  });

  it('1,000 listens of the largest size from one address hold RSS within 64 MB, and a chatting pair keeps its pace', async () => {
    const { server, mcp } = await start(['--max-per-address', '1000', '--messages-per-second', '10000', '--message-burst', '100000']);
    const a = await modernClient(mcp);
    const b = await modernClient(mcp);
    const tokenA = (await call(a, 'enter_queue')).user_token as string;
    const matched = await call(b, 'enter_queue');
    expect(matched.status).toBe('matched');
    const roomId = matched.room_id as string;
    // The attacker's own eight users, whose events its listens name.
    const attacker = await modernClient(mcp, '127.0.0.5');
    const uris: string[] = [];
    for (let i = 0; i < 8; i++) uris.push((await call(attacker, 'enter_queue')).events_uri as string);

    await sendTimes(a, tokenA, roomId, 50); // warm-up
    const baseline = median(await sendTimes(a, tokenA, roomId, 200));
    const rssBefore = rssOf(server.serverPid);

    // 1,000 listens, never read, from one address.
    const listens: OpenResponse[] = [];
    for (let batch = 0; batch < 10; batch++)
      listens.push(
        ...(await Promise.all(Array.from({ length: 100 }, (_, i) => listenFrom('127.0.0.5', mcp, `x${batch * 100 + i}`, uris)))),
      );
    for (const listen of listens) keep(listen);
    expect(listens.filter((l) => l.status === 200)).toHaveLength(1000);
    await eventually(async () => expect(await metric(server, 'mcp_chat_listens')).toBe(1000));

    const attacked = median(await sendTimes(a, tokenA, roomId, 200));
    const rssAfter = rssOf(server.serverPid);
    expect(rssAfter - rssBefore, `RSS grew by ${((rssAfter - rssBefore) / 1048576).toFixed(1)} MB`).toBeLessThan(64 * 1024 * 1024);
    expect(attacked, `send_message p50 ${attacked.toFixed(2)} ms against ${baseline.toFixed(2)} ms idle`).toBeLessThanOrEqual(
      2 * baseline + 2,
    );
    // The 1,001st listen from that address is refused; the pair's listens are not.
    const over = keep(await listenFrom('127.0.0.5', mcp, 'over', uris));
    expect(over.status).toBe(429);
  });
});

describe('per client address', () => {
  it('300 sessions from 127.0.0.1 under --max-sessions 300: it gets its 100, and 127.0.0.2 still initializes and enters the queue', async () => {
    const { server, mcp } = await start(['--max-sessions', '300']);
    const statuses: number[] = [];
    const refusals: { status: number; retryAfter: string | undefined; id: unknown }[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          requestFrom('127.0.0.1', mcp, {
            method: 'POST',
            headers: jsonHeaders(),
            body: JSON.stringify({
              jsonrpc: '2.0',
              id: batch * 50 + i,
              method: 'initialize',
              params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'hog', version: '1' } },
            }),
          }),
        ),
      );
      for (const answer of answers) {
        statuses.push(answer.status);
        if (answer.status === 429)
          refusals.push({
            status: 429,
            retryAfter: answer.headers['retry-after'] as string | undefined,
            id: errorOf(await answer.until('}')).id,
          });
        else await answer.until('"result"');
        answer.close();
      }
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(100);
    expect(refusals).toHaveLength(200);
    expect(refusals.every((r) => r.retryAfter === '60' && typeof r.id === 'number')).toBe(true);
    expect(await metric(server, 'mcp_chat_refusals_total{reason="address_sessions"}')).toBe(200);

    // Another address is served as if nothing happened: a 2025 session and a chat.
    const client = new V1Client({ name: 'neighbour', version: '1' });
    const { StreamableHTTPClientTransport: V1Transport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    await client.connect(new V1Transport(mcp, { fetch: fetchFrom('127.0.0.2') }));
    closers.push(() => client.close());
    const entered = (await client.callTool({ name: 'enter_queue', arguments: {} })) as { structuredContent: Structured };
    expect(entered.structuredContent).toMatchObject({ status: 'waiting', position: 1 });
  });

  it('counts open streams, held waits and listens per address: one more is refused, what it holds works on, others are untouched', async () => {
    const { server, mcp } = await start(['--max-per-address', '3']);
    // Streams: four sessions (two from each of two other addresses), their GET streams all from 127.0.0.1.
    const sessionIds: string[] = [];
    for (const from of ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']) {
      const init = keep(
        await requestFrom(from, mcp, {
          method: 'POST',
          headers: jsonHeaders(),
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 's', version: '1' } },
          }),
        }),
      );
      await init.until('"result"');
      sessionIds.push(init.headers['mcp-session-id'] as string);
    }
    const streams = [];
    for (const id of sessionIds.slice(0, 3))
      streams.push(keep(await requestFrom('127.0.0.1', mcp, { headers: { ...jsonHeaders(id), accept: 'text/event-stream' } })));
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200]);
    const fourth = keep(await requestFrom('127.0.0.1', mcp, { headers: { ...jsonHeaders(sessionIds[3]), accept: 'text/event-stream' } }));
    expect(fourth.status).toBe(429);
    expect(fourth.headers['retry-after']).toBe('60');
    expect(errorOf(await fourth.until('}')).error.message).toMatch(/Too many open streams from your address \(at most 3/);
    // A client that lost its stream opens it again: that replaces it, it takes no second one.
    const again = keep(await requestFrom('127.0.0.1', mcp, { headers: { ...jsonHeaders(sessionIds[0]), accept: 'text/event-stream' } }));
    expect(again.status).toBe(200);
    // One closes: the fourth may open now.
    streams[1]!.close();
    await eventually(async () =>
      expect(
        (await requestFrom('127.0.0.1', mcp, { headers: { ...jsonHeaders(sessionIds[3]), accept: 'text/event-stream' } }).then(keep))
          .status,
      ).toBe(200),
    );

    // Held waits: three users of 127.0.0.4 each hold a wait; a fourth is a tool refusal.
    const waiter = await modernClient(mcp, '127.0.0.4');
    const tokens: string[] = [];
    for (let i = 0; i < 4; i++) tokens.push((await call(waiter, 'enter_queue', { i_am: 'agent', meet: 'humans' })).user_token as string);
    const held = tokens
      .slice(0, 3)
      .map((token) => waiter.callTool({ name: 'wait_for_events', arguments: { user_token: token, timeout_s: 3 } }));
    await sleep(300);
    expect(await refusal(waiter, 'wait_for_events', { user_token: tokens[3], timeout_s: 3 })).toMatch(
      /Too many held wait_for_events calls from your address \(at most 3/,
    );
    // Another address holds a wait meanwhile; and the held ones end as they should.
    const neighbour = await modernClient(mcp, '127.0.0.6');
    const other = (await call(neighbour, 'enter_queue', { i_am: 'agent', meet: 'humans' })).user_token as string;
    const theirs = neighbour.callTool({ name: 'wait_for_events', arguments: { user_token: other, timeout_s: 1 } });
    expect(((await theirs).structuredContent as Structured).events).toEqual([]);
    for (const answer of await Promise.all(held)) expect(answer.isError).toBeFalsy();
    expect(await metric(server, 'mcp_chat_refusals_total{reason="address_waits"}')).toBe(1);
    // Released: the fourth may hold now (it times out with nothing).
    expect(
      (
        (await waiter.callTool({ name: 'wait_for_events', arguments: { user_token: tokens[3], timeout_s: 1 } }))
          .structuredContent as Structured
      ).events,
    ).toEqual([]);

    // Listens: three from 127.0.0.7, the fourth refused 429 with its id; other addresses listen on.
    const uri = (await call(waiter, 'get_status', { user_token: tokens[0] })).events_uri as string;
    const listens = [];
    for (let i = 0; i < 3; i++) listens.push(keep(await listenFrom('127.0.0.7', mcp, i, [uri])));
    expect(listens.map((l) => l.status)).toEqual([200, 200, 200]);
    const over = keep(await listenFrom('127.0.0.7', mcp, 'fourth', [uri]));
    expect(over.status).toBe(429);
    expect(errorOf(await over.until('}'))).toMatchObject({
      id: 'fourth',
      error: { message: expect.stringMatching(/subscriptions\/listen streams from your address/) },
    });
    expect(keep(await listenFrom('127.0.0.8', mcp, 'elsewhere', [uri])).status).toBe(200);
    listens[0]!.close();
    await eventually(async () => expect(keep(await listenFrom('127.0.0.7', mcp, 'later', [uri])).status).toBe(200));

    // Legacy SSE sessions count as a session and a stream of their address.
    const sse = [];
    for (let i = 0; i < 3; i++)
      sse.push(keep(await requestFrom('127.0.0.9', new URL('/sse', mcp), { headers: { accept: 'text/event-stream' } })));
    expect(sse.map((s) => s.status)).toEqual([200, 200, 200]);
    expect(keep(await requestFrom('127.0.0.9', new URL('/sse', mcp), { headers: { accept: 'text/event-stream' } })).status).toBe(429);
  });
});

describe('in total', () => {
  it('--max-users: the next newcomer is told the server is full, and the users there chat on', async () => {
    const { server, mcp } = await start(['--max-users', '3']);
    const clients = await Promise.all([0, 1, 2, 3].map(() => modernClient(mcp)));
    const a = await call(clients[0]!, 'enter_queue');
    const b = await call(clients[1]!, 'enter_queue');
    await call(clients[2]!, 'enter_queue');
    expect(await refusal(clients[3]!, 'enter_queue')).toMatch(/The server is full \(3 users chatting or waiting\); try again in a minute/);
    expect(await refusal(clients[3]!, 'next')).toMatch(/server is full/);
    expect(b.status).toBe('matched');
    expect(await call(clients[0]!, 'send_message', { user_token: a.user_token, room_id: b.room_id, message: 'still here' })).toMatchObject({
      status: 'sent',
    });
    expect(await metric(server, 'mcp_chat_refusals_total{reason="users_full"}')).toBe(2);
  });

  it('--event-log-budget-bytes: past it the largest log sheds its oldest events, and its reader is told exactly how many', async () => {
    const { server, mcp } = await start([
      '--event-log-budget-bytes',
      '65536',
      '--messages-per-second',
      '10000',
      '--message-burst',
      '10000',
    ]);
    const [quiet, talker, small1, small2] = await Promise.all([0, 1, 2, 3].map(() => modernClient(mcp)));
    const q = await call(quiet!, 'enter_queue');
    const t = await call(talker!, 'enter_queue');
    const s1 = await call(small1!, 'enter_queue');
    const s2 = await call(small2!, 'enter_queue');
    await call(small2!, 'send_message', { user_token: s2.user_token, room_id: s2.room_id, message: 'a small log' });
    const text = 'x'.repeat(3000);
    for (let i = 0; i < 40; i++)
      await call(talker!, 'send_message', { user_token: t.user_token, room_id: t.room_id, message: `${i} ${text}` });

    const page = await call(quiet!, 'wait_for_events', { user_token: q.user_token, after: '0', timeout_s: 1 });
    const events = page.events as { method: string; params: { count?: number; message?: string } }[];
    expect(events[0]!.method).toBe('events.missed');
    const missed = events[0]!.params.count!;
    const kept = events.slice(1);
    expect(missed).toBeGreaterThan(0);
    // Nothing is silently lost: what was shed and what is left are the 41 events (chatroom.found and 40 messages).
    expect(missed + kept.length).toBe(41);
    expect(kept.map((e) => Number(e.params.message!.split(' ')[0]))).toEqual(
      Array.from({ length: kept.length }, (_, i) => 40 - kept.length + i),
    );
    expect(await metric(server, 'mcp_chat_events_shed_total')).toBe(missed);
    expect(await metric(server, 'mcp_chat_event_log_bytes')).toBeLessThanOrEqual(65536);
    // The small log lost nothing.
    const small = await call(small1!, 'wait_for_events', { user_token: s1.user_token, after: '0', timeout_s: 1 });
    expect((small.events as { method: string }[]).map((e) => e.method)).toEqual(['chatroom.found', 'message.received']);
  });
});

describe('behind proxies', () => {
  it('--trust-proxy 1: the client is the entry the proxy appended; what a client wrote itself never counts', async () => {
    const { server, mcp } = await start(['--trust-proxy', '1', '--new-users-per-minute', '2']);
    // Through one appending proxy, a client at 10.0.0.7 forging its own entries each time.
    const forged = ['1.1.1.1', '2.2.2.2, 3.3.3.3', 'garbage'];
    const refused: boolean[] = [];
    for (const own of forged)
      refused.push(
        (
          await (
            await modernClient(mcp, '127.0.0.1', { 'x-forwarded-for': `${own}, 10.0.0.7` })
          ).callTool({ name: 'enter_queue', arguments: {} })
        ).isError === true,
      );
    expect(refused).toEqual([false, false, true]);
    // Another real client behind the proxy is its own address.
    expect(
      (
        await (
          await modernClient(mcp, '127.0.0.1', { 'x-forwarded-for': '1.1.1.1, 10.0.0.8' })
        ).callTool({ name: 'enter_queue', arguments: {} })
      ).isError,
    ).toBeFalsy();
    expect(await metric(server, 'mcp_chat_refusals_total{reason="too_many_users"}')).toBe(1);
  });

  it('--trust-proxy with CIDRs: hops inside them are skipped, and the legacy /sse route reads the address the same way', async () => {
    const { mcp } = await start(['--trust-proxy', '127.0.0.0/8,10.0.0.0/8', '--max-per-address', '1']);
    const sse = (xff: string) =>
      requestFrom('127.0.0.1', new URL('/sse', mcp), { headers: { accept: 'text/event-stream', 'x-forwarded-for': xff } }).then(keep);
    // Two trusted hops (10.0.0.3, then the peer 127.0.0.1): the client is 203.0.113.9.
    expect((await sse('203.0.113.9, 10.0.0.3')).status).toBe(200);
    expect((await sse('198.51.100.1, 203.0.113.9, 10.0.0.3')).status).toBe(429);
    expect((await sse('203.0.113.10, 10.0.0.4')).status).toBe(200);
  });
});

describe('no credential in a log', () => {
  it('a whole chat over every transport at debug level: the log holds no session id and no user_token', async () => {
    const { server, mcp } = await start(['--log-level', 'debug']);
    const a = await ChatClient.connect(mcp);
    const b = await ChatClient.connect(mcp);
    closers.push(
      () => a.end(),
      () => b.end(),
    );
    await a.call('enter_queue');
    const { room_id: roomId } = await b.call('enter_queue');
    await b.call('send_message', { room_id: roomId, message: 'hello' });
    await a.waitFor('message.received');
    await a.call('leave_chat');
    const legacy = new V1Client({ name: 'legacy', version: '1' });
    const legacyTransport = new SSEClientTransport(new URL('/sse', mcp));
    await legacy.connect(legacyTransport);
    const legacyToken = ((await legacy.callTool({ name: 'enter_queue', arguments: {} })) as { structuredContent: Structured })
      .structuredContent.user_token as string;
    const modern = await modernClient(mcp);
    const modernToken = (await call(modern, 'enter_queue')).user_token as string;
    // The legacy session id is in the endpoint URL the server sent (POST /messages?sessionId=…).
    const legacySession = (legacyTransport as unknown as { _endpoint: URL })._endpoint.searchParams.get('sessionId')!;
    const sessionIds = [a.sessionId, b.sessionId, legacySession];
    await legacy.close();
    await a.end();
    await b.end();
    await sleep(200);
    const { code } = await server.stop();
    servers.splice(servers.indexOf(server), 1);
    expect(code).toBe(0);
    const log = server.output();
    expect(log).toMatch(/session opened/);
    expect(log).toMatch(/session ended/);
    for (const secret of [...sessionIds, a.token!, b.token!, legacyToken, modernToken]) {
      const tail = secret.slice(secret.indexOf('.') + 1);
      expect(log, `the log holds ${secret}`).not.toContain(tail);
      // Not even most of it.
      expect(log).not.toContain(tail.slice(0, 12));
    }
  });
});

describe('errors never stop the server', () => {
  // libuv meets EMFILE on accept by closing a reserved descriptor and dropping the
  // connections waiting (it reports the error only when that fails): the process must
  // come out of it serving (the reported error itself: test/e2e/connections.test.ts).
  it('runs out of file descriptors twice under a flood of connections, and serves and chats on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-chat-emfile-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    // A node that starts with few file descriptors, as a crowded host would give it.
    const wrapper = join(dir, 'node');
    writeFileSync(wrapper, `#!/bin/sh\nulimit -n 256\nexec ${JSON.stringify(process.execPath)} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const server = await startServerProcess({ node: wrapper, args: ['--host', '127.0.0.1', '--log-level', 'error'] });
    servers.push(server);
    const flood = async () => {
      const sockets = await Promise.all(
        Array.from(
          { length: 400 },
          () =>
            new Promise<Socket>((resolve) => {
              const socket = new Socket();
              socket.on('error', () => {});
              socket.connect(Number(server.url.port), '127.0.0.1', () => resolve(socket));
              socket.setTimeout(2000, () => resolve(socket));
            }),
        ),
      );
      await sleep(500);
      for (const socket of sockets) socket.destroy();
      await sleep(300);
    };
    await flood();
    await flood();
    expect(server.child.exitCode).toBeNull();
    const health = await fetch(new URL('/healthz', server.url));
    expect(health.status).toBe(200);
    // And it still chats.
    const agent = await modernClient(new URL('/mcp', server.url));
    expect(await call(agent, 'enter_queue')).toMatchObject({ status: 'waiting' });
  });
});
