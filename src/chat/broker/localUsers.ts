/**
 * A broker's users in this process: where their deliveries go (`attach`), and the
 * receipts their sends wait for. A send is answered here whatever process holds its
 * room: by its receipt, by the room's end (`closed`), or, after `RECEIPT_WAIT_MS`,
 * by an error (the store or the room's process is out of reach).
 */
import type { Receipt } from '../../../machines/user.js';
import type { Delivery, SendResult } from '../broker.js';

/** How long a send waits for its receipt from a room in another process (a busy Redis or process is slow, not gone). */
export const RECEIPT_WAIT_MS = 15_000;

/** A message sent, waiting for what became of it. */
interface Sent {
  roomId: string;
  from: string;
  answer(result: SendResult): void;
  fail(error: unknown): void;
  timer?: NodeJS.Timeout;
}

export class LocalUsers {
  readonly #inboxes = new Map<string, (delivery: Delivery) => void>();
  /** Sends waiting for their receipt, by message id. */
  readonly #sent = new Map<string, Sent>();

  /** Delivers events for `userId` to `inbox` until the returned function is called. */
  attach(userId: string, inbox: (delivery: Delivery) => void): () => void {
    this.#inboxes.set(userId, inbox);
    return () => {
      if (this.#inboxes.get(userId) === inbox) this.#inboxes.delete(userId);
    };
  }

  /** Hands a delivery to a user of this process; its room's end also answers its sends to that room still waiting. */
  deliver(userId: string, delivery: Delivery): void {
    if (delivery.type === 'room.closed')
      for (const [messageId, sent] of this.#sent)
        if (sent.from === userId && sent.roomId === delivery.roomId) this.#settle(messageId)?.answer({ status: 'closed' });
    this.#inboxes.get(userId)?.(delivery);
  }

  /**
   * Sends a message with `relay` and resolves to what became of it. `relay` hands it to
   * its room (here, or in another process) and resolves to whether a room took it;
   * it rejects when the room's process could not be reached.
   */
  send(messageId: string, roomId: string, from: string, relay: () => Promise<boolean>): Promise<SendResult> {
    return new Promise<SendResult>((answer, fail) => {
      const sent: Sent = { roomId, from, answer, fail };
      this.#sent.set(messageId, sent);
      relay().then(
        (taken) => void (taken || this.#settle(messageId)?.answer({ status: 'closed' })),
        (error: unknown) => this.#settle(messageId)?.fail(error),
      );
      // A room in this process has answered already: only a room elsewhere is waited for.
      if (this.#sent.has(messageId))
        sent.timer = setTimeout(
          () => this.#settle(messageId)?.fail(new Error(`no receipt for the message within ${RECEIPT_WAIT_MS} ms`)),
          RECEIPT_WAIT_MS,
        );
    });
  }

  /** A room numbered a message of a user of this process. */
  receipt(receipt: Receipt): void {
    this.#settle(receipt.messageId)?.answer({ status: 'sent', receipt });
  }

  /** Stops waiting: every send still waiting is answered `closed`. */
  clear(): void {
    for (const messageId of [...this.#sent.keys()]) this.#settle(messageId)?.answer({ status: 'closed' });
    this.#inboxes.clear();
  }

  #settle(messageId: string): Sent | undefined {
    const sent = this.#sent.get(messageId);
    if (!sent) return undefined;
    this.#sent.delete(messageId);
    clearTimeout(sent.timer);
    return sent;
  }
}
