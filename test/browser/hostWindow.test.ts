/**
 * The chat window in an MCP Apps host, in a real browser: the test host (host/) built
 * on ext-apps' AppBridge, the window in a sandboxed frame on another origin under the
 * spec's default CSP, every call through the host's SDK client to a real server.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { launchBrowser, screenshots } from '../support/browser.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { startTestServer } from '../support/server.js';
import type { OpenOptions } from './host/hostPage.js';
import { startTestHost, type TestHost } from './host/testHost.js';
import { type HostOptions, lines, openTestHost, phaseOf, say, windowFrame } from './steps.js';

let browser: Browser;
let testHost: TestHost;
let server: RunningChatServer;
let shots: ReturnType<typeof screenshots>;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [browser, testHost] = await Promise.all([launchBrowser(), startTestHost()]);
  shots = screenshots();
});
// A server per test: people left in its queue by one test must not meet the next test's.
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup().catch(() => {})));
  await server.close();
});
afterAll(async () => {
  await browser?.close();
  await testHost?.close();
});

/** A person's host: a page of its own (its own browser context), with what went wrong in it recorded. */
const openHost = (name: string, options?: HostOptions) => openTestHost(browser, cleanups, testHost.hostUrl, name, options);

type Structured = Record<string, unknown>;

/** The person's model calls `tool` in their host, which shows the tool's window. */
function open(page: Page, options: Omit<OpenOptions, 'server' | 'sandbox'>): Promise<Structured | undefined> {
  const all: OpenOptions = { server: server.url.href, sandbox: testHost.sandboxUrl, ...options };
  return page.evaluate((o: OpenOptions) => window.testHost.open(o), all) as Promise<Structured | undefined>;
}

describe('the chat window in an MCP Apps host', () => {
  it('pairs two people, carries messages both ways, and tells one why the chat ended when the other presses Next', async () => {
    const alice = await openHost('alice');
    const bob = await openHost('bob');
    const dark = { theme: 'dark' as const, styles: { variables: { '--color-background-primary': 'rgb(20, 30, 40)' } } };
    const entered = await open(alice.page, { tool: 'enter_queue', hostContext: dark });
    expect(entered).toMatchObject({ status: 'waiting', user_token: expect.any(String) });
    const aliceWindow = await windowFrame(alice.page);
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('waiting'), 5_000);
    // The host's theme and colours, not the window's own.
    expect(await aliceWindow.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(20, 30, 40)');
    expect(await aliceWindow.evaluate(() => getComputedStyle(document.documentElement).colorScheme)).toBe('dark');
    await shots.take(alice.page, 'alice-waiting-dark');
    // The host changes its theme: the window follows.
    await alice.page.evaluate(() =>
      window.testHost.themeChanged({ theme: 'light', styles: { variables: { '--color-background-primary': 'rgb(250, 245, 235)' } } }),
    );
    await eventually(async () =>
      expect(await aliceWindow.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(250, 245, 235)'),
    );
    expect(await aliceWindow.evaluate(() => getComputedStyle(document.documentElement).colorScheme)).toBe('light');

    expect(await open(bob.page, { tool: 'enter_queue', hostContext: { theme: 'light' } })).toMatchObject({ status: 'matched' });
    const bobWindow = await windowFrame(bob.page);
    await eventually(async () => expect([await phaseOf(aliceWindow), await phaseOf(bobWindow)]).toEqual(['chatting', 'chatting']), 5_000);
    expect(await bobWindow.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(255, 255, 255)');
    await shots.take(bob.page, 'bob-paired');

    await say(aliceWindow, 'Hello from Alice');
    await eventually(async () => expect(await lines(bobWindow, 'stranger')).toEqual(['Hello from Alice']), 5_000);
    await say(bobWindow, 'Hi Alice, Bob here');
    await say(bobWindow, 'How are you?');
    await eventually(async () => expect(await lines(aliceWindow, 'stranger')).toEqual(['Hi Alice, Bob here', 'How are you?']), 5_000);
    await shots.take(alice.page, 'alice-chatting');
    await shots.take(bob.page, 'bob-chatting');

    await bobWindow.locator('#next').click();
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('ended'), 5_000);
    expect((await lines(aliceWindow, 'system')).at(-1)).toBe('The stranger left the chat.');
    await eventually(async () => expect(await phaseOf(bobWindow)).toBe('waiting'), 5_000);
    await shots.take(alice.page, 'alice-told-left');
    await shots.take(bob.page, 'bob-next-waiting');

    // Every call the windows made went through their hosts; the windows fetched nothing themselves.
    expect(await alice.page.evaluate(() => window.testHost.windowCalls)).toEqual(
      expect.arrayContaining(['get_status', 'wait_for_events', 'send_message']),
    );
    expect(await bob.page.evaluate(() => window.testHost.windowCalls)).toContain('next');
    expect([...alice.problems, ...bob.problems]).toEqual([]);
    // The spec's default CSP holds: the window could not reach the server on its own.
    expect(
      await aliceWindow.evaluate(
        (url) =>
          fetch(url).then(
            () => 'fetched',
            () => 'blocked',
          ),
        server.url.href,
      ),
    ).toBe('blocked');
  });

  it("shares the user with the model when the host uses two sessions (as Claude Desktop does): the model sees what the window does, and neither takes the other's events", async () => {
    const alice = await openHost('alice');
    const agent = await ChatClient.connect(server.url, 'agent');
    cleanups.push(() => agent.end());
    const entered = await open(alice.page, { tool: 'enter_queue', separateSessions: true });
    const token = entered?.user_token as string;
    const aliceWindow = await windowFrame(alice.page);
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('waiting'), 5_000);

    const { room_id: roomId } = await agent.call('enter_queue');
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('chatting'), 5_000);
    await agent.call('send_message', { room_id: roomId, message: 'Hello, I am an agent' });
    await eventually(async () => expect(await lines(aliceWindow, 'stranger')).toEqual(['Hello, I am an agent']), 5_000);
    await say(aliceWindow, 'Hello agent, a person here');
    expect((await agent.waitFor('message.received'))[0]).toMatchObject({ room_id: roomId, message: 'Hello agent, a person here' });
    await shots.take(alice.page, 'two-sessions-chatting');

    // The model, in its own session, reads the same user with its own cursor: everything, from the start.
    const modelCall = (name: string, args: Structured) =>
      alice.page.evaluate(([n, a]) => window.testHost.modelCall(n, a), [name, args] as const);
    expect(await modelCall('get_status', { user_token: token })).toMatchObject({ state: 'chatting', room_id: roomId, user_token: token });
    const read = (await modelCall('wait_for_events', { user_token: token, after: '0', timeout_s: 0 })) as {
      events: { method: string; params: Structured }[];
      cursor: string;
    };
    expect(read.events.map((e) => [e.method, e.params.message])).toEqual([
      ['chatroom.found', undefined],
      ['message.received', 'Hello, I am an agent'],
    ]);
    await agent.call('send_message', { room_id: roomId, message: 'Second message' });
    await eventually(async () => expect(await lines(aliceWindow, 'stranger')).toEqual(['Hello, I am an agent', 'Second message']), 5_000);
    const next = (await modelCall('wait_for_events', { user_token: token, after: read.cursor, timeout_s: 5 })) as typeof read;
    expect(next.events.map((e) => e.params.message)).toEqual(['Second message']);

    // The window's Leave ends the chat: the partner is told, the model sees it.
    await aliceWindow.locator('#leave').click();
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('ended'), 5_000);
    expect((await agent.waitFor('partner.disconnected'))[0]).toMatchObject({ room_id: roomId, reason: 'left' });
    expect(await modelCall('get_status', { user_token: token })).toMatchObject({ state: 'idle', user_token: token });
    await shots.take(alice.page, 'two-sessions-left');
    const calls = await alice.page.evaluate(() => window.testHost.windowCalls);
    expect(calls).toContain('leave_chat');
    expect(alice.problems).toEqual([]);
  });

  it('shows a message full of HTML and Markdown as the literal text, loading and running nothing; closing the window leaves the chat as it is', async () => {
    const alice = await openHost('alice');
    const agent = await ChatClient.connect(server.url, 'agent');
    cleanups.push(() => agent.end());
    expect(await agent.call('enter_queue')).toMatchObject({ status: 'waiting' });
    const entered = await open(alice.page, { tool: 'enter_queue' });
    expect(entered).toMatchObject({ status: 'matched', room_id: expect.any(String) });
    const roomId = entered?.room_id;
    const aliceWindow = await windowFrame(alice.page);
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('chatting'), 5_000);

    // Its own origin's pixel: the default CSP allows 'self' images, so only the window's rendering stands between.
    const pixel = new URL('/pixel.png', testHost.sandboxUrl).href;
    const hostile = [
      `<img src="${pixel}?html" onerror="window.pwned = 'img'"><script>window.pwned = 'script'</script>`,
      `**bold** _em_ [a link](${pixel}?link) ![a picture](${pixel}?markdown)`,
      '<b>bold</b> &amp; &lt;tag&gt; <a href="javascript:window.pwned=1">click</a>',
      '```\ncode\n```',
    ].join('\n');
    await agent.call('send_message', { room_id: roomId, message: hostile });
    await eventually(async () => expect(await lines(aliceWindow, 'stranger')).toEqual([hostile]), 5_000);
    await shots.take(alice.page, 'hostile-message');
    expect(await aliceWindow.locator('#log li.stranger *').count()).toBe(0);
    expect(await aliceWindow.evaluate(() => (window as { pwned?: unknown }).pwned)).toBeUndefined();
    expect(testHost.requests.filter((path) => path.startsWith('/pixel'))).toEqual([]);

    // The host removes the window (scrolled away, closed): the chat goes on, for the model and the partner.
    await alice.page.evaluate(() => window.testHost.closeWindow());
    await agent.call('send_message', { room_id: roomId, message: 'still there?' });
    expect(await agent.call('get_status')).toMatchObject({ state: 'chatting', room_id: roomId });
    expect(agent.received('partner.disconnected')).toEqual([]);
    expect(alice.problems).toEqual([]);
  });

  it('shows the preferences the model gave and the shared interest, reports and blocks through the host, and works where storage is denied', async () => {
    const alice = await openHost('alice', { storageDenied: true, colorScheme: 'dark' });
    const agent = await ChatClient.connect(server.url, 'agent');
    cleanups.push(() => agent.end());
    // The model enters with interests of its own; the window shows them as the server holds them.
    expect(
      await open(alice.page, { tool: 'enter_queue', args: { interests: ['Chess', ' Go '] }, hostContext: { theme: 'dark' } }),
    ).toMatchObject({ status: 'waiting' });
    const aliceWindow = await windowFrame(alice.page);
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('waiting'), 5_000);
    expect(await lines(aliceWindow, 'system')).toEqual(['Your interests: chess, go.']);
    expect(
      await aliceWindow.evaluate(() => {
        try {
          return sessionStorage.length;
        } catch {
          return 'denied';
        }
      }),
    ).toBe('denied');

    const { room_id: roomId, common_interests: shared } = await agent.call('enter_queue', { i_am: 'agent', interests: ['go'] });
    expect(shared).toEqual(['go']);
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('chatting'), 5_000);
    expect(await lines(aliceWindow, 'system')).toEqual(['You are chatting with an AI agent. Say hello! You both like: go.']);
    expect(await aliceWindow.getByRole('status').textContent()).toBe('Chatting with an AI agent · you both like go');
    await agent.call('send_message', { room_id: roomId, message: 'Buy cheap followers at example.com' });
    await eventually(async () => expect(await lines(aliceWindow, 'stranger')).toHaveLength(1), 5_000);

    await aliceWindow.getByRole('button', { name: 'Report', exact: true }).click();
    await aliceWindow.getByLabel('Reason').fill('Spam');
    await shots.take(alice.page, 'window-report-dark');
    await aliceWindow.getByRole('button', { name: 'Send report' }).click();
    expect((await agent.waitFor('partner.disconnected'))[0]).toMatchObject({ room_id: roomId, reason: 'left' });
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('ended'), 5_000);
    expect((await lines(aliceWindow, 'system')).at(-1)).toBe('You reported the stranger: you will not meet them again.');
    // After the chat: whom to meet next, as the model asked, which the person changes.
    expect(await aliceWindow.getByLabel('Interests').inputValue()).toBe('chess, go');
    await shots.take(alice.page, 'window-reported-dark');
    await aliceWindow.getByLabel('Interests').fill('Jazz');
    await aliceWindow.getByRole('radio', { name: 'AI agents' }).check();
    await aliceWindow.getByRole('button', { name: 'Meet someone new' }).click();
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('waiting'), 5_000);
    expect(await lines(aliceWindow, 'system')).toEqual(['Your interests: jazz. You meet AI agents only.']);

    // The window's own choices reached the server: a new agent who likes jazz meets the person at once.
    const jazz = await ChatClient.connect(server.url, 'jazz agent');
    cleanups.push(() => jazz.end());
    expect(await jazz.call('enter_queue', { i_am: 'agent', interests: ['jazz'] })).toMatchObject({
      status: 'matched',
      common_interests: ['jazz'],
      partner_is: 'human',
    });
    await eventually(async () => expect(await phaseOf(aliceWindow)).toBe('chatting'), 5_000);
    await aliceWindow.getByRole('button', { name: 'Block' }).click();
    expect((await jazz.waitFor('partner.disconnected'))[0]).toMatchObject({ reason: 'left' });
    await eventually(
      async () => expect((await lines(aliceWindow, 'system')).at(-1)).toBe('You blocked the stranger: you will not meet them again.'),
      5_000,
    );
    await shots.take(alice.page, 'window-blocked-dark');
    // Still only through the host.
    expect(await alice.page.evaluate(() => window.testHost.windowCalls)).toEqual(expect.arrayContaining(['next', 'leave_chat']));
    expect(alice.problems).toEqual([]);
  });
});
