/**
 * The one client of hosts that keep no MCP session between tool calls, for the tests and
 * the bench alike: it names its user by the `user_token` the server returned, passed on
 * every call, and reads its news with `wait_for_events` from the cursor of its last read
 * — one page at a time (`waitForEvents`) or a poll held all along (`poll`). What carries
 * a call is the host's kind: `SessionPerCallClient` (the Claude connector pattern: a
 * fresh session per call, through the official v1 SDK client), `SessionlessClient` (the
 * ChatGPT pattern: one POST with no `Mcp-Session-Id`), or any `ToolSender` (the bench's).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ToolRefusal } from './chatClient.js';
import { jsonHeaders, rpcAnswerOf } from './jsonRpcWire.js';

/** One entry of a `wait_for_events` page. */
export interface ChatEvent {
  id: string;
  method: string;
  params: Record<string, unknown>;
}

/** Sends one `tools/call` however a kind of host does; answers the tool's result. */
export type ToolSender = (name: string, args: Record<string, unknown>, signal?: AbortSignal) => Promise<CallToolResult>;

export type EventHandler = (method: string, params: Record<string, unknown>, at: number) => void;

/** Pause after a failed poll, so that a server refusing polls is not hammered. */
const RETRY_MS = 100;
/** How long a test waits for an event by default. */
const UNTIL_MS = 8_000;

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
const textOf = (result: CallToolResult) => result.content.map((part) => (part.type === 'text' ? part.text : '')).join('');

export class TokenClient {
  /** The user_token the server returned, once it has (kept as an agent keeps it). */
  token: string | undefined;
  /** The cursor of the last `wait_for_events` answer. */
  cursor: string | undefined;
  /** Tool calls made so far. */
  calls = 0;
  /** Hears each event a held poll (`poll`) reads, with when it was read. */
  onNotification: EventHandler = () => {};
  /** Held polls that failed (one abandoned by `stop` is not a failure). */
  pollErrors = 0;
  firstPollError: string | undefined;
  readonly #stop = new AbortController();
  #polling: Promise<void> = Promise.resolve();
  readonly #sender: ToolSender | undefined;
  readonly #pollSender: ToolSender | undefined;

  /** Calls go through `sender` (or a subclass's `send`), reads through `pollWith`, if given; `cursor` is where reading starts. */
  constructor(sender?: ToolSender, options: { pollWith?: ToolSender; cursor?: string } = {}) {
    this.#sender = sender;
    this.#pollSender = options.pollWith;
    this.cursor = options.cursor;
  }

  /** Sends one `tools/call` however this kind of host does. */
  protected send(name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    if (!this.#sender) throw new Error('a TokenClient needs a sender, or a subclass that sends');
    return this.#sender(name, args, signal);
  }

  /** Calls a tool with the user_token (once known); answers its structured result less the token, kept in `token`, or throws the refusal. */
  async call(name: string, args: Record<string, unknown> = {}, signal?: AbortSignal, via?: ToolSender): Promise<Record<string, unknown>> {
    const result = await this.#send(name, args, signal, via);
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
  async waitForEvents(timeoutS = 5, signal?: AbortSignal): Promise<ChatEvent[]> {
    const args = { ...(this.cursor !== undefined && { after: this.cursor }), timeout_s: timeoutS };
    const page = await this.call('wait_for_events', args, signal, this.#pollSender);
    if (!Array.isArray(page.events) || typeof page.cursor !== 'string')
      throw new Error(`wait_for_events answered ${JSON.stringify(page).slice(0, 200)}`);
    this.cursor = page.cursor;
    return page.events as ChatEvent[];
  }

  /** Events until one of `method` arrives (or `ms` pass); answers all read. */
  async until(method: string, ms = UNTIL_MS): Promise<ChatEvent[]> {
    const seen: ChatEvent[] = [];
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      seen.push(...(await this.waitForEvents(Math.min(5, Math.max(0.1, (deadline - Date.now()) / 1000)))));
      if (seen.some((e) => e.method === method)) return seen;
    }
    throw new Error(`no ${method} within ${ms} ms; saw ${JSON.stringify(seen)}`);
  }

  /** Keeps one `wait_for_events` of `timeoutS` held, passing what it reads to `onNotification`, until `stop()`. */
  poll(timeoutS: number): void {
    this.#polling = this.#pollLoop(timeoutS);
  }

  async #pollLoop(timeoutS: number): Promise<void> {
    const { signal } = this.#stop;
    while (!signal.aborted) {
      try {
        const events = await this.waitForEvents(timeoutS, signal);
        const at = performance.now();
        for (const event of events) this.onNotification(event.method, event.params, at);
      } catch (error) {
        if (signal.aborted) return;
        this.pollErrors += 1;
        this.firstPollError ??= `wait_for_events: ${messageOf(error)}`;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  /** Stops polling: the poll held now is abandoned (its connection closes). Resolves once the loop ended. */
  stop(): Promise<void> {
    this.#stop.abort();
    return this.#polling;
  }

  #send(name: string, args: Record<string, unknown>, signal?: AbortSignal, via?: ToolSender): Promise<CallToolResult> {
    this.calls += 1;
    const withToken = this.token === undefined || 'user_token' in args ? args : { ...args, user_token: this.token };
    return via ? via(name, withToken, signal) : this.send(name, withToken, signal);
  }
}

/** The Claude connector pattern: every call in a session of its own, ended with DELETE. */
export class SessionPerCallClient extends TokenClient {
  /** The session each call ran in, in order. */
  readonly sessionIds: string[] = [];
  /** The HTTP status of each DELETE that ended a session. */
  readonly deleteStatuses: number[] = [];

  constructor(private readonly url: URL) {
    super();
  }

  protected override async send(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
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

/** The ChatGPT pattern: `tools/call` with no session, answered on its own; its n-th call goes to `urlFor(n)` (any process of several). */
export class SessionlessClient extends TokenClient {
  /** The `Mcp-Session-Id` header of each answer (null when it had none, as it should). */
  readonly sessionHeaders: (string | null)[] = [];
  readonly #urlFor: (call: number) => URL;
  #id = 0;

  constructor(url: URL | ((call: number) => URL)) {
    super();
    this.#urlFor = url instanceof URL ? () => url : url;
  }

  protected override async send(name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    const id = ++this.#id;
    const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
    const response = await fetch(this.#urlFor(id), { method: 'POST', headers: jsonHeaders(), body, ...(signal && { signal }) });
    this.sessionHeaders.push(response.headers.get('mcp-session-id'));
    const text = await response.text();
    const answer = rpcAnswerOf(text);
    if (!response.ok || !answer?.result) throw new Error(`tools/call ${name} without a session: HTTP ${response.status} ${text}`);
    if (answer.id !== id) throw new Error(`tools/call ${name} (id ${id}) was answered with id ${JSON.stringify(answer.id)}`);
    return answer.result as unknown as CallToolResult;
  }
}
