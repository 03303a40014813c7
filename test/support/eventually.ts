/** Waiting in tests: for a condition to hold, or for a fixed time. */

const POLL_MS = 5;
const PATIENCE_MS = 3_000;

/** Runs `check` until it passes, or throws its last error after `ms`. */
export async function eventually<T>(check: () => T | Promise<T>, ms = PATIENCE_MS): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await sleep(POLL_MS);
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
