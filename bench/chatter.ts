/**
 * One benchmark user: a lean client (a session with a stream, or a client that keeps
 * none), its room and partner, and the bookkeeping that proves exactly-once, in-order
 * delivery. Each message it sends carries a stamp —
 * sender, per-sender sequence number, when it was sent and when it was due — so the
 * partner can check order and measure latency without any shared table.
 */
import type { NotificationHandler } from './leanSession.js';

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

/** One member of a pair in the in-process parts (scale-out, under attack): sends numbered messages, checks its partner's. */
export class PairedUser {
  roomId: string | undefined;
  partner: PairedUser | undefined;
  readonly reads = new SequenceCheck();
  nextN = 1;
  acked = 0;
  sendErrors = 0;
  /** Read in another room, or from someone other than the partner. */
  misrouted = 0;
  firstError: string | undefined;

  constructor(
    readonly index: number,
    readonly client: { call(name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> },
  ) {}

  /** Checks a message.received; answers its number when it is the partner's, read for the first time. */
  read(params: Record<string, unknown>): number | undefined {
    const [sender, n] = String(params.message).split('.', 2).map(Number);
    if (params.room_id !== this.roomId || sender !== this.partner?.index || n === undefined || !Number.isInteger(n)) {
      this.misrouted += 1;
      this.firstError ??= `user ${this.index} (room ${this.roomId}) read ${JSON.stringify(params).slice(0, 120)}`;
      return undefined;
    }
    return this.reads.accept(n) === 'duplicate' ? undefined : n;
  }

  /** Sends the next numbered message; answers whether it was accepted. */
  async send(size: number, signal: AbortSignal, sending: (n: number) => void = () => {}): Promise<boolean> {
    const n = this.nextN++;
    sending(n);
    try {
      await this.client.call('send_message', { room_id: this.roomId, message: messageText(size, this.index, n) }, signal);
      this.acked += 1;
      return true;
    } catch (error) {
      this.sendErrors += 1;
      if (!signal.aborted) this.firstError ??= `send_message: ${error instanceof Error ? error.message : String(error)}`;
      return false;
    }
  }
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
