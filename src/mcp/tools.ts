/**
 * The chat tools' handlers. Each is a short translator: its input is already checked
 * against the zod schema (src/toolSpecs.ts); it asks the user actor whether the event
 * is allowed (`snapshot.can`), sends it, and answers from the new snapshot. A refusal
 * is a tool result with `isError: true` and a sentence that says what to do instead.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { UserEvent } from '../../machines/user.js';
import { statusOf, type ChatUser } from '../chat/chatUser.js';
import type { ChatMetrics } from '../ops/metrics.js';
import { whyNot, type Refusal } from './refusals.js';
import { toolSpecs } from './toolSpecs.js';

export interface ToolLimits {
  /** Longest message, in characters. */
  maxMessageLength: number;
  /** `wait_for_events` calls one user may have held at once. */
  maxWaitsPerUser: number;
}

/** A user's events as `wait_for_events` reads them (the session's feed, src/session/replay/feed.ts). */
export interface EventReader {
  /** A client's cursor as a position; undefined when it is not one this reader gave. */
  parseCursor(after: string | undefined): number | undefined;
  hasAfter(cursor: number): boolean;
  /** Calls being held for events now. */
  readonly held: number;
  /** Holds until an event comes after `from()`, `deadline` passes, or `signal` aborts. */
  hold(from: () => number, deadline: number, signal: AbortSignal): Promise<void>;
  read(cursor: number): { events: { id: string; method: string; params: Record<string, unknown> }[]; cursor: string; missed: number };
}

/** What the tools work on for one session. */
export interface SessionTools {
  readonly user: ChatUser;
  readonly feed: EventReader;
}

export interface ToolOptions {
  limits: ToolLimits;
  metrics: ChatMetrics;
  /** The session a tool call came from; none once it has ended. */
  sessionOf(extra: ToolExtra): SessionTools | undefined;
}

/** Progress is reported five times over a wait, at most every 5 s and at least 200 ms apart. */
const progressEveryMs = (timeoutS: number) => Math.min(5_000, Math.max(200, (timeoutS * 1000) / 5));

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * Runs `hold` (a held `wait_for_events`), reporting progress every few seconds when the
 * call carries a progress token.
 */
async function withProgress(extra: ToolExtra, timeoutS: number, hold: () => Promise<void>): Promise<void> {
  const progressToken = extra._meta?.progressToken;
  if (progressToken === undefined) return hold();
  const started = Date.now();
  const report = () =>
    extra
      .sendNotification({
        method: 'notifications/progress',
        params: { progressToken, progress: Math.round((Date.now() - started) / 100) / 10, total: timeoutS, message: 'Waiting for events' },
      })
      .catch(() => {
        // A progress note that cannot be sent changes nothing about the wait.
      });
  await report();
  const ticker = setInterval(() => void report(), progressEveryMs(timeoutS));
  try {
    await hold();
  } finally {
    clearInterval(ticker);
  }
}

function answer(structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

/**
 * Registers the chat tools on the server that serves every session; each call works on
 * the session it came from.
 */
export function registerChatTools(server: McpServer, { limits, metrics, sessionOf }: ToolOptions): void {
  const refuse = ({ reason, sentence }: Refusal): CallToolResult => {
    metrics.refused(reason);
    return { content: [{ type: 'text', text: sentence }], isError: true };
  };

  /** Runs `handler` for the session the call came from; a session that ended has no tools. */
  const inSession =
    <A>(handler: (session: SessionTools, args: A, extra: ToolExtra) => CallToolResult | Promise<CallToolResult>) =>
    (args: A, extra: ToolExtra): CallToolResult | Promise<CallToolResult> => {
      const session = sessionOf(extra);
      if (!session) return refuse({ reason: 'session_not_found', sentence: 'Your session has ended. Initialize a new session.' });
      return handler(session, args, extra);
    };

  /** What `enter_queue` and `next` answer once the user is waiting or chatting. */
  const queueResult = (user: ChatUser): CallToolResult => {
    const status = statusOf(user);
    return status.state === 'chatting'
      ? answer({ status: 'matched', room_id: status.room_id })
      : answer({ status: 'waiting', position: status.position });
  };

  /** Sends `event` if the user's state takes it; otherwise answers why not. */
  const attempt = (user: ChatUser, event: UserEvent, then: () => CallToolResult): CallToolResult => {
    if (!user.actor.getSnapshot().can(event)) return refuse(whyNot(user, event));
    user.actor.send(event);
    return then();
  };

  const spec = toolSpecs(limits.maxMessageLength);

  server.registerTool(
    'enter_queue',
    spec.enter_queue,
    inSession(({ user }) => attempt(user, { type: 'queue.enter' }, () => queueResult(user))),
  );

  server.registerTool(
    'send_message',
    spec.send_message,
    inSession(({ user }, { room_id, message }: { room_id: string; message: string }) => {
      const started = performance.now();
      return attempt(user, { type: 'chat.send', roomId: room_id, text: message, at: started }, () => {
        const receipt = user.actor.getSnapshot().context.lastReceipt;
        if (!receipt) return refuse({ reason: 'not_chatting', sentence: 'The message could not be delivered: the room closed. Call get_status.' });
        metrics.relayed((performance.now() - started) / 1000);
        return answer({ status: 'sent', message_id: receipt.messageId, seq: receipt.seq });
      });
    }),
  );

  server.registerTool(
    'leave_chat',
    spec.leave_chat,
    inSession(({ user }, { room_id }: { room_id?: string }) =>
      attempt(user, { type: 'chat.leave', ...(room_id !== undefined && { roomId: room_id }) }, () => answer({ status: 'idle' })),
    ),
  );

  server.registerTool(
    'next',
    spec.next,
    inSession(({ user }) => attempt(user, { type: 'chat.next' }, () => queueResult(user))),
  );

  server.registerTool(
    'get_status',
    spec.get_status,
    inSession(({ user }) => answer({ ...statusOf(user) })),
  );

  server.registerTool(
    'wait_for_events',
    spec.wait_for_events,
    inSession(async ({ feed }, { after, timeout_s }: { after?: string; timeout_s: number }, extra) => {
      const cursor = feed.parseCursor(after);
      if (cursor === undefined)
        return refuse({
          reason: 'bad_cursor',
          sentence: `after ${JSON.stringify(after)} is not a cursor from wait_for_events. Pass the cursor of your last call, or leave after out.`,
        });
      if (!feed.hasAfter(cursor) && feed.held >= limits.maxWaitsPerUser)
        return refuse({
          reason: 'too_many_waits',
          sentence: `You already have ${feed.held} wait_for_events call(s) waiting (at most ${limits.maxWaitsPerUser}). Let one finish before starting another.`,
        });
      const from = () => (after === undefined ? feed.parseCursor(undefined)! : cursor);
      await withProgress(extra, timeout_s, () => feed.hold(from, Date.now() + timeout_s * 1000, extra.signal));
      // A call the client gave up on takes nothing: the events stay for the next call.
      if (extra.signal.aborted) return answer({ events: [], cursor: String(from()) });
      const { missed, ...page } = feed.read(from());
      if (!missed) return answer(page);
      return answer({ ...page, missed, note: `${missed} older event(s) fell out of the buffer before you took them; they cannot be sent again.` });
    }),
  );
}
