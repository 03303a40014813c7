/**
 * What an HTTP request must pass before it reaches a session: an allowed Host and
 * Origin (DNS-rebinding protection, as the MCP spec requires; the server's own origin,
 * the page at `GET /`, is always allowed), CORS for allowed browser origins, and the
 * bearer token when one is set. Each refusal is an HTTP status with a JSON-RPC error
 * body whose message says what to do.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ChatConfig } from '../config.js';
import { jsonRpcError } from '../mcp/jsonRpc.js';
import type { ChatMetrics, RefusalReason } from '../ops/metrics.js';

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

/** Host and Origin checks, then CORS for allowed origins. */
export function originGuard(config: ChatConfig, metrics: ChatMetrics): MiddlewareHandler[] {
  const checkHostAndOrigin: MiddlewareHandler = async (c, next) => {
    const host = c.req.header('host') ?? '';
    if (!matchesAllowList(host, config.allowedHosts))
      return refuseHttp(
        c,
        metrics,
        'forbidden_host',
        403,
        -32000,
        `Forbidden: Host ${JSON.stringify(host)} is not allowed. Start the server with --allowed-hosts to accept it.`,
      );
    const origin = c.req.header('origin');
    if (origin !== undefined && !isSameOrigin(origin, host) && !matchesAllowList(origin, config.allowedOrigins))
      return refuseHttp(
        c,
        metrics,
        'forbidden_origin',
        403,
        -32000,
        `Forbidden: Origin ${JSON.stringify(origin)} is not allowed. Start the server with --allowed-origins to accept it.`,
      );
    // Returned, not awaited: nothing follows, and a held call keeps no frame of this alive.
    return next();
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

/** Requires `Authorization: Bearer <token>` when a token is configured. */
export function tokenGuard(config: ChatConfig, metrics: ChatMetrics): MiddlewareHandler {
  const carriesToken = config.token === null ? null : bearerCheck(config.token);
  return async (c, next) => {
    if (carriesToken === null || c.req.method === 'OPTIONS') return next();
    if (!carriesToken(c.req.header('authorization')))
      return refuseHttp(c, metrics, 'unauthorized', 401, -32001, 'Unauthorized: send the server token as Authorization: Bearer <token>.', {
        'WWW-Authenticate': 'Bearer realm="mcp-chat"',
      });
    await next();
  };
}
