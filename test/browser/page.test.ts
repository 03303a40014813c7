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

interface Person {
  page: Page;
  context: BrowserContext;
  problems: string[];
}

/** A person opens the page in a browser of their own (light unless they prefer dark). */
async function person(name: string, url: URL, colorScheme: 'light' | 'dark' = 'light'): Promise<Person> {
  const context = await browser.newContext({ viewport: { width: 640, height: 560 }, colorScheme });
  contexts.push(context);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${name}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${name}: ${error.message}`));
  await page.goto(new URL('/', url).href);
  return { page, context, problems };
}

const phaseOf = (page: Page) => page.locator('#app').getAttribute('data-phase');
const lines = (page: Page, kind: 'me' | 'stranger' | 'system') => page.locator(`#log li.${kind}`).allTextContents();

async function phase(page: Page, name: string): Promise<void> {
  await eventually(async () => expect(await phaseOf(page)).toBe(name), 5_000);
}

async function say(page: Page, text: string): Promise<void> {
  await page.locator('#message').fill(text);
  await page.locator('#message').press('Enter');
  await eventually(async () => expect(await lines(page, 'me')).toContain(text), 5_000);
}

/** Two people meet through the page and say hello both ways. */
async function meetAndChat(alice: Person, bob: Person): Promise<void> {
  await alice.page.locator('#start').click();
  await phase(alice.page, 'waiting');
  await bob.page.locator('#start').click();
  await phase(bob.page, 'chatting');
  await phase(alice.page, 'chatting');
  await say(alice.page, 'Hi from the page');
  await eventually(async () => expect(await lines(bob.page, 'stranger')).toEqual(['Hi from the page']), 5_000);
  await say(bob.page, 'Hello back');
  await eventually(async () => expect(await lines(alice.page, 'stranger')).toEqual(['Hello back']), 5_000);
}

describe('the chat page at GET /', () => {
  it('asks for the server token, pairs two people who chat, and tells one "left" when the other closes the tab', async () => {
    // Its own origin is allowed even when the allow-list names no origin of this server.
    const url = (await serve({ token: SERVER_TOKEN, allowedOrigins: ['http://nowhere.invalid'] })).url;
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

    await alice.page.close();
    await phase(bob.page, 'ended');
    expect((await lines(bob.page, 'system')).at(-1)).toBe('The stranger left the chat.');
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
    await eventually(async () => expect(await lines(alice.page, 'stranger')).toEqual(['Hello! I am an agent. What shall we talk about?']), 5_000);
    await say(alice.page, 'Tell me about\nMCP, please');
    expect((await agent.waitFor('message.received'))[0]).toMatchObject({ room_id: roomId, message: 'Tell me about\nMCP, please', untrusted: true });
    await shots.take(alice.page, 'person-and-agent');
    await agent.call('leave_chat');
    await phase(alice.page, 'ended');
    expect((await lines(alice.page, 'system')).at(-1)).toBe('The stranger left the chat.');
    await shots.take(alice.page, 'agent-left');
    expect(alice.problems).toEqual([]);
  });
});
