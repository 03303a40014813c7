/**
 * The people of the HTTP world, each a real client of the server under test: an MCP SDK
 * client on Streamable HTTP, or a session opened with plain fetch whose stream the
 * replay opens and cuts (the legacy HTTP+SSE client is in httpLegacyPerson.ts, the
 * per-call client in httpPerCallPerson.ts). What they share is here: the server, how a
 * person learns its `user_token` and finds its user, and a plain tool call.
 */
import type { AnyActorRef } from 'xstate';
import type { ChatUser } from '../../src/chat/chatUser.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import type { ChatMessage } from '../../src/mcp/notifications.js';
import { ChatClient, ToolRefusal } from '../support/chatClient.js';
import { jsonHeaders, rpcAnswerOf } from '../support/jsonRpcWire.js';
import { openRawSession } from '../support/rawSession.js';
import {
  eventually,
  type LeavingAnswer,
  NO_SUCH_USER,
  NO_USER,
  type Notification,
  type Person,
  type PreferenceArgs,
  type QueueAnswer,
  type SentAnswer,
  type Status,
  type VerdictArgs,
} from './world.js';

/** What the people of one world share: its server, and whether it stopped. */
export interface Shared {
  readonly server: RunningChatServer;
  stopped: boolean;
}

/** A tool's answer: its structured result, or the sentence of its refusal. */
export type ToolAnswer = { result: Record<string, unknown> } | { refusal: string };

/**
 * One `tools/call` with plain fetch: in a session, or (no `sessionId`) on its own, as
 * hosts that keep no session send them. Throws when the server answers no tool result.
 */
export async function callTool(
  shared: Shared,
  {
    sessionId,
    id = 1,
    name,
    args,
    signal,
  }: { sessionId?: string; id?: number; name: string; args: Record<string, unknown>; signal?: AbortSignal },
): Promise<ToolAnswer> {
  const response = await fetch(shared.server.url, {
    method: 'POST',
    headers: jsonHeaders(sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
    signal,
  });
  const text = await response.text();
  const result = rpcAnswerOf(text)?.result as
    | { structuredContent?: Record<string, unknown>; isError?: boolean; content?: { text?: string }[] }
    | undefined;
  if (result?.isError) return { refusal: (result.content ?? []).map((part) => part.text ?? '').join('') };
  if (!result?.structuredContent) throw new Error(`${name} answered HTTP ${response.status}: ${text}`);
  return { result: result.structuredContent };
}

export async function settleCount(list: () => readonly unknown[], count: number, name: string): Promise<void> {
  await eventually(() => {
    if (list().length < count) throw new Error(`${name} has ${list().length} notifications, not ${count}`);
  });
}

/**
 * A person's user as the server holds it, found by the token its first enter_queue
 * answered. It is kept once found, so the replay still reads its actor after it ended.
 */
export class UserHandle {
  token: string | undefined;
  #user: ChatUser<ChatMessage> | undefined;

  constructor(
    readonly name: string,
    readonly shared: Shared,
  ) {}

  /** Keeps the token a call answered (the tools answer it from enter_queue, next and get_status). */
  learn(token: unknown): void {
    if (typeof token !== 'string' || token === this.token) return;
    this.token = token;
    this.#user = this.shared.server.services.users.byToken(token);
    if (!this.#user) throw new Error(`${this.name}'s user_token names no user on the server`);
  }

  /** A structured result with its `user_token` kept here and left out, as ChatClient does. */
  strip(result: Record<string, unknown>): Record<string, unknown> {
    const { user_token: token, ...rest } = result;
    this.learn(token);
    return rest;
  }

  get user(): ChatUser<ChatMessage> {
    if (!this.#user) throw new Error(`${this.name} has no user yet`);
    return this.#user;
  }

  actor(): AnyActorRef {
    return this.user.actor;
  }

  /** The server ended the user (a sync point). */
  async gone(): Promise<void> {
    await eventually(() => {
      if (this.actor().getSnapshot().status === 'active') throw new Error(`the server still holds ${this.name}'s user`);
    });
  }

  /**
   * What get_status says to a refusal: no user yet, or (asked with the token, as a
   * client does once its session says it has none) a user that is gone.
   */
  async statusAfter(refusal: string): Promise<Status> {
    if (NO_USER.test(refusal) && this.token === undefined) return { state: 'none' };
    if (NO_USER.test(refusal)) return this.probe();
    if (NO_SUCH_USER.test(refusal)) return { state: 'ended' };
    throw new Error(`get_status refused: ${refusal}`);
  }

  /**
   * get_status with the token, on its own (no session). A call is a sign of life: it is
   * asked when the user is gone, or the client means to come back.
   */
  async probe(): Promise<Status> {
    if (this.shared.stopped) return { state: 'ended' };
    try {
      const answer = await callTool(this.shared, { name: 'get_status', args: { user_token: this.token } });
      return 'refusal' in answer ? this.statusAfter(answer.refusal) : (this.strip(answer.result) as unknown as Status);
    } catch (error) {
      if (this.shared.stopped && error instanceof TypeError) return { state: 'ended' };
      throw error;
    }
  }
}

/**
 * A person behind real MCP SDK clients, each of which keeps its GET stream open: the
 * first, and one more each time it comes back (passing its token on its first call).
 */
export class StreamPerson implements Person {
  readonly #clients: ChatClient[];
  #closed = false;
  readonly #user: UserHandle;

  private constructor(
    readonly name: string,
    client: ChatClient,
    readonly shared: Shared,
  ) {
    this.#clients = [client];
    this.#user = new UserHandle(name, shared);
  }

  static async connect(name: string, shared: Shared): Promise<StreamPerson> {
    return new StreamPerson(name, await ChatClient.connect(shared.server.url, { name }), shared);
  }

  get client(): ChatClient {
    return this.#clients.at(-1)!;
  }

  get userId(): string {
    return this.#user.user.userId;
  }

  get notifications(): readonly Notification[] {
    return this.#clients.flatMap((client) => client.notifications);
  }

  actor(): AnyActorRef {
    return this.#user.actor();
  }

  async #call(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.#closed) throw new Error(`${this.name}'s client is closed`);
    const result = await this.client.call(name, args);
    this.#user.learn(this.client.token);
    return result;
  }

  enterQueue = async (args: PreferenceArgs = {}) => (await this.#call('enter_queue', { ...args })) as unknown as QueueAnswer;
  next = async (args: PreferenceArgs & VerdictArgs = {}) => (await this.#call('next', { ...args })) as unknown as QueueAnswer;
  leave = async (roomId?: string, verdict: VerdictArgs = {}) =>
    (await this.#call('leave_chat', { ...(roomId !== undefined && { room_id: roomId }), ...verdict })) as { status: 'idle' };
  leaveWithGrace = async () => (await this.#call('leave_chat', { grace: true })) as unknown as LeavingAnswer;
  send = async (roomId: string, text: string) =>
    (await this.#call('send_message', { room_id: roomId, message: text })) as unknown as SentAnswer;

  async status(): Promise<Status> {
    if (this.#closed || this.shared.stopped) return this.#user.probe();
    try {
      return (await this.#call('get_status')) as unknown as Status;
    } catch (error) {
      if (error instanceof ToolRefusal) return this.#user.statusAfter(error.sentence);
      throw error;
    }
  }

  notified = (count: number) => settleCount(() => this.notifications, count, this.name);

  async end(): Promise<void> {
    this.#closed = true;
    await this.client.end();
  }

  async vanish(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.client.client.close();
  }

  async comeBack(): Promise<Status> {
    if (!this.#closed) throw new Error(`${this.name} never went`);
    this.#clients.push(await ChatClient.connect(this.shared.server.url, { name: this.name }));
    this.#closed = false;
    return (await this.#call('get_status', { user_token: this.#user.token })) as unknown as Status;
  }

  gone = () => this.#user.gone();

  async openLink(): Promise<void> {
    throw new Error('an SDK client opens its stream by itself; use a bare person');
  }

  async closeLink(): Promise<void> {
    throw new Error('an SDK client reopens a cut stream by itself; use dropStream, or a bare person');
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
 * A session opened with plain fetch and nothing else open: its one link is a GET
 * stream, cut by aborting its fetch. It reads none of what the stream carries.
 */
export class RawPerson implements Person {
  readonly notifications: Notification[] = [];
  #sessionId: string | undefined;
  #stream: AbortController | undefined;
  #calls = 1;
  readonly #user: UserHandle;

  private constructor(
    readonly name: string,
    sessionId: string,
    readonly shared: Shared,
  ) {
    this.#sessionId = sessionId;
    this.#user = new UserHandle(name, shared);
  }

  static async open(name: string, shared: Shared): Promise<RawPerson> {
    return new RawPerson(name, await openRawSession(shared.server.url), shared);
  }

  get userId(): string {
    return this.#user.user.userId;
  }

  actor(): AnyActorRef {
    return this.#user.actor();
  }

  async #call(name: string, args: Record<string, unknown>): Promise<ToolAnswer> {
    if (!this.#sessionId) throw new Error(`${this.name} ended its session`);
    const answer = await callTool(this.shared, { sessionId: this.#sessionId, id: ++this.#calls, name, args });
    return 'result' in answer ? { result: this.#user.strip(answer.result) } : answer;
  }

  async #result(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const answer = await this.#call(name, args);
    if ('refusal' in answer) throw new Error(`${name} refused: ${answer.refusal}`);
    return answer.result;
  }

  enterQueue = async (args: PreferenceArgs = {}) => (await this.#result('enter_queue', { ...args })) as unknown as QueueAnswer;
  next = async (args: PreferenceArgs & VerdictArgs = {}) => (await this.#result('next', { ...args })) as unknown as QueueAnswer;
  leave = async (roomId?: string, verdict: VerdictArgs = {}) =>
    (await this.#result('leave_chat', { ...(roomId !== undefined && { room_id: roomId }), ...verdict })) as { status: 'idle' };
  leaveWithGrace = async () => (await this.#result('leave_chat', { grace: true })) as unknown as LeavingAnswer;
  send = async (roomId: string, text: string) =>
    (await this.#result('send_message', { room_id: roomId, message: text })) as unknown as SentAnswer;

  async status(): Promise<Status> {
    if (!this.#sessionId || this.shared.stopped) return this.#user.probe();
    const answer = await this.#call('get_status', {});
    return 'refusal' in answer ? this.#user.statusAfter(answer.refusal) : (answer.result as unknown as Status);
  }

  notified = (count: number) => settleCount(() => this.notifications, count, this.name);

  /** DELETE: the session ends (and its stream with it). */
  async end(): Promise<void> {
    const sessionId = this.#sessionId;
    if (!sessionId) throw new Error(`${this.name} has no session to end`);
    this.#sessionId = undefined;
    await fetch(this.shared.server.url, { method: 'DELETE', headers: jsonHeaders(sessionId) }).then((r) => r.text());
    this.#stream?.abort(new Error('the session ended'));
    this.#stream = undefined;
  }

  async vanish(): Promise<void> {
    if (this.#stream) await this.closeLink();
  }

  /** A new session: its GET stream opens, then get_status with the token binds it to the user. */
  async comeBack(): Promise<Status> {
    if (this.#stream) throw new Error(`${this.name} never went`);
    this.#sessionId = await openRawSession(this.shared.server.url);
    await this.openLink();
    return this.#result('get_status', { user_token: this.#user.token }) as unknown as Status;
  }

  gone = () => this.#user.gone();

  async openLink(): Promise<void> {
    if (!this.#sessionId) throw new Error(`${this.name} has no session to open a stream in`);
    if (this.#stream) throw new Error(`${this.name} has a stream open already`);
    const abort = new AbortController();
    const response = await fetch(this.shared.server.url, {
      headers: { ...jsonHeaders(this.#sessionId), accept: 'text/event-stream' },
      signal: abort.signal,
    });
    if (!response.ok) throw new Error(`${this.name}'s stream was refused: HTTP ${response.status}`);
    // The body is left unread until the stream is cut: it stays open.
    void response.body?.pipeTo(new WritableStream()).catch(() => {});
    this.#stream = abort;
  }

  async closeLink(): Promise<void> {
    const abort = this.#stream;
    if (!abort) throw new Error(`${this.name} has no stream to cut`);
    this.#stream = undefined;
    abort.abort(new Error('cut by the replay'));
  }

  async dropStream(): Promise<void> {
    throw new Error('a raw session has no stream that comes back by itself; use closeLink and openLink');
  }

  async release(): Promise<void> {
    this.#stream?.abort(new Error('released'));
    this.#stream = undefined;
  }
}
