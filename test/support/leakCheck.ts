/**
 * Runs after every test file (a vitest setup file): fails the file, naming the test,
 * when a process one of its tests started is still alive — a server its npm parent
 * left behind included. Survivors get a moment to finish exiting, then are killed, so
 * a failing run leaves nothing behind either.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { markTestsBy, survivorsOf } from './processes.js';

const GRACE_MS = 3_000;

markTestsBy(() => expect.getState());

let testPath = '';
beforeAll(() => {
  testPath = expect.getState().testPath ?? '';
});

afterAll(async () => {
  const deadline = Date.now() + GRACE_MS;
  let survivors = survivorsOf(testPath);
  while (survivors.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    survivors = survivorsOf(testPath);
  }
  for (const { pid } of survivors) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  if (survivors.length > 0)
    throw new Error(
      `left running after its tests: ${survivors.map((s) => `pid ${s.pid} (${s.command}) started by "${s.test}"`).join('; ')}`,
    );
});
