/**
 * The correctness cross-check: before any load, one pair where one side is the official
 * SDK client (`Client` + `StreamableHTTPClientTransport`, notifications at its
 * `fallbackNotificationHandler`) and the other the bench's lean client. Each sends a
 * few messages; what one side's tool result says must be exactly what the other side's
 * notification says, so the lean client's parsing is checked against the SDK's.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Pool } from 'undici';
import { LeanSession } from './leanSession.js';

export interface CrossCheckResult {
  ok: boolean;
  /** Fields compared between the two clients. */
  compared: number;
  mismatches: string[];
}

type Params = Record<string, unknown>;

/** Collects notifications by method and lets a caller wait for the n-th of one. */
class Inbox {
  readonly #byMethod = new Map<string, Params[]>();
  #wake = () => {};

  add(method: string, params: Params): void {
    const list = this.#byMethod.get(method) ?? [];
    list.push(params);
    this.#byMethod.set(method, list);
    this.#wake();
  }

  async nth(method: string, n: number, deadlineMs = 5_000): Promise<Params> {
    const deadline = performance.now() + deadlineMs;
    for (;;) {
      const found = this.#byMethod.get(method)?.[n];
      if (found) return found;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${method} #${n + 1} within ${deadlineMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

export async function sdkCrossCheck(url: URL, messages = 3): Promise<CrossCheckResult> {
  const mismatches: string[] = [];
  let compared = 0;
  const same = (what: string, a: unknown, b: unknown) => {
    compared += 1;
    if (JSON.stringify(a) !== JSON.stringify(b)) mismatches.push(`${what}: SDK ${JSON.stringify(a)} ≠ lean ${JSON.stringify(b)}`);
  };

  const sdkInbox = new Inbox();
  const client = new Client({ name: 'mcp-chat-bench-sdk', version: '1.0.0' });
  client.fallbackNotificationHandler = async ({ method, params }) => sdkInbox.add(method, (params ?? {}) as Params);
  const transport = new StreamableHTTPClientTransport(url);
  const leanInbox = new Inbox();
  const posts = new Pool(url.origin, { connections: 2 });
  const streams = new Pool(url.origin, { connections: null });
  const lean = new LeanSession({ posts, streams, path: url.pathname });
  lean.onNotification = (method, params) => leanInbox.add(method, params);
  const sdkCall = async (name: string, args: Params) => {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    if (result.isError) throw new Error(`SDK ${name} refused: ${JSON.stringify(result.content)}`);
    return result.structuredContent as Params;
  };

  try {
    await client.connect(transport);
    await lean.open();
    const waiting = await sdkCall('enter_queue', {});
    same('SDK enter_queue status', waiting.status, 'waiting');
    const matched = await lean.call('enter_queue', {});
    same('lean enter_queue status', 'matched', matched.status);
    const roomId = matched.room_id;
    same('chatroom.found (SDK side) vs lean room_id', (await sdkInbox.nth('chatroom.found', 0)).room_id, roomId);
    same('chatroom.found (lean side) vs lean room_id', roomId, (await leanInbox.nth('chatroom.found', 0)).room_id);

    for (let i = 0; i < messages; i++) {
      const toLean = `sdk → lean #${i + 1} ✓ ünïcode`;
      const sdkReceipt = await sdkCall('send_message', { room_id: roomId, message: toLean });
      const atLean = await leanInbox.nth('message.received', i);
      same(`message ${i + 1} to lean: text`, toLean, atLean.message);
      same(`message ${i + 1} to lean: message_id`, sdkReceipt.message_id, atLean.message_id);
      same(`message ${i + 1} to lean: seq`, sdkReceipt.seq, atLean.seq);
      same(`message ${i + 1} to lean: room_id`, roomId, atLean.room_id);

      const toSdk = `lean → sdk #${i + 1} ✓ ünïcode`;
      const leanReceipt = await lean.call('send_message', { room_id: roomId, message: toSdk });
      const atSdk = await sdkInbox.nth('message.received', i);
      same(`message ${i + 1} to SDK: text`, atSdk.message, toSdk);
      same(`message ${i + 1} to SDK: message_id`, atSdk.message_id, leanReceipt.message_id);
      same(`message ${i + 1} to SDK: seq`, atSdk.seq, leanReceipt.seq);
      same(`message ${i + 1} to SDK: sent_at is a date`, true, !Number.isNaN(Date.parse(String(atSdk.sent_at))));
    }
  } catch (error) {
    mismatches.push(`cross-check failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await Promise.allSettled([transport.terminateSession().then(() => client.close()), lean.close()]);
    await Promise.allSettled([posts.close(), streams.destroy()]);
  }
  return { ok: mismatches.length === 0, compared, mismatches };
}
