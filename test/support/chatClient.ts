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

export class ChatClient {
  readonly notifications: RecordedNotification[] = [];
  readonly #waiters = new Set<() => void>();

  private constructor(
    readonly client: Client,
    readonly transport: StreamableHTTPClientTransport,
  ) {}

  static async connect(url: URL, name = 'test-client'): Promise<ChatClient> {
    const client = new Client({ name, version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(url);
    const chat = new ChatClient(client, transport);
    client.fallbackNotificationHandler = async (notification) => {
      chat.notifications.push({ method: notification.method, params: (notification.params ?? {}) as Record<string, unknown> });
      for (const wake of chat.#waiters) wake();
    };
    await client.connect(transport);
    return chat;
  }

  get sessionId(): string {
    const id = this.transport.sessionId;
    if (!id) throw new Error('not connected');
    return id;
  }

  /** Calls a tool; answers its structured result, or throws with the refusal text. */
  async call(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const result = (await this.client.callTool({ name, arguments: args })) as CallToolResult;
    if (result.isError) throw new ToolRefusal(name, textOf(result));
    return result.structuredContent as Record<string, unknown>;
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
  constructor(readonly tool: string, readonly sentence: string) {
    super(`${tool} refused: ${sentence}`);
  }
}

function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}
