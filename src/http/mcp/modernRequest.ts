/**
 * A request of the 2026-07-28 revision: no session; the call acts for its `user_token`.
 * The SDK's handler serves it; a `subscriptions/listen` is first checked (its URIs) and
 * holds one of its client's listens while its stream is open.
 */
import { isLegacyRequest, PROTOCOL_VERSION_META_KEY, type RequestId, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server';
import type { Context } from 'hono';
import type { Env } from '../appServices.js';
import { refuseHttp } from '../guards.js';
import { checkListen, isListen } from '../listenGate.js';
import { withRequestId } from '../requestInfo.js';
import type { McpHandler, McpRouteParts } from './mcpRequest.js';

export function modernRequest({ services, live, clientOf, take }: McpRouteParts): McpHandler {
  const { config, metrics, modern, listens } = services;

  /** A listen served in the push bus's scope for its URIs. */
  const serveListen = async (c: Context<Env>, body: unknown, id: RequestId | null): Promise<Response> => {
    const checked = checkListen(body, config.maxListenUris, live.hasEvents);
    if ('refusal' in checked) return refuseHttp(c, metrics, 'bad_listen', 400, -32602, checked.refusal, {}, id);
    const release = take(c, 'listens', id);
    if (release instanceof Response) return release;
    let subscribed = false;
    const scope = {
      uris: checked.uris,
      subscribed: () => {
        subscribed = true;
      },
      unsubscribed: release,
    };
    try {
      return await listens.serveListen(scope, () => modern.fetch(c.req.raw, { parsedBody: body }));
    } finally {
      // A listen refused or ended at once never subscribed: it holds nothing.
      if (!subscribed) release();
    }
  };

  return async ({ c, body, id, heldWait }) => {
    if (!mayBeModern(c.req.raw, body) || (await isLegacyRequest(c.req.raw, body))) return undefined;
    services.mcp.annotateSessionless(c.req.raw, { address: clientOf(c), ...(heldWait && { heldWait }) });
    const answer = isListen(body) ? await serveListen(c, body, id) : await modern.fetch(c.req.raw, { parsedBody: body });
    return withRequestId(answer, id);
  };
}

/** The 2025-era revisions (the SDK's list): a header naming one of them says nothing of the 2026-07-28 era. */
const ERA_2025 = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);

/**
 * Whether the SDK might take a request for the 2026-07-28 revision: only one whose header
 * names no 2025-era revision, or whose message claims a version in its `_meta`, can be.
 * Any other 2025 request or notification skips the SDK's classification (a few zod parses).
 */
function mayBeModern(request: Request, body: unknown): boolean {
  const version = request.headers.get('mcp-protocol-version');
  if (version !== null && !ERA_2025.has(version.trim())) return true;
  // What does not even look like JSON-RPC goes to the SDK too, which says precisely what is wrong with it.
  const mayBe = (message: unknown) => {
    const { jsonrpc, method, params } = (message ?? {}) as { jsonrpc?: unknown; method?: unknown; params?: { _meta?: unknown } };
    const meta = params?._meta;
    return (
      jsonrpc !== '2.0' || typeof method !== 'string' || (typeof meta === 'object' && meta !== null && PROTOCOL_VERSION_META_KEY in meta)
    );
  };
  return Array.isArray(body) ? body.some(mayBe) : mayBe(body);
}
