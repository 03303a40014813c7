/**
 * The `/mcp` route: the body read once, then a chain of handlers tried in order, each
 * answering the requests of its kind and passing the others on (src/http/mcp/):
 * 1. `forwardToOwner` — a request whose session or user is another process's;
 * 2. `inSession` — a request in a session (and GET or DELETE without one: 400);
 * 3. `whileClosed` — no call without a session nor new session while the server cannot take them;
 * 4. `heldWait` — a `wait_for_events` without a session waits here, then goes on to the SDK;
 * 5. `modernRequest` — the 2026-07-28 revision; 6. `sessionlessRequest` — a 2025 call without
 *    a session; 7. `initialize` — a 2025 `initialize`, which opens a session.
 */
import type { Context } from 'hono';
import type { Env } from './appServices.js';
import { readJsonRpcBody } from './jsonRpcBody.js';
import { forwardToOwner } from './mcp/forwardToOwner.js';
import { heldWait } from './mcp/heldWait.js';
import { initialize } from './mcp/initialize.js';
import { inSession } from './mcp/inSession.js';
import type { McpHandler, McpRequest, McpRouteParts } from './mcp/mcpRequest.js';
import { modernRequest } from './mcp/modernRequest.js';
import { sessionlessRequest } from './mcp/sessionlessRequest.js';
import { isInitialize, requestIdOf } from './requestInfo.js';
import { mcpRequestOwner } from './routing.js';

/** The methods a request to /mcp that belongs to another process may come with (no preflights). */
const ROUTED_METHODS = new Set(['GET', 'POST', 'DELETE']);

/** The handler of `app.all('/mcp', …)`. */
export function mcpRoute(parts: McpRouteParts): (c: Context<Env>) => Promise<Response> {
  const { config, metrics } = parts.services;
  const passing: McpHandler[] = [forwardToOwner, inSession, whileClosed, heldWait, modernRequest, sessionlessRequest].map((handler) =>
    handler(parts),
  );
  // The last answers whatever reaches it.
  const last = initialize(parts);
  /** Serves `request` from handler `from` on: the whole chain, or the rest after a handler that hands it on. */
  const serveFrom = async (request: McpRequest, from: number): Promise<Response> => {
    for (let i = from; i < passing.length; i++) {
      const answer = await passing[i]!(request, (handedOn) => serveFrom(handedOn, i + 1));
      if (answer) return answer;
    }
    return last(request);
  };
  return async (c) => {
    const read = c.req.method === 'POST' ? await readJsonRpcBody(c, config, metrics) : undefined;
    if (read && !read.ok) return read.response;
    return serveFrom(mcpRequest(c, read?.body, read?.bytes), 0);
  };
}

/** What the chain knows of a request before its first handler. */
function mcpRequest(c: Context<Env>, body: unknown, bytes: Uint8Array | undefined): McpRequest {
  const sessionHeader = c.req.header('mcp-session-id');
  const owner = ROUTED_METHODS.has(c.req.method) ? mcpRequestOwner(sessionHeader, body) : undefined;
  // A call for a user of this process that came in another process's session is served
  // here without the session, when it is not sent on (src/http/routing.ts).
  return { c, body, bytes, id: requestIdOf(body), owner, sessionId: owner?.withoutSession ? undefined : sessionHeader };
}

/** A POST without a session while the server takes none (closing, failed) or, for `initialize`, is full: 503. */
function whileClosed({ gate }: McpRouteParts): McpHandler {
  return async ({ c, body, id }) => (isInitialize(body) ? gate.refuseNewSession(c, id) : gate.refuseWithoutSession(c, id));
}
