/**
 * Any process serves any request (behind a plain round-robin balancer): a request for a
 * session or a user that lives on another process is sent on to that process, and its
 * answer — a held `wait_for_events`, a session stream — comes back on this response.
 *
 * Whose a request is, from the names in it (each says its process, `<processId>.…`):
 * - a `tools/call` whose `user_token` names a user: that user's process. When the call
 *   came in a session of another process, it is served there without the session (the
 *   session's process does not know the user; the user's does not know the session), as
 *   a call that came without one;
 * - else its session (`Mcp-Session-Id`; the legacy `sessionId` query): the session's;
 * - else a 2026-07-28 request naming a user's events resource (by its events key) (`resources/read`,
 *   `subscriptions/listen`): that user's process;
 * - else nobody's (`initialize`, a call that names no user): served where it arrived.
 *
 * A request another process sent (it carries a claim signed with the cluster secret:
 * src/http/forwardTrust.ts) is served here, whatever it names: so it never travels
 * twice. An unsigned claim is ignored: such a request is a client's like any other. An owner the directory does not know,
 * or at whose address nothing listens, is gone: the request is served here, where the
 * token or session is unknown, and refused as such. When the directory cannot be read
 * (503), or the owner's connection fails before it answers (502), the request is
 * refused for now with `Retry-After`: the owner may well be alive.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { Logger } from 'pino';
import { type ProcessDirectory, processOf } from '../chat/processDirectory.js';
import { keyOfEventsUri } from '../mcp/eventsResource.js';
import { isJsonObject } from '../mcp/jsonRpc.js';
import type { ChatMetrics } from '../ops/metrics.js';
import { forward } from './forward.js';
import { CLAIM_HEADERS, claimOf, forwardHeaders } from './forwardTrust.js';
import { refuseHttp } from './guards.js';
import { requestIdOf } from './requestInfo.js';

/** The process a request belongs to. */
export interface Owner {
  readonly processId: string;
  /** The call is to be served without its `Mcp-Session-Id` (its session lives elsewhere than its user). */
  readonly withoutSession: boolean;
}

/** Whose a request to `/mcp` is: see above. */
export function mcpRequestOwner(sessionId: string | undefined, body: unknown): Owner | undefined {
  const sessionProcess = sessionId === undefined ? undefined : processOf(sessionId);
  const callToken = toolCallToken(body);
  const callProcess = callToken === undefined ? undefined : processOf(callToken);
  if (callProcess !== undefined)
    return { processId: callProcess, withoutSession: sessionId !== undefined && callProcess !== sessionProcess };
  if (sessionId !== undefined) return sessionProcess === undefined ? undefined : { processId: sessionProcess, withoutSession: false };
  const resourceKey = eventsResourceKey(body);
  const resourceProcess = resourceKey === undefined ? undefined : processOf(resourceKey);
  return resourceProcess === undefined ? undefined : { processId: resourceProcess, withoutSession: false };
}

/** Whose a legacy `POST /messages?sessionId=…` is: its session's (its answer goes out on that session's stream). */
export function legacyRequestOwner(sessionId: string | undefined): Owner | undefined {
  const processId = sessionId === undefined ? undefined : processOf(sessionId);
  return processId === undefined ? undefined : { processId, withoutSession: false };
}

/** The `user_token` argument of a `tools/call`. */
function toolCallToken(body: unknown): string | undefined {
  if (!isJsonObject(body) || body.method !== 'tools/call' || !isJsonObject(body.params) || !isJsonObject(body.params.arguments))
    return undefined;
  const token = body.params.arguments.user_token;
  return typeof token === 'string' ? token : undefined;
}

/** The events key of the user whose events a request reads or listens to (the first, for a listen naming several). */
function eventsResourceKey(body: unknown): string | undefined {
  if (!isJsonObject(body) || !isJsonObject(body.params)) return undefined;
  if (body.method === 'resources/read' && typeof body.params.uri === 'string') return keyOfEventsUri(body.params.uri);
  if (body.method === 'subscriptions/listen' && isJsonObject(body.params.notifications)) {
    const uris = body.params.notifications.resourceSubscriptions;
    if (!Array.isArray(uris)) return undefined;
    for (const uri of uris) {
      const key = typeof uri === 'string' ? keyOfEventsUri(uri) : undefined;
      if (key !== undefined) return key;
    }
  }
  return undefined;
}

type Env = { Bindings: Partial<HttpBindings> };

export interface RequestRouter {
  /**
   * The owner's answer, when the request belongs to another process that is there (or a
   * refusal when the directory cannot say); undefined when this process serves it.
   */
  route(c: Context<Env>, owner: Owner | undefined, request: { body?: unknown; bytes?: Uint8Array }): Promise<Response | undefined>;
}

/**
 * Routes requests among the processes of `directory`; `clientOf` is a request's client
 * address, which a forwarded request carries to its owner, signed.
 */
export function requestRouter(
  directory: ProcessDirectory,
  metrics: ChatMetrics,
  log: Logger,
  clientOf: (c: Context<Env>) => string,
): RequestRouter {
  return {
    async route(c, owner, { body, bytes }) {
      if (owner === undefined || owner.processId === directory.self || claimOf(c.req.raw) !== undefined) return undefined;
      const id = requestIdOf(body);
      let address: string | undefined;
      try {
        address = await directory.addressOf(owner.processId);
      } catch (error) {
        log.warn({ err: error, process: owner.processId }, 'the process directory could not be read');
        return refuseHttp(
          c,
          metrics,
          'broker_unavailable',
          503,
          -32000,
          'The server cannot tell where your session or user lives right now (its directory is unavailable); try again shortly.',
          { 'Retry-After': '1' },
          id,
        );
      }
      if (address === undefined) return undefined;
      const url = new URL(c.req.url);
      const headers = new Headers(c.req.raw.headers);
      // Sent as it came, session id included: the owner finds the same owner and serves
      // a call of its user from another process's session without the session. What the
      // client claimed about forwarding is dropped; this process's own claim is signed.
      for (const name of CLAIM_HEADERS) headers.delete(name);
      const claim = forwardHeaders(
        directory.secret,
        { sender: directory.self, client: clientOf(c) },
        c.req.method,
        url.pathname + url.search,
      );
      for (const [name, value] of Object.entries(claim)) headers.set(name, value);
      const forwarded = await forward(new URL(url.pathname + url.search, address), {
        method: c.req.method,
        headers,
        ...(bytes !== undefined && { body: bytes }),
        signal: c.req.raw.signal,
      });
      if (forwarded.outcome === 'answered') return forwarded.response;
      if (forwarded.outcome === 'gone') {
        log.info(
          { process: owner.processId, address, err: forwarded.error },
          'nothing listens where the process directory says a process is: taken as gone',
        );
        return undefined;
      }
      log.warn({ process: owner.processId, address, err: forwarded.error }, 'a request sent on to its process got no answer');
      return refuseHttp(
        c,
        metrics,
        'broker_unavailable',
        502,
        -32000,
        'The server process that holds your session or user did not answer; try again shortly.',
        { 'Retry-After': '1' },
        id,
      );
    },
  };
}
