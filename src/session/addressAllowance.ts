/**
 * What one client address may hold at once: at most `perAddress` of each kind —
 * sessions, open streams, held `wait_for_events` calls, listens. A holding is taken
 * before the thing is made and given back when it ends; one more than the allowance is
 * refused, and what the address holds already keeps working. Addresses holding
 * nothing are forgotten, so the map is as large as the set of busy addresses.
 */

/** The kinds of things a client address holds. */
export type Holding = 'sessions' | 'streams' | 'waits' | 'listens';

/** Gives back one holding; calling it again does nothing. */
export type Release = () => void;

export class AddressAllowance {
  readonly #held = new Map<string, Record<Holding, number>>();

  constructor(readonly perAddress: number) {}

  /** Takes one `kind` for `address`, or undefined when the address holds its allowance already. */
  take(address: string, kind: Holding): Release | undefined {
    const held = this.#held.get(address) ?? { sessions: 0, streams: 0, waits: 0, listens: 0 };
    if (held[kind] >= this.perAddress) return undefined;
    this.#held.set(address, held);
    held[kind] += 1;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      held[kind] -= 1;
      if (held.sessions + held.streams + held.waits + held.listens === 0 && this.#held.get(address) === held) this.#held.delete(address);
    };
  }

  /** How many `kind` the address holds now. */
  holding(address: string, kind: Holding): number {
    return this.#held.get(address)?.[kind] ?? 0;
  }

  /** Addresses holding anything now. */
  get addresses(): number {
    return this.#held.size;
  }
}

/** What a refusal for a full allowance says, by kind. */
export function allowanceSentence(kind: Holding, perAddress: number): string {
  const what = {
    sessions: 'sessions',
    streams: 'open streams',
    waits: 'held wait_for_events calls',
    listens: 'subscriptions/listen streams',
  }[kind];
  return `Too many ${what} from your address (at most ${perAddress} at once). Close one you hold, or try again in a minute.`;
}
