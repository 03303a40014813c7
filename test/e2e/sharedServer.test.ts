/**
 * One MCP server serves every session (src/mcp/sessionMux.ts). Requests of different
 * sessions that carry the same JSON-RPC id, in flight at the same time, each get their
 * own answer under their own id; a cancelled request, and a session that ends with a
 * request in flight, leave nothing behind in the mux.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { eventually } from '../support/eventually.js';
import { jsonHeaders, type RpcAnswer, rpcAnswerOf } from '../support/jsonRpcWire.js';
import { deleteRawSession, openRawSession, readSse } from '../support/rawSession.js';
import { startTestServer } from '../support/server.js';

let server: RunningChatServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

type Answer = RpcAnswer & { result: { structuredContent: Record<string, unknown> } };

/** Starts a tools/call with JSON-RPC id `id`; the promise settles with its answer. */
function call(sessionId: string, name: string, args: Record<string, unknown>, id: number, signal?: AbortSignal): Promise<Answer> {
  return fetch(server.url, {
    method: 'POST',
    headers: jsonHeaders(sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
    signal,
  }).then(async (response) => {
    const text = await readSse(response, (t) => t.includes('"result"'), 10_000);
    const answer = rpcAnswerOf(text);
    if (!answer?.result) throw new Error(`${name} (id ${id}) got no answer: ${text}`);
    return answer as Answer;
  });
}

const cursorOf = async (sessionId: string, id: number) =>
  (await call(sessionId, 'wait_for_events', { timeout_s: 0 }, id)).result.structuredContent.cursor as string;

const notify = (sessionId: string, method: string, params: Record<string, unknown>) =>
  fetch(server.url, { method: 'POST', headers: jsonHeaders(sessionId), body: JSON.stringify({ jsonrpc: '2.0', method, params }) }).then(
    (r) => r.text(),
  );

describe('one MCP server for every session', () => {
  it('routes answers of two sessions that use the same request id at the same time', async () => {
    const [a, b] = await Promise.all([openRawSession(server.url), openRawSession(server.url)]);
    await call(a, 'enter_queue', {}, 1);
    const { room_id: roomId } = (await call(b, 'enter_queue', {}, 1)).result.structuredContent;
    const [cursorA, cursorB] = await Promise.all([cursorOf(a, 2), cursorOf(b, 2)]);

    // Both hold wait_for_events under id 9; each partner's message wakes the other.
    const waitA = call(a, 'wait_for_events', { after: cursorA, timeout_s: 20 }, 9);
    const waitB = call(b, 'wait_for_events', { after: cursorB, timeout_s: 20 }, 9);
    await eventually(() => expect(server.services.mcp.inFlight).toBe(2));
    await call(a, 'send_message', { room_id: roomId, message: 'from a' }, 10);
    const answerB = await waitB;
    await call(b, 'send_message', { room_id: roomId, message: 'from b' }, 10);
    const answerA = await waitA;

    const messages = (answer: Answer) =>
      (answer.result.structuredContent.events as { method: string; params: { message?: string } }[]).map(
        (e) => `${e.method} ${e.params.message}`,
      );
    expect(answerA.id).toBe(9);
    expect(answerB.id).toBe(9);
    expect(messages(answerA)).toEqual(['message.received from b']);
    expect(messages(answerB)).toEqual(['message.received from a']);
    expect(server.services.mcp.inFlight).toBe(0);
    await Promise.all([deleteRawSession(server.url, a), deleteRawSession(server.url, b)]);
  });

  it('forgets a request the client cancels, and one whose session ends', async () => {
    const a = await openRawSession(server.url);
    await call(a, 'enter_queue', {}, 3);
    const cut = new AbortController();
    const cancelled = call(a, 'wait_for_events', { timeout_s: 20 }, 4, cut.signal).catch(() => 'cut');
    await eventually(() => expect(server.services.mcp.inFlight).toBe(1));
    await notify(a, 'notifications/cancelled', { requestId: 4, reason: 'the test gave up' });
    cut.abort();
    expect(await cancelled).toBe('cut');
    await eventually(() => expect(server.services.mcp.inFlight).toBe(0));

    // A call held when its client ends the session (DELETE) goes with the session.
    const held = call(a, 'wait_for_events', { timeout_s: 20 }, 5).catch(() => 'ended with the session');
    await eventually(() => expect(server.services.mcp.inFlight).toBe(1));
    await deleteRawSession(server.url, a);
    expect(await held).toBe('ended with the session');
    await eventually(() => expect(server.services.mcp.inFlight).toBe(0));
  });
});
