/**
 * A real MCP SDK client for tests: Streamable HTTP, with every custom notification
 * recorded in order, and helpers that wait for what a user would wait for.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

export interface RecordedNotification {
  method: string;
  params: Record<string, unknown>;
}

export interface ChatClientOptions {
  name?: string;
  /** Record custom notifications (default true); off for clients that chat by tools alone. */
  listen?: boolean;
  /** Delay before the SDK reopens a lost stream, in ms (default 10). */
  reconnectDelayMs?: number;
  /** Holds every GET (the session stream) until this resolves. */
  streamGate?: Promise<void>;
}

export class ChatClient {
  readonly notifications: RecordedNotification[] = [];
  /** The user_token the server returned, once it has (kept here, as an agent keeps it). */
  token: string | undefined;
  readonly #waiters = new Set<() => void>();
  readonly #streams = new Set<AbortController>();
  /** How often this client's GET stream was cut, and reopened with `Last-Event-ID`. */
  readonly stats = { cuts: 0, resumes: 0, freshStreams: 0 };

  private constructor(
    readonly client: Client,
    readonly transport: StreamableHTTPClientTransport,
  ) {}

  static async connect(url: URL, options: ChatClientOptions | string = {}): Promise<ChatClient> {
    const {
      name = 'test-client',
      listen = true,
      reconnectDelayMs = 10,
      streamGate,
    } = typeof options === 'string' ? { name: options } : options;
    const client = new Client({ name, version: '1.0.0' });
    let chat: ChatClient | undefined;
    const transport = new StreamableHTTPClientTransport(url, {
      // Real fetch; GET streams get an abort switch so a test can cut them like a network would.
      fetch: async (input, init) => {
        if ((init?.method ?? 'GET') !== 'GET' || !chat) return fetch(input, init);
        await streamGate;
        const cut = new AbortController();
        chat.#streams.add(cut);
        if (new Headers(init?.headers).has('last-event-id')) chat.stats.resumes += 1;
        else chat.stats.freshStreams += 1;
        const signal = init?.signal ? AbortSignal.any([init.signal, cut.signal]) : cut.signal;
        return fetch(input, { ...init, signal });
      },
      reconnectionOptions: {
        initialReconnectionDelay: reconnectDelayMs,
        maxReconnectionDelay: Math.max(reconnectDelayMs, 200),
        reconnectionDelayGrowFactor: 1.5,
        maxRetries: 50,
      },
    });
    chat = new ChatClient(client, transport);
    const recorder = chat;
    if (listen) {
      client.fallbackNotificationHandler = async (notification) => {
        recorder.notifications.push({ method: notification.method, params: (notification.params ?? {}) as Record<string, unknown> });
        for (const wake of recorder.#waiters) wake();
      };
    }
    await client.connect(transport);
    return chat;
  }

  /** Cuts the open GET stream as a dropped connection would; the SDK then reconnects. */
  cutStream(): void {
    for (const stream of this.#streams) stream.abort(new Error('cut by the test'));
    if (this.#streams.size > 0) this.stats.cuts += 1;
    this.#streams.clear();
  }

  get sessionId(): string {
    const id = this.transport.sessionId;
    if (!id) throw new Error('not connected');
    return id;
  }

  /**
   * Calls a tool in this client's session; answers its structured result, or throws with
   * the refusal text. A `user_token` in the result is kept in `token` and left out of
   * what it answers, so results read as they did before users had tokens.
   */
  async call(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const result = (await this.client.callTool({ name, arguments: args })) as CallToolResult;
    if (result.isError) throw new ToolRefusal(name, textOf(result));
    const { user_token: token, ...rest } = result.structuredContent as Record<string, unknown>;
    if (typeof token === 'string') this.token = token;
    return rest;
  }

  /** Calls a tool that must refuse; answers the refusal's sentence. */
  async refusal(name: string, args: Record<string, unknown> = {}): Promise<string> {
    const result = (await this.client.callTool({ name, arguments: args })) as CallToolResult;
    if (!result.isError) throw new Error(`${name} was expected to refuse but answered ${JSON.stringify(result.structuredContent)}`);
    return textOf(result);
  }

  received(method: string): Record<string, unknown>[] {
    return this.notifications.filter((n) => n.method === method).map((n) => n.params);
  }

  /** Resolves once `count` notifications of `method` have arrived (or rejects after `ms`). */
  async waitFor(method: string, count = 1, ms = 5000): Promise<Record<string, unknown>[]> {
    const done = () => this.received(method).length >= count;
    if (!done()) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiters.delete(wake);
          reject(new Error(`timed out waiting for ${count} × ${method}; got ${JSON.stringify(this.notifications)}`));
        }, ms);
        const wake = () => {
          if (!done()) return;
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
    return this.received(method);
  }

  /** Ends the session as a polite client does: HTTP DELETE, then close. */
  async end(): Promise<void> {
    await this.transport.terminateSession();
    await this.client.close();
  }
}

export class ToolRefusal extends Error {
  constructor(
    readonly tool: string,
    readonly sentence: string,
  ) {
    super(`${tool} refused: ${sentence}`);
  }
}

function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}
