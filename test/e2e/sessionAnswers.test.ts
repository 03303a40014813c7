/**
 * How a POST in a session is answered on the wire (src/session/streamableTransport.ts):
 * a call whose answer is ready at once comes as one SSE body of known length; a call
 * that waits streams its events as they come, progress before the answer; and either
 * can be resumed from its priming event's id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import type { StreamableSession } from '../../src/session/streamableSession.js';
import { eventually } from '../support/eventually.js';
import { jsonHeaders, parseSseBody, rpcAnswerOf } from '../support/jsonRpcWire.js';
import { deleteRawSession, openRawSession, rawRequest } from '../support/rawSession.js';
import { startTestServer } from '../support/server.js';

let server: RunningChatServer;
let url: URL;

beforeAll(async () => {
  server = await startTestServer();
  url = new URL('/mcp', server.url);
});

afterAll(() => server.close());

const toolCall = (id: number, name: string, args: Record<string, unknown>, meta?: Record<string, unknown>) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta && { _meta: meta }) } });

/** A raw session whose user waits in the queue and has read what it had: a wait after `cursor` holds. */
async function waitingUserInSession(): Promise<{ sessionId: string; token: string; cursor: string }> {
  const sessionId = await openRawSession(url);
  const entered = await rawRequest(url, { method: 'POST', headers: jsonHeaders(sessionId), body: toolCall(1, 'enter_queue', {}) });
  const token = rpcAnswerOf(entered.text, 1)?.result?.structuredContent?.user_token as string;
  const first = await rawRequest(url, {
    method: 'POST',
    headers: jsonHeaders(sessionId),
    body: toolCall(2, 'wait_for_events', { user_token: token, timeout_s: 0 }),
  });
  return { sessionId, token, cursor: rpcAnswerOf(first.text, 2)?.result?.structuredContent?.cursor as string };
}

const eventIds = (text: string) => [...text.matchAll(/^id: (.+)$/gm)].map((match) => match[1]!);

describe('a call in a session', () => {
  it('ready at once is answered with one SSE body of known length, which a resume from its priming event replays', async () => {
    const sessionId = await openRawSession(url);
    const answered = await rawRequest(url, { method: 'POST', headers: jsonHeaders(sessionId), body: toolCall(1, 'enter_queue', {}) });
    expect(answered.status).toBe(200);
    expect(answered.headers['content-type']).toBe('text/event-stream');
    expect(answered.headers['transfer-encoding']).toBeUndefined();
    expect(Number(answered.headers['content-length'])).toBe(Buffer.byteLength(answered.text));
    // A client without Origin is told, once, that answers depend on it (for caches).
    expect(answered.headers.vary).toBe('Origin');
    // The priming event (an id and empty data), then the answer with an id of its own.
    const [priming, answerId, ...more] = eventIds(answered.text);
    expect(more).toEqual([]);
    expect(answered.text.startsWith(`id: ${priming}\ndata: \n\n`)).toBe(true);
    const answer = rpcAnswerOf(answered.text, 1);
    expect(answer?.result?.structuredContent?.user_token).toEqual(expect.any(String));

    const resumed = await rawRequest(url, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'last-event-id': priming! },
    });
    expect(resumed.status).toBe(200);
    expect(resumed.headers.vary).toBe('Origin');
    expect(eventIds(resumed.text)).toEqual([answerId]);
    expect(rpcAnswerOf(resumed.text, 1)).toEqual(answer);
    await deleteRawSession(url, sessionId);
  });

  it('that waits streams its progress as it goes, then its answer', async () => {
    const { sessionId, token, cursor } = await waitingUserInSession();

    const started = Date.now();
    const response = await fetch(url, {
      method: 'POST',
      headers: jsonHeaders(sessionId),
      body: toolCall(3, 'wait_for_events', { user_token: token, after: cursor, timeout_s: 1 }, { progressToken: 'p' }),
    });
    expect(response.headers.get('content-length')).toBeNull();
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // What came before the answer: the priming event and a progress note, well before the wait ends.
    while (!text.includes('notifications/progress')) text += decoder.decode((await reader.read()).value, { stream: true });
    expect(rpcAnswerOf(text, 3)).toBeUndefined();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const answerAfter = Date.now() - started;
    expect(rpcAnswerOf(text, 3)?.result?.structuredContent?.events).toEqual([]);
    expect(answerAfter).toBeGreaterThanOrEqual(900);
    const messages = parseSseBody(text.slice(text.indexOf('event: message'))).map((data) => JSON.parse(data) as { method?: string });
    expect(messages[0]?.method).toBe('notifications/progress');
    expect(messages.at(-1)).toMatchObject({ id: 3 });
    await deleteRawSession(url, sessionId);
  });
});

describe('a call in a session whose client gives up', () => {
  it('leaves nothing in flight once its connection closes', async () => {
    const { sessionId, token, cursor } = await waitingUserInSession();
    const session = server.services.sessions.get(sessionId) as StreamableSession;
    const gaveUp = new AbortController();
    const response = await fetch(url, {
      method: 'POST',
      headers: jsonHeaders(sessionId),
      body: toolCall(3, 'wait_for_events', { user_token: token, after: cursor, timeout_s: 30 }),
      signal: gaveUp.signal,
    });
    // Held: its stream has begun (the priming event), and the answer is owed.
    await response.body!.getReader().read();
    expect(session.callsInFlight).toBe(1);
    gaveUp.abort();
    await eventually(() => {
      expect(session.callsInFlight).toBe(0);
      expect(server.services.mcp.inFlight).toBe(0);
    });
    await deleteRawSession(url, sessionId);
  });
});
