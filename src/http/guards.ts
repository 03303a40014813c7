/**
 * What an HTTP request must pass before it reaches a session: an allowed Host and
 * Origin (DNS-rebinding protection, as the MCP spec requires; the server's own origin,
 * the page at `GET /`, is always allowed), CORS for allowed browser origins, and the
 * bearer token when one is set. Each refusal is an HTTP status with a JSON-RPC error
 * body whose message says what to do.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler, Next } from 'hono';
import { cors } from 'hono/cors';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ChatConfig } from '../config.js';
import { jsonRpcError } from '../mcp/jsonRpc.js';
import type { ChatMetrics, RefusalReason } from '../ops/metrics.js';
import type { Env } from './appServices.js';

/** Answers a refusal: counted, logged by the caller if it wishes, and explained. */
export function refuseHttp(
  c: Context,
  metrics: ChatMetrics,
  reason: RefusalReason,
  status: ContentfulStatusCode,
  code: number,
  message: string,
  headers: Record<string, string> = {},
  id: string | number | null = null,
): Response {
  metrics.refused(reason);
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  return c.json(jsonRpcError(code, message, id), status);
}

/**
 * Whether `value` matches one of `patterns`, where a pattern is an exact value or ends
 * in `:*` to accept any port (and no port).
 */
function matchesAllowList(value: string, patterns: readonly string[]): boolean {
  const lower = value.toLowerCase();
  return patterns.some((pattern) => {
    const p = pattern.toLowerCase();
    if (!p.endsWith(':*')) return lower === p;
    const base = p.slice(0, -2);
    return lower === base || (lower.startsWith(`${base}:`) && /^\d{1,5}$/.test(lower.slice(base.length + 1)));
  });
}

/**
 * Whether `origin` is the server's own, as the request's `Host` names it: the page at
 * `GET /` calling `/mcp`. Safe whatever `--host` and `--allowed-origins` are: the Host
 * was checked against `--allowed-hosts` first, and a page on a rebinding domain has
 * that domain as its Host.
 */
function isSameOrigin(origin: string, host: string): boolean {
  try {
    const { protocol, host: originHost } = new URL(origin);
    return (protocol === 'http:' || protocol === 'https:') && originHost === host.toLowerCase();
  } catch {
    return false;
  }
}

/** Request headers browsers may send: the 2025 era's, and the 2026-07-28 revision's Mcp-Method and Mcp-Name. */
const MCP_HEADERS = ['content-type', 'authorization', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'mcp-method', 'mcp-name'];

/** Why a request's Host or Origin is refused (DNS-rebinding protection), if it is. */
function hostAndOriginCheck(config: ChatConfig, metrics: ChatMetrics): (c: Context) => Response | undefined {
  const forbidden = (c: Context, header: 'Host' | 'Origin', value: string, flag: string) =>
    refuseHttp(
      c,
      metrics,
      header === 'Host' ? 'forbidden_host' : 'forbidden_origin',
      403,
      -32000,
      `Forbidden: ${header} ${JSON.stringify(value)} is not allowed. Start the server with --${flag} to accept it.`,
    );
  return (c) => {
    const host = c.req.header('host') ?? '';
    if (!matchesAllowList(host, config.allowedHosts)) return forbidden(c, 'Host', host, 'allowed-hosts');
    const origin = c.req.header('origin');
    if (origin !== undefined && !isSameOrigin(origin, host) && !matchesAllowList(origin, config.allowedOrigins))
      return forbidden(c, 'Origin', origin, 'allowed-origins');
    return undefined;
  };
}

/** The paths that need the server token when one is set (/healthz stays open for liveness probes; /admin has its own). */
const TOKEN_PATHS = new Set(['/mcp', '/sse', '/messages', '/metrics']);

/** Why a request lacks the server token it needs, if it does. */
function tokenCheck(config: ChatConfig, metrics: ChatMetrics): (c: Context) => Response | undefined {
  const carriesToken = config.token === null ? null : bearerCheck(config.token);
  return (c) => {
    if (carriesToken === null || c.req.method === 'OPTIONS' || !TOKEN_PATHS.has(c.req.path)) return undefined;
    if (carriesToken(c.req.header('authorization'))) return undefined;
    return refuseHttp(c, metrics, 'unauthorized', 401, -32001, 'Unauthorized: send the server token as Authorization: Bearer <token>.', {
      'WWW-Authenticate': 'Bearer realm="mcp-chat"',
    });
  };
}

/**
 * Everything a request passes before its route, as one middleware (each costs every
 * request a frame, and a held call keeps its frames for the whole wait): an allowed Host
 * and Origin; CORS for allowed browser origins; the server token on the paths that need
 * it (inside CORS, so a browser can read the 401); a forwarding claim checked by
 * `believe`; then the response leaves in one socket write (`oneWriteThisTick`).
 */
export function frontDoor(config: ChatConfig, metrics: ChatMetrics, believe: (c: Context) => void): MiddlewareHandler<Env> {
  const hostAndOrigin = hostAndOriginCheck(config, metrics);
  const token = tokenCheck(config, metrics);
  const allowedOrigin = cors({
    origin: (origin) => (matchesAllowList(origin, config.allowedOrigins) ? origin : null),
    allowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowHeaders: MCP_HEADERS,
    exposeHeaders: ['mcp-session-id', 'mcp-protocol-version', 'www-authenticate'],
    maxAge: 600,
  });
  const guarded = async (c: Context<Env>, next: Next) => {
    const refused = token(c);
    if (refused) {
      c.res = refused;
      return;
    }
    believe(c);
    await next();
  };
  return async (c, next) => {
    try {
      const refused = hostAndOrigin(c);
      if (refused) return refused;
      // Requests without Origin (every non-browser client) need no CORS headers: skip the work.
      if (c.req.header('origin') !== undefined) return await allowedOrigin(c, () => guarded(c, next));
      // Caches must still know the answer depends on Origin. Set on the Node response, the
      // header joins the answer's own as node-server writes them, with no web Headers
      // built to append to (2 % of a relayed message's CPU). An answer's own Vary would
      // replace it: none has one (a forwarded answer's is dropped, src/http/forward.ts).
      const outgoing = c.env?.outgoing;
      outgoing?.setHeader('vary', 'Origin');
      await guarded(c, next);
      if (!outgoing) c.res.headers.append('Vary', 'Origin');
    } finally {
      oneWriteThisTick(c);
    }
  };
}

/**
 * Holds a response's socket writes until the end of the tick that produced it, so the
 * status line, headers, SSE priming event, result and end of a tool call leave in one
 * write instead of three or four (@hono/node-server flushes headers on their own, and
 * Node writes each chunk apart). A stream whose events come later has its headers sent
 * when the tick ends. The socket is corked, not the response: Node 22 buffers a corked
 * response's chunks apart from the socket and writes its end before them.
 */
function oneWriteThisTick(c: Context<Env>): void {
  // The response is written in the microtasks that follow; the tick ends after them.
  const socket = c.env?.outgoing?.writableEnded === false ? c.env.outgoing.socket : null;
  if (!socket || socket.destroyed) return;
  socket.cork();
  process.nextTick(() => socket.uncork());
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Whether a request's `Authorization: Bearer <token>` carries `secret`. Digests are
 * compared in constant time, so neither the secret nor its length leaks.
 */
export function bearerCheck(secret: string): (authorization: string | undefined) => boolean {
  const expected = digest(secret);
  return (authorization) => {
    const presented = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    return presented !== undefined && timingSafeEqual(digest(presented), expected);
  };
}
