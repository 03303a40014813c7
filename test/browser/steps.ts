/**
 * Steps the browser tests share: a person's own browser context and page, which record
 * what went wrong in them; the page (GET /) or a test host opened in it; and what a
 * person does and sees in the chat window, which reads the same on the page and in a
 * host's frame (a Playwright `Page` and `Frame` find elements alike).
 */
import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import { expect } from 'vitest';
import { eventually } from '../support/eventually.js';

/** Where the chat window is: the page itself, or the frame a host shows it in. */
export type ChatWindow = Page | Frame;

export interface Person {
  page: Page;
  context: BrowserContext;
  /** Console errors and uncaught exceptions, each named by whose page it was. */
  problems: string[];
}

/** A new page in `context` that records what went wrong in it. */
export async function watchedPage(context: BrowserContext, name: string): Promise<Omit<Person, 'context'>> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${name}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${name}: ${error.message}`));
  return { page, problems };
}

/** A person opens the page at `url` in a browser of their own (light unless they prefer dark), kept in `contexts` to close. */
export async function openPage(
  browser: Browser,
  contexts: BrowserContext[],
  name: string,
  url: URL,
  colorScheme: 'light' | 'dark' = 'light',
): Promise<Person> {
  const context = await browser.newContext({ viewport: { width: 640, height: 560 }, colorScheme });
  contexts.push(context);
  const { page, problems } = await watchedPage(context, name);
  await page.goto(new URL('/', url).href);
  return { page, context, problems };
}

export interface HostOptions {
  /** Touching `sessionStorage` throws, as in a sandbox without `allow-same-origin`. */
  storageDenied?: boolean;
  colorScheme?: 'light' | 'dark';
}

/**
 * A person opens the MCP Apps test host (test/browser/host/) at `hostUrl` in a browser of
 * their own; `cleanups` gets what ends the host's sessions and closes it.
 */
export async function openTestHost(
  browser: Browser,
  cleanups: (() => Promise<unknown>)[],
  hostUrl: string,
  name: string,
  { storageDenied = false, colorScheme = 'light' }: HostOptions = {},
): Promise<Omit<Person, 'context'>> {
  const context = await browser.newContext({ viewport: { width: 700, height: 640 }, colorScheme });
  if (storageDenied)
    await context.addInitScript(() =>
      Object.defineProperty(window, 'sessionStorage', {
        get() {
          throw new DOMException('The document is sandboxed and lacks the allow-same-origin flag.', 'SecurityError');
        },
      }),
    );
  cleanups.push(async () => {
    await context
      .pages()[0]
      ?.evaluate(() => window.testHost.close())
      .catch(() => {});
    await context.close();
  });
  const { page, problems } = await watchedPage(context, name);
  await page.goto(hostUrl);
  await page.waitForFunction(() => window.testHost !== undefined);
  return { page, problems };
}

/** The window's document in a host: the inner frame of the sandbox proxy. */
export async function windowFrame(page: Page): Promise<Frame> {
  return eventually(() => {
    const frame = page.frames().find((f) => f.parentFrame()?.url().endsWith('/sandbox.html'));
    if (!frame) throw new Error('no window yet');
    return frame;
  }, 10_000);
}

export const phaseOf = (chatWindow: ChatWindow) => chatWindow.locator('#app').getAttribute('data-phase');
export const lines = (chatWindow: ChatWindow, kind: 'me' | 'stranger' | 'system') =>
  chatWindow.locator(`#log li.${kind}`).allTextContents();
export const button = (chatWindow: ChatWindow, name: string) => chatWindow.getByRole('button', { name, exact: true });

export async function phase(chatWindow: ChatWindow, name: string): Promise<void> {
  await eventually(async () => expect(await phaseOf(chatWindow)).toBe(name), 5_000);
}

/** The person writes `text` and presses Enter; it shows as theirs. */
export async function say(chatWindow: ChatWindow, text: string): Promise<void> {
  await chatWindow.locator('#message').fill(text);
  await chatWindow.locator('#message').press('Enter');
  await eventually(async () => expect(await lines(chatWindow, 'me')).toContain(text), 5_000);
}

/** The window's last line says why the chat ended. */
export async function endedWith(chatWindow: ChatWindow, line: string): Promise<void> {
  await phase(chatWindow, 'ended');
  await eventually(async () => expect((await lines(chatWindow, 'system')).at(-1)).toBe(line), 5_000);
}

/** Two people meet through the page and say hello both ways. */
export async function meetAndChat(alice: Person, bob: Person): Promise<void> {
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
