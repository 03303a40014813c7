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
    const era = eraOf(c.req.raw, body);
    if (era === '2025' || (era === 'ask the SDK' && (await isLegacyRequest(c.req.raw, body)))) return undefined;
    services.mcp.annotateSessionless(c.req.raw, { address: clientOf(c), ...(heldWait && { heldWait }) });
    const answer = isListen(body) ? await serveListen(c, body, id) : await modern.fetch(c.req.raw, { parsedBody: body });
    return withRequestId(answer, id);
  };
}

/** The 2025-era revisions (the SDK's list): a header naming one of them says nothing of the 2026-07-28 era. */
const ERA_2025 = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);

/** Whether a message claims a protocol version in its `_meta`, as only 2026-07-28 messages do. */
const claimsVersion = (message: unknown): boolean => {
  const meta = (message as { params?: { _meta?: unknown } } | null)?.params?._meta;
  return typeof meta === 'object' && meta !== null && PROTOCOL_VERSION_META_KEY in meta;
};

/** Whether a message is plainly JSON-RPC of the 2025 era as far as its body says: a method, no claim. */
const plain2025 = (message: unknown): boolean => {
  const { jsonrpc, method } = (message ?? {}) as { jsonrpc?: unknown; method?: unknown };
  return jsonrpc === '2.0' && typeof method === 'string' && !claimsVersion(message);
};

/**
 * The era of a request without asking the SDK, where its names settle it: a message that
 * claims a version is the 2026-07-28 revision's to answer (the SDK's classifier never
 * calls it legacy, valid or not); a plain 2025 message whose header, if any, names a
 * 2025-era revision is the 2025 era's. Anything else (a header naming another version, a
 * body that does not look like JSON-RPC) is the SDK's to classify. The classifier is a few zod parses, which the path taken then repeats.
 */
function eraOf(request: Request, body: unknown): '2026-07-28' | '2025' | 'ask the SDK' {
  // (A batch never comes this far: the body reader refuses it.)
  if (Array.isArray(body)) return 'ask the SDK';
  if (claimsVersion(body)) return '2026-07-28';
  const version = request.headers.get('mcp-protocol-version');
  if (version !== null && !ERA_2025.has(version.trim())) return 'ask the SDK';
  return plain2025(body) ? '2025' : 'ask the SDK';
}
