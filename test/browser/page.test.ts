/**
 * The same window as a web page (`GET /`), in a real browser: people with nothing
 * installed meet each other and agents. Each person has a browser context of their
 * own; the page speaks MCP (2026-07-28) to /mcp on its own origin.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChatConfig } from '../../src/config.js';
import type { RunningChatServer } from '../../src/http/listen.js';
import { launchBrowser, screenshots } from '../support/browser.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { startTestServer } from '../support/server.js';
import { button, endedWith, lines, meetAndChat, openPage, type Person, phase, phaseOf, say } from './steps.js';

const SERVER_TOKEN = 'a-server-token-of-sixteen-plus';

let browser: Browser;
let shots: ReturnType<typeof screenshots>;
let server: RunningChatServer | undefined;
const contexts: BrowserContext[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
  shots = screenshots();
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
  await Promise.all(contexts.splice(0).map((context) => context.close()));
  await server?.close();
  server = undefined;
});
afterAll(async () => {
  await browser?.close();
});

async function serve(config: Partial<ChatConfig> = {}): Promise<RunningChatServer> {
  server = await startTestServer(config);
  return server;
}

/** A person opens the page in a browser of their own (light unless they prefer dark). */
const person = (name: string, url: URL, colorScheme: 'light' | 'dark' = 'light'): Promise<Person> =>
  openPage(browser, contexts, name, url, colorScheme);

/** The person says whom they want to meet, and presses "Meet a stranger" (or "Meet someone new"). */
async function choose(page: Page, interests: string, meet: 'Anyone' | 'People' | 'AI agents' = 'Anyone'): Promise<void> {
  await page.getByLabel('Interests').fill(interests);
  await page.getByRole('radio', { name: meet }).check();
}

/** Two people on a new server, who meet through the page and say hello both ways. */
async function twoChatting(
  config: Partial<ChatConfig> = {},
  aliceScheme: 'light' | 'dark' = 'light',
): Promise<{ alice: Person; bob: Person }> {
  const url = (await serve(config)).url;
  const alice = await person('alice', url, aliceScheme);
  const bob = await person('bob', url);
  await meetAndChat(alice, bob);
  return { alice, bob };
}

/** A person on a new server, chatting with an agent on the SDK client. */
async function chattingWithAgent(config: Partial<ChatConfig> = {}): Promise<{ alice: Person; agent: ChatClient; roomId: unknown }> {
  const url = (await serve(config)).url;
  const alice = await person('alice', url);
  const agent = await ChatClient.connect(url, 'agent');
  closers.push(() => agent.end());
  await button(alice.page, 'Meet a stranger').click();
  await phase(alice.page, 'waiting');
  const { room_id: roomId } = await agent.call('enter_queue', { i_am: 'agent' });
  await phase(alice.page, 'chatting');
  return { alice, agent, roomId };
}

const LEFT = 'The stranger left the chat.';

describe('the chat page at GET /', () => {
  it('asks for the server token, pairs two people who chat, and tells one "left" within the page grace when the other closes the tab', async () => {
    // Its own origin is allowed even when the allow-list names no origin of this server.
    const url = (await serve({ token: SERVER_TOKEN, allowedOrigins: ['http://nowhere.invalid'], pageGraceMs: 1_000 })).url;
    // The page itself needs no token; it is one small file with a strict CSP.
    const served = await fetch(new URL('/', url));
    expect(served.status).toBe(200);
    expect(served.headers.get('content-security-policy')).toMatch(/default-src 'none'.*connect-src 'self'.*frame-ancestors 'none'/);
    expect(Buffer.byteLength(await served.text())).toBeLessThan(150 * 1024);
    const alice = await person('alice', url);
    const bob = await person('bob', url);
    await phase(alice.page, 'start');
    expect(await alice.page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(255, 255, 255)');
    await shots.take(alice.page, 'page-start');

    for (const { page } of [alice, bob]) {
      await page.locator('#start').click();
      await phase(page, 'token');
      await page.locator('#token-input').fill(SERVER_TOKEN);
      await page.locator('#token-form button').click();
    }
    await phase(bob.page, 'chatting');
    await phase(alice.page, 'chatting');
    await shots.take(bob.page, 'token-given-paired');
    await say(alice.page, 'Hi from the page');
    await eventually(async () => expect(await lines(bob.page, 'stranger')).toEqual(['Hi from the page']), 5_000);
    await say(bob.page, 'Hello back');
    await eventually(async () => expect(await lines(alice.page, 'stranger')).toEqual(['Hello back']), 5_000);
    await shots.take(alice.page, 'alice-chatting');

    // The page asks to leave with grace: the server waits for a reload before it tells the partner.
    const closed = Date.now();
    await alice.page.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await phaseOf(bob.page)).toBe('chatting');
    await endedWith(bob.page, LEFT);
    expect(Date.now() - closed).toBeLessThan(1_000 + 2_500);
    await shots.take(bob.page, 'bob-told-left');
    // The first try without the token is answered 401, as it should be; nothing else went wrong.
    expect([...alice.problems, ...bob.problems].filter((problem) => !problem.includes('401 (Unauthorized)'))).toEqual([]);
  });

  it('when the tab closes and its last request is lost, the idle rules end the user and the other is told "timeout"', async () => {
    const url = (await serve({ idleTimeoutMs: 1_500 })).url;
    const alice = await person('alice', url);
    const bob = await person('bob', url);
    await meetAndChat(alice, bob);
    // The network drops before the tab closes: the leave_chat sent as the page goes is lost.
    await alice.context.setOffline(true);
    await alice.page.close();
    await eventually(async () => expect(await phaseOf(bob.page)).toBe('ended'), 10_000);
    expect((await lines(bob.page, 'system')).at(-1)).toBe('The stranger went quiet for too long: the chat timed out.');
    await shots.take(bob.page, 'bob-told-timeout');
  });

  it('lets a person in the page chat with an agent on the SDK client', async () => {
    const url = (await serve()).url;
    const alice = await person('alice', url, 'dark');
    // Without a host, the page follows the browser's preference.
    expect(await alice.page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(27, 27, 29)');
    const agent = await ChatClient.connect(url, 'agent');
    closers.push(() => agent.end());
    await alice.page.locator('#start').click();
    await phase(alice.page, 'waiting');
    const { room_id: roomId } = await agent.call('enter_queue', { i_am: 'agent' });
    expect(roomId).toEqual(expect.any(String));
    await phase(alice.page, 'chatting');
    // The agent said what it is; the person is told.
    expect(await alice.page.locator('#status').textContent()).toBe('Chatting with an AI agent');
    await agent.call('send_message', { room_id: roomId, message: 'Hello! I am an agent. What shall we talk about?' });
    await eventually(
      async () => expect(await lines(alice.page, 'stranger')).toEqual(['Hello! I am an agent. What shall we talk about?']),
      5_000,
    );
    await say(alice.page, 'Tell me about\nMCP, please');
    expect((await agent.waitFor('message.received'))[0]).toMatchObject({
      room_id: roomId,
      message: 'Tell me about\nMCP, please',
      untrusted: true,
    });
    await shots.take(alice.page, 'person-and-agent');
    await agent.call('leave_chat');
    await phase(alice.page, 'ended');
    expect((await lines(alice.page, 'system')).at(-1)).toBe('The stranger left the chat.');
    await shots.take(alice.page, 'agent-left');
    expect(alice.problems).toEqual([]);
  });

  it('pairs two people who share an interest, shows both of them what they share, and keeps their choices for the tab', async () => {
    const url = (await serve()).url;
    const alice = await person('alice', url);
    const bob = await person('bob', url, 'dark');
    await phase(alice.page, 'start');
    await choose(alice.page, ' Chess,  JAZZ , chess,', 'People');
    await shots.take(alice.page, 'alice-chooses');
    await button(alice.page, 'Meet a stranger').click();
    await phase(alice.page, 'waiting');
    // What the server holds: trimmed, lowercased, once each.
    expect(await lines(alice.page, 'system')).toEqual(['Your interests: chess, jazz. You meet people only.']);
    await shots.take(alice.page, 'alice-waiting-with-interests');

    await choose(bob.page, 'hiking, CHESS');
    await button(bob.page, 'Meet a stranger').click();
    await phase(bob.page, 'chatting');
    await phase(alice.page, 'chatting');
    for (const { page } of [alice, bob]) {
      expect(await lines(page, 'system')).toEqual(['You are chatting with a person. Say hello! You both like: chess.']);
      expect(await page.getByRole('status').textContent()).toBe('Chatting with a person · you both like chess');
    }
    await shots.take(bob.page, 'bob-shares-chess-dark');

    // The choices stay for the tab: after a reload, and for the next chat.
    await bob.page.reload();
    await phase(bob.page, 'chatting');
    await button(bob.page, 'Leave').click();
    await phase(bob.page, 'ended');
    expect(await bob.page.getByLabel('Interests').inputValue()).toBe('hiking, chess');
    expect(await bob.page.getByRole('radio', { name: 'Anyone' }).isChecked()).toBe(true);
    await shots.take(bob.page, 'bob-left-choices-kept-dark');
    expect([...alice.problems, ...bob.problems]).toEqual([]);
  });

  it('brings a person who reloads back into the same chat, with every message since, and tells the partner nothing', async () => {
    const { alice, bob } = await twoChatting({ pageGraceMs: 1_000 });
    // Bob writes while Alice's page reloads: she reads it from her cursor, once.
    await Promise.all([alice.page.reload(), say(bob.page, 'Sent during the reload')]);
    await phase(alice.page, 'chatting');
    await eventually(async () => expect(await lines(alice.page, 'stranger')).toEqual(['Hello back', 'Sent during the reload']), 5_000);
    expect(await lines(alice.page, 'me')).toEqual(['Hi from the page']);
    await shots.take(alice.page, 'alice-reloaded');
    // Longer than the page grace: had the reload counted as leaving, Bob would have been told by now.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await phaseOf(bob.page)).toBe('chatting');
    expect(await lines(bob.page, 'system')).toEqual(['You are chatting with a person. Say hello!']);
    await say(alice.page, 'Back again');
    await eventually(async () => expect(await lines(bob.page, 'stranger')).toEqual(['Hi from the page', 'Back again']), 5_000);
    await shots.take(bob.page, 'bob-saw-nothing');
    expect([...alice.problems, ...bob.problems]).toEqual([]);
  });

  it('reports the stranger with a reason: the person leaves, and the partner is told "left"', async () => {
    const { alice, bob } = await twoChatting({}, 'dark');
    await button(alice.page, 'Report').click();
    const reason = alice.page.getByLabel('Reason');
    expect(await reason.getAttribute('maxlength')).toBe('200');
    await reason.fill('Sends links to scams');
    await shots.take(alice.page, 'alice-reports-dark');
    await button(alice.page, 'Send report').click();
    await endedWith(alice.page, 'You reported the stranger: you will not meet them again.');
    // Done: no second verdict on the same stranger.
    expect(await button(alice.page, 'Report').isHidden()).toBe(true);
    expect(await button(alice.page, 'Block').isHidden()).toBe(true);
    await endedWith(bob.page, LEFT);
    await shots.take(alice.page, 'alice-reported-dark');
    expect([...alice.problems, ...bob.problems]).toEqual([]);
  });

  it('blocks the stranger: the person leaves, the partner is told "left", and the two never meet again', async () => {
    // No pause before meeting the last partner again: only a block keeps them apart.
    const { alice, bob } = await twoChatting({ rematchAfterMs: 0 });
    // Without a block, they meet again at once.
    await button(bob.page, 'Next').click();
    await phase(alice.page, 'ended');
    await button(alice.page, 'Meet someone new').click();
    await phase(alice.page, 'chatting');
    await phase(bob.page, 'chatting');

    await button(bob.page, 'Block').click();
    await endedWith(bob.page, 'You blocked the stranger: you will not meet them again.');
    await endedWith(alice.page, LEFT);
    await shots.take(bob.page, 'bob-blocked');
    await button(alice.page, 'Meet someone new').click();
    await button(bob.page, 'Meet someone new').click();
    await phase(alice.page, 'waiting');
    await phase(bob.page, 'waiting');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect([await phaseOf(alice.page), await phaseOf(bob.page)]).toEqual(['waiting', 'waiting']);
    expect([...alice.problems, ...bob.problems]).toEqual([]);
  });

  it('blocks the last partner after the chat ended, and they never meet again', async () => {
    const { alice, agent } = await chattingWithAgent({ rematchAfterMs: 0 });
    await agent.call('leave_chat');
    await endedWith(alice.page, LEFT);
    await button(alice.page, 'Block').click();
    await endedWith(alice.page, 'You blocked the stranger: you will not meet them again.');
    expect(await button(alice.page, 'Block').isHidden()).toBe(true);
    await shots.take(alice.page, 'alice-blocked-after-the-end');
    expect(await agent.call('enter_queue', { i_am: 'agent' })).toMatchObject({ status: 'waiting' });
    await button(alice.page, 'Meet someone new').click();
    await phase(alice.page, 'waiting');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await agent.call('get_status')).toMatchObject({ state: 'waiting' });
    expect(alice.problems).toEqual([]);
  });

  it('counts new messages in the title while the tab is hidden, until the person looks', async () => {
    const { alice, agent, roomId } = await chattingWithAgent();
    const visibility = (state: 'hidden' | 'visible') =>
      alice.page.evaluate((s) => {
        Object.defineProperty(document, 'visibilityState', { value: s, configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    await agent.call('send_message', { room_id: roomId, message: 'Seen at once' });
    await eventually(async () => expect(await lines(alice.page, 'stranger')).toEqual(['Seen at once']), 5_000);
    expect(await alice.page.title()).toBe('mcp-chat');
    await visibility('hidden');
    await agent.call('send_message', { room_id: roomId, message: 'One' });
    await agent.call('send_message', { room_id: roomId, message: 'Two' });
    await eventually(async () => expect(await alice.page.title()).toBe('(2) mcp-chat'), 5_000);
    await visibility('visible');
    expect(await alice.page.title()).toBe('mcp-chat');
    expect(alice.problems).toEqual([]);
  });
});
