/**
 * What a replayed path acts on: a world of people using the chat. The same paths run
 * in two worlds — the actor system in memory (memoryWorld) and a real server with
 * real MCP clients over HTTP (httpWorld) — so every step is written once, as what
 * a person or the network does, and checked by what a person observes.
 *
 * A person is a client, not a user: it has no user until its first enter_queue (or
 * next) makes one, named by the `user_token` that call answers. Its sessions come and
 * go; its user lives until it shows no sign of life for too long (see machines/presence.ts).
 */
import type { AnyActorRef } from 'xstate';

export interface QueueAnswer {
  status: 'waiting' | 'matched';
  position?: number;
  widens_in_s?: number;
  room_id?: string;
  common_interests?: string[];
  partner_is?: 'agent' | 'human';
}

/** What enter_queue and next may say about whom to meet, as the tools name it. */
export interface PreferenceArgs {
  interests?: string[];
  i_am?: 'agent' | 'human';
  meet?: 'anyone' | 'agents' | 'humans';
}

/** What leave_chat and next may do to the partner, as the tools name it. */
export interface VerdictArgs {
  block?: boolean;
  report?: string;
}

export interface Status {
  /**
   * `none`: the person has no user yet (get_status refused: call enter_queue first);
   * `ended`: its user is gone (its token names no user, or the server stopped).
   */
  state: 'none' | 'idle' | 'waiting' | 'chatting' | 'ended';
  room_id?: string;
  common_interests?: string[];
  partner_is?: 'agent' | 'human';
  position?: number;
  widens_in_s?: number;
}

/** What leave_chat with `grace` answers while there is something to leave. */
export interface LeavingAnswer {
  status: 'leaving' | 'idle';
  within_s?: number;
}

export interface SentAnswer {
  status: 'sent';
  message_id: string;
  seq: number;
}

export interface Notification {
  method: string;
  params: Record<string, unknown>;
}

/**
 * The timers a world runs with, in ms: the users' presence timers (see
 * machines/presence.ts) and the matching timers (see machines/queue.ts and user.ts).
 */
export interface Timers {
  /** Silent this long, a waiting user is paired with no one (it keeps its place). */
  pairableMs: number;
  /** Silent this long, a user ends (`timeout`). */
  idleMs: number;
  /** This long after its last session went away, a user that did not call again ends (`disconnected`). */
  graceMs: number;
  /** This long after leave_chat with `grace` (a page closed or reloaded), a user that did not call again leaves (`left`). */
  pageGraceMs: number;
  /** A user with interests waits this long for someone sharing one, then may meet anyone. */
  interestWaitMs: number;
  /** A user avoids the partner it left this long (idle, then in the queue). */
  rematchAfterMs: number;
}

/**
 * Matching timers longer than any path: for the charts whose paths never wait them out,
 * so that no interest wait or rematch time runs out between two steps.
 */
export const MATCHING_NEVER = { interestWaitMs: 3_600_000, rematchAfterMs: 3_600_000 } as const satisfies Partial<Timers>;

/** One person at one client: the tools, what it was told, and the ways to go and come back. */
export interface Person {
  readonly name: string;
  /** The server-side id of its user (white box: the replay maps chart ids to people with it). */
  readonly userId: string;
  enterQueue(args?: PreferenceArgs): Promise<QueueAnswer>;
  next(args?: PreferenceArgs & VerdictArgs): Promise<QueueAnswer>;
  /** leave_chat, naming `roomId` when given; `verdict` blocks or reports the (last) partner. */
  leave(roomId?: string, verdict?: VerdictArgs): Promise<{ status: 'idle' }>;
  /** leave_chat with `grace: true`, as the page sends it when it is closed or reloaded. */
  leaveWithGrace(): Promise<LeavingAnswer>;
  send(roomId: string, text: string): Promise<SentAnswer>;
  /**
   * `get_status`. A call is a sign of life: a person that went quiet must not be asked
   * unless it means to come back (`comeBack`), or its user is gone anyway.
   */
  status(): Promise<Status>;
  /** What it was told, in order, over every session it had. */
  readonly notifications: readonly Notification[];
  /** Resolves once `count` notifications in all have arrived (rejects after a while). */
  notified(count: number): Promise<void>;
  /** Ends its session as a polite client does (DELETE /mcp): its user, left with no session, is detached. */
  end(): Promise<void>;
  /** Goes quiet without a word: its streams and calls close, no DELETE is sent, and it calls no more. */
  vanish(): Promise<void>;
  /**
   * After `vanish` or `end`: a new session whose first call is get_status with its
   * `user_token` (and whose stream opens, for a client that keeps one). Answers get_status.
   */
  comeBack(): Promise<Status>;
  /** Resolves once the server has ended its user (a sync point, not an assertion). */
  gone(): Promise<void>;
  /** Opens one link (a stream) of its session, which it had none of. */
  openLink(): Promise<void>;
  /** Cuts its open link, as a dropped connection does. */
  closeLink(): Promise<void>;
  /** The stream drops as on a network fault, and the client reopens it. */
  dropStream(): Promise<void>;
  /** The server-side user actor (white box). */
  actor(): AnyActorRef;
}

export interface PersonOptions {
  /**
   * - `sdk`: an MCP SDK client on Streamable HTTP, which keeps its GET stream open;
   * - `bare`: a Streamable HTTP session with nothing open, whose stream the replay
   *   opens and cuts (`openLink`, `closeLink`);
   * - `legacy`: an MCP SDK client on the legacy HTTP+SSE transport, whose one stream
   *   cannot be resumed once it drops (`closeLink`): its session ends with it;
   * - `per-call`: a client that opens a fresh session for every tool call, passes its
   *   `user_token` on every call after the first, never opens a stream, and learns
   *   what happens by holding `wait_for_events` with `after` cursors (the Claude
   *   connector pattern).
   */
  client: 'sdk' | 'bare' | 'legacy' | 'per-call';
}

export interface World {
  readonly kind: 'memory' | 'http';
  /** The timers its users and queue run with. */
  readonly timers: Timers;
  /** A new person connects (it has no user until it enters). */
  join(name: string, options?: PersonOptions): Promise<Person>;
  /** The queue actor (white box). */
  queue(): AnyActorRef;
  /** A room actor by its id (white box); it stays readable after the room ended. */
  room(roomId: string): AnyActorRef;
  health(): Promise<{ queue: number; rooms: number; users: number }>;
  /** How many reports of a partner the operator has had (the server's metrics). */
  reports(): Promise<number>;
  /** Stops the server as SIGTERM does: rooms closed with `shutdown`, every user and session ended. */
  shutdown(): Promise<void>;
  /** Polls a check until it holds: effects over HTTP land a moment after the call returns. */
  eventually(check: () => void | Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** The refusal of a call made before the person has a user. */
export const NO_USER = /call enter_queue first/;
/** The refusal of a call whose user_token names no user (any more). */
export const NO_SUCH_USER = /names no user/;

export { eventually } from '../support/eventually.js';
