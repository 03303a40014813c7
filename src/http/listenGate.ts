/**
 * What a 2026-07-28 `subscriptions/listen` may name before the SDK serves it: at most
 * `--max-listen-uris` resource URIs, each exactly the events URI of a user this process
 * holds. Anything else is refused with the URI named, so a client cannot make the server
 * hold (and match every update against) URIs that can never change.
 */
import { isBareEventsUri, keyOfEventsUri } from '../mcp/eventsResource.js';
import { isJsonObject } from '../mcp/jsonRpc.js';

/** What a listen names (its resource URIs), or why it may not be served. */
export type ListenCheck = { readonly uris: readonly string[] } | { readonly refusal: string };

/** Whether the body is a `subscriptions/listen` request. */
export const isListen = (body: unknown): boolean => isJsonObject(body) && body.method === 'subscriptions/listen' && 'id' in body;

/** Checks a listen's URIs; a malformed filter is left to the SDK, which answers it. */
export function checkListen(body: unknown, maxUris: number, userExists: (eventsKey: string) => boolean): ListenCheck {
  const params = isJsonObject(body) ? body.params : undefined;
  const notifications = isJsonObject(params) ? params.notifications : undefined;
  const uris = isJsonObject(notifications) ? notifications.resourceSubscriptions : undefined;
  if (!Array.isArray(uris)) return { uris: [] };
  if (uris.length > maxUris)
    return {
      refusal: `Invalid params: this listen names ${uris.length} resource URIs; at most ${maxUris} may be named in one subscriptions/listen.`,
    };
  for (const uri of uris) {
    if (typeof uri !== 'string' || !isBareEventsUri(uri))
      return {
        refusal: `Invalid params: ${shown(uri)} is not a user's events URI. Listen to the events_uri that enter_queue returns (chat://users/<events_key>/events).`,
      };
    if (!userExists(keyOfEventsUri(uri)!))
      return {
        refusal: `Invalid params: ${shown(uri)} names no user here (it ended, or never was). Call enter_queue and listen to the events_uri it returns.`,
      };
  }
  return { uris: uris as string[] };
}

/** A client's value as a refusal quotes it: as JSON, cut short. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}
