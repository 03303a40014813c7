/**
 * What each person should have been told so far, in order. Drivers write down the
 * notifications a step owes; a check waits until that many have arrived and then
 * compares the whole list, so a missing, late, doubled or stray notification fails.
 */
import { expect } from 'vitest';
import type { Person, Status } from './world.js';

export class Ledger {
  readonly #owed = new Map<Person, { method: string; params: Record<string, unknown> }[]>();
  /** What `get_status` should answer for people other than a chart's subject. */
  readonly statuses = new Map<Person, Status>();

  owe(person: Person, method: string, params: Record<string, unknown>): void {
    const list = this.#owed.get(person) ?? [];
    list.push({ method, params });
    this.#owed.set(person, list);
  }

  /** `message.received` as the partner of `sender` sees it, for the answer `sent`. */
  oweMessage(to: Person, roomId: string, text: string, sent: { message_id: string; seq: number }): void {
    this.owe(to, 'message.received', {
      room_id: roomId,
      message: text,
      message_id: sent.message_id,
      seq: sent.seq,
      sent_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      untrusted: true,
    });
  }

  async check(people: Iterable<Person>): Promise<void> {
    for (const person of people) {
      const owed = this.#owed.get(person) ?? [];
      await person.notified(owed.length);
      expect(person.notifications, `what ${person.name} was told`).toEqual(owed);
    }
    for (const [person, status] of this.statuses) expect(await person.status(), `${person.name}'s get_status`).toEqual(status);
  }
}
