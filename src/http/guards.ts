/**
 * What an HTTP request must pass before it reaches a session: an allowed Host and
 * Origin (DNS-rebinding protection, as the MCP spec requires), CORS for allowed
 * browser origins, the bearer token when one is set, and a JSON body that is small
 * enough, valid UTF-8 and one JSON-RPC message. Each refusal is an HTTP status with a
 * JSON-RPC error body whose message says what to do.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ChatConfig } from '../config.js';
import type { ChatMetrics, RefusalReason } from '../ops/metrics.js';

/** A JSON-RPC error body, as the MCP transports send them. */
export function jsonRpcError(code: number, message: string) {
  return { jsonrpc: '2.0' as const, error: { code, message }, id: null };
}

/** Answers a refusal: counted, logged by the caller if it wishes, and explained. */
export function refuseHttp(
  c: Context,
  metrics: ChatMetrics,
  reason: RefusalReason,
  status: ContentfulStatusCode,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  metrics.refused(reason);
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  return c.json(jsonRpcError(code, message), status);
}

/**
 * Whether `value` matches one of `patterns`, where a pattern is an exact value or ends
 * in `:*` to accept any port (and no port).
 */
export function matchesAllowList(value: string, patterns: readonly string[]): boolean {
  const lower = value.toLowerCase();
  return patterns.some((pattern) => {
    const p = pattern.toLowerCase();
    if (!p.endsWith(':*')) return lower === p;
    const base = p.slice(0, -2);
    return lower === base || (lower.startsWith(`${base}:`) && /^\d{1,5}$/.test(lower.slice(base.length + 1)));
  });
}

const MCP_HEADERS = ['content-type', 'authorization', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'];

/** Host and Origin checks, then CORS for allowed origins. */
export function originGuard(config: ChatConfig, metrics: ChatMetrics): MiddlewareHandler[] {
  const checkHostAndOrigin: MiddlewareHandler = async (c, next) => {
    const host = c.req.header('host') ?? '';
    if (!matchesAllowList(host, config.allowedHosts))
      return refuseHttp(c, metrics, 'forbidden_host', 403, -32000, `Forbidden: Host ${JSON.stringify(host)} is not allowed. Start the server with --allowed-hosts to accept it.`);
    const origin = c.req.header('origin');
    if (origin !== undefined && !matchesAllowList(origin, config.allowedOrigins))
      return refuseHttp(c, metrics, 'forbidden_origin', 403, -32000, `Forbidden: Origin ${JSON.stringify(origin)} is not allowed. Start the server with --allowed-origins to accept it.`);
    await next();
  };
  const allowedOrigin = cors({
    origin: (origin) => (matchesAllowList(origin, config.allowedOrigins) ? origin : null),
    allowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowHeaders: MCP_HEADERS,
    exposeHeaders: ['mcp-session-id', 'mcp-protocol-version', 'www-authenticate'],
    maxAge: 600,
  });
  // Requests without Origin (every non-browser client) need no CORS headers: skip the work.
  const corsForBrowsers: MiddlewareHandler = async (c, next) => {
    if (c.req.header('origin') !== undefined) return allowedOrigin(c, next);
    await next();
    // Caches must still know the answer depends on Origin.
    c.res.headers.append('Vary', 'Origin');
  };
  return [checkHostAndOrigin, corsForBrowsers];
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Requires `Authorization: Bearer <token>` when a token is configured. */
export function tokenGuard(config: ChatConfig, metrics: ChatMetrics): MiddlewareHandler {
  const expected = config.token === null ? null : digest(config.token);
  return async (c, next) => {
    if (expected === null || c.req.method === 'OPTIONS') return next();
    const presented = /^Bearer (\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    // Compare digests, in constant time, so neither the token nor its length leaks.
    if (presented === undefined || !timingSafeEqual(digest(presented), expected))
      return refuseHttp(c, metrics, 'unauthorized', 401, -32001, 'Unauthorized: send the server token as Authorization: Bearer <token>.', {
        'WWW-Authenticate': 'Bearer realm="mcp-chat"',
      });
    await next();
  };
}

export type BodyResult = { ok: true; body: unknown } | { ok: false; response: Response };

/**
 * Reads a POST body as one JSON-RPC message: `application/json`, at most
 * `maxBodyBytes`, valid UTF-8, valid JSON, and not a batch.
 */
export async function readJsonRpcBody(c: Context, config: ChatConfig, metrics: ChatMetrics): Promise<BodyResult> {
  const fail = (reason: RefusalReason, status: ContentfulStatusCode, code: number, message: string): BodyResult => ({
    ok: false,
    response: refuseHttp(c, metrics, reason, status, code, message),
  });
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type))
    return fail('unsupported_media_type', 415, -32000, 'Unsupported Media Type: send the JSON-RPC message as Content-Type: application/json.');
  const tooLarge = () =>
    fail('body_too_large', 413, -32000, `Payload Too Large: request bodies are limited to ${config.maxBodyBytes} bytes.`);
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > config.maxBodyBytes) return tooLarge();
  // On Node, read the socket's stream itself: going through the web Request's body
  // stream costs a web-stream round trip per chunk on every message.
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  const bytes = incoming ? await readNodeBody(incoming, config.maxBodyBytes) : await readWebBody(c.req.raw, config.maxBodyBytes);
  if (bytes === undefined) return tooLarge();
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('parse_error', 400, -32700, 'Parse error: the request body is not valid UTF-8.');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return fail('parse_error', 400, -32700, 'Parse error: the request body is not valid JSON.');
  }
  if (Array.isArray(body))
    return fail('batch_not_supported', 400, -32600, 'Invalid Request: JSON-RPC batches are not supported; send one message per request.');
  return { ok: true, body };
}

/**
 * The body of a Node request, or undefined once it grows past `limit` bytes. Reading
 * then stops without destroying the socket, so the 413 can still be sent; the server
 * drains or drops what is left after the response.
 */
function readNodeBody(incoming: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  if (incoming.readableEnded || incoming.destroyed) return Promise.reject(new Error('the request body was already read or closed'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= limit) return void chunks.push(chunk);
      stop();
      incoming.pause();
      resolve(undefined);
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    // A client that hangs up mid-body ends with 'close' and no 'end': never wait forever.
    const onClose = () => onError(new Error('the client closed the connection before the body ended'));
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', onError);
    incoming.once('close', onClose);
  });
}

/** The body of a web request, or undefined as soon as it grows past `limit` bytes. */
async function readWebBody(request: Request, limit: number): Promise<Uint8Array | undefined> {
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
