/**
 * One benchmark user: a lean client (a session with a stream, or a client that keeps
 * none), its room and partner, and the bookkeeping that proves exactly-once, in-order
 * delivery. Each message it sends carries a stamp —
 * sender, per-sender sequence number, when it was sent and when it was due — so the
 * partner can check order and measure latency without any shared table.
 */
import type { NotificationHandler } from './leanSession.js';
import { bounded, messageOf, until } from './timing.js';

/** What a chatter needs of its client, whichever kind it is: calls out, notifications in. */
export interface ChatClient {
  onNotification: NotificationHandler;
  /** Answers the tool's `structuredContent`, or throws (ToolRefusal when refused). */
  call(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export interface MessageStamp {
  sender: number;
  seq: number;
  sentAtUs: number;
  dueAtUs: number;
}

export type MessageHandler = (receiver: Chatter, params: Record<string, unknown>, at: number) => void;

export type Arrival = 'inOrder' | 'late' | 'duplicate';

/** `<sender>.<n>.` (and any more fields) padded with `x` to `size` characters. */
export function messageText(size: number, ...fields: number[]): string {
  const head = `${fields.join('.')}.`;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

/** `<sender>.<seq>.<sentAtUs>.<dueAtUs>.` padded with `x` to `size` characters. */
export const stampText = (stamp: MessageStamp, size: number) => messageText(size, stamp.sender, stamp.seq, stamp.sentAtUs, stamp.dueAtUs);

export function readStamp(text: string): MessageStamp | undefined {
  const [sender, seq, sentAtUs, dueAtUs] = text.split('.', 4).map(Number);
  if (sender === undefined || seq === undefined || sentAtUs === undefined || dueAtUs === undefined) return undefined;
  if (!Number.isInteger(sender) || !Number.isInteger(seq) || !Number.isFinite(sentAtUs) || !Number.isFinite(dueAtUs)) return undefined;
  return { sender, seq, sentAtUs, dueAtUs };
}

/** Checks the sequence numbers read from one sender: each read once, in order. */
export class SequenceCheck {
  last = 0;
  /** Skipped numbers not yet read. */
  readonly missing = new Set<number>();
  received = 0;
  duplicated = 0;
  outOfOrder = 0;

  /** Classifies, and counts, the arrival of number `seq`. */
  accept(seq: number): Arrival {
    if (seq > this.last) {
      for (let gap = this.last + 1; gap < seq; gap++) this.missing.add(gap);
      this.last = seq;
      this.received += 1;
      return 'inOrder';
    }
    if (!this.missing.delete(seq)) {
      this.duplicated += 1;
      return 'duplicate';
    }
    this.received += 1;
    this.outOfOrder += 1;
    return 'late';
  }
}

/** What a pair member needs of its client (a TokenClient, or a LeanSession with its stream): calls out, events in. */
export interface PairClient {
  onNotification: NotificationHandler;
  call(name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>>;
}

/**
 * One member of a pair in the in-process parts (scale-out, under attack): learns its room
 * (from enter_queue's answer or chatroom.found), sends numbered messages, checks its partner's.
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
  sendErrors = 0;
  /** Read in another room, from someone other than the partner, or an event no chat sends it. */
  misrouted = 0;
  firstError: string | undefined;
  #found = () => {};

  constructor(
    readonly index: number,
    readonly client: C,
  ) {
    this.found = new Promise((resolve) => (this.#found = resolve));
    client.onNotification = (method, params) => {
      if (method === 'message.received') this.read(params);
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

  /** Checks a message.received; answers its number when it is the partner's, read for the first time. */
  read(params: Record<string, unknown>): number | undefined {
    const [sender, n] = String(params.message).split('.', 2).map(Number);
    if (params.room_id !== this.roomId || sender !== this.partner?.index || n === undefined || !Number.isInteger(n)) {
      this.#wrong(`user ${this.index} (room ${this.roomId}) read ${JSON.stringify(params).slice(0, 120)}`);
      return undefined;
    }
    return this.reads.accept(n) === 'duplicate' ? undefined : n;
  }

  /** Sends the next numbered message; answers whether it was accepted. */
  async send(size: number, signal: AbortSignal): Promise<boolean> {
    const n = this.nextN++;
    try {
      await this.client.call('send_message', { room_id: this.roomId, message: messageText(size, this.index, n) }, signal);
      this.acked += 1;
      return true;
    } catch (error) {
      this.sendErrors += 1;
      if (!signal.aborted) this.firstError ??= `send_message: ${messageOf(error)}`;
      return false;
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
  await until(() => pairs.every(([a, b]) => a.reads.received >= b.acked && b.reads.received >= a.acked), limits.drainMs, signal);
  return acked() - before;
}

/** What pair members' messages came to: accepted, read by the partner, lost, duplicated, out of order, misrouted; failed sends. */
export function deliveryOf(users: readonly PairedUser[]) {
  const sum = (pick: (user: PairedUser) => number) => users.reduce((total, user) => total + pick(user), 0);
  const firstError = users.find((user) => user.firstError !== undefined)?.firstError;
  return {
    sent: sum((u) => u.acked),
    received: sum((u) => u.reads.received),
    lost: sum((u) => Math.max(0, (u.partner?.acked ?? 0) - u.reads.received)),
    duplicated: sum((u) => u.reads.duplicated),
    outOfOrder: sum((u) => u.reads.outOfOrder),
    misrouted: sum((u) => u.misrouted),
    sendErrors: sum((u) => u.sendErrors),
    ...(firstError !== undefined && { firstError }),
  };
}

export type PairDelivery = ReturnType<typeof deliveryOf>;

/** A part's delivery failures, one sentence each; `cutShort` (the part did not finish) excuses messages left unread and failed sends. */
export function pairFailures(label: string, d: PairDelivery, cutShort: boolean): string[] {
  const lost = cutShort ? 0 : d.lost;
  const first = d.firstError ? ` (first: ${d.firstError})` : '';
  return [
    ...(lost + d.duplicated + d.outOfOrder + d.misrouted > 0
      ? [`${label}: messages lost ${lost}, duplicated ${d.duplicated}, out of order ${d.outOfOrder}, misrouted ${d.misrouted}${first}`]
      : []),
    ...(d.sendErrors > 0 && !cutShort ? [`${label}: ${d.sendErrors} send_message calls failed${first}`] : []),
    ...(!cutShort && d.sent === 0 ? [`${label} accepted no message: delivery went unchecked`] : []),
  ];
}

export class Chatter<C extends ChatClient = ChatClient> {
  roomId = '';
  partner: Chatter | undefined;
  onMessage: MessageHandler = () => {};
  onRoom: (chatter: Chatter) => void = () => {};
  otherNotifications = 0;

  // As a sender.
  nextSeq = 1;
  inFlight = false;
  /** Due times (ms) of messages waiting for the one in flight (rate mode). */
  backlog: number[] = [];
  /** Sequence numbers whose send_message failed or was refused: not expected at the partner. */
  readonly unacked = new Set<number>();
  phaseFirstSeq = 1;
  ackedInPhase = 0;

  // As a receiver of the partner's messages.
  readonly reads = new SequenceCheck();
  receivedInPhase = 0;

  constructor(
    readonly index: number,
    readonly client: C,
  ) {
    client.onNotification = (method, params, at) => {
      if (method === 'message.received') this.onMessage(this, params, at);
      else if (method === 'chatroom.found' && typeof params.room_id === 'string') this.joinRoom(params.room_id);
      else this.otherNotifications += 1;
    };
  }

  joinRoom(roomId: string): void {
    if (this.roomId) return;
    this.roomId = roomId;
    this.onRoom(this);
  }

  startPhase(): void {
    this.phaseFirstSeq = this.nextSeq;
    this.ackedInPhase = 0;
    this.receivedInPhase = 0;
    this.backlog = [];
  }

  /** Messages this chatter sent in the phase, the server accepted, and the partner never read. */
  lostInPhase(): number {
    const receiver = this.partner;
    if (!receiver) return 0;
    let lost = 0;
    for (const seq of receiver.reads.missing) if (seq >= this.phaseFirstSeq && !this.unacked.has(seq)) lost += 1;
    for (let seq = Math.max(receiver.reads.last, this.phaseFirstSeq - 1) + 1; seq < this.nextSeq; seq++)
      if (!this.unacked.has(seq)) lost += 1;
    return lost;
  }

  /** True once the partner has read every message of this phase the server accepted. */
  get drained(): boolean {
    return !this.inFlight && (this.partner?.receivedInPhase ?? 0) >= this.ackedInPhase;
  }
}
