/**
 * The chat tools' handlers. Each is a short translator: its input is already checked
 * against the zod schema (src/toolSpecs.ts); it asks the user actor whether the event
 * is allowed (`snapshot.can`), sends it, and answers from the new snapshot. A refusal
 * is a tool result with `isError: true` and a sentence that says what to do instead.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { UserEvent } from '../machines/user.js';
import { statusOf, type ChatUser } from './chatUser.js';
import type { EventFeed } from './eventFeed.js';
import type { ChatMetrics } from './metrics.js';
import { whyNot, type Refusal } from './refusals.js';
import { toolSpecs } from './toolSpecs.js';

export { MAX_WAIT_S } from './toolSpecs.js';

export interface ToolLimits {
  /** Longest message, in characters. */
  maxMessageLength: number;
  /** `wait_for_events` calls one user may have held at once. */
  maxWaitsPerUser: number;
}

/** What the tools of one session work on. */
export interface ToolContext {
  user: ChatUser;
  feed: EventFeed;
  limits: ToolLimits;
  metrics: ChatMetrics;
}

const PROGRESS_EVERY_MS = 5_000;

function answer(structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

export function registerChatTools(server: McpServer, { user, feed, limits, metrics }: ToolContext): void {
  const refuse = ({ reason, sentence }: Refusal): CallToolResult => {
    metrics.refused(reason);
    return { content: [{ type: 'text', text: sentence }], isError: true };
  };

  /** What `enter_queue` and `next` answer once the user is waiting or chatting. */
  const queueResult = (): CallToolResult => {
    const status = statusOf(user);
    return status.state === 'chatting'
      ? answer({ status: 'matched', room_id: status.room_id })
      : answer({ status: 'waiting', position: status.position });
  };

  /** Sends `event` if the user's state takes it; otherwise answers why not. */
  const attempt = (event: UserEvent, then: () => CallToolResult): CallToolResult => {
    if (!user.actor.getSnapshot().can(event)) return refuse(whyNot(user, event));
    user.actor.send(event);
    return then();
  };

  /** `wait_for_events` calls of this user being held now. */
  let waiting = 0;
  const spec = toolSpecs(limits.maxMessageLength);

  server.registerTool(
    'enter_queue',
    spec.enter_queue,
    () => {
      const event = { type: 'queue.enter' } as const;
      if (user.actor.getSnapshot().matches('waiting')) return queueResult();
      return attempt(event, queueResult);
    },
  );

  server.registerTool(
    'send_message',
    spec.send_message,
    ({ room_id, message }) => {
      const started = performance.now();
      return attempt({ type: 'chat.send', roomId: room_id, text: message, at: started }, () => {
        const receipt = user.actor.getSnapshot().context.lastReceipt;
        if (!receipt) return refuse({ reason: 'not_chatting', sentence: 'The message could not be delivered: the room closed. Call get_status.' });
        metrics.relayed((performance.now() - started) / 1000);
        return answer({ status: 'sent', message_id: receipt.messageId, seq: receipt.seq });
      });
    },
  );

  server.registerTool(
    'leave_chat',
    spec.leave_chat,
    ({ room_id }) =>
      attempt({ type: 'chat.leave', ...(room_id !== undefined && { roomId: room_id }) }, () => answer({ status: 'idle' })),
  );

  server.registerTool(
    'next',
    spec.next,
    () => {
      const event = { type: 'chat.next' } as const;
      if (user.actor.getSnapshot().matches('waiting')) return queueResult();
      return attempt(event, queueResult);
    },
  );

  server.registerTool(
    'get_status',
    spec.get_status,
    () => answer({ ...statusOf(user) }),
  );

  server.registerTool(
    'wait_for_events',
    spec.wait_for_events,
    async ({ after, timeout_s }, extra) => {
      const cursor = feed.parseCursor(after);
      if (cursor === undefined)
        return refuse({
          reason: 'bad_cursor',
          sentence: `after ${JSON.stringify(after)} is not a cursor from wait_for_events. Pass the cursor of your last call, or leave after out.`,
        });
      if (!feed.hasAfter(cursor) && waiting >= limits.maxWaitsPerUser)
        return refuse({
          reason: 'too_many_waits',
          sentence: `You already have ${waiting} wait_for_events call(s) waiting (at most ${limits.maxWaitsPerUser}). Let one finish before starting another.`,
        });
      if (!feed.hasAfter(cursor)) {
        waiting += 1;
        const progressToken = extra._meta?.progressToken;
        const progress = (elapsedMs: number) =>
          progressToken === undefined
            ? undefined
            : extra.sendNotification({
                method: 'notifications/progress',
                params: { progressToken, progress: Math.round(elapsedMs / 1000), total: timeout_s, message: 'Waiting for events' },
              });
        const started = Date.now();
        await progress(0);
        const ticker = progressToken === undefined ? undefined : setInterval(() => void progress(Date.now() - started), PROGRESS_EVERY_MS);
        await feed.waitBeyond(cursor, timeout_s * 1000, extra.signal).finally(() => {
          clearInterval(ticker);
          waiting -= 1;
        });
      }
      const { missed, ...page } = feed.read(cursor);
      if (!missed) return answer(page);
      return answer({ ...page, missed, note: `${missed} older event(s) fell out of the buffer before you took them; they cannot be sent again.` });
    },
  );
}
