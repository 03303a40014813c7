/**
 * The chat tools. Each handler is a short translator: its input is already checked
 * against the zod schema; it asks the user actor whether the event is allowed
 * (`snapshot.can`), sends it, and answers from the new snapshot. A refusal is a tool
 * result with `isError: true` and a sentence that says what to do instead.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { UserEvent } from '../machines/user.js';
import { statusOf, type ChatUser } from './chatUser.js';
import type { EventFeed } from './eventFeed.js';
import type { ChatMetrics } from './metrics.js';
import { whyNot, type Refusal } from './refusals.js';
import { CHAT_NOTIFICATION_METHODS } from './notifications.js';

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

// Annotations: enter_queue, send_message and next reach strangers (open world);
// wait_for_events only reads (its cursor is a reading position, not chat state).

/** `wait_for_events` holds a call at most this long: below the SDK clients' 60 s request timeout. */
export const MAX_WAIT_S = 50;
const DEFAULT_WAIT_S = 25;
const PROGRESS_EVERY_MS = 5_000;

/** C0 controls but tab, line feed and carriage return; and DEL. */
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

const roomIdInput = z
  .string()
  .min(1, 'room_id is empty: pass the room_id from chatroom.found.')
  .max(64, 'room_id is too long to be a room id: pass the room_id from chatroom.found.');

const queueAnswer = z.object({
  status: z.enum(['waiting', 'matched']).describe('"matched" when a partner was found at once'),
  position: z.number().int().positive().optional().describe('Place in the queue while waiting, 1 = next'),
  room_id: z.string().optional().describe('The room to chat in, when matched'),
});

const statusAnswer = z.object({
  state: z.enum(['idle', 'waiting', 'chatting', 'ended']),
  room_id: z.string().optional(),
  position: z.number().int().positive().optional(),
});

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

  server.registerTool(
    'enter_queue',
    {
      title: 'Enter the queue',
      description:
        'Join the queue to be paired with a random stranger (first come, first served). Answers {"status":"matched","room_id"} when a partner was waiting, else {"status":"waiting","position"}: then wait for the chatroom.found notification, or call wait_for_events. Calling it again while waiting only answers your position.',
      inputSchema: z.object({}).strict(),
      outputSchema: queueAnswer,
      annotations: { readOnlyHint: false, idempotentHint: true, openWorldHint: true },
    },
    () => {
      const event = { type: 'queue.enter' } as const;
      if (user.actor.getSnapshot().matches('waiting')) return queueResult();
      return attempt(event, queueResult);
    },
  );

  server.registerTool(
    'send_message',
    {
      title: 'Send a message',
      description: `Send a text message to your partner in the room from chatroom.found (at most ${limits.maxMessageLength} characters). Your partner receives it as message.received; you do not. Answers the message's id and its seq, its place in the room's order.`,
      inputSchema: z
        .object({
          room_id: roomIdInput,
          message: z
            .string()
            .max(limits.maxMessageLength, `message is longer than ${limits.maxMessageLength} characters: shorten it or split it.`)
            .refine((text) => text.trim().length > 0, 'message is empty: write some text to send.')
            .refine((text) => text.isWellFormed(), 'message is not valid Unicode text (it has a lone surrogate): send plain text.')
            .refine((text) => !CONTROL_CHARACTERS.test(text), 'message contains control characters: send plain text (tabs and new lines are fine).'),
        })
        .strict(),
      outputSchema: z.object({ status: z.literal('sent'), message_id: z.string(), seq: z.number().int().positive() }),
      annotations: { openWorldHint: true },
    },
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
    {
      title: 'Leave the chat or the queue',
      description:
        'Leave your chat (your partner is told partner.disconnected) or, while waiting, the queue. room_id may be left out to mean your current room. Afterwards you are idle: call enter_queue to meet someone new.',
      inputSchema: z.object({ room_id: roomIdInput.optional() }).strict(),
      outputSchema: z.object({ status: z.literal('idle') }),
      annotations: { destructiveHint: false, openWorldHint: false },
    },
    ({ room_id }) =>
      attempt({ type: 'chat.leave', ...(room_id !== undefined && { roomId: room_id }) }, () => answer({ status: 'idle' })),
  );

  server.registerTool(
    'next',
    {
      title: 'Next stranger',
      description:
        'Leave the current chat (if any) and enter the queue again; you are not paired with the same partner at once. Answers like enter_queue.',
      inputSchema: z.object({}).strict(),
      outputSchema: queueAnswer,
      annotations: { openWorldHint: true },
    },
    () => {
      const event = { type: 'chat.next' } as const;
      if (user.actor.getSnapshot().matches('waiting')) return queueResult();
      return attempt(event, queueResult);
    },
  );

  server.registerTool(
    'get_status',
    {
      title: 'Get your status',
      description: 'Your state (idle, waiting or chatting), with your room_id while chatting and your queue position while waiting.',
      inputSchema: z.object({}).strict(),
      outputSchema: statusAnswer,
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    () => answer({ ...statusOf(user) }),
  );

  server.registerTool(
    'wait_for_events',
    {
      title: 'Wait for events',
      description: `Returns, in order, the events you have not taken yet (chatroom.found, message.received, partner.disconnected — the same as the notifications, each with its id) and a cursor. Answers at once when events are pending; otherwise holds the call until one arrives or timeout_s passes (then events is empty). Pass the cursor back as after to never see an event twice. Use this when your client does not show notifications: an agent can chat with enter_queue, send_message, wait_for_events and leave_chat alone.`,
      inputSchema: z
        .object({
          after: z.string().max(32, 'after is too long to be a cursor: pass the cursor of your last call.').optional().describe('The cursor from your last wait_for_events; leave out to continue where you left off'),
          timeout_s: z
            .number()
            .min(0, 'timeout_s cannot be negative.')
            .max(MAX_WAIT_S, `timeout_s is at most ${MAX_WAIT_S} seconds: call again to keep waiting.`)
            .default(DEFAULT_WAIT_S)
            .describe(`How long to wait when nothing is pending, in seconds (default ${DEFAULT_WAIT_S}, max ${MAX_WAIT_S})`),
        })
        .strict(),
      outputSchema: z.object({
        events: z.array(
          z.object({ id: z.string(), method: z.enum(CHAT_NOTIFICATION_METHODS as [string, ...string[]]), params: z.record(z.string(), z.unknown()) }),
        ),
        cursor: z.string(),
        missed: z.number().int().positive().optional().describe('Events that fell out of the buffer before you took them'),
        note: z.string().optional(),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
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
