/**
 * Which forwarded requests to believe. A process that sends a request on to the
 * process owning its user or session says who sent it and from which client address,
 * and signs both with the cluster secret (HMAC-SHA256 over sender, client, time, method
 * and path). The owner believes a request forwarded only when the signature holds and
 * is fresh; anything else that claims to be forwarded is an ordinary client request,
 * served (or sent on) as one, its claim ignored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { MiddlewareHandler } from 'hono';

/** Marks a request one process sent to another, with the sender's id: it is never sent on again. */
export const FORWARDED_HEADER = 'x-mcp-chat-forwarded';
/** The client address as the forwarding process determined it. */
export const CLIENT_HEADER = 'x-mcp-chat-client';
/** `<ms since epoch>.<hex HMAC>` over the claim. */
export const SIGNATURE_HEADER = 'x-mcp-chat-signature';

/** How far a signature's time may be from the receiver's clock (clocks of machines differ a little). */
const FRESH_MS = 60_000;

/** What a believed forwarded request says. */
export interface ForwardClaim {
  /** The process that sent it on. */
  readonly sender: string;
  /** Its client's address. */
  readonly client: string;
}

const macOf = (secret: string, claim: ForwardClaim, at: string, method: string, path: string) =>
  createHmac('sha256', secret).update([claim.sender, claim.client, at, method.toUpperCase(), path].join('\n')).digest();

/** The headers that mark a request forwarded by `claim.sender` for `claim.client`. */
export function forwardHeaders(
  secret: string,
  claim: ForwardClaim,
  method: string,
  path: string,
  now = Date.now(),
): Record<string, string> {
  const at = String(now);
  return {
    [FORWARDED_HEADER]: claim.sender,
    [CLIENT_HEADER]: claim.client,
    [SIGNATURE_HEADER]: `${at}.${macOf(secret, claim, at, method, path).toString('hex')}`,
  };
}

/** The claim of a request, when it is forwarded, signed with `secret` and fresh; undefined otherwise. */
export function verifiedClaim(secret: string, headers: Headers, method: string, path: string, now = Date.now()): ForwardClaim | undefined {
  const sender = headers.get(FORWARDED_HEADER);
  const client = headers.get(CLIENT_HEADER);
  const signature = /^(\d{1,15})\.([0-9a-f]{64})$/.exec(headers.get(SIGNATURE_HEADER) ?? '');
  if (sender === null || client === null || !signature || isIP(client) === 0) return undefined;
  const [, at = '', mac = ''] = signature;
  if (Math.abs(now - Number(at)) > FRESH_MS) return undefined;
  const expected = macOf(secret, { sender, client }, at, method, path);
  return timingSafeEqual(expected, Buffer.from(mac, 'hex')) ? { sender, client } : undefined;
}

/** Claims believed, by request (what the middleware found; read with `claimOf`). */
const claims = new WeakMap<Request, ForwardClaim>();

/** The believed forwarding claim of a request, if it has one. */
export const claimOf = (request: Request): ForwardClaim | undefined => claims.get(request);

/** Checks every request that claims to be forwarded; only a good signature makes it one. */
export function trustForwarded(secret: () => string): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.header(FORWARDED_HEADER) !== undefined) {
      const url = new URL(c.req.url);
      const claim = verifiedClaim(secret(), c.req.raw.headers, c.req.method, url.pathname + url.search);
      if (claim) claims.set(c.req.raw, claim);
    }
    // Returned, not awaited: nothing follows, and a held call keeps no frame of this alive.
    return next();
  };
}

/** The headers of a forwarding claim, which a client's request may not bring along. */
export const CLAIM_HEADERS = [FORWARDED_HEADER, CLIENT_HEADER, SIGNATURE_HEADER] as const;
