/**
 * One chat session as the load generator drives it: plain JSON-RPC over undici with
 * keep-alive, no SDK. `open()` is what a session open costs a client — POST initialize,
 * POST notifications/initialized, then a GET that stays open as the session's SSE
 * stream — and notifications on that stream are parsed as they arrive. A LeanSession
 * never opened calls without `Mcp-Session-Id`, as a client that keeps no session does;
 * one of the `modern` era calls as the 2026-07-28 revision does (its headers and
 * `_meta` envelope on every call, never a session).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type Dispatcher, Pool } from 'undici';
import { ToolRefusal } from '../test/support/chatClient.js';
import {
  jsonHeaders,
  MODERN_META,
  modernHeaders,
  POST_HEADERS,
  PROTOCOL_VERSION,
  readRpcResponse,
  responseHeader,
  SseParser,
  WireError,
} from '../test/support/jsonRpcWire.js';
import type { ToolSender } from '../test/support/tokenClient.js';

/**
 * The kinds of token client (test/support/tokenClient.ts) the bench drives: `fresh-session`
 * makes every call in a session of its own (initialize, initialized, the call, DELETE);
 * `no-session` one POST without `Mcp-Session-Id`; `modern` one POST of the 2026-07-28 revision.
 */
export type TokenClientKind = 'fresh-session' | 'no-session' | 'modern';

/** Where a session's requests go: pooled keep-alive connections for POSTs, one each for streams. */
export interface LeanEndpoint {
  readonly posts: Dispatcher;
  readonly streams: Dispatcher;
  readonly path: string;
  /** Counts what the server answered, when someone is counting. */
  readonly tally?: WireTally;
}

/**
 * An endpoint on `url` (from `localAddress`, if given): `connections` pooled keep-alive
 * connections for POSTs (null: as many as needed), idle ones dropped after 4 s, before
 * Node's 5 s server-side keep-alive timeout, so that a POST never races the server closing
 * its connection; and one connection per open GET stream or held poll.
 */
export function leanEndpoint(url: URL, connections: number | null, options: { localAddress?: string; tally?: WireTally } = {}) {
  const { localAddress, tally } = options;
  const pool = (n: number | null) =>
    new Pool(url.origin, { connections: n, pipelining: 1, keepAliveTimeout: 4_000, ...(localAddress && { localAddress }) });
  const [posts, streams] = [pool(connections), pool(null)];
  return {
    posts,
    streams,
    path: url.pathname,
    ...(tally && { tally }),
    close: () => Promise.allSettled([posts.destroy(), streams.destroy()]),
  };
}

/** Requests the server answered (any status), and tool calls among them that got a JSON-RPC answer. */
export class WireTally {
  httpRequests = 0;
  toolCalls = 0;
}

export type NotificationHandler = (method: string, params: Record<string, unknown>, at: number) => void;

/** Longer than the longest wait_for_events the server holds (50 s). */
const REQUEST_TIMEOUT_MS = 60_000;

export class LeanSession {
  sessionId = '';
  streamOpen = false;
  onNotification: NotificationHandler = () => {};
  #nextId = 1;
  #headers: Record<string, string> = { ...POST_HEADERS, 'mcp-protocol-version': PROTOCOL_VERSION };
  #stream: Dispatcher.ResponseData['body'] | undefined;

  constructor(
    private readonly endpoint: LeanEndpoint,
    private readonly era: 'legacy' | 'modern' = 'legacy',
  ) {}

  /** Opens the session; `stream: false` leaves out the GET, for a session that lives one call. */
  async open({ stream = true } = {}): Promise<void> {
    const id = this.#nextId++;
    const clientInfo = { name: 'mcp-chat-bench', version: '1.0.0' };
    const init = await this.#send(
      { id, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo } },
      POST_HEADERS,
    );
    const sessionId = responseHeader(init, 'mcp-session-id');
    const answer = await readRpcResponse(init, id);
    if (!sessionId || answer.error) throw new WireError(`initialize failed: ${answer.error?.message ?? 'no mcp-session-id header'}`);
    this.sessionId = sessionId;
    this.#headers = jsonHeaders(sessionId);
    const initialized = await this.#send({ method: 'notifications/initialized' }, this.#headers);
    await initialized.body.dump();
    if (initialized.statusCode !== 202) throw new WireError(`notifications/initialized answered HTTP ${initialized.statusCode}`);
    if (stream) await this.#openStream();
  }

  /** A JSON-RPC POST of `message` (a DELETE without one) on the pooled connections, counted once answered. */
  async #send(message: object | undefined, headers: Record<string, string>, timeoutMs = REQUEST_TIMEOUT_MS, signal?: AbortSignal) {
    const response = await this.endpoint.posts.request({
      path: this.endpoint.path,
      method: message ? 'POST' : 'DELETE',
      headers,
      ...(message && { body: JSON.stringify({ jsonrpc: '2.0', ...message }) }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(signal && { signal }),
    });
    if (this.endpoint.tally) this.endpoint.tally.httpRequests += 1;
    return response;
  }

  async #openStream(): Promise<void> {
    const { 'content-type': _type, ...headers } = this.#headers;
    const request = { path: this.endpoint.path, method: 'GET', headers: { ...headers, accept: 'text/event-stream' } } as const;
    const response = await this.endpoint.streams.request({ ...request, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: 0 });
    if (response.statusCode !== 200)
      throw new WireError(`GET stream answered HTTP ${response.statusCode}: ${(await response.body.text()).slice(0, 200)}`);
    const parser = new SseParser((data) => this.#onData(data));
    this.#stream = response.body;
    this.streamOpen = true;
    response.body.setEncoding('utf8');
    response.body.on('data', (chunk: string) => parser.push(chunk));
    for (const end of ['end', 'error', 'close']) response.body.on(end, () => (this.streamOpen = false));
  }

  /** Passes on a notification; what is not JSON goes on under a method no one expects, so it is counted, not thrown. */
  #onData(data: string): void {
    let message: { method?: unknown; params?: Record<string, unknown>; id?: unknown } = { method: '(malformed)', params: { data } };
    try {
      message = JSON.parse(data) as typeof message;
    } catch {}
    if (typeof message.method === 'string' && message.id === undefined)
      this.onNotification(message.method, message.params ?? {}, performance.now());
  }

  /** Calls a tool; answers its `structuredContent`, or throws ToolRefusal / WireError. */
  async call(name: string, args: Record<string, unknown>, signal?: AbortSignal, timeoutMs?: number): Promise<Record<string, unknown>> {
    const result = await this.callTool(name, args, signal, timeoutMs);
    if (result.isError) throw new ToolRefusal(name, result.content.map((part) => (part.type === 'text' ? part.text : '')).join(''));
    if (!result.structuredContent) throw new WireError(`${name} answered without structuredContent`);
    return result.structuredContent;
  }

  /** Calls a tool; answers its result, refused or not. `signal` abandons the call (the server sees its connection close). */
  async callTool(
    name: string,
    args: Record<string, unknown>,
    signal?: AbortSignal,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<CallToolResult> {
    const id = this.#nextId++;
    const modern = this.era === 'modern';
    const params = { name, arguments: args, ...(modern && { _meta: MODERN_META }) };
    const response = await this.#send(
      { id, method: 'tools/call', params },
      modern ? modernHeaders('tools/call', name) : this.#headers,
      timeoutMs,
      signal,
    );
    const answer = await readRpcResponse(response, id);
    if (this.endpoint.tally) this.endpoint.tally.toolCalls += 1;
    if (answer.error) throw new WireError(`${name}: JSON-RPC error ${answer.error.code} ${answer.error.message}`);
    return { content: [], ...answer.result } as CallToolResult;
  }

  /** Ends the session politely (DELETE) and drops the stream. */
  async close(): Promise<void> {
    if (!this.sessionId) return;
    try {
      const response = await this.#send(undefined, this.#headers, 5_000);
      await response.body.dump();
    } finally {
      this.#stream?.destroy();
    }
  }
}

/** Rethrows a wire error with the step of a fresh-session call it broke. */
const failedIn = (step: string) => (error: unknown) => {
  throw new WireError(`${step}: ${error instanceof Error ? error.message : String(error)}`);
};

/** How a token client of `kind` sends its calls, on lean sessions through `endpoint`. */
export function leanSender(kind: TokenClientKind, endpoint: LeanEndpoint): ToolSender {
  if (kind !== 'fresh-session')
    return (name, args, signal) => new LeanSession(endpoint, kind === 'modern' ? 'modern' : 'legacy').callTool(name, args, signal);
  return async (name, args, signal) => {
    const session = new LeanSession(endpoint);
    await session.open({ stream: false }).catch(failedIn('initialize'));
    try {
      return await session.callTool(name, args, signal);
    } finally {
      await session.close().catch(failedIn('DELETE'));
    }
  };
}
