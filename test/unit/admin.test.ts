/**
 * The operators' routes in the app, without a network: 404 without --admin-token, 401
 * without the admin token (the MCP token is no substitute, and not needed), a specific
 * 400 for each kind of bad ban, and bans that end on the store's clock.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type ModerationStore, memoryModeration } from '../../src/chat/moderation.js';
import type { ChatConfig } from '../../src/config.js';
import { parseBanRequest } from '../../src/http/admin.js';
import { type ChatServer, createChatServer } from '../../src/server.js';

const ADMIN_TOKEN = 'admin-token-0123456789';
const MCP_TOKEN = 'mcp-token-0123456789ab';
const START = Date.parse('2026-12-07T08:00:00.000Z');

let server: ChatServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(config: Partial<ChatConfig> = {}, moderation?: ModerationStore) {
  server = await createChatServer({
    config: { adminToken: ADMIN_TOKEN, ...config },
    log: pino({ level: 'silent' }),
    ...(moderation && { moderation }),
  });
  const app = server.app;
  /** A request to /admin…, as the operator's client sends it (with the admin token unless told otherwise). */
  return (path: string, init: { method?: string; body?: string; token?: string | null; host?: string } = {}) => {
    const { method = 'GET', body, token = ADMIN_TOKEN, host = '127.0.0.1:3000' } = init;
    const headers: Record<string, string> = {
      host,
      ...(token !== null && { authorization: `Bearer ${token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    };
    return app.request(`http://${host}/admin${path}`, { method, headers, ...(body !== undefined && { body }) });
  };
}

describe('the admin routes: who may call', () => {
  it('answer 404 without --admin-token, to anyone', async () => {
    const admin = await start({ adminToken: null });
    for (const [path, method] of [
      ['/reports', 'GET'],
      ['/bans', 'GET'],
      ['/bans', 'POST'],
      ['/bans/x', 'DELETE'],
    ] as const) {
      expect((await admin(path, { method, body: method === 'POST' ? '{}' : undefined })).status, `${method} ${path}`).toBe(404);
      expect((await admin(path, { method, token: null })).status).toBe(404);
    }
  });

  it('answer 401 with WWW-Authenticate: Bearer to a missing or wrong token, the MCP token included', async () => {
    const admin = await start({ token: MCP_TOKEN });
    for (const token of [null, 'wrong-token-0123456789', MCP_TOKEN, `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1)]) {
      const response = await admin('/reports', { token });
      expect(response.status, String(token)).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(await response.json()).toEqual({ error: expect.stringMatching(/admin token/) });
    }
    expect((await admin('/bans', { method: 'POST', token: MCP_TOKEN, body: '{"user":"p.x","minutes":1}' })).status).toBe(401);
    expect(await server!.services.moderation.bans()).toEqual([]);
    const metrics = await server!.services.metrics.registry.metrics();
    expect(metrics).toMatch(/^mcp_chat_refusals_total\{reason="unauthorized"\} 6$/m);
  });

  it('need the admin token alone, not the MCP --token', async () => {
    const admin = await start({ token: MCP_TOKEN });
    const response = await admin('/reports');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ reports: [] });
  });

  it('are behind the Host guard like every route', async () => {
    const admin = await start();
    expect((await admin('/reports', { host: 'evil.example:3000' })).status).toBe(403);
  });
});

describe('the admin routes: bans', () => {
  it('refuse each kind of bad body with a specific 400', async () => {
    const admin = await start();
    const cases: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['[1]', /JSON object/],
      ['{"user":"p.x","minutes":5,"why":"spam"}', /Unknown field "why"/],
      ['{"user":"p.x","report_id":"r","minutes":5}', /not both/],
      ['{"minutes":5}', /Give report_id or user/],
      ['{"user":"","minutes":5}', /user must be a string/],
      ['{"report_id":7,"minutes":5}', /report_id must be a string/],
      ['{"user":"p.x"}', /minutes must be a whole number from 1 to 525600/],
      ['{"user":"p.x","minutes":0}', /minutes must be/],
      ['{"user":"p.x","minutes":525601}', /minutes must be/],
      ['{"user":"p.x","minutes":1.5}', /minutes must be/],
      ['{"user":"p.x","minutes":"5"}', /minutes must be/],
      ['{"user":"p.x","minutes":5,"address":"yes"}', /address must be true or false/],
      ['{"report_id":"no-such-report","minutes":5}', /No report has report_id "no-such-report"/],
    ];
    for (const [body, message] of cases) {
      const response = await admin('/bans', { method: 'POST', body });
      expect(response.status, body).toBe(400);
      expect((await response.json()) as { error: string }, body).toEqual({ error: expect.stringMatching(message) });
    }
    expect(await server!.services.moderation.bans()).toEqual([]);
  });

  it('ban a user for a time, list the ban, and lift it once', async () => {
    const clock = START;
    const admin = await start({}, memoryModeration({ now: () => clock }));
    const made = await admin('/bans', { method: 'POST', body: '{"user":"p.spammer","minutes":30}' });
    expect(made.status).toBe(201);
    const ban = (await made.json()) as Record<string, unknown>;
    expect(ban).toEqual({ ban_id: expect.any(String), user: 'p.spammer', until: '2026-12-07T08:30:00.000Z' });
    expect(await (await admin('/bans')).json()).toEqual({ bans: [ban] });
    expect((await admin(`/bans/${String(ban.ban_id)}`, { method: 'DELETE' })).status).toBe(204);
    const again = await admin(`/bans/${String(ban.ban_id)}`, { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(await again.json()).toEqual({ error: expect.stringMatching(/No ban in force/) });
    expect(await (await admin('/bans')).json()).toEqual({ bans: [] });
  });

  it('let a ban end by itself when its minutes are over', async () => {
    let clock = START;
    const admin = await start({}, memoryModeration({ now: () => clock }));
    expect((await admin('/bans', { method: 'POST', body: '{"user":"p.spammer","minutes":1}' })).status).toBe(201);
    clock += 59_999;
    expect(((await (await admin('/bans')).json()) as { bans: unknown[] }).bans).toHaveLength(1);
    clock += 1;
    expect(await (await admin('/bans')).json()).toEqual({ bans: [] });
    expect(server!.services.moderation.banOn({ userId: 'p.spammer' })).toBeUndefined();
  });

  it('ban the reported user of a report, and its address when asked and known', async () => {
    const moderation = memoryModeration();
    const admin = await start({}, moderation);
    const report = await moderation.report({ roomId: 'room-1', reason: 'spam', reported: 'p.spammer', reporter: 'p.victim' });
    const listed = (await (await admin('/reports')).json()) as { reports: unknown[] };
    expect(listed.reports).toEqual([
      {
        report_id: report.reportId,
        at: new Date(report.at).toISOString(),
        room_id: 'room-1',
        reason: 'spam',
        reported: 'p.spammer',
        reporter: 'p.victim',
      },
    ]);
    const unknownAddress = await admin('/bans', {
      method: 'POST',
      body: JSON.stringify({ report_id: report.reportId, minutes: 5, address: true }),
    });
    expect(unknownAddress.status).toBe(409);
    expect(await unknownAddress.json()).toEqual({ error: expect.stringMatching(/address .* is not known/) });
    moderation.noteAddress('p.spammer', '203.0.113.7');
    const made = await admin('/bans', { method: 'POST', body: JSON.stringify({ report_id: report.reportId, minutes: 5, address: true }) });
    expect(made.status).toBe(201);
    expect(await made.json()).toMatchObject({ user: 'p.spammer', address: true });
    expect(moderation.banOn({ address: '203.0.113.7' })).toMatchObject({ userId: 'p.spammer' });
  });

  it('answer 503 while their store is out of reach', async () => {
    const down = async (): Promise<never> => {
      throw new Error('Redis is unavailable');
    };
    const admin = await start({}, { ...memoryModeration(), reports: down, bans: down });
    for (const path of ['/reports', '/bans']) {
      const response = await admin(path);
      expect(response.status, path).toBe(503);
      expect(await response.json()).toEqual({ error: expect.stringMatching(/could not be reached/) });
    }
  });

  it('parse a good request into whom, how long and whether the address too', () => {
    expect(parseBanRequest('{"report_id":"r-1","minutes":10,"address":true}')).toEqual({ reportId: 'r-1', minutes: 10, address: true });
    expect(parseBanRequest('{"user":"p.x","minutes":525600}')).toEqual({ userId: 'p.x', minutes: 525600, address: false });
  });
});
