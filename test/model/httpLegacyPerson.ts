import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AnyActorRef } from 'xstate';
import { type Shared, settleCount, UserHandle } from './httpPeople.js';
import type { LeavingAnswer, Notification, Person, PreferenceArgs, QueueAnswer, SentAnswer, Status, VerdictArgs } from './world.js';

/** One legacy session: its SDK client and what its stream carried. */
interface LegacyConnection {
  readonly client: Client;
  readonly notifications: Notification[];
}

/**
 * A person behind a real MCP SDK client on the legacy HTTP+SSE transport (GET /sse,
 * POST /messages). Its one link is the SSE stream; a dropped stream cannot resume, so
 * its session ends with it. It comes back with a new stream, passing its token.
 */
export class LegacyPerson implements Person {
  readonly #connections: LegacyConnection[];
  #dropped = false;
  readonly #user: UserHandle;

  private constructor(
    readonly name: string,
    connection: LegacyConnection,
    readonly shared: Shared,
  ) {
    this.#connections = [connection];
    this.#user = new UserHandle(name, shared);
  }

  static async connect(name: string, shared: Shared): Promise<LegacyPerson> {
    return new LegacyPerson(name, await LegacyPerson.#open(name, shared), shared);
  }

  static async #open(name: string, shared: Shared): Promise<LegacyConnection> {
    const client = new Client({ name, version: '1.0.0' });
    const notifications: Notification[] = [];
    client.fallbackNotificationHandler = async ({ method, params }) => {
      notifications.push({ method, params: (params ?? {}) as Record<string, unknown> });
    };
    await client.connect(new SSEClientTransport(new URL('/sse', shared.server.url)));
    return { client, notifications };
  }

  get #client(): Client {
    return this.#connections.at(-1)!.client;
  }

  get userId(): string {
    return this.#user.user.userId;
  }

  get notifications(): readonly Notification[] {
    return this.#connections.flatMap((connection) => connection.notifications);
  }

  actor(): AnyActorRef {
    return this.#user.actor();
  }

  async #callTool(name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
    if (this.#dropped) throw new Error(`${this.name}'s stream dropped, so ${name} has nowhere to answer`);
    return (await this.#client.callTool({ name, arguments: args })) as CallToolResult;
  }

  async #call(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const result = await this.#callTool(name, args);
    if (result.isError || !result.structuredContent) throw new Error(`${name} answered ${JSON.stringify(result.content)}`);
    return this.#user.strip(result.structuredContent);
  }

  enterQueue = async (args: PreferenceArgs = {}) => (await this.#call('enter_queue', { ...args })) as unknown as QueueAnswer;
  next = async (args: PreferenceArgs & VerdictArgs = {}) => (await this.#call('next', { ...args })) as unknown as QueueAnswer;
  leave = async (roomId?: string, verdict: VerdictArgs = {}) =>
    (await this.#call('leave_chat', { ...(roomId !== undefined && { room_id: roomId }), ...verdict })) as { status: 'idle' };
  leaveWithGrace = async () => (await this.#call('leave_chat', { grace: true })) as unknown as LeavingAnswer;
  send = async (roomId: string, text: string) =>
    (await this.#call('send_message', { room_id: roomId, message: text })) as unknown as SentAnswer;

  /** With its stream gone, a legacy client hears no answers: it asks with its token alone. */
  async status(): Promise<Status> {
    if (this.#dropped || this.shared.stopped) return this.#user.probe();
    const result = await this.#callTool('get_status');
    if (result.isError) return this.#user.statusAfter(result.content.map((part) => (part.type === 'text' ? part.text : '')).join(''));
    return this.#user.strip(result.structuredContent ?? {}) as unknown as Status;
  }

  notified = (count: number) => settleCount(() => this.notifications, count, this.name);

  async end(): Promise<void> {
    throw new Error('a legacy SSE client has no DELETE: it ends by closing its stream');
  }

  async vanish(): Promise<void> {
    if (!this.#dropped) await this.closeLink();
  }

  /** A new SSE stream (a new session), whose first call is get_status with the token. */
  async comeBack(): Promise<Status> {
    if (!this.#dropped) throw new Error(`${this.name}'s stream never dropped`);
    this.#connections.push(await LegacyPerson.#open(this.name, this.shared));
    this.#dropped = false;
    return (await this.#call('get_status', { user_token: this.#user.token })) as unknown as Status;
  }

  gone = () => this.#user.gone();

  async openLink(): Promise<void> {
    throw new Error('a legacy SSE session has one stream, opened with the session; come back with a new one');
  }

  /** The SSE stream drops (the client closes its EventSource), for good: its session ends. */
  async closeLink(): Promise<void> {
    if (this.#dropped) throw new Error(`${this.name}'s stream already dropped`);
    this.#dropped = true;
    await this.#client.close();
  }

  async dropStream(): Promise<void> {
    throw new Error('a legacy SSE stream cannot come back once it drops');
  }

  async release(): Promise<void> {
    if (this.#dropped) return;
    this.#dropped = true;
    await this.#client.close().catch(() => {});
  }
}
