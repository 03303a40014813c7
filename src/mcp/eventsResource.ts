/**
 * The 2026-07-28 push resource: a user's events, named by the user's read-only events
 * key (src/chat/userDirectory.ts `eventsKeyOf`), never by its token. Whoever holds the
 * URI may read that user's events and listen to them; it cannot act for the user.
 */

/** The resource that names a user's event log. */
export const eventsUri = (eventsKey: string) => `chat://users/${encodeURIComponent(eventsKey)}/events`;

/** The resource template `resources/read` takes (with the cursor as `?after=`). */
export const EVENTS_URI_TEMPLATE = 'chat://users/{events_key}/events{?after}';

/** The events key in a user's events URI (`?after=…` allowed), or undefined when it is not one. */
export function keyOfEventsUri(uri: string): string | undefined {
  const encoded = /^chat:\/\/users\/([^/?#]+)\/events(?:[?#].*)?$/.exec(uri)?.[1];
  if (encoded === undefined) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

/** Whether `uri` is exactly a user's events URI, as a listen must name it (no cursor, nothing after). */
export const isBareEventsUri = (uri: string): boolean => /^chat:\/\/users\/[^/?#]+\/events$/.test(uri) && keyOfEventsUri(uri) !== undefined;
