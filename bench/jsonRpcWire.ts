/**
 * The JSON-RPC side of the wire, as a lean client sees it: request headers, and reading
 * a POST's answer whichever way the server framed it — `application/json`, or a short
 * `text/event-stream` whose data line holds the response (maybe after a priming event).
 */
import type { Dispatcher } from 'undici';
import { parseSseBody } from './sseParser.js';

export const PROTOCOL_VERSION = '2025-11-25';

export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: number | string | null;
  result?: unknown;
  error?: { code: number; message: string };
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}

export const POST_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
} as const;

/** The stateless revision: every request carries its version, client and capabilities. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';

/** The `params._meta` envelope of a 2026-07-28 request. */
export const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': MODERN_PROTOCOL_VERSION,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'mcp-chat-bench', version: '1.0.0' },
} as const;

/** Headers of a 2026-07-28 tools/call, which must match its body (`Mcp-Name` is the tool). */
export function modernCallHeaders(tool: string): Record<string, string> {
  return { ...POST_HEADERS, 'mcp-protocol-version': MODERN_PROTOCOL_VERSION, 'mcp-method': 'tools/call', 'mcp-name': tool };
}

/** Headers of every request after `initialize`. */
export function sessionHeaders(sessionId: string): Record<string, string> {
  return { ...POST_HEADERS, 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL_VERSION };
}

export class WireError extends Error {
  override name = 'WireError';
}

function headerValue(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads the answer to request `id`, by the response's Content-Type. */
export async function readRpcResponse(response: Dispatcher.ResponseData, id: number): Promise<JsonRpcResponse> {
  const type = headerValue(response.headers, 'content-type') ?? '';
  const body = await response.body.text();
  if (response.statusCode !== 200) throw new WireError(`HTTP ${response.statusCode}: ${body.slice(0, 200)}`);
  const candidates = type.startsWith('text/event-stream') ? parseSseBody(body) : [body];
  for (const data of candidates) {
    const message = JSON.parse(data) as Partial<JsonRpcResponse>;
    if (message.id === id && ('result' in message || 'error' in message)) return message as JsonRpcResponse;
  }
  throw new WireError(`no JSON-RPC response with id ${id} in a ${type || 'untyped'} body: ${body.slice(0, 200)}`);
}

export function responseHeader(response: Dispatcher.ResponseData, name: string): string | undefined {
  return headerValue(response.headers, name);
}
