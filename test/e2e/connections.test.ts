import { connect as tcpConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatConfig } from '../../src/config.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { startTestServer } from '../support/server.js';

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
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.closedAt = Date.now();
      this.#wake();
      resolve();
    }));
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

/** Resolves when every connection has closed, or after `ms`, whichever comes first. */
async function allClosed(connections: RawConnection[], ms: number): Promise<void> {
  await Promise.race([Promise.all(connections.map((c) => c.closed)), sleep(ms)]);
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
    await allClosed(stalled, 0);

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
    expect(JSON.parse(body!)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringMatching(/too many open connections/) } });

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
