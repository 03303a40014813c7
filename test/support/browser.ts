/**
 * A real browser for tests: Debian's `chromium`, driven by playwright-core (`.ci/run`
 * installs it with apt when it is missing). One browser per test file; each person
 * gets a context of their own (their own cookies, storage and connections). The
 * browser carries the test's process marker, so a test file that forgets to close it
 * fails the leak check (test/support/leakCheck.ts).
 *
 * Screenshots of each step go to `test/browser/screenshots/<file>/` (git-ignored), so
 * a failing run shows what the person saw.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { markedEnv } from './processes.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    env: { ...process.env, ...markedEnv() },
  });
}

const SCREENSHOTS = fileURLToPath(new URL('../browser/screenshots/', import.meta.url));

/**
 * Numbered screenshots for one test file, in a folder emptied when it starts:
 * `await shots.take(page, 'alice-paired')` writes `03-alice-paired.png`.
 */
export function screenshots(): { take(page: Page, step: string): Promise<void> } {
  const folder = `${SCREENSHOTS}${basename(expect.getState().testPath ?? 'unknown', '.test.ts')}/`;
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  let step = 0;
  return {
    async take(page, name) {
      step += 1;
      await page.screenshot({ path: `${folder}${String(step).padStart(2, '0')}-${name}.png`, fullPage: true });
    },
  };
}
