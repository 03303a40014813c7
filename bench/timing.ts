/** Small tools the bench's in-process parts (scale-out, under attack) share: waits, percentiles, errors. */
import { setMaxListeners } from 'node:events';

export type Percentiles = { p50: number; p95: number; p99: number; max: number };

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** p50, p95, p99 and max of `samples` (ms), by nearest rank, to the µs; NaN when there are none. */
export function percentiles(samples: readonly number[]): Percentiles {
  if (samples.length === 0) return { p50: NaN, p95: NaN, p99: NaN, max: NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! * 1000) / 1000;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1) };
}

/** Resolves true once `done()` holds, false if `ms` pass or `signal` aborts first. */
export async function until(done: () => boolean, ms: number, signal: AbortSignal): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (signal.aborted || performance.now() >= deadline) return false;
    await sleep(5);
  }
  return true;
}

/** `promise`, or a rejection once `signal` aborts. */
export const orAbort = <T>(promise: Promise<T>, signal: AbortSignal): Promise<T> =>
  signal.aborted
    ? Promise.reject(new Error('aborted'))
    : Promise.race([
        promise,
        new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })),
      ]);

/** Runs `work` over `items`, at most `concurrency` at once, until done or `signal` aborts. */
export async function bounded<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal?.aborted) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Runs `work` with a signal that aborts after `ms`, or once `work` is done; then asks `died()`
 * whether a process it needs died. Answers why it could not finish, in a sentence, or
 * undefined. Cleaning up is the caller's, after: every wait on the signal has ended.
 */
export async function withDeadline(
  ms: number,
  died: () => string | undefined,
  work: (signal: AbortSignal) => Promise<void>,
): Promise<string | undefined> {
  const stop = new AbortController();
  // Every call in flight listens to it.
  setMaxListeners(0, stop.signal);
  const timer = setTimeout(() => stop.abort(), ms);
  try {
    await work(stop.signal);
    if (stop.signal.aborted) throw new Error('abandoned');
    const death = died();
    if (death) throw new Error(death);
    return undefined;
  } catch (error) {
    const why = stop.signal.aborted ? `did not finish within ${ms / 1000} s (${messageOf(error)})` : messageOf(error);
    const death = died();
    return death && !why.includes(death) ? `${why}; ${death}` : why;
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
}
