import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AnyActorRef } from 'xstate';
import { holds, serverUser, settleCount, type Shared } from './httpPeople.js';
import { eventually, type Notification, type Person, type QueueAnswer, type SentAnswer, type Status } from './world.js';

/**
 * A person behind a real MCP SDK client on the legacy HTTP+SSE transport (GET /sse,
 * POST /messages). Its one link is the SSE stream, and a dropped stream cannot resume.
 */
export class LegacyPerson implements Person {
  #dropped = false;

  private constructor(
    readonly name: string,
    readonly client: Client,
    readonly shared: Shared,
    readonly sessionId: string,
    readonly notifications: Notification[],
    readonly user = serverUser(shared, sessionId),
    readonly userId = user.userId,
  ) {}

  static async connect(name: string, shared: Shared): Promise<LegacyPerson> {
    const before = new Set([...shared.server.services.sessions.values()].map((session) => session.sessionId));
    const client = new Client({ name, version: '1.0.0' });
    const notifications: Notification[] = [];
    client.fallbackNotificationHandler = async ({ method, params }) => {
      notifications.push({ method, params: (params ?? {}) as Record<string, unknown> });
    };
    await client.connect(new SSEClientTransport(new URL('/sse', shared.server.url)));
    // The SDK keeps the session id to itself; the server made exactly one session since.
    const [sessionId] = [...shared.server.services.sessions.values()].map((s) => s.sessionId).filter((id) => !before.has(id));
    if (!sessionId) throw new Error('the server holds no new legacy session');
    return new LegacyPerson(name, client, shared, sessionId, notifications);
  }

  actor(): AnyActorRef {
    return this.user.actor;
  }

  async #call(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const result = (await this.client.callTool({ name, arguments: args })) as CallToolResult;
    if (result.isError || !result.structuredContent) throw new Error(`${name} answered ${JSON.stringify(result.content)}`);
    return result.structuredContent;
  }

  enterQueue = async () => (await this.#call('enter_queue')) as unknown as QueueAnswer;
  next = async () => (await this.#call('next')) as unknown as QueueAnswer;
  leave = async (roomId?: string) => (await this.#call('leave_chat', roomId === undefined ? {} : { room_id: roomId })) as { status: 'idle' };
  send = async (roomId: string, text: string) => (await this.#call('send_message', { room_id: roomId, message: text })) as unknown as SentAnswer;

  /** With its stream gone, a legacy client hears no answers: only a 404 says the session ended. */
  async status(): Promise<Status> {
    if (!this.#dropped) return (await this.#call('get_status')) as unknown as Status;
    if (holds(this.shared, this.sessionId)) throw new Error(`${this.name}'s stream dropped, so get_status has nowhere to answer`);
    try {
      const response = await fetch(new URL(`/messages?sessionId=${this.sessionId}`, this.shared.server.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_status', arguments: {} } }),
      });
      const text = await response.text();
      if (response.status === 404) return { state: 'ended' };
      throw new Error(`POST /messages answered HTTP ${response.status}: ${text}`);
    } catch (error) {
      if (this.shared.stopped && error instanceof TypeError) return { state: 'ended' };
      throw error;
    }
  }

  notified = (count: number) => settleCount(this.notifications, count, this.name);

  async end(): Promise<void> {
    throw new Error('a legacy SSE client has no DELETE: it ends by closing its stream');
  }

  async vanish(): Promise<void> {
    await this.closeLink();
  }

  async gone(): Promise<void> {
    await eventually(() => {
      if (holds(this.shared, this.sessionId)) throw new Error(`the server still holds ${this.name}'s session`);
    });
  }

  async openLink(): Promise<void> {
    throw new Error('a legacy SSE session has one stream, opened with the session, and it cannot come back');
  }

  /** The SSE stream drops (the client closes its EventSource), for good. */
  async closeLink(): Promise<void> {
    if (this.#dropped) throw new Error(`${this.name}'s stream already dropped`);
    this.#dropped = true;
    await this.client.close();
  }

  async dropStream(): Promise<void> {
    throw new Error('a legacy SSE stream cannot come back once it drops');
  }

  async release(): Promise<void> {
    if (this.#dropped) return;
    this.#dropped = true;
    await this.client.close().catch(() => {});
  }
}
