/**
 * The events a user has not taken yet, for `wait_for_events`: the chat notifications
 * of the session's stream, read by cursor, with a wait for the next one. It reads the
 * same ring the SSE stream replays from, so both channels carry the same ids.
 */
import type { ChatNotificationMethod } from '../../mcp/notifications.js';
import type { ChatEntry } from './eventStore.js';
import type { Ring } from './ring.js';

interface FeedEvent {
  id: string;
  method: ChatNotificationMethod;
  params: Record<string, unknown>;
}

interface FeedPage {
  events: FeedEvent[];
  /** Pass as `after` next time. */
  cursor: string;
  /** Events that fell out of the bounded buffer before they were taken. */
  missed: number;
}


export class EventFeed {
  /** The cursor last handed out: where a call without `after` starts. */
  #taken = 0;
  readonly #waiters = new Set<{ cursor: number; done: () => void }>();
  /** Calls being held by `hold` now. */
  #held = 0;

  constructor(readonly ring: Ring<ChatEntry>) {}

  /** How many calls are being held for events now. */
  get held(): number {
    return this.#held;
  }

  /**
   * Holds a reader until an event comes after its position, `deadline` (ms since the
   * epoch) passes, or `signal` aborts. `from` is read again after each wake-up: a reader
   * without a cursor of its own reads from what is untaken, and a call held beside it
   * may have taken the event that woke both, so it waits on.
   */
  async hold(from: () => number, deadline: number, signal: AbortSignal): Promise<void> {
    if (this.hasAfter(from())) return;
    this.#held += 1;
    try {
      while (!this.hasAfter(from()) && !signal.aborted && Date.now() < deadline)
        await this.waitBeyond(from(), deadline - Date.now(), signal);
    } finally {
      this.#held -= 1;
    }
  }

  /** Parses a client's cursor; undefined when it is not one this feed could have given. */
  parseCursor(after: string | undefined): number | undefined {
    if (after === undefined) return this.#taken;
    if (!/^\d{1,15}$/.test(after)) return undefined;
    const n = Number(after);
    return n <= this.ring.last ? n : undefined;
  }

  /** Whether anything was appended after `cursor`. */
  hasAfter(cursor: number): boolean {
    return this.ring.last > cursor;
  }

  read(cursor: number): FeedPage {
    const events: FeedEvent[] = [];
    for (const [id, { message }] of this.ring.after(cursor)) {
      events.push({ id: String(id), method: message.method, params: message.params ?? {} });
    }
    const missed = Math.max(0, this.ring.first - 1 - cursor);
    this.#taken = Math.max(this.#taken, this.ring.last);
    return { events, cursor: String(this.ring.last), missed };
  }

  /** Resolves when something is appended after `cursor`, after `ms`, on abort, or on release. */
  waitBeyond(cursor: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.hasAfter(cursor) || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        cursor,
        done: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          signal?.removeEventListener('abort', waiter.done);
          resolve();
        },
      };
      // A request-scoped long poll, not chat logic: the chat's timers live in the charts.
      const timer = setTimeout(waiter.done, ms);
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', waiter.done, { once: true });
    });
  }

  /** Called after each append to the session stream. */
  appended(): void {
    for (const waiter of [...this.#waiters]) if (this.hasAfter(waiter.cursor)) waiter.done();
  }

  /** Ends every wait at once, e.g. when the session ends. */
  release(): void {
    for (const waiter of [...this.#waiters]) waiter.done();
  }
}
