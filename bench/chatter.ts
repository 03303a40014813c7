/**
 * One benchmark user, whichever part drives it: a lean client (a session with its stream,
 * or a token client that keeps none), its room and partner, and the bookkeeping that
 * proves exactly-once, in-order delivery. Each message it sends carries a stamp — sender,
 * per-sender number, when it was sent and when it was due — so the partner can check
 * order and measure latency without any shared table.
 */
import type { NotificationHandler } from './leanSession.js';
import { bounded, messageOf, until } from './timing.js';

/** `<sender>.<n>.<sentAtUs>.<dueAtUs>.` padded with `x` to `size` characters. */
export function messageText(size: number, ...fields: number[]): string {
  const head = `${fields.join('.')}.`;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

/** Checks the numbers read from one sender: each read once, in order. */
export class SequenceCheck {
  last = 0;
  /** Skipped numbers not yet read. */
  readonly missing = new Set<number>();
  received = 0;
  duplicated = 0;
  outOfOrder = 0;

  /** Counts the arrival of number `n`; answers whether it was read before. */
  accept(n: number): boolean {
    if (n > this.last) {
      for (let gap = this.last + 1; gap < n; gap++) this.missing.add(gap);
      this.last = n;
    } else if (this.missing.delete(n)) this.outOfOrder += 1;
    else {
      this.duplicated += 1;
      return true;
    }
    this.received += 1;
    return false;
  }
}

/** What a user needs of its client (a TokenClient, or a LeanSession): calls out, events in. */
export interface PairClient {
  onNotification: NotificationHandler;
  call(name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>>;
}

/**
 * One member of a pair: learns its room (from enter_queue's answer or chatroom.found),
 * sends numbered messages, checks its partner's, and tells `onRead` when and how late
 * (from when it was sent, and when it was due) each new one was read.
 */
export class PairedUser<C extends PairClient = PairClient> {
  roomId: string | undefined;
  partner: PairedUser | undefined;
  /** Resolves once the room is known; `foundAt` is when (performance.now()). */
  readonly found: Promise<void>;
  foundAt = 0;
  readonly reads = new SequenceCheck();
  nextN = 1;
  acked = 0;
  /** A send_message in flight. */
  sending = false;
  /** send_message calls refused or failed: their numbers are never expected at the partner. */
  failed = 0;
  /** Read in another room, from someone other than the partner, or an event no chat sends it. */
  misrouted = 0;
  firstError: string | undefined;
  onRead: (sentAtUs: number, dueAtUs: number, at: number) => void = () => {};
  #found = () => {};

  constructor(
    readonly index: number,
    readonly client: C,
  ) {
    this.found = new Promise((resolve) => (this.#found = resolve));
    client.onNotification = (method, params, at) => {
      if (method === 'message.received') this.#read(params, at);
      else if (method === 'chatroom.found' && typeof params.room_id === 'string') this.joined(params.room_id);
      else if (!method.startsWith('notifications/')) this.#wrong(`unexpected ${method} ${JSON.stringify(params).slice(0, 120)}`);
    };
  }

  /** Its room, once told (a second, other room is an error). */
  joined(roomId: string): void {
    if (this.roomId === undefined) {
      this.roomId = roomId;
      this.foundAt = performance.now();
      this.#found();
    } else if (roomId !== this.roomId) this.#wrong(`user ${this.index} (room ${this.roomId}) was told of a second room ${roomId}`);
  }

  #wrong(what: string): void {
    this.misrouted += 1;
    this.firstError ??= what;
  }

  #read(params: Record<string, unknown>, at: number): void {
    const [sender, n, sentAtUs, dueAtUs] = String(params.message).split('.', 4).map(Number);
    if (params.room_id !== this.roomId || sender !== this.partner?.index || !Number.isInteger(n))
      this.#wrong(`user ${this.index} (room ${this.roomId}) read ${JSON.stringify(params).slice(0, 120)}`);
    else if (!this.reads.accept(n!)) this.onRead(sentAtUs!, dueAtUs!, at);
  }

  /** Sends the next numbered message (due at `dueAt`, now by default); answers whether it was accepted. */
  async send(size: number, signal?: AbortSignal, dueAt?: number): Promise<boolean> {
    const n = this.nextN++;
    const sentAt = performance.now();
    const us = (ms: number) => Math.round(ms * 1000);
    this.sending = true;
    try {
      const message = messageText(size, this.index, n, us(sentAt), us(dueAt ?? sentAt));
      const answer = await this.client.call('send_message', { room_id: this.roomId, message }, signal);
      if (answer.status !== 'sent') throw new Error(`send_message answered ${JSON.stringify(answer).slice(0, 200)}`);
      this.acked += 1;
      return true;
    } catch (error) {
      this.failed += 1;
      if (!signal?.aborted) this.firstError ??= `send_message: ${messageOf(error)}`;
      return false;
    } finally {
      this.sending = false;
    }
  }
}

export type Pair<U extends PairedUser = PairedUser> = readonly [U, U];

/** Makes two users partners. */
export function partners<U extends PairedUser>(a: U, b: U): Pair<U> {
  a.partner = b;
  b.partner = a;
  return [a, b];
}

/** Whether every message the partner got accepted has been read. */
export const drained = (users: readonly PairedUser[]) => users.every((u) => !u.sending && u.reads.received >= (u.partner?.acked ?? 0));

/**
 * `perPair` messages in each pair, members in turn, each send awaited, at most `concurrency`
 * pairs at once; then waits (up to `drainMs`) until every accepted message was read.
 * `roundTrips` gets each accepted send's round trip (ms). Answers the messages accepted.
 */
export async function exchange(
  pairs: readonly Pair[],
  perPair: number,
  limits: { size: number; concurrency: number; drainMs: number; signal: AbortSignal; roundTrips?: number[] },
): Promise<number> {
  const { size, signal, roundTrips } = limits;
  const acked = () => pairs.reduce((sum, [a, b]) => sum + a.acked + b.acked, 0);
  const before = acked();
  await bounded(pairs, limits.concurrency, async (pair) => {
    for (let k = 0; k < perPair && !signal.aborted; k++) {
      const started = performance.now();
      if ((await pair[k % 2]!.send(size, signal)) && roundTrips) roundTrips.push(performance.now() - started);
    }
  });
  await until(() => drained(pairs.flat()), limits.drainMs, signal);
  return acked() - before;
}

/** What users' messages came to: accepted, read by the partner, lost, duplicated, out of order, misrouted; failed sends. */
export function deliveryOf(users: readonly PairedUser[]) {
  const sum = (pick: (user: PairedUser) => number) => users.reduce((total, user) => total + pick(user), 0);
  const firstError = users.find((user) => user.firstError !== undefined)?.firstError;
  return {
    acked: sum((u) => u.acked),
    received: sum((u) => u.reads.received),
    lost: sum((u) => Math.max(0, (u.partner?.acked ?? 0) - u.reads.received)),
    duplicated: sum((u) => u.reads.duplicated),
    outOfOrder: sum((u) => u.reads.outOfOrder),
    misrouted: sum((u) => u.misrouted),
    failed: sum((u) => u.failed),
    ...(firstError !== undefined && { firstError }),
  };
}

export type Delivery = ReturnType<typeof deliveryOf>;

/** Delivery failures, one sentence each; `cutShort` (the part did not finish) excuses messages left unread and failed sends. */
export function pairFailures(label: string, d: Omit<Delivery, 'received'>, cutShort = false): string[] {
  const lost = cutShort ? 0 : d.lost;
  const first = d.firstError ? ` (first: ${d.firstError})` : '';
  return [
    ...(lost + d.duplicated + d.outOfOrder + d.misrouted > 0
      ? [`${label}: messages lost ${lost}, duplicated ${d.duplicated}, out of order ${d.outOfOrder}, misrouted ${d.misrouted}${first}`]
      : []),
    ...(d.failed > 0 && !cutShort ? [`${label}: ${d.failed} send_message calls failed${first}`] : []),
    ...(!cutShort && d.acked === 0 ? [`${label} accepted no message: delivery went unchecked`] : []),
  ];
}
