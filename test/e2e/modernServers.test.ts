/**
 * 2026-07-28 requests are served on servers lent from a pool (src/mcp/serverPool.ts):
 * a run of calls is served by a few servers, not one each; every server comes back
 * when its exchange ends (answered, cut by the client, refused, or a listen); and a
 * call cut while it reported progress sends nothing into the next exchange its server
 * serves, even one whose client uses the same JSON-RPC id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { IDLE_SERVERS_PER_KIND } from '../../src/mcp/mcpServer.js';
import { eventually } from '../support/eventually.js';
import { MODERN_META, modernHeaders, rpcAnswerOf } from '../support/jsonRpcWire.js';
import { readSse } from '../support/rawSession.js';
import { startTestServer } from '../support/server.js';

let server: RunningChatServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const pool = () => server.services.modern.servers;

/** A raw 2026-07-28 `tools/call` under JSON-RPC id `id`; resolves with the whole answer body. */
function modernCall(
  id: number,
  name: string,
  args: Record<string, unknown>,
  options: { progressToken?: string; signal?: AbortSignal; onText?: (text: string) => void } = {},
): Promise<string> {
  const meta = { ...MODERN_META, ...(options.progressToken && { progressToken: options.progressToken }) };
  return fetch(server.url, {
    method: 'POST',
    headers: modernHeaders('tools/call', name),
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: meta } }),
    signal: options.signal,
  }).then((response) =>
    // Read to its end (or until the client cuts it), showing `onText` what has come so far.
    readSse(
      response,
      (text) => {
        options.onText?.(text);
        return false;
      },
      30_000,
    ),
  );
}

const structuredOf = (text: string) => rpcAnswerOf(text)?.result?.structuredContent as Record<string, unknown>;

describe('2026-07-28 servers lent from a pool', () => {
  it('serves a run of calls on a few servers, and has none lent once they are over', async () => {
    const token = structuredOf(await modernCall(1, 'enter_queue', {})).user_token as string;
    const builtBefore = pool().built;
    for (let id = 2; id < 32; id++)
      expect(structuredOf(await modernCall(id, 'get_status', { user_token: token }))).toMatchObject({ state: 'waiting' });
    // Thirty calls one after another: one get_status server, lent again each time.
    expect(pool().built - builtBefore).toBeLessThanOrEqual(1);

    // As many at once as the pool keeps of a kind need at most that many; once they are back, the next as many take them again.
    const beforeBursts = pool().built;
    const burst = (first: number) =>
      Promise.all(
        Array.from({ length: IDLE_SERVERS_PER_KIND }, (_, i) =>
          modernCall(first + i, 'wait_for_events', { user_token: token, timeout_s: 0.2 }),
        ),
      );
    await burst(100);
    await eventually(() => expect(pool().lent).toBe(0));
    await burst(200);
    expect(pool().built - beforeBursts).toBeLessThanOrEqual(IDLE_SERVERS_PER_KIND);

    // A refused call and a call the client cuts give theirs back too.
    expect(await modernCall(300, 'send_message', { user_token: token, room_id: 'nowhere', message: 'x' })).toContain('isError');
    const cut = new AbortController();
    const cutCall = modernCall(
      301,
      'wait_for_events',
      { user_token: token, timeout_s: 20 },
      { progressToken: 'cut', signal: cut.signal, onText: (t) => t.includes('"progress"') && cut.abort() },
    ).catch(() => 'cut');
    expect(await cutCall).toBe('cut');
    await eventually(() => expect(pool().lent).toBe(0));
  });

  it("sends nothing of a cut call into another client's exchange with the same id", async () => {
    const token = structuredOf(await modernCall(1, 'enter_queue', {})).user_token as string;
    const other = structuredOf(await modernCall(1, 'enter_queue', {})).user_token as string;
    const cursorOf = async (user: string) =>
      structuredOf(await modernCall(2, 'wait_for_events', { user_token: user, timeout_s: 0 })).cursor;
    const [after, otherAfter] = [await cursorOf(token), await cursorOf(other)];
    for (let round = 0; round < 5; round++) {
      // A reports progress every 200 ms and is cut after its first; B, with the same id, then waits on its server.
      const cut = new AbortController();
      await modernCall(
        7,
        'wait_for_events',
        { user_token: token, after, timeout_s: 1 },
        {
          progressToken: `a-${round}`,
          signal: cut.signal,
          onText: (t) => t.includes('"progress"') && cut.abort(),
        },
      ).catch(() => 'cut');
      const b = await modernCall(
        7,
        'wait_for_events',
        { user_token: other, after: otherAfter, timeout_s: 1 },
        { progressToken: `b-${round}` },
      );
      expect(b).toContain(`"progressToken":"b-${round}"`);
      expect(b).not.toMatch(/"progressToken":"a-/);
      expect(rpcAnswerOf(b)).toMatchObject({ id: 7, result: { structuredContent: { cursor: expect.any(String) } } });
    }
    await eventually(() => expect(pool().lent).toBe(0));
  });
});
