/**
 * The operators' routes, mounted at /admin: `GET /reports`, `GET /bans`, `POST /bans`,
 * `DELETE /bans/:id`. Without `--admin-token` they answer 404, as if absent. With it,
 * each needs `Authorization: Bearer <admin token>` (401 otherwise) — its own secret,
 * not the MCP `--token`, which it neither needs nor accepts. Users are named by their
 * internal ids, never their tokens. Answers are JSON; a refusal is `{"error": …}`.
 */
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { type Ban, type BanInput, MAX_BAN_MINUTES, type ModerationStore, type Report } from '../chat/moderation.js';
import type { ChatConfig } from '../config.js';
import type { ChatMetrics } from '../ops/metrics.js';
import { bearerCheck } from './guards.js';

export interface AdminServices {
  readonly config: ChatConfig;
  readonly moderation: ModerationStore;
  readonly metrics: ChatMetrics;
  readonly log: Logger;
}

/** The largest body POST /admin/bans reads. */
const MAX_BODY_CHARS = 4_096;
/** The longest user id or report id a ban may name. */
const MAX_ID_CHARS = 200;

/** The routes, for `app.route('/admin', adminRoutes(services))`. */
export function adminRoutes(services: AdminServices): Hono {
  const { moderation, log } = services;
  const admin = new Hono();
  admin.use('*', adminOnly(services));
  // The store is out of reach (Redis down): the operator hears it and may try again.
  admin.onError((err, c) => {
    log.error({ err }, 'an operator request failed');
    return c.json({ error: 'The reports and bans could not be reached just now (their store is down); try again in a few seconds.' }, 503);
  });

  admin.get('/reports', async (c) => c.json({ reports: (await moderation.reports()).map(reportView) }));

  admin.get('/bans', async (c) => c.json({ bans: (await moderation.bans()).map(banView) }));

  admin.post('/bans', async (c) => {
    const text = await c.req.text();
    if (text.length > MAX_BODY_CHARS) return refuse(c, 413, `The body is over ${MAX_BODY_CHARS} characters; a ban needs far fewer.`);
    const asked = parseBanRequest(text);
    if (typeof asked === 'string') return refuse(c, 400, asked);
    const input = await banInput(moderation, asked);
    if ('refusal' in input) return refuse(c, input.status, input.refusal);
    const ban = await moderation.ban(input);
    log.info({ ban: ban.banId, until: new Date(ban.until).toISOString(), address: ban.address !== undefined }, 'an operator banned a user');
    return c.json(banView(ban), 201);
  });

  admin.delete('/bans/:id', async (c) => {
    const id = c.req.param('id');
    if (!(await moderation.lift(id)))
      return refuse(c, 404, `No ban in force has ban_id ${JSON.stringify(id.slice(0, MAX_ID_CHARS))}; GET /admin/bans lists them.`);
    log.info({ ban: id }, 'an operator lifted a ban');
    return c.body(null, 204);
  });

  return admin;
}

/** 404 without an admin token; 401 without the right one (compared as digests, in constant time, never logged). */
function adminOnly({ config, metrics }: AdminServices): MiddlewareHandler {
  const carriesToken = config.adminToken === null ? null : bearerCheck(config.adminToken);
  return async (c, next) => {
    if (carriesToken === null) return c.notFound();
    if (!carriesToken(c.req.header('authorization'))) {
      metrics.refused('unauthorized');
      c.header('WWW-Authenticate', 'Bearer realm="mcp-chat admin"');
      return c.json({ error: 'Unauthorized: send the admin token (--admin-token) as Authorization: Bearer <token>.' }, 401);
    }
    await next();
  };
}

const refuse = (c: Context, status: 400 | 404 | 409 | 413, error: string) => c.json({ error }, status);

const iso = (ms: number) => new Date(ms).toISOString();

const reportView = ({ reportId, at, roomId, reason, reported, reporter }: Report) => ({
  report_id: reportId,
  at: iso(at),
  room_id: roomId,
  reason,
  reported,
  reporter,
});

const banView = ({ banId, userId, until, address }: Ban) => ({
  ban_id: banId,
  user: userId,
  until: iso(until),
  ...(address !== undefined && { address: true }),
});

/** What POST /admin/bans asks for: whom (by report or by user id), for how long, and whether the address too. */
export type BanRequest = ({ reportId: string } | { userId: string }) & { minutes: number; address: boolean };

const BAN_FIELDS = new Set(['report_id', 'user', 'minutes', 'address']);
const SHAPE =
  'Send {"report_id": "<id from GET /admin/reports>", "minutes": N} or {"user": "<user id>", "minutes": N}, with "address": true to ban new users from its address too.';

/** A ban request from a body, or a sentence that says what is wrong with it. */
export function parseBanRequest(text: string): BanRequest | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `The body is not JSON. ${SHAPE}`;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return `The body must be a JSON object. ${SHAPE}`;
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !BAN_FIELDS.has(key));
  if (unknown !== undefined)
    return `Unknown field ${JSON.stringify(unknown.slice(0, MAX_ID_CHARS))}: a ban takes report_id or user, minutes and address.`;
  const { report_id, user, minutes, address = false } = fields;
  if (report_id !== undefined && user !== undefined) return 'Give report_id or user, not both.';
  if (report_id === undefined && user === undefined) return `Give report_id or user: whom to ban. ${SHAPE}`;
  const [name, id] = report_id !== undefined ? ['report_id', report_id] : ['user', user];
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_CHARS)
    return `${name} must be a string of 1 to ${MAX_ID_CHARS} characters.`;
  if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1 || minutes > MAX_BAN_MINUTES)
    return `minutes must be a whole number from 1 to ${MAX_BAN_MINUTES} (a year).`;
  if (typeof address !== 'boolean') return 'address must be true or false.';
  return { ...(name === 'report_id' ? { reportId: id } : { userId: id }), minutes, address };
}

/** Whom the request bans (the reported user, for a report) and the address it was made from; or why not. */
async function banInput(moderation: ModerationStore, asked: BanRequest): Promise<BanInput | { status: 400 | 409; refusal: string }> {
  let userId: string;
  if ('reportId' in asked) {
    const report = (await moderation.reports()).find((kept) => kept.reportId === asked.reportId);
    if (!report)
      return {
        status: 400,
        refusal: `No report has report_id ${JSON.stringify(asked.reportId)} (the last 10,000 are kept); GET /admin/reports lists them.`,
      };
    userId = report.reported;
  } else userId = asked.userId;
  if (!asked.address) return { userId, minutes: asked.minutes };
  const address = await moderation.addressOf(userId);
  if (address === undefined)
    return {
      status: 409,
      refusal: `The address user ${JSON.stringify(userId)} was made from is not known (it is kept for a day after the user was made); ban without "address".`,
    };
  return { userId, minutes: asked.minutes, address };
}
