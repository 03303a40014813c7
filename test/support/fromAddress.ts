/**
 * Requests from a chosen loopback address. Linux routes all of 127.0.0.0/8 to the
 * loopback interface, so a test can be several client addresses at once by binding its
 * sockets' local address (127.0.0.2, 127.0.0.3, …): the server sees each as its own client.
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent, fetch as undiciFetch } from 'undici';

/** A `fetch` whose connections leave from `localAddress` (for SDK transports' `fetch` option). */
export function fetchFrom(localAddress: string): typeof fetch {
  const dispatcher = new Agent({ localAddress });
  return ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}

export interface OpenResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body so far (it keeps growing while the response is open). */
  text(): string;
  /** Resolves once the body holds `needle` (or rejects after `ms`). */
  until(needle: string | RegExp, ms?: number): Promise<string>;
  /** Whether the response has ended or its connection closed (asked or not). */
  ended(): boolean;
  /** Closes the connection, as a client that goes away does. */
  close(): void;
}

/**
 * One request on a fresh connection from `localAddress`, resolved as soon as the
 * response head arrives; the body keeps coming in (a stream stays open) until `close()`.
 */
export function requestFrom(
  localAddress: string,
  url: URL,
  options: { method?: string; headers?: Record<string, string>; body?: string },
): Promise<OpenResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers, localAddress, agent: false },
      (response: IncomingMessage) => {
        let text = '';
        let ended = false;
        const waiters = new Set<() => void>();
        response.once('close', () => (ended = true));
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
          for (const wake of waiters) wake();
        });
        response.on('error', () => {});
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          text: () => text,
          until(needle, ms = 5000) {
            const found = () => (typeof needle === 'string' ? text.includes(needle) : needle.test(text));
            if (found()) return Promise.resolve(text);
            return new Promise((done, fail) => {
              const timer = setTimeout(() => {
                waiters.delete(wake);
                fail(new Error(`no ${String(needle)} within ${ms} ms; got ${JSON.stringify(text.slice(0, 500))}`));
              }, ms);
              const wake = () => {
                if (!found()) return;
                clearTimeout(timer);
                waiters.delete(wake);
                done(text);
              };
              waiters.add(wake);
              response.once('end', wake);
            });
          },
          ended: () => ended,
          close: () => request.destroy(),
        });
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

/** The headers of a 2026-07-28 request for `method` (and the tool or resource it names). */
export function modernHeaders(method: string, name?: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': method,
    ...(name !== undefined && { 'mcp-name': name }),
  };
}

/** A 2026-07-28 request body: `params` with the per-request `_meta` the revision carries. */
export function modernBody(id: number | string, method: string, params: Record<string, unknown>): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method,
    params: {
      ...params,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'probe', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  });
}

/** Opens a 2026-07-28 `subscriptions/listen` for `uris` from `localAddress`. */
export function listenFrom(localAddress: string, url: URL, id: number | string, uris: readonly string[]): Promise<OpenResponse> {
  return requestFrom(localAddress, url, {
    method: 'POST',
    headers: modernHeaders('subscriptions/listen'),
    body: modernBody(id, 'subscriptions/listen', { notifications: { resourceSubscriptions: uris } }),
  });
}

/** A structured tool result as tests read it. */
export type Structured = Record<string, unknown>;

/** A client that calls tools: the v2 SDK client (either era) or the v1 client. */
interface ToolCaller {
  callTool(request: {
    name: string;
    arguments: Structured;
  }): Promise<{ isError?: boolean; content?: unknown; structuredContent?: unknown }>;
}

/** Calls a tool; answers its structured result, or throws with the refusal. */
export async function callOrThrow(client: ToolCaller, name: string, args: Structured = {}): Promise<Structured> {
  const result = await client.callTool({ name, arguments: args });
  if (result.isError) throw new Error(`${name} refused: ${JSON.stringify(result.content)}`);
  return result.structuredContent as Structured;
}
