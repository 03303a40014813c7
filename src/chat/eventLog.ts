/**
 * A user's event log: its news, in order, numbered from 1 — the ids both channels use,
 * the SSE stream of every session bound to the user and `wait_for_events` from any
 * session or none. It is bounded in events and in bytes (users outlive sessions, so a
 * user nobody reads must not grow without end); the oldest go first.
 *
 * Readers hold a position (a cursor). A reader without one of its own reads from what
 * is untaken: what no read without a cursor has handed out yet. (What a session's SSE
 * stream delivered is not taken: most hosts receive notifications but never show them
 * to the model, which reads with `wait_for_events`. It is only not *missed*: an event
 * a stream delivered is not counted as lost when it leaves the log.) A held read waits
 * for the next event. Held reads never disturb each other, whatever their positions (a
 * model and a chat window that both read everything wait at the same one), up to a
 * bound per user: a read beyond it supersedes the oldest held (most likely a call its
 * client gave up on without the server noticing).
 *
 * Generic in what it holds: the chat layer knows no wire format (src/session gives it
 * the notifications it sends).
 */

export interface LogLimits {
  /** Events kept at most. */
  events: number;
  /** Bytes kept at most (as `sizeOf` counts them); the newest event is always kept. */
  bytes: number;
}

/** A read: the events after a position, where to read from next, and what is gone. */
export interface LogPage<E> {
  events: [id: number, event: E][];
  cursor: number;
  /** Events after the position that left the log before this reader took them. */
  missed: number;
}

/** How a held read ended: an event came, or time ran out, or it was let go. */
export type HoldEnd = 'ready' | 'timeout' | 'aborted' | 'superseded' | 'released';

interface Waiter {
  /** The position it waits beyond; `null` for "what is untaken". */
  key: number | null;
  done: (end: HoldEnd) => void;
}

/**
 * What all logs may hold together. Past `bytes`, the oldest events of the largest logs
 * go first, down to nine tenths of it (so one overflow pays for many appends); each log
 * keeps at least its newest event. Readers of a log that lost events are told how many
 * (`LogPage.missed`), as for a log over its own bound.
 */
/** A log as the budget sees it. */
interface BudgetedLog {
  readonly bytes: number;
  shedTo(bytes: number): number;
}

export class LogBudget {
  readonly #logs = new Set<BudgetedLog>();
  #bytes = 0;
  #shed = 0;
  /** Past this many bytes an overflow cuts: the limit, or higher while the newest events alone exceed it. */
  #trigger: number;
  /** An overflow is cutting: the changes it makes must not start another. */
  #cutting = false;

  constructor(
    readonly limit: number,
    /** Hears how many events an overflow took, and from how many logs. */
    private readonly onShed: (events: number, logs: number) => void = () => {},
  ) {
    this.#trigger = limit;
  }

  /** Bytes all logs hold now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Events taken by overflows so far. */
  get shed(): number {
    return this.#shed;
  }

  /** @internal A log's size changed by `delta` bytes. */
  changed(log: BudgetedLog, delta: number): void {
    this.#logs.add(log);
    this.#bytes += delta;
    if (this.#bytes <= this.limit) this.#trigger = this.limit;
    else if (!this.#cutting && this.#bytes > this.#trigger) this.#overflow();
  }

  /** @internal A log is gone: what it held is free. */
  forget(log: BudgetedLog): void {
    if (this.#logs.delete(log)) this.#bytes -= log.bytes;
  }

  /** Cuts the largest logs to one level, the highest that frees enough ("water-filling"). */
  #overflow(): void {
    const excess = this.#bytes - Math.floor(this.limit * 0.9);
    const logs = [...this.#logs].sort((a, b) => b.bytes - a.bytes);
    let level = 0;
    let above = 0;
    for (let i = 0; i < logs.length; i++) {
      // Cutting logs[0..i] down to the next one's size frees this much:
      const next = logs[i + 1]?.bytes ?? 0;
      above += logs[i]!.bytes;
      const freed = above - (i + 1) * next;
      if (freed >= excess) {
        level = Math.max(next, Math.floor((above - excess) / (i + 1)));
        break;
      }
    }
    let events = 0;
    let cut = 0;
    this.#cutting = true;
    try {
      for (const log of logs) {
        if (log.bytes <= level) break;
        const taken = log.shedTo(level);
        events += taken;
        if (taken > 0) cut += 1;
      }
    } finally {
      this.#cutting = false;
    }
    // When the logs' newest events alone (which stay) exceed the limit, the next overflow
    // waits for another tenth of it, so appends do not each sort every log.
    if (this.#bytes > this.limit) this.#trigger = this.#bytes + Math.ceil(this.limit / 10);
    this.#shed += events;
    if (events > 0) this.onShed(events, cut);
  }
}

export class EventLog<E> {
  readonly #events: E[] = [];
  readonly #sizes: number[] = [];
  /** Id of `#events[0]`. */
  #first = 1;
  #bytes = 0;
  /** Everything up to here was handed out by a read without a cursor. */
  #taken = 0;
  /** Everything up to here was written to a session's stream. */
  #streamed = 0;
  readonly #waiters = new Set<Waiter>();

  constructor(
    readonly limits: LogLimits,
    private readonly sizeOf: (event: E) => number,
    private readonly budget?: LogBudget,
  ) {
    if (!Number.isInteger(limits.events) || limits.events < 1) throw new RangeError('limits.events must be a positive integer');
  }

  /** Id of the newest event; 0 while none was appended. */
  get last(): number {
    return this.#first + this.#events.length - 1;
  }

  /** Id of the oldest event still held. */
  get first(): number {
    return this.#first;
  }

  /** Bytes the log holds now (as `sizeOf` counts them). */
  get bytes(): number {
    return this.#bytes;
  }

  append(event: E): number {
    const size = this.sizeOf(event);
    const before = this.#bytes;
    this.#events.push(event);
    this.#sizes.push(size);
    this.#bytes += size;
    while (this.#events.length > 1 && (this.#events.length > this.limits.events || this.#bytes > this.limits.bytes)) this.#dropOldest();
    const id = this.last;
    this.budget?.changed(this, this.#bytes - before);
    for (const waiter of [...this.#waiters]) if (this.#hasAfter(waiter.key)) waiter.done('ready');
    return id;
  }

  /**
   * @internal The budget takes the oldest events until the log holds at most `bytes`
   * (its newest event stays). Returns how many it took.
   */
  shedTo(bytes: number): number {
    const before = this.#bytes;
    let taken = 0;
    while (this.#events.length > 1 && this.#bytes > bytes) {
      this.#dropOldest();
      taken += 1;
    }
    this.budget?.changed(this, this.#bytes - before);
    return taken;
  }

  #dropOldest(): void {
    this.#events.shift();
    this.#bytes -= this.#sizes.shift()!;
    this.#first += 1;
  }

  /** Event `id`, if the log still holds it. */
  at(id: number): E | undefined {
    return id >= this.#first ? this.#events[id - this.#first] : undefined;
  }

  /** Events after `id`, oldest first (from `first` when `id` has left the log). */
  *after(id: number): Generator<[number, E]> {
    for (let n = Math.max(id + 1, this.#first); n <= this.last; n++) yield [n, this.#events[n - this.#first]!];
  }

  /** A session's stream delivered everything up to `id` (streams deliver in order). */
  markStreamed(id: number): void {
    this.#streamed = Math.max(this.#streamed, Math.min(id, this.last));
  }

  /** A client's cursor as a position; undefined when it is not one this log could have given. */
  parseCursor(after: string): number | undefined {
    if (!/^\d{1,15}$/.test(after)) return undefined;
    const n = Number(after);
    return n <= this.last ? n : undefined;
  }

  /**
   * Reads after `cursor` (null: what is untaken, which it then takes). Missed, for the
   * untaken reader, are the events that left the log before any read or stream
   * delivered them.
   */
  read(cursor: number | null): LogPage<E> {
    const from = cursor ?? this.#taken;
    const deliveredUpTo = cursor ?? Math.max(this.#taken, this.#streamed);
    const page = { events: [...this.after(from)], cursor: this.last, missed: Math.max(0, this.#first - 1 - deliveredUpTo) };
    if (cursor === null) this.#taken = this.last;
    return page;
  }

  /** Reads held now. */
  get heldReaders(): number {
    return this.#waiters.size;
  }

  /** Whether a read at this position would wait: nothing after it yet. */
  isEmptyAfter(cursor: number | null): boolean {
    return !this.#hasAfter(cursor);
  }

  /**
   * Holds a read at `cursor` (null: what is untaken) until an event comes after it,
   * `ms` pass, `signal` aborts, or — when `maxHeld` reads are held and another one
   * comes — it is the oldest, and is superseded.
   */
  hold(cursor: number | null, ms: number, signal: AbortSignal, maxHeld = Infinity): Promise<HoldEnd> {
    if (signal.aborted) return Promise.resolve('aborted');
    if (this.#hasAfter(cursor)) return Promise.resolve('ready');
    // A Set iterates in insertion order: the first is the oldest.
    for (const waiter of this.#waiters) {
      if (this.#waiters.size < maxHeld) break;
      waiter.done('superseded');
    }
    return new Promise((resolve) => {
      const onAbort = () => waiter.done('aborted');
      const waiter: Waiter = {
        key: cursor,
        done: (end) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          signal.removeEventListener('abort', onAbort);
          resolve(end);
        },
      };
      // A request-scoped long poll, not chat logic: the chat's timers live in the charts.
      const timer = setTimeout(() => waiter.done('timeout'), ms);
      this.#waiters.add(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Ends every held read at once (the user ended), and gives its bytes back to the budget. */
  release(): void {
    for (const waiter of [...this.#waiters]) waiter.done('released');
    this.budget?.forget(this);
  }

  #hasAfter(cursor: number | null): boolean {
    return this.last > (cursor ?? this.#taken);
  }
}
