/**
 * What a replayed path acts on: a world of people using the chat. The same paths run
 * in two worlds — the actor system in memory (memoryWorld) and a real server with
 * real MCP SDK clients over HTTP (httpWorld) — so every step is written once, as what
 * a person or the network does, and checked by what a person observes.
 */
import type { AnyActorRef } from 'xstate';

export interface QueueAnswer {
  status: 'waiting' | 'matched';
  position?: number;
  room_id?: string;
}

export interface Status {
  state: 'idle' | 'waiting' | 'chatting' | 'ended';
  room_id?: string;
  position?: number;
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

/** One person at one session: the tools, the notifications, and the ways to go. */
export interface Person {
  readonly name: string;
  /** The server-side user id (white box: the replay maps chart ids to people with it). */
  readonly userId: string;
  enterQueue(): Promise<QueueAnswer>;
  next(): Promise<QueueAnswer>;
  leave(roomId?: string): Promise<{ status: 'idle' }>;
  send(roomId: string, text: string): Promise<SentAnswer>;
  /** `get_status`; `{ state: 'ended' }` once the session is gone (HTTP 404, or no server). */
  status(): Promise<Status>;
  readonly notifications: readonly Notification[];
  /** Resolves once `count` notifications in all have arrived (rejects after a while). */
  notified(count: number): Promise<void>;
  /** Ends the session as a polite client does (DELETE /mcp). */
  end(): Promise<void>;
  /** Goes without a word: its streams close and no DELETE is sent. */
  vanish(): Promise<void>;
  /** Resolves once the server has ended the session (a sync point, not an assertion). */
  gone(): Promise<void>;
  /** Opens one more request or stream of this session (the newest is closed first). */
  openLink(): Promise<void>;
  closeLink(): Promise<void>;
  /** The stream drops as on a network fault, and the client reopens it. */
  dropStream(): Promise<void>;
  /** The server-side user actor (white box). */
  actor(): AnyActorRef;
}

export interface PersonOptions {
  /**
   * - `sdk`: an MCP SDK client on Streamable HTTP, which keeps its GET stream open;
   * - `bare`: a Streamable HTTP session with nothing open, whose links the replay
   *   opens and cuts one by one (`openLink`, `closeLink`);
   * - `legacy`: an MCP SDK client on the legacy HTTP+SSE transport, whose one stream
   *   cannot be resumed once it drops (`closeLink`).
   */
  client: 'sdk' | 'bare' | 'legacy';
}

export interface World {
  readonly kind: 'memory' | 'http';
  /** A new person connects. */
  join(name: string, options?: PersonOptions): Promise<Person>;
  /** The queue actor (white box). */
  queue(): AnyActorRef;
  /** A room actor by its id (white box); it stays readable after the room ended. */
  room(roomId: string): AnyActorRef;
  health(): Promise<{ queue: number; rooms: number; sessions: number }>;
  /** Stops the server as SIGTERM does: rooms closed with `shutdown`, every session ended. */
  shutdown(): Promise<void>;
  /** Polls a check until it holds: effects over HTTP land a moment after the call returns. */
  eventually(check: () => void | Promise<void>): Promise<void>;
  close(): Promise<void>;
}

export { eventually } from '../support/eventually.js';
