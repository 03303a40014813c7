import { type Socket, connect as tcpConnect } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatConfig } from '../../src/config.js';
import { listen, type RunningChatServer } from '../../src/http/listen.js';
import { createChatServer } from '../../src/server.js';
import { ChatClient } from '../support/chatClient.js';
import { jsonHeaders, rpcAnswerOf } from '../support/jsonRpcWire.js';
import { openRawSession } from '../support/rawSession.js';
import { health, startTestServer } from '../support/server.js';

/** Slack on every bound, for a loaded machine: these tests check bounds, never speed. */
const MARGIN_MS = 4_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP connection a test drives byte by byte, recording what arrives and when it closes. */
class RawConnection {
  text = '';
  readonly openedAt = Date.now();
  closedAt: number | undefined;
  readonly closed: Promise<void>;
  #wake = () => {};

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.text += chunk;
      this.#wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedAt = Date.now();
        this.#wake();
        resolve();
      }),
    );
  }

  static open(url: URL): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect(Number(url.port), url.hostname, () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  get lifetimeMs(): number | undefined {
    return this.closedAt === undefined ? undefined : this.closedAt - this.openedAt;
  }

  /** Resolves once what arrived satisfies `done`, or the connection closed, or `ms` passed. */
  async until(done: (text: string) => boolean, ms = 5_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!done(this.text) && this.closedAt === undefined && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.text;
  }
}

function getHealthz(url: URL): string {
  return `GET /healthz HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`;
}

let server: RunningChatServer | undefined;
const clients: ChatClient[] = [];
const connections: RawConnection[] = [];

async function start(config: Partial<ChatConfig>): Promise<RunningChatServer> {
  server = await startTestServer(config);
  return server;
}

async function raw(url: URL): Promise<RawConnection> {
  const connection = await RawConnection.open(url);
  connections.push(connection);
  return connection;
}

async function client(url: URL, name: string): Promise<ChatClient> {
  const chat = await ChatClient.connect(url, name);
  clients.push(chat);
  return chat;
}

afterEach(async () => {
  for (const connection of connections.splice(0)) connection.socket.destroy();
  await Promise.all(clients.splice(0).map((chat) => chat.end().catch(() => {})));
  await server?.close();
  server = undefined;
});

describe('requests that never finish arriving', () => {
  const HEADERS_TIMEOUT_MS = 1_000;
  const REQUEST_TIMEOUT_MS = 6_000;

  it('closes each half-sent request within its timeout while a pair chats on and loses no message', async () => {
    const { url } = await start({ headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, messagesPerSecond: 100 });
    const alice = await client(url, 'alice');
    const bob = await client(url, 'bob');
    await alice.call('enter_queue');
    const { room_id: roomId } = await bob.call('enter_queue');
    await alice.waitFor('chatroom.found');

    const halfLines = await Promise.all(Array.from({ length: 100 }, () => raw(url)));
    for (const connection of halfLines) connection.socket.write('POST /mc');
    const headersOnly = await Promise.all(Array.from({ length: 100 }, () => raw(url)));
    for (const connection of headersOnly)
      connection.socket.write(`POST /mcp HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`);

    // The pair chats until the last stalled request is gone: longer than the request
    // timeout, so their streams would be cut too if that timeout covered responses.
    let sent = 0;
    const stalled = [...halfLines, ...headersOnly];
    const chatUntil = Date.now() + REQUEST_TIMEOUT_MS + MARGIN_MS;
    while (stalled.some((c) => c.closedAt === undefined) && Date.now() < chatUntil) {
      sent += 1;
      await alice.call('send_message', { room_id: roomId, message: `a${sent}` });
      await bob.call('send_message', { room_id: roomId, message: `b${sent}` });
      await sleep(100);
    }

    for (const connection of halfLines) expect(connection.lifetimeMs).toBeLessThan(HEADERS_TIMEOUT_MS + MARGIN_MS);
    for (const connection of headersOnly) expect(connection.lifetimeMs).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    expect(new Set(stalled.map((c) => c.text.split('\r\n')[0]))).toEqual(new Set(['HTTP/1.1 408 Request Timeout']));

    const expected = (who: string) => Array.from({ length: sent }, (_, i) => `${who}${i + 1}`);
    expect((await bob.waitFor('message.received', sent)).map((m) => m.message)).toEqual(expected('a'));
    expect((await alice.waitFor('message.received', sent)).map((m) => m.message)).toEqual(expected('b'));
    // Their event streams stayed open throughout: never cut, so never resumed.
    expect([alice.stats.resumes, bob.stats.resumes]).toEqual([0, 0]);
  });
});

describe('--max-connections', () => {
  it('answers a connection over the cap with 503 and Retry-After, closes it, and serves again once one closes', async () => {
    const { url } = await start({ maxConnections: 5 });
    const served = await Promise.all(Array.from({ length: 5 }, () => raw(url)));
    for (const connection of served) {
      connection.socket.write(getHealthz(url));
      expect(await connection.until((t) => t.includes('"status":"ok"'))).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    }

    const over = await raw(url);
    over.socket.write(getHealthz(url));
    await over.until(() => false);
    expect(over.closedAt).toBeDefined();
    const [head, body] = over.text.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(head).toMatch(/\r\nRetry-After: \d+\r\n/i);
    expect(JSON.parse(body!)).toMatchObject({
      jsonrpc: '2.0',
      error: { code: -32000, message: expect.stringMatching(/too many open connections/) },
    });

    served[0]!.socket.destroy();
    let answer = '';
    for (let attempt = 0; attempt < 50 && !answer.startsWith('HTTP/1.1 200'); attempt += 1) {
      if (attempt > 0) await sleep(100);
      const next = await raw(url);
      next.socket.write(getHealthz(url));
      answer = await next.until((t) => t.includes('\r\n\r\n'));
    }
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});

/** Opens a session whose event stream is read only until it carries the chat, then never again. */
type StalledReader = (url: URL) => Promise<RawConnection>;

/** Streamable HTTP: the session's standalone GET stream, opened by hand. */
const streamableReader: StalledReader = async (url) => {
  const sessionId = await openRawSession(url);
  const entered = await fetch(url, {
    method: 'POST',
    headers: jsonHeaders(sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'enter_queue', arguments: {} } }),
  });
  expect(rpcAnswerOf(await entered.text())?.result?.structuredContent).toMatchObject({ status: 'waiting' });
  const stream = await raw(url);
  const headers = Object.entries({ ...jsonHeaders(sessionId), accept: 'text/event-stream' }).map(
    ([name, value]) => `${name}: ${value}\r\n`,
  );
  stream.socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n${headers.join('')}\r\n`);
  expect(await stream.until((t) => t.includes('\r\n\r\n'))).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  return stream;
};

/** Legacy HTTP+SSE: GET /sse, with every answer coming back on that stream. */
const legacyReader: StalledReader = async (url) => {
  const stream = await raw(url);
  stream.socket.write(`GET /sse HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
  const endpoint = /data: (\/messages\?sessionId=[\w.-]+)/.exec(await stream.until((t) => /sessionId=[\w-]+\.[0-9a-f-]{36}/.test(t)))?.[1];
  const post = async (message: Record<string, unknown>) => {
    const response = await fetch(new URL(endpoint!, url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(message),
    });
    await response.text();
  };
  await post({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } },
  });
  await stream.until((t) => t.includes('"id":0'));
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  await post({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'enter_queue', arguments: {} } });
  expect(await stream.until((t) => t.includes('"id":1'))).toContain('waiting');
  return stream;
};

describe('a client that stops reading its event stream', () => {
  const STALLED_MS = 1_000;
  const MESSAGE = 'x'.repeat(100_000);

  it.each([
    ['Streamable HTTP', streamableReader],
    ['legacy HTTP+SSE', legacyReader],
  ])('%s: its connection is closed within the bound; the server and its partner carry on', async (_transport, openReader) => {
    const { url } = await start(STALLING);
    await closedWhenStalled(url, openReader);
  });

  it('the sweep goes on after the listening socket failed twice (EMFILE on accept), which is logged, and the server serves on', async () => {
    const lines: string[] = [];
    server = await listen(
      await createChatServer({
        config: { host: '127.0.0.1', port: 0, ...STALLING },
        log: pino({ level: 'error' }, { write: (line: string) => void lines.push(line) }),
      }),
    );
    for (let n = 0; n < 2; n += 1)
      server.httpServer.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' }));
    expect(lines.filter((line) => line.includes('EMFILE'))).toHaveLength(2);
    await closedWhenStalled(server.url, streamableReader);
  });

  const STALLING = { stalledStreamMs: STALLED_MS, maxMessageLength: MESSAGE.length, messagesPerSecond: 1_000, messageBurst: 1_000 };

  /** A reader stops reading while its partner sends it 10 MB: its connection is closed within the bound, the rest goes on. */
  async function closedWhenStalled(url: URL, openReader: StalledReader): Promise<void> {
    const reader = await openReader(url);
    const partner = await client(url, 'partner');
    const { room_id: roomId } = await partner.call('enter_queue');
    expect(await reader.until((t) => t.includes(String(roomId)))).toContain('chatroom.found');
    reader.socket.pause();

    // 10 MB for the reader, far more than the socket buffers between the two can hold.
    const answers: unknown[] = [];
    for (let n = 0; n < 100; n += 1) {
      answers.push((await partner.call('send_message', { room_id: roomId, message: MESSAGE })).status);
      await sleep(10);
    }
    // A paused socket notices no close: the reader looks once the bound has passed. Had
    // the server kept the connection, the reader would now take every byte and stay open.
    await sleep(STALLED_MS + MARGIN_MS);
    reader.socket.resume();
    await reader.until(() => false, MARGIN_MS);

    expect(reader.closedAt).toBeDefined();
    expect(reader.text.length).toBeLessThan(100 * MESSAGE.length);
    expect(new Set(answers)).toEqual(new Set(['sent']));
    expect((await partner.call('get_status')).state).toBe('chatting');
    expect((await health(server!)).status).toBe('ok');
  }
});
