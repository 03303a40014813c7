/**
 * The chat tools' handlers. Each is a short translator: its input is already checked
 * against the zod schema (src/mcp/toolSpecs.ts); it finds the user the call acts for
 * (its `user_token`, else its session's), asks that user's actor whether the event is
 * allowed (`snapshot.can`), sends it, and answers from the new snapshot. A refusal is a
 * tool result with `isError: true` and a sentence that says what to do instead.
 */
import type { CallToolResult, McpServer, ServerContext } from '@modelcontextprotocol/server';
import type { UserEvent } from '../../machines/user.js';
import type { ChatUser } from '../chat/chatUser.js';
import type { ChatMetrics } from '../ops/metrics.js';
import { eventsPage } from './eventsResource.js';
import type { ChatMessage } from './notifications.js';
import { type Refusal, whyNot } from './refusals.js';
import { enterQueueEvent, type LeaveArgs, leaveEvent, nextEvent, type PreferenceArgs, sendEvent, type VerdictArgs } from './toolEvents.js';
import { toolSpecs } from './toolSpecs.js';

export interface ToolLimits {
  /** Longest message, in characters. */
  maxMessageLength: number;
  /** `wait_for_events` calls one user may have held at once; one more replaces the oldest. */
  maxWaitsPerUser: number;
}

export type ToolExtra = ServerContext;

/** Finds and makes the users calls act for (src/session/callUsers.ts). */
export interface CallUsers {
  /**
   * The user a call acts for: its token's (the call's session is bound to it), else its
   * session's; a refusal for a token that names no live user; undefined for none.
   */
  find(token: string | undefined, extra: ToolExtra, joining?: boolean): ChatUser<ChatMessage> | Refusal | undefined;
  /** A new user for this call, bound to its session if it has one; refused when its client made too many, or the server is full. */
  create(extra: ToolExtra): ChatUser<ChatMessage> | Refusal;
  /** Holds one `wait_for_events` for the call's client address until the returned function is called; refused past its allowance. */
  holdWait(extra: ToolExtra): (() => void) | Refusal;
  /** Whether the HTTP layer held this `wait_for_events` until a newer one replaced it (src/http/mcp/heldWait.ts). */
  replacedWhileHeld(extra: ToolExtra): boolean;
}

export interface ToolOptions {
  limits: ToolLimits;
  metrics: ChatMetrics;
  users: CallUsers;
  /** The 2026-07-28 era's: the URI of a user's events resource, which enter_queue, next and get_status then name. */
  eventsUriOf?: (user: ChatUser<ChatMessage>) => string;
  /** Registers this tool alone (a server built for one call of it); all of them without. */
  only?: string;
}

/** Progress is reported five times over a wait, at most every 5 s and at least 200 ms apart. */
const progressEveryMs = (timeoutS: number) => Math.min(5_000, Math.max(200, (timeoutS * 1000) / 5));

/** How long a call waits for the broker to take its intent (Redis out of reach: it says so, and the broker keeps trying). */
const BROKER_WAIT_MS = 5_000;

/**
 * Runs `hold` (a held `wait_for_events`), reporting progress every few seconds when the
 * call carries a progress token.
 */
async function withProgress<T>(extra: ToolExtra, timeoutS: number, hold: () => Promise<T>): Promise<T> {
  const progressToken = extra.mcpReq._meta?.progressToken;
  if (progressToken === undefined) return hold();
  const started = Date.now();
  const report = async () => {
    // Once the call is over its server may serve another request: a late note would go there.
    if (extra.mcpReq.signal.aborted) return;
    await extra.mcpReq
      .notify({
        method: 'notifications/progress',
        params: { progressToken, progress: Math.round((Date.now() - started) / 100) / 10, total: timeoutS, message: 'Waiting for events' },
      })
      .catch(() => {
        // A progress note that cannot be sent changes nothing about the wait.
      });
  };
  await report();
  const ticker = setInterval(() => void report(), progressEveryMs(timeoutS));
  try {
    return await hold();
  } finally {
    clearInterval(ticker);
  }
}

/** Every tool's `user_token`: which user the call acts for. */
interface TokenArg {
  user_token?: string;
}

function answer(structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

const isRefusal = (found: ChatUser<ChatMessage> | Refusal | undefined): found is Refusal => found !== undefined && 'sentence' in found;

/** Registers the chat tools on the server that serves every session. */
export function registerChatTools(server: McpServer, { limits, metrics, users, eventsUriOf, only }: ToolOptions): void {
  const registerTool = ((...tool: Parameters<McpServer['registerTool']>) => {
    if (only === undefined || only === tool[0]) server.registerTool(...tool);
  }) as McpServer['registerTool'];
  const refuse = ({ reason, sentence }: Refusal): CallToolResult => {
    metrics.refused(reason);
    return { content: [{ type: 'text', text: sentence }], isError: true };
  };

  /** Runs `handler` with the user present (a call in flight is a sign of life). */
  const present = async (user: ChatUser<ChatMessage>, handler: () => CallToolResult | Promise<CallToolResult>): Promise<CallToolResult> => {
    const close = user.openLink();
    try {
      return await handler();
    } finally {
      close();
    }
  };

  /** For tools that need a user already: the token's, else the session's. */
  const forUser =
    <A extends { user_token?: string }>(
      handler: (user: ChatUser<ChatMessage>, args: A, extra: ToolExtra) => CallToolResult | Promise<CallToolResult>,
    ) =>
    (args: A, extra: ToolExtra): Promise<CallToolResult> | CallToolResult => {
      const found = users.find(args.user_token, extra);
      if (isRefusal(found)) return refuse(found);
      if (!found)
        return refuse({
          reason: 'no_user',
          sentence: 'You have not entered yet: call enter_queue first, then pass the user_token it returns on every call.',
        });
      return present(found, () => handler(found, args, extra));
    };

  /** For enter_queue and next: the token's or the session's user, else a new one. */
  const forUserOrNew =
    <A extends { user_token?: string }>(handler: (user: ChatUser<ChatMessage>, args: A) => CallToolResult | Promise<CallToolResult>) =>
    (args: A, extra: ToolExtra): Promise<CallToolResult> | CallToolResult => {
      const found = users.find(args.user_token, extra, true) ?? users.create(extra);
      if (isRefusal(found)) return refuse(found);
      return present(found, () => handler(found, args));
    };

  /** What `enter_queue` and `next` answer once the user is waiting or chatting. */
  const queueResult = async (user: ChatUser<ChatMessage>): Promise<CallToolResult> => {
    const { state, ...status } = await user.status();
    return answer({ status: state === 'chatting' ? 'matched' : 'waiting', ...status, ...names(user) });
  };

  /** How an answer names its user: its token, and in the 2026-07-28 era its events resource. */
  const names = (user: ChatUser<ChatMessage>) => ({ user_token: user.token, ...(eventsUriOf && { events_uri: eventsUriOf(user) }) });

  const unreachable = (): CallToolResult =>
    refuse({
      reason: 'broker_unavailable',
      sentence:
        'The chat service could not reach the queue or your room just now (its store is down). Try again in a few seconds; call get_status to see where you stand.',
    });

  /**
   * Sends `event` if the user's state takes it, and answers once the broker has what it
   * asked for; otherwise answers why not.
   */
  const attempt = async (
    user: ChatUser<ChatMessage>,
    event: UserEvent,
    then: () => CallToolResult | Promise<CallToolResult>,
  ): Promise<CallToolResult> => {
    const snapshot = user.actor.getSnapshot();
    if (!snapshot.can(event)) return refuse(whyNot(snapshot, event));
    user.actor.send(event);
    // A broker over Redis keeps trying in the background; the caller hears within seconds.
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'gave up'>((resolve) => (timer = setTimeout(() => resolve('gave up'), BROKER_WAIT_MS)));
    try {
      if ((await Promise.race([user.settled(), gaveUp])) === 'gave up') return unreachable();
    } catch {
      return unreachable();
    } finally {
      clearTimeout(timer);
    }
    return then();
  };

  const spec = toolSpecs(limits.maxMessageLength);

  registerTool(
    'enter_queue',
    spec.enter_queue,
    forUserOrNew((user, args: PreferenceArgs & TokenArg) => attempt(user, enterQueueEvent(args), () => queueResult(user))),
  );

  registerTool(
    'send_message',
    spec.send_message,
    forUser(async (user, args: { room_id: string; message: string } & TokenArg) => {
      const started = performance.now();
      const event = sendEvent(args, started);
      const snapshot = user.actor.getSnapshot();
      if (!snapshot.can(event)) return refuse(whyNot(snapshot, event));
      const sent = await user.sendMessage(event).catch(() => undefined);
      if (!sent) return unreachable();
      if (sent.status === 'closed')
        return refuse({ reason: 'not_chatting', sentence: 'The message could not be delivered: the room closed. Call get_status.' });
      metrics.relayed((performance.now() - started) / 1000);
      return answer({ status: 'sent', message_id: sent.receipt.messageId, seq: sent.receipt.seq });
    }),
  );

  registerTool(
    'leave_chat',
    spec.leave_chat,
    forUser((user, args: LeaveArgs & TokenArg) => {
      if (!args.grace) return attempt(user, leaveEvent(args), () => answer({ status: 'idle' }));
      if (args.block === true || args.report !== undefined)
        return refuse({
          reason: 'invalid_arguments',
          sentence: 'grace cannot go with block or report: leave_chat with block or report leaves at once. Call it without grace.',
        });
      const snapshot = user.actor.getSnapshot();
      // Nothing to leave: a page closed while idle is no mistake.
      if (snapshot.matches('idle')) return answer({ status: 'idle' });
      const withinS = Math.ceil(snapshot.context.presence.pageGraceMs / 1000);
      return attempt(user, leaveEvent(args), () => answer({ status: 'leaving', within_s: withinS }));
    }),
  );

  registerTool(
    'next',
    spec.next,
    forUserOrNew((user, args: PreferenceArgs & VerdictArgs & TokenArg) => attempt(user, nextEvent(args), () => queueResult(user))),
  );

  registerTool(
    'get_status',
    spec.get_status,
    forUser(async (user) => answer({ ...(await user.status()), ...names(user) })),
  );

  registerTool(
    'wait_for_events',
    spec.wait_for_events,
    forUser(async ({ events }, { after, timeout_s }: { after?: string; timeout_s: number } & TokenArg, extra) => {
      const cursor = after === undefined ? null : events.parseCursor(after);
      if (cursor === undefined)
        return refuse({
          reason: 'bad_cursor',
          sentence: `after ${JSON.stringify(after)} is not a cursor from wait_for_events. Pass the cursor of your last call, or leave after out.`,
        });
      // A call the client gave up on (or, the oldest of too many held, a newer call replaced) takes nothing.
      const takesNothing = (superseded: boolean) =>
        answer({
          events: [],
          cursor: String(cursor ?? events.last),
          ...(superseded && {
            note: `A newer wait_for_events replaced this call: at most ${limits.maxWaitsPerUser} may be held for one user at once.`,
          }),
        });
      // Held at the HTTP layer before it came here, and replaced there.
      if (users.replacedWhileHeld(extra)) return takesNothing(true);
      // A call that would be held counts against what its client address may hold.
      const slot = events.isEmptyAfter(cursor) ? users.holdWait(extra) : undefined;
      if (slot !== undefined && typeof slot !== 'function') return refuse(slot);
      const deadline = Date.now() + timeout_s * 1000;
      const end = await withProgress(extra, timeout_s, async () => {
        // Without `after`, a call reads what is untaken: a call beside it may have taken
        // the event that woke both, and then this one waits on.
        for (;;) {
          const held = await events.hold(cursor, Math.max(0, deadline - Date.now()), extra.mcpReq.signal, limits.maxWaitsPerUser);
          if (held !== 'ready' || !events.isEmptyAfter(cursor) || Date.now() >= deadline) return held;
        }
      }).finally(slot);
      if (end === 'aborted' || end === 'superseded' || extra.mcpReq.signal.aborted) return takesNothing(end === 'superseded');
      return answer(eventsPage(events, cursor));
    }),
  );
}
