/**
 * The MCP wire as a client without an SDK sees it, shared by the tests and the bench:
 * request headers of either era, an incremental `text/event-stream` parser, and reading
 * a POST's JSON-RPC answer whichever way the server framed it (`application/json`, or a
 * short event stream whose data line holds it, maybe after a priming event).
 */
import type { Dispatcher } from 'undici';

export const PROTOCOL_VERSION = '2025-11-25';
/** The stateless revision: every request carries its version, client and capabilities. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';

/** A JSON-RPC answer: a result or an error for request `id`. */
export interface RpcAnswer {
  id: unknown;
  result?: { structuredContent?: Record<string, unknown>; isError?: boolean; [key: string]: unknown };
  error?: { code: number; message: string };
}

export const POST_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } as const;

/** Headers of a 2025-era request: in the session `sessionId`, or without one. */
export const jsonHeaders = (sessionId?: string): Record<string, string> => ({
  ...POST_HEADERS,
  'mcp-protocol-version': PROTOCOL_VERSION,
  ...(sessionId && { 'mcp-session-id': sessionId }),
});

/** The `params._meta` envelope of a 2026-07-28 request. */
export const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': MODERN_PROTOCOL_VERSION,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'mcp-chat-bench', version: '1.0.0' },
} as const;

/** Headers of a 2026-07-28 request, which must match its body (`Mcp-Name`: the tool, for tools/call). */
export function modernHeaders(method: string, name?: string): Record<string, string> {
  return { ...POST_HEADERS, 'mcp-protocol-version': MODERN_PROTOCOL_VERSION, 'mcp-method': method, ...(name && { 'mcp-name': name }) };
}

export class WireError extends Error {
  override name = 'WireError';
}

export type SseEventHandler = (data: string, id: string | undefined) => void;

/**
 * Feed it text chunks as they arrive; it calls back once per complete event that carries
 * data. Comments (`: keepalive`) and empty-data events (the SDK's priming event) are skipped.
 */
export class SseParser {
  #buffer = '';

  constructor(private readonly onEvent: SseEventHandler) {}

  push(chunk: string): void {
    // The servers here frame with '\n'; a '\r\n' split across two chunks would slip through.
    const text = chunk.includes('\r') ? chunk.replace(/\r\n?/g, '\n') : chunk;
    const buffer = this.#buffer + text;
    let start = 0;
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n', start)) {
      this.#dispatch(buffer.slice(start, end));
      start = end + 2;
    }
    this.#buffer = start === 0 ? buffer : buffer.slice(start);
  }

  #dispatch(block: string): void {
    let data: string | undefined;
    let id: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) {
        const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
        data = data === undefined ? value : `${data}\n${value}`;
      } else if (line.startsWith('id:')) {
        id = line.charCodeAt(3) === 32 ? line.slice(4) : line.slice(3);
      }
    }
    if (data) this.onEvent(data, id);
  }
}

/** Every data-carrying event of a complete SSE body, in order. */
export function parseSseBody(body: string): string[] {
  const events: string[] = [];
  new SseParser((data) => events.push(data)).push(body.endsWith('\n\n') ? body : `${body}\n\n`);
  return events;
}

/** The JSON-RPC answer (to `id`, if given) in a body sent as JSON or as an event stream. */
export function rpcAnswerOf(body: string, id?: number): RpcAnswer | undefined {
  const messages = body.trimStart().startsWith('{') ? [body] : parseSseBody(body);
  for (const text of messages) {
    const message = JSON.parse(text) as Partial<RpcAnswer>;
    if ('id' in message && (message.result ?? message.error) && (id === undefined || message.id === id)) return message as RpcAnswer;
  }
  return undefined;
}

export function responseHeader(response: Dispatcher.ResponseData, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads the answer to request `id` off an undici response. */
export async function readRpcResponse(response: Dispatcher.ResponseData, id: number): Promise<RpcAnswer> {
  const body = await response.body.text();
  if (response.statusCode !== 200) throw new WireError(`HTTP ${response.statusCode}: ${body.slice(0, 200)}`);
  const answer = rpcAnswerOf(body, id);
  if (answer) return answer;
  throw new WireError(
    `no JSON-RPC response with id ${id} in a ${responseHeader(response, 'content-type') ?? 'untyped'} body: ${body.slice(0, 200)}`,
  );
}
