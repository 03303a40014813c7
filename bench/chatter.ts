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

/** `<sender>.<seq>.<sentAtUs>.<dueAtUs>.` padded with `x` to `size` characters. */
export function stampText(stamp: MessageStamp, size: number): string {
  const head = `${stamp.sender}.${stamp.seq}.${stamp.sentAtUs}.${stamp.dueAtUs}.`;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

export function readStamp(text: string): MessageStamp | undefined {
  const [sender, seq, sentAtUs, dueAtUs] = text.split('.', 4).map(Number);
  if (sender === undefined || seq === undefined || sentAtUs === undefined || dueAtUs === undefined) return undefined;
  if (!Number.isInteger(sender) || !Number.isInteger(seq) || !Number.isFinite(sentAtUs) || !Number.isFinite(dueAtUs)) return undefined;
  return { sender, seq, sentAtUs, dueAtUs };
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
  lastSeq = 0;
  readonly missing = new Set<number>();
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

  /** Classifies the arrival of the partner's message number `seq`. */
  accept(seq: number): Arrival {
    if (seq > this.lastSeq) {
      for (let gap = this.lastSeq + 1; gap < seq; gap++) this.missing.add(gap);
      this.lastSeq = seq;
      return 'inOrder';
    }
    return this.missing.delete(seq) ? 'late' : 'duplicate';
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
    for (const seq of receiver.missing) if (seq >= this.phaseFirstSeq && !this.unacked.has(seq)) lost += 1;
    for (let seq = Math.max(receiver.lastSeq, this.phaseFirstSeq - 1) + 1; seq < this.nextSeq; seq++)
      if (!this.unacked.has(seq)) lost += 1;
    return lost;
  }

  /** True once the partner has read every message of this phase the server accepted. */
  get drained(): boolean {
    return !this.inFlight && (this.partner?.receivedInPhase ?? 0) >= this.ackedInPhase;
  }
}
