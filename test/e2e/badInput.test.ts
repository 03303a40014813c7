/**
 * Bad input never hurts: thousands of generated bad requests — tool arguments and raw
 * HTTP bodies and headers — while a pair chats alongside. Every bad request gets an
 * error, the server neither crashes nor hangs, and the pair hears every message in order.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { jsonHeaders } from '../support/jsonRpcWire.js';
import { openRawSession } from '../support/rawSession.js';
import { health, startTestServer } from '../support/server.js';

const RUNS = 10_000;
const MAX_BODY = 16_384;
const PAIR_MESSAGES = 300;

let server: RunningChatServer;

beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: MAX_BODY, maxMessageLength: 200, messagesPerSecond: 10_000, messageBurst: 10_000 });
});
afterAll(async () => {
  await server.close();
});

type BadRequest = {
  kind: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
  session?: 'attacker' | 'alice' | 'none' | 'unknown';
};

const TOOLS = ['enter_queue', 'send_message', 'leave_chat', 'next', 'get_status', 'wait_for_events'];
const notAnObject = fc.oneof(fc.integer(), fc.string(), fc.array(fc.anything(), { maxLength: 3 }), fc.constant(null), fc.boolean());
const extraKey = fc
  .string({ minLength: 1, maxLength: 12 })
  .filter((k) => !['room_id', 'message', 'after', 'timeout_s'].includes(k) && k !== '__proto__');
const controlText = fc
  .integer({ min: 0, max: 31 })
  .filter((c) => c !== 9 && c !== 10 && c !== 13)
  .map((c) => `hi${String.fromCharCode(c)}there`);
const badMessage = fc.oneof(
  fc.constant(''),
  fc.constantFrom(' ', '\n\t '),
  fc.string({ minLength: 201, maxLength: 400 }),
  controlText,
  fc.constant('lone \ud800 surrogate'),
  fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })),
);

/** Tool calls whose arguments no schema accepts, or tools that do not exist. */
const badToolCall = fc.oneof(
  fc.record({ name: fc.constantFrom(...TOOLS), arguments: notAnObject }),
  fc.record({ name: fc.constantFrom(...TOOLS), arguments: fc.dictionary(extraKey, fc.jsonValue(), { minKeys: 1, maxKeys: 3 }) }),
  fc.record({ name: fc.constant('send_message'), arguments: fc.record({ room_id: fc.string({ maxLength: 40 }), message: badMessage }) }),
  fc.record({
    name: fc.constant('send_message'),
    arguments: fc.record({
      room_id: fc.oneof(fc.integer(), fc.constant(''), fc.string({ minLength: 65, maxLength: 80 })),
      message: fc.constant('hi'),
    }),
  }),
  fc.record({
    name: fc.constant('wait_for_events'),
    arguments: fc.oneof(
      fc.record({
        timeout_s: fc.oneof(fc.double({ max: -0.001, noNaN: true }), fc.double({ min: 50.001, max: 1e9, noNaN: true }), fc.string()),
      }),
      fc.record({ after: fc.oneof(fc.integer(), fc.string({ minLength: 33, maxLength: 40 }), fc.stringMatching(/^[a-z]{1,10}$/)) }),
    ),
  }),
  fc.record({ name: fc.string({ maxLength: 30 }).filter((n) => !TOOLS.includes(n)), arguments: fc.constant({}) }),
);

const rpc = (method: string, params?: unknown, id: unknown = 1) =>
  JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) });

const badRequest: fc.Arbitrary<BadRequest> = fc.oneof(
  badToolCall.map((params) => ({ kind: 'tool arguments', body: rpc('tools/call', params), session: 'attacker' as const })),
  // Alice is chatting: her own bad calls must not send anything or break her session.
  badToolCall.map((params) => ({ kind: 'tool arguments (chatting user)', body: rpc('tools/call', params), session: 'alice' as const })),
  fc
    .uint8Array({ minLength: 1, maxLength: 64 })
    .map((bytes) => ({ kind: 'random bytes', body: new Uint8Array([0xff, ...bytes]), session: 'attacker' as const })),
  fc
    .string({ maxLength: 80 })
    .filter((t) => {
      try {
        JSON.parse(t);
        return false;
      } catch {
        return true;
      }
    })
    .map((body) => ({ kind: 'not JSON', body, session: 'attacker' as const })),
  fc
    .oneof(fc.integer(), fc.string(), fc.constant(null), fc.boolean())
    .map((v) => ({ kind: 'JSON, not a message', body: JSON.stringify(v), session: 'attacker' as const })),
  fc
    .array(fc.constantFrom(rpc('tools/list'), rpc('ping')), { minLength: 1, maxLength: 3 })
    .map((items) => ({ kind: 'batch', body: `[${items.join(',')}]`, session: 'attacker' as const })),
  fc
    .stringMatching(/^[a-z/_]{1,20}$/)
    .filter((m) => !['ping', 'tools/list', 'tools/call', 'initialize', 'logging/setLevel', 'completion/complete'].includes(m))
    .map((method) => ({ kind: 'unknown method', body: rpc(method), session: 'attacker' as const })),
  fc
    .record({ jsonrpc: fc.constantFrom('1.0', 2, undefined), id: fc.oneof(fc.constant({}), fc.constant([])), method: fc.constant('ping') })
    .map((m) => ({ kind: 'malformed JSON-RPC', body: JSON.stringify(m), session: 'attacker' as const })),
  fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', '').map((type) => ({
    kind: 'wrong content type',
    headers: { 'content-type': type },
    body: rpc('tools/list'),
    session: 'attacker' as const,
  })),
  fc.constant({
    kind: 'body over the limit',
    body: rpc('tools/call', { name: 'get_status', arguments: { pad: 'x'.repeat(MAX_BODY) } }),
    session: 'attacker' as const,
  }),
  fc.constant({ kind: 'unknown session id', body: rpc('tools/list'), session: 'unknown' as const }),
  // Without a session a call acts for its user_token alone: a made-up one is refused.
  fc.string({ minLength: 1, maxLength: 64 }).map((token) => ({
    kind: 'no session, made-up user_token',
    body: rpc('tools/call', { name: 'get_status', arguments: { user_token: token } }),
    session: 'none' as const,
  })),
  fc
    .stringMatching(/^[0-9a-z.-]{1,12}$/)
    .filter((v) => !['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'].includes(v))
    .map((version) => ({
      kind: 'unsupported protocol version',
      headers: { 'mcp-protocol-version': version },
      body: rpc('tools/list'),
      session: 'attacker' as const,
    })),
  fc
    .constantFrom('text/html', 'application/json', 'text/event-stream', '*/x')
    .map((accept) => ({ kind: 'unacceptable Accept', headers: { accept }, body: rpc('tools/list'), session: 'attacker' as const })),
  fc
    .constantFrom('PUT', 'PATCH')
    .map((method) => ({ kind: 'wrong HTTP method', method, body: rpc('tools/list'), session: 'attacker' as const })),
);

/** Whether the answer is an error: HTTP ≥ 400, a JSON-RPC error, or a tool result with isError. */
async function isError(response: Response): Promise<boolean> {
  if (response.status >= 400) {
    await response.body?.cancel();
    return true;
  }
  const text = await response.text();
  const data = (response.headers.get('content-type') ?? '').includes('text/event-stream')
    ? text
        .split('\n')
        .filter((line) => line.startsWith('data: ') && line.length > 6)
        .map((line) => line.slice(6))
    : [text];
  return data.some((json) => {
    const message = JSON.parse(json) as { error?: unknown; result?: { isError?: boolean } };
    return message.error !== undefined || message.result?.isError === true;
  });
}

describe('bad input never hurts', () => {
  it(`answers ${RUNS.toLocaleString('en')} generated bad requests with errors while a pair chats undisturbed`, async () => {
    const alice = await ChatClient.connect(server.url, 'alice');
    const bob = await ChatClient.connect(server.url, 'bob');
    await alice.call('enter_queue');
    const { room_id: roomId } = await bob.call('enter_queue');
    const attacker = await openRawSession(server.url);

    // The oracle can tell: a good request through the same path is not an error.
    const good = await fetch(server.url, {
      method: 'POST',
      headers: jsonHeaders(attacker),
      body: rpc('tools/call', { name: 'enter_queue', arguments: {} }),
    });
    expect(await isError(good)).toBe(false);

    let sent = 0;
    let chatting = true;
    const chat = (async () => {
      while (chatting && sent < PAIR_MESSAGES) {
        await alice.call('send_message', { room_id: roomId, message: `m${sent + 1}` });
        sent += 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    const counts = new Map<string, number>();
    let errors = 0;
    await fc.assert(
      fc.asyncProperty(badRequest, async (bad) => {
        const sessionId = { attacker, alice: alice.sessionId, none: undefined, unknown: '00000000-0000-4000-8000-000000000000' }[
          bad.session ?? 'attacker'
        ];
        const response = await fetch(server.url, {
          method: bad.method ?? 'POST',
          headers: { ...jsonHeaders(sessionId), ...bad.headers },
          body: bad.body,
          signal: AbortSignal.timeout(10_000),
        });
        counts.set(bad.kind, (counts.get(bad.kind) ?? 0) + 1);
        const failed = await isError(response);
        if (failed) errors += 1;
        return failed;
      }),
      { numRuns: RUNS, seed: 20261125 },
    );
    chatting = false;
    await chat;

    const received = await bob.waitFor('message.received', sent, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    console.log(
      `[bad input] ${RUNS} bad requests, ${errors} answered with an error; by kind: ` +
        [...counts].map(([kind, n]) => `${kind} ${n}`).join(', ') +
        `; meanwhile alice sent ${sent}, bob received ${bob.received('message.received').length}`,
    );
    expect(errors).toBe(RUNS);
    expect(received.map((m) => m.message)).toEqual(Array.from({ length: sent }, (_, i) => `m${i + 1}`));
    expect(received.map((m) => m.seq)).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
    expect(await alice.call('get_status')).toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
    expect((await health(server)).status).toBe('ok');
    await Promise.all([alice.end(), bob.end()]);
  }, 240_000);
});
