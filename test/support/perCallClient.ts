/**
 * Clients of hosts that keep no MCP session between tool calls, as tests drive them:
 * - `SessionPerCallClient`, the Claude connector pattern: a fresh session for every
 *   call (initialize, the call, DELETE) through the official v1 SDK client;
 * - `SessionlessClient`, the ChatGPT pattern: `tools/call` POSTed with no
 *   `Mcp-Session-Id` at all, over plain fetch, reading a JSON or an SSE answer.
 * Both act by the `user_token` the server returned, which they pass on every call, as
 * an agent that follows the tool descriptions does, and read events with
 * `wait_for_events` from the cursor of their last read.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ToolRefusal } from './chatClient.js';
import { jsonHeaders, rpcAnswerOf } from './rawSession.js';

/** One entry of a `wait_for_events` page. */
export interface ChatEvent {
  id: string;
  method: string;
  params: Record<string, unknown>;
}

/** A client that names its user by token on every call, whatever carries the call. */
export abstract class TokenClient {
  /** The user_token the server returned, once it has (kept as an agent keeps it). */
  token: string | undefined;
  /** The cursor of the last `wait_for_events` answer. */
  cursor: string | undefined;
  /** Tool calls made so far. */
  calls = 0;

  constructor(protected readonly url: URL) {}

  /** Sends one `tools/call` however this kind of host does. */
  protected abstract send(name: string, args: Record<string, unknown>): Promise<CallToolResult>;

  /**
   * Calls a tool with the user_token (once known); answers its structured result less
   * the token, which is kept in `token`, or throws the refusal.
   */
  async call(name: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const result = await this.#send(name, args);
    if (result.isError) throw new ToolRefusal(name, textOf(result));
    const { user_token: token, ...rest } = (result.structuredContent ?? {}) as Record<string, unknown>;
    if (typeof token === 'string') this.token = token;
    return rest;
  }

  /** Calls a tool that must refuse; answers the refusal's sentence. */
  async refusal(name: string, args: Record<string, unknown> = {}): Promise<string> {
    const result = await this.#send(name, args);
    if (!result.isError) throw new Error(`${name} was expected to refuse but answered ${JSON.stringify(result.structuredContent)}`);
    return textOf(result);
  }

  /** `wait_for_events` after the last cursor (none before the first read); keeps the new cursor. */
  async waitForEvents(timeoutS = 5): Promise<ChatEvent[]> {
    const page = (await this.call('wait_for_events', { ...(this.cursor !== undefined && { after: this.cursor }), timeout_s: timeoutS })) as {
      events: ChatEvent[];
      cursor: string;
    };
    this.cursor = page.cursor;
    return page.events;
  }

  #send(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    this.calls += 1;
    return this.send(name, this.token === undefined || 'user_token' in args ? args : { ...args, user_token: this.token });
  }
}

/** The Claude connector pattern: every call in a session of its own, ended with DELETE. */
export class SessionPerCallClient extends TokenClient {
  /** The session each call ran in, in order. */
  readonly sessionIds: string[] = [];
  /** The HTTP status of each DELETE that ended a session. */
  readonly deleteStatuses: number[] = [];

  protected async send(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    const client = new Client({ name: 'session-per-call', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(this.url, {
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (init?.method === 'DELETE') this.deleteStatuses.push(response.status);
        return response;
      },
    });
    await client.connect(transport);
    this.sessionIds.push(transport.sessionId ?? '');
    try {
      return (await client.callTool({ name, arguments: args })) as CallToolResult;
    } finally {
      await transport.terminateSession();
      await client.close();
    }
  }
}

/** The ChatGPT pattern: `tools/call` with no session, answered on its own. */
export class SessionlessClient extends TokenClient {
  /** The `Mcp-Session-Id` header of each answer (null when it had none, as it should). */
  readonly sessionHeaders: (string | null)[] = [];
  #id = 0;

  protected async send(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    const id = ++this.#id;
    const response = await fetch(this.url, {
      method: 'POST',
      headers: jsonHeaders(),
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
    });
    this.sessionHeaders.push(response.headers.get('mcp-session-id'));
    const text = await response.text();
    const answer = rpcAnswerOf(text);
    if (!response.ok || !answer?.result) throw new Error(`tools/call ${name} without a session: HTTP ${response.status} ${text}`);
    if (answer.id !== id) throw new Error(`tools/call ${name} (id ${id}) was answered with id ${JSON.stringify(answer.id)}`);
    return answer.result as unknown as CallToolResult;
  }
}

function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}
