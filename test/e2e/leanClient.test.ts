/**
 * The bench's lean client (bench/leanSession.ts) against the official SDK client: one
 * pair, the SDK client on one side and the lean client on the other, each sending a few
 * messages. What one side's tool result says must be exactly what the other side's
 * notification says, so the bench's figures rest on a client that reads the wire right.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Pool } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LeanSession } from '../../bench/leanSession.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import { eventually } from '../support/eventually.js';
import { startTestServer } from '../support/server.js';

type Params = Record<string, unknown>;

let server: RunningChatServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** Notifications by method, as one client heard them. */
function inbox() {
  const byMethod = new Map<string, Params[]>();
  return {
    add: (method: string, params: Params) => byMethod.set(method, [...(byMethod.get(method) ?? []), params]),
    /** The n-th notification of `method` (from 0), once it has come. */
    nth: (method: string, n: number) =>
      eventually(() => byMethod.get(method)?.[n] ?? Promise.reject(new Error(`no ${method} #${n + 1} yet`))),
  };
}

it('the lean client reads what the SDK client sends, and the SDK client what the lean client sends, field for field', async () => {
  const url = new URL('/mcp', server.url);
  const sdkInbox = inbox();
  const sdk = new Client({ name: 'lean-client-check', version: '1.0.0' });
  sdk.fallbackNotificationHandler = async ({ method, params }) => void sdkInbox.add(method, (params ?? {}) as Params);
  const transport = new StreamableHTTPClientTransport(url);
  const leanInbox = inbox();
  const posts = new Pool(url.origin, { connections: 2 });
  const streams = new Pool(url.origin, { connections: null });
  const lean = new LeanSession({ posts, streams, path: url.pathname });
  lean.onNotification = (method, params) => void leanInbox.add(method, params);
  const sdkCall = async (name: string, args: Params) => {
    const result = (await sdk.callTool({ name, arguments: args })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    return result.structuredContent as Params;
  };
  try {
    await sdk.connect(transport);
    await lean.open();
    expect((await sdkCall('enter_queue', {})).status).toBe('waiting');
    const matched = await lean.call('enter_queue', {});
    expect(matched.status).toBe('matched');
    const roomId = matched.room_id;
    expect((await sdkInbox.nth('chatroom.found', 0)).room_id).toBe(roomId);
    expect((await leanInbox.nth('chatroom.found', 0)).room_id).toBe(roomId);

    for (let i = 0; i < 3; i++) {
      const toLean = `sdk → lean #${i + 1} ✓ ünïcode`;
      const sdkReceipt = await sdkCall('send_message', { room_id: roomId, message: toLean });
      expect(await leanInbox.nth('message.received', i)).toMatchObject({
        message: toLean,
        message_id: sdkReceipt.message_id,
        seq: sdkReceipt.seq,
        room_id: roomId,
      });

      const toSdk = `lean → sdk #${i + 1} ✓ ünïcode`;
      const leanReceipt = await lean.call('send_message', { room_id: roomId, message: toSdk });
      const atSdk = await sdkInbox.nth('message.received', i);
      expect(atSdk).toMatchObject({ message: toSdk, message_id: leanReceipt.message_id, seq: leanReceipt.seq, room_id: roomId });
      expect(Number.isNaN(Date.parse(String(atSdk.sent_at)))).toBe(false);
    }
  } finally {
    await Promise.allSettled([transport.terminateSession().then(() => sdk.close()), lean.close()]);
    await Promise.allSettled([posts.close(), streams.destroy()]);
  }
});
