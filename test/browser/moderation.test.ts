/**
 * Operators act on what people report, through the chat window in a real browser: a
 * report sent with the window's Report (on the page, and in an MCP Apps host) shows at
 * GET /admin/reports with its reason, naming both users by their internal ids; a ban by
 * that report refuses the reported person's next meeting with a sentence on their page
 * saying until when, while the reporter goes on to meet an agent.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChatConfig } from '../../src/config.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import { launchBrowser, screenshots } from '../support/browser.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { startTestServer } from '../support/server.js';
import type { OpenOptions } from './host/hostPage.js';
import { startTestHost, type TestHost } from './host/testHost.js';
import { button, endedWith, lines, meetAndChat, openPage, openTestHost, phase, phaseOf, windowFrame } from './steps.js';

const ADMIN_TOKEN = 'operator-secret-0123456789';
const REPORTED = 'You reported the stranger: you will not meet them again.';

let browser: Browser;
let testHost: TestHost;
let shots: ReturnType<typeof screenshots>;
let server: RunningChatServer | undefined;
const contexts: BrowserContext[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [browser, testHost] = await Promise.all([launchBrowser(), startTestHost()]);
  shots = screenshots();
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup().catch(() => {})));
  await Promise.all(contexts.splice(0).map((context) => context.close()));
  await server?.close();
  server = undefined;
});
afterAll(async () => {
  await browser?.close();
  await testHost?.close();
});

/** A new server whose operators' routes answer to ADMIN_TOKEN. */
async function serve(config: Partial<ChatConfig> = {}): Promise<RunningChatServer> {
  server = await startTestServer({ adminToken: ADMIN_TOKEN, ...config });
  return server;
}

/** The operator's request to /admin…, with the admin token; JSON in and out. */
async function operator(
  running: RunningChatServer,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(new URL(`/admin${path}`, running.url), {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** The reports at GET /admin/reports. */
async function reports(running: RunningChatServer): Promise<Record<string, unknown>[]> {
  const { status, json } = await operator(running, '/reports');
  expect(status).toBe(200);
  return json.reports as Record<string, unknown>[];
}

/** The internal id of the user a token names (the operators' name for it, never shown to the person). */
const userIdOf = (running: RunningChatServer, token: string) => running.services.users.byToken(token)!.userId;

/** What the page keeps of its conversation in the tab's storage: its user's token, and the room it is in. */
const pageMemory = (page: Page) =>
  page.evaluate(() => JSON.parse(sessionStorage.getItem('mcp-chat conversation') ?? '{}') as { token: string; roomId?: string });

/** An agent on the SDK client, ended after the test. */
async function agentOn(running: RunningChatServer): Promise<ChatClient> {
  const agent = await ChatClient.connect(running.url, 'agent');
  cleanups.push(() => agent.end());
  return agent;
}

describe('operators act on reports from the chat window', () => {
  it('a report from the page shows at GET /admin/reports with its reason; banned by it, the reported person is told until when, and the reporter meets an agent', async () => {
    const running = await serve({ pageGraceMs: 1_000 });
    const alice = await openPage(browser, contexts, 'alice', running.url);
    const bob = await openPage(browser, contexts, 'bob', running.url);
    await meetAndChat(alice, bob);
    const [aliceChat, bobChat] = [await pageMemory(alice.page), await pageMemory(bob.page)];
    expect(aliceChat.roomId).toEqual(expect.any(String));
    await button(alice.page, 'Report').click();
    await alice.page.getByLabel('Reason').fill('Asked for my bank details');
    await shots.take(alice.page, 'alice-reports');
    await button(alice.page, 'Send report').click();
    await endedWith(alice.page, REPORTED);
    await endedWith(bob.page, 'The stranger left the chat.');

    const [report, ...more] = await reports(running);
    expect(more).toEqual([]);
    expect(report).toEqual({
      report_id: expect.any(String),
      at: expect.any(String),
      room_id: aliceChat.roomId,
      reason: 'Asked for my bank details',
      reported: userIdOf(running, bobChat.token),
      reporter: userIdOf(running, aliceChat.token),
    });
    expect(report!.reported).not.toBe(report!.reporter);
    // Named by ids that are not their tokens.
    expect(JSON.stringify(report)).not.toContain(aliceChat.token);
    expect(JSON.stringify(report)).not.toContain(bobChat.token);

    const ban = await operator(running, '/bans', { report_id: report!.report_id, minutes: 10 });
    expect(ban.status).toBe(201);
    expect(ban.json).toEqual({ ban_id: expect.any(String), user: report!.reported, until: expect.any(String) });
    const until = ban.json.until as string;

    // Bob asks first: had he not been banned, he would be first in line and meet the agent.
    await button(bob.page, 'Meet someone new').click();
    const refusal = bob.page.getByRole('alert');
    await eventually(async () => expect(await refusal.isVisible()).toBe(true), 5_000);
    const sentence = await refusal.textContent();
    expect(sentence).toContain('You are banned');
    expect(sentence).toContain(`until ${until}`);
    expect(await phaseOf(bob.page)).toBe('ended');
    await shots.take(bob.page, 'bob-banned');

    await button(alice.page, 'Meet someone new').click();
    await phase(alice.page, 'waiting');
    const agent = await agentOn(running);
    const { status, room_id: roomId } = await agent.call('enter_queue', { i_am: 'agent' });
    expect(status).toBe('matched');
    await phase(alice.page, 'chatting');
    expect(await alice.page.getByRole('status').textContent()).toBe('Chatting with an AI agent');
    await agent.call('send_message', { room_id: roomId, message: 'Hello! An agent here.' });
    await eventually(async () => expect((await lines(alice.page, 'stranger')).at(-1)).toBe('Hello! An agent here.'), 5_000);
    await shots.take(alice.page, 'alice-meets-an-agent');
    // Still refused, and nobody else reached Bob.
    expect(await phaseOf(bob.page)).toBe('ended');
    expect([...alice.problems, ...bob.problems]).toEqual([]);
  });

  it('a report from the window in an MCP Apps host shows at GET /admin/reports with its reason, naming the agent it reports', async () => {
    const running = await serve();
    const alice = await openTestHost(browser, cleanups, testHost.hostUrl, 'alice');
    const agent = await agentOn(running);
    const open: OpenOptions = { server: running.url.href, sandbox: testHost.sandboxUrl, tool: 'enter_queue' };
    const entered = (await alice.page.evaluate((options) => window.testHost.open(options), open)) as Record<string, unknown>;
    expect(entered).toMatchObject({ status: 'waiting', user_token: expect.any(String) });
    const aliceWindow = await windowFrame(alice.page);
    await phase(aliceWindow, 'waiting');
    const { room_id: roomId } = await agent.call('enter_queue', { i_am: 'agent' });
    await phase(aliceWindow, 'chatting');
    await agent.call('send_message', { room_id: roomId, message: 'Send me your password' });
    await eventually(async () => expect(await lines(aliceWindow, 'stranger')).toEqual(['Send me your password']), 5_000);

    await button(aliceWindow, 'Report').click();
    await aliceWindow.getByLabel('Reason').fill('Phishing for passwords');
    await shots.take(alice.page, 'window-reports');
    await button(aliceWindow, 'Send report').click();
    await endedWith(aliceWindow, REPORTED);
    expect((await agent.waitFor('partner.disconnected'))[0]).toMatchObject({ room_id: roomId, reason: 'left' });
    await shots.take(alice.page, 'window-reported');

    expect(await reports(running)).toEqual([
      {
        report_id: expect.any(String),
        at: expect.any(String),
        room_id: roomId,
        reason: 'Phishing for passwords',
        reported: userIdOf(running, agent.token!),
        reporter: userIdOf(running, entered.user_token as string),
      },
    ]);
    expect(userIdOf(running, agent.token!)).not.toBe(userIdOf(running, entered.user_token as string));
    // The report went through the host, as every call of the window does.
    expect(await alice.page.evaluate(() => window.testHost.windowCalls)).toContain('leave_chat');
    expect(alice.problems).toEqual([]);
  });
});
