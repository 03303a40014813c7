/**
 * The people of the HTTP world, each a real client of the server under test: an MCP SDK
 * client on Streamable HTTP, or a session opened with plain fetch whose links the replay
 * opens one by one (the legacy HTTP+SSE client is in httpLegacyPerson.ts).
 */
import type { AnyActorRef } from 'xstate';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { jsonHeaders, openRawSession, rpcAnswerOf } from '../support/rawSession.js';
import { eventually, type Notification, type Person, type QueueAnswer, type SentAnswer, type Status } from './world.js';

/** What the people of one world share: its server, and whether it stopped. */
export interface Shared {
  readonly server: RunningChatServer;
  stopped: boolean;
}

/** Whether the server still holds the session (a sync point, not what a user sees). */
export const holds = (shared: Shared, sessionId: string) => !shared.stopped && shared.server.services.sessions.get(sessionId) !== undefined;

export function serverUser(shared: Shared, sessionId: string) {
  const session = shared.server.services.sessions.get(sessionId);
  if (!session) throw new Error(`the server holds no session ${sessionId}`);
  return session.user;
}

/**
 * What a client sees of a session it no longer speaks for: 404 once the server ended
 * it, or no answer at all once the server stopped — either way, `ended`.
 */
export async function probe(shared: Shared, sessionId: string): Promise<Status> {
  try {
    const response = await fetch(shared.server.url, {
      method: 'POST',
      headers: jsonHeaders(sessionId),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_status', arguments: {} } }),
    });
    const text = await response.text();
    if (response.status === 404) return { state: 'ended' };
    const result = resultOf(text)?.structuredContent as Status | undefined;
    if (!result) throw new Error(`get_status answered HTTP ${response.status}: ${text}`);
    return result;
  } catch (error) {
    if (shared.stopped && error instanceof TypeError) return { state: 'ended' };
    throw error;
  }
}

/** The JSON-RPC result in an answer, sent as JSON or as an SSE stream. */
export const resultOf = (text: string) => rpcAnswerOf(text)?.result;

export async function settleCount(list: readonly unknown[], count: number, name: string): Promise<void> {
  await eventually(() => {
    if (list.length < count) throw new Error(`${name} has ${list.length} notifications, not ${count}`);
  });
}

/** A person behind a real MCP SDK client, which keeps its GET stream open. */
export class StreamPerson implements Person {
  #closed = false;

  private constructor(
    readonly name: string,
    readonly client: ChatClient,
    readonly shared: Shared,
    readonly sessionId = client.sessionId,
    readonly user = serverUser(shared, sessionId),
    readonly userId = user.userId,
  ) {}

  static async connect(name: string, shared: Shared): Promise<StreamPerson> {
    return new StreamPerson(name, await ChatClient.connect(shared.server.url, { name }), shared);
  }

  get notifications(): readonly Notification[] {
    return this.client.notifications;
  }

  actor(): AnyActorRef {
    return this.user.actor;
  }

  enterQueue = async () => (await this.client.call('enter_queue')) as unknown as QueueAnswer;
  next = async () => (await this.client.call('next')) as unknown as QueueAnswer;
  leave = async (roomId?: string) => (await this.client.call('leave_chat', roomId === undefined ? {} : { room_id: roomId })) as { status: 'idle' };
  send = async (roomId: string, text: string) => (await this.client.call('send_message', { room_id: roomId, message: text })) as unknown as SentAnswer;

  async status(): Promise<Status> {
    if (this.#closed || this.shared.stopped) return probe(this.shared, this.sessionId);
    return (await this.client.call('get_status')) as unknown as Status;
  }

  notified = (count: number) => settleCount(this.client.notifications, count, this.name);

  async end(): Promise<void> {
    this.#closed = true;
    await this.client.end();
  }

  async vanish(): Promise<void> {
    this.#closed = true;
    await this.client.client.close();
  }

  async gone(): Promise<void> {
    await eventually(() => {
      if (holds(this.shared, this.sessionId)) throw new Error(`the server still holds ${this.name}'s session`);
    });
  }

  async openLink(): Promise<void> {
    throw new Error('an SDK client opens its stream by itself; use a person with links: "none"');
  }

  async closeLink(): Promise<void> {
    throw new Error('an SDK client reopens a cut stream by itself; use dropStream, or a person with links: "none"');
  }

  /** Cuts the GET stream as a network drop does; the SDK client reopens it with Last-Event-ID. */
  async dropStream(): Promise<void> {
    const { resumes, freshStreams } = this.client.stats;
    this.client.cutStream();
    await eventually(() => {
      if (this.client.stats.resumes + this.client.stats.freshStreams === resumes + freshStreams)
        throw new Error(`${this.name}'s client has not reopened its stream`);
    });
  }

  async release(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.client.client.close().catch(() => {});
  }
}

/**
 * A session opened with plain fetch and nothing else open: its links are a GET stream
 * (first) and a held `wait_for_events` call (second), each cut by aborting its fetch.
 */
export class RawPerson implements Person {
  readonly notifications: Notification[] = [];
  readonly #links: AbortController[] = [];
  #calls = 1;

  private constructor(
    readonly name: string,
    readonly sessionId: string,
    readonly shared: Shared,
    readonly user = serverUser(shared, sessionId),
    readonly userId = user.userId,
  ) {}

  static async open(name: string, shared: Shared): Promise<RawPerson> {
    return new RawPerson(name, await openRawSession(shared.server.url), shared);
  }

  actor(): AnyActorRef {
    return this.user.actor;
  }

  async #call(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const response = await fetch(this.shared.server.url, {
      method: 'POST',
      headers: jsonHeaders(this.sessionId),
      body: JSON.stringify({ jsonrpc: '2.0', id: ++this.#calls, method: 'tools/call', params: { name, arguments: args } }),
    });
    const text = await response.text();
    const result = resultOf(text);
    if (!result?.structuredContent || result.isError) throw new Error(`${name} answered ${text}`);
    return result.structuredContent;
  }

  enterQueue = async () => (await this.#call('enter_queue', {})) as unknown as QueueAnswer;
  next = async () => (await this.#call('next', {})) as unknown as QueueAnswer;
  leave = async (roomId?: string) => (await this.#call('leave_chat', roomId === undefined ? {} : { room_id: roomId })) as { status: 'idle' };
  send = async (roomId: string, text: string) => (await this.#call('send_message', { room_id: roomId, message: text })) as unknown as SentAnswer;

  async status(): Promise<Status> {
    if (!holds(this.shared, this.sessionId)) return probe(this.shared, this.sessionId);
    return (await this.#call('get_status', {})) as unknown as Status;
  }

  notified = (count: number) => settleCount(this.notifications, count, this.name);

  async end(): Promise<void> {
    await fetch(this.shared.server.url, { method: 'DELETE', headers: jsonHeaders(this.sessionId) }).then((r) => r.text());
  }

  async vanish(): Promise<void> {
    while (this.#links.length > 0) await this.closeLink();
  }

  async gone(): Promise<void> {
    await eventually(() => {
      if (holds(this.shared, this.sessionId)) throw new Error(`the server still holds ${this.name}'s session`);
    });
  }

  async openLink(): Promise<void> {
    const abort = new AbortController();
    const headers = jsonHeaders(this.sessionId);
    let request: Promise<Response>;
    if (this.#links.length === 0) {
      request = fetch(this.shared.server.url, { headers: { ...headers, accept: 'text/event-stream' }, signal: abort.signal });
    } else {
      // Held only while nothing is pending: take what is, then wait after it.
      const { cursor } = await this.#call('wait_for_events', { timeout_s: 0 });
      request = fetch(this.shared.server.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: ++this.#calls,
          method: 'tools/call',
          params: { name: 'wait_for_events', arguments: { after: cursor, timeout_s: 50 } },
        }),
        signal: abort.signal,
      });
    }
    const response = await request;
    if (!response.ok) throw new Error(`${this.name}'s link was refused: HTTP ${response.status}`);
    // The body is left unread until the link is cut: the stream or the call stays open.
    void response.body?.pipeTo(new WritableStream()).catch(() => {});
    this.#links.push(abort);
  }

  async closeLink(): Promise<void> {
    const abort = this.#links.pop();
    if (!abort) throw new Error(`${this.name} has no link to close`);
    abort.abort(new Error('cut by the replay'));
  }

  async dropStream(): Promise<void> {
    throw new Error('a raw session has no stream that comes back by itself; use closeLink and openLink');
  }

  async release(): Promise<void> {
    while (this.#links.length > 0) await this.closeLink();
  }
}
