/**
 * Operators act on reports, against a real server with real SDK clients: a user reports
 * its partner, the report shows at GET /admin/reports, a ban by its report_id refuses the
 * reported user's next enter_queue (saying until when) while the reporter meets someone
 * else, and DELETE lifts it. A ban with `address` refuses new users from that address; a
 * user banned while chatting cannot meet anyone new.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { health, startTestServer } from '../support/server.js';

const ADMIN_TOKEN = 'operator-secret-0123456789';

let server: RunningChatServer;
const open: ChatClient[] = [];

/** `count` new clients, each its own session, ended after the test. */
async function clients(count: number): Promise<ChatClient[]> {
  const made = await Promise.all(Array.from({ length: count }, () => ChatClient.connect(server.url)));
  open.push(...made);
  return made;
}

/** An operator's request to /admin…, JSON in and out. */
async function admin(path: string, method = 'GET', body?: unknown): Promise<{ status: number; json: Record<string, unknown> | null }> {
  const response = await fetch(new URL(`/admin${path}`, server.url), {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : null };
}

/** The internal id of the user a client acts for (never shown to clients; the operators' name for it). */
const userIdOf = (client: ChatClient) => server.services.users.byToken(client.token!)!.userId;

/** Two clients in one room. */
async function pair(): Promise<[ChatClient, ChatClient]> {
  const [a, b] = (await clients(2)) as [ChatClient, ChatClient];
  expect(await a.call('enter_queue')).toMatchObject({ status: 'waiting' });
  expect(await b.call('enter_queue')).toMatchObject({ status: 'matched' });
  await a.waitFor('chatroom.found');
  return [a, b];
}

const refusalsOf = async (reason: string) => {
  const text = await (await fetch(new URL('/metrics', server.url))).text();
  return Number(new RegExp(`^mcp_chat_refusals_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
};

beforeAll(async () => {
  server = await startTestServer({ adminToken: ADMIN_TOKEN, graceMs: 150 });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.end().catch(() => {})));
  for (const { ban_id } of (await admin('/bans')).json!.bans as { ban_id: string }[]) await admin(`/bans/${ban_id}`, 'DELETE');
  await eventually(async () => expect(await health(server)).toMatchObject({ actors: { users: 0, rooms: 0 }, queue: 0 }), 5_000);
});

afterAll(async () => {
  await server.close();
});

describe('operators act on reports', () => {
  it('a reported user, banned by the report, is refused at enter_queue until the ban is lifted; the reporter meets someone else', async () => {
    const [reporter, reported] = await pair();
    expect(await reporter.call('leave_chat', { report: 'spam' })).toEqual({ status: 'idle' });
    await reported.waitFor('partner.disconnected');

    const { status, json } = await admin('/reports');
    expect(status).toBe(200);
    const reports = json!.reports as Record<string, unknown>[];
    expect(reports).toEqual([
      {
        report_id: expect.any(String),
        at: expect.any(String),
        room_id: reported.received('chatroom.found')[0]!.room_id,
        reason: 'spam',
        reported: userIdOf(reported),
        reporter: userIdOf(reporter),
      },
    ]);
    // Users are named by ids that are not their tokens.
    expect(JSON.stringify(reports)).not.toContain(reporter.token);
    expect(JSON.stringify(reports)).not.toContain(reported.token);

    const made = await admin('/bans', 'POST', { report_id: reports[0]!.report_id, minutes: 60 });
    expect(made.status).toBe(201);
    const ban = made.json!;
    expect(ban).toEqual({ ban_id: expect.any(String), user: userIdOf(reported), until: expect.any(String) });
    expect(Date.parse(ban.until as string) - Date.now()).toBeGreaterThan(59 * 60_000);

    const before = await refusalsOf('banned');
    const sentence = await reported.refusal('enter_queue');
    expect(sentence).toContain('banned');
    expect(sentence).toContain(`until ${ban.until as string}`);
    expect(await reported.refusal('next')).toContain(`until ${ban.until as string}`);
    expect(await refusalsOf('banned')).toBe(before + 2);

    // The reporter is not touched: it meets a newcomer.
    const [newcomer] = (await clients(1)) as [ChatClient];
    expect(await newcomer.call('enter_queue')).toMatchObject({ status: 'waiting' });
    expect(await reporter.call('enter_queue')).toMatchObject({ status: 'matched' });
    await newcomer.waitFor('chatroom.found');
    expect(reported.received('chatroom.found')).toHaveLength(1);

    expect((await admin(`/bans/${ban.ban_id as string}`, 'DELETE')).status).toBe(204);
    expect((await admin(`/bans/${ban.ban_id as string}`, 'DELETE')).status).toBe(404);
    expect((await admin('/bans')).json).toEqual({ bans: [] });
    expect(await reported.call('enter_queue')).toMatchObject({ status: 'waiting' });
  });

  it('a ban with the address refuses new users from that address, not its users already here', async () => {
    const [reporter, reported] = await pair();
    expect(await reporter.call('leave_chat', { report: 'abuse' })).toEqual({ status: 'idle' });
    const reportId = ((await admin('/reports')).json!.reports as { report_id: string }[])[0]!.report_id;
    const made = await admin('/bans', 'POST', { report_id: reportId, minutes: 5, address: true });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ user: userIdOf(reported), address: true });

    // Every client of this test comes from 127.0.0.1, the reported user's address.
    const [newcomer] = (await clients(1)) as [ChatClient];
    expect(await newcomer.refusal('enter_queue')).toMatch(/^New users from your address are banned .* until \d{4}-\d\d-\d\dT/);
    expect(await reported.refusal('enter_queue')).toMatch(/^You are banned/);
    expect(await reporter.call('enter_queue')).toMatchObject({ status: 'waiting' });

    expect((await admin(`/bans/${made.json!.ban_id as string}`, 'DELETE')).status).toBe(204);
    expect(await newcomer.call('enter_queue')).toMatchObject({ status: 'matched' });
  });

  it('a user banned while chatting cannot meet anyone new: its next is refused and changes nothing; its partner may leave or block', async () => {
    const [partner, banned] = await pair();
    const made = await admin('/bans', 'POST', { user: userIdOf(banned), minutes: 5 });
    expect(made.status).toBe(201);
    const room_id = banned.received('chatroom.found')[0]!.room_id;
    expect(await banned.refusal('next')).toMatch(/^You are banned/);
    expect(await banned.call('get_status')).toMatchObject({ state: 'chatting', room_id });
    expect(partner.received('partner.disconnected')).toEqual([]);
    await banned.call('leave_chat');
    expect(await banned.refusal('enter_queue')).toMatch(/^You are banned/);
  });
});
