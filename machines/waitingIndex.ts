/**
 * WaitingIndex — the waiting users the queue could pair now (none away), by interest and
 * by kind (what each says it is and whom it meets), each bucket in arrival order. A
 * user's partner is looked for only where the kinds admit each other: first in the
 * buckets of its interests, then, if it is open to anyone, among the open. The index
 * proposes and `mayMeet` decides (machines/matching.ts), so it chooses as `partnerFor`
 * does. Mutable: one line owns it at a time (machines/waitingLine.ts).
 */
import { admits, type IAm, isOpen, type Meet, mayMeet, type Preferences, type WaitingUser } from './matching.js';

/** A waiting user and its place in arrival order (the order only grows). */
interface Entry {
  user: WaitingUser;
  readonly order: number;
}

const I_AMS: readonly (IAm | undefined)[] = ['agent', 'human', undefined];
const MEETS: readonly Meet[] = ['anyone', 'agents', 'humans'];

/** What a user says it is and whom it meets, as one number of 0–8. */
const kindOf = ({ iAm, meet }: Preferences): number => I_AMS.indexOf(iAm) * MEETS.length + MEETS.indexOf(meet);

/** The nine kinds, numbered as `kindOf` numbers them. */
const KINDS: readonly Preferences[] = I_AMS.flatMap((iAm) => MEETS.map((meet) => ({ interests: [], iAm, meet })));

/** For each kind, the kinds of the users it could ever meet: each one's `meet` admits the other. */
const KINDS_MET: readonly (readonly number[])[] = KINDS.map((a) =>
  KINDS.flatMap((b, kind) => (admits(a.meet, b.iAm) && admits(b.meet, a.iAm) ? [kind] : [])),
);

/** The bucket of the open users of `kind`, and of those of `kind` interested in `interest`. */
const openKey = (kind: number) => `${kind}`;
const interestKey = (kind: number, interest: string) => `${kind}#${interest}`;

/** The buckets `user` stands in: none while away. */
function keysOf(user: WaitingUser): string[] {
  if (user.away) return [];
  const kind = kindOf(user);
  const keys = new Set(user.interests.map((interest) => interestKey(kind, interest)));
  if (isOpen(user)) keys.add(openKey(kind));
  return [...keys];
}

const sameKeys = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((key, i) => key === b[i]);

/** Where an entry of `order` stands, or would stand, in `bucket`. */
function placeOf(bucket: readonly Entry[], order: number): number {
  let low = 0;
  let high = bucket.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (bucket[middle]!.order < order) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The index of one waiting line, changed as the line changes. */
export class WaitingIndex {
  readonly #entries = new Map<string, Entry>();
  readonly #buckets = new Map<string, Entry[]>();
  #nextOrder = 0;

  /** The index of `line`, whose users stand in arrival order. */
  static of(line: Iterable<WaitingUser>): WaitingIndex {
    const index = new WaitingIndex();
    for (const user of line) index.add(user);
    return index;
  }

  /** The waiting user `userId` as it stands, if it waits. */
  userOf(userId: string): WaitingUser | undefined {
    return this.#entries.get(userId)?.user;
  }

  /** Where `userId` came in arrival order (a number that only grows), if it waits. */
  orderOf(userId: string): number | undefined {
    return this.#entries.get(userId)?.order;
  }

  /** Whether `a` came to the line before `b`; both wait. */
  arrivedBefore(a: string, b: string): boolean {
    return this.#entries.get(a)!.order < this.#entries.get(b)!.order;
  }

  /** `user` joins at the tail. */
  add(user: WaitingUser): void {
    const entry: Entry = { user, order: this.#nextOrder++ };
    this.#entries.set(user.userId, entry);
    for (const key of keysOf(user)) this.#bucket(key).push(entry);
  }

  /** `user`, waiting, now stands as given, at its place. */
  replace(user: WaitingUser): void {
    const entry = this.#entries.get(user.userId)!;
    const [before, after] = [keysOf(entry.user), keysOf(user)];
    entry.user = user;
    if (sameKeys(before, after)) return;
    for (const key of before) this.#leave(key, entry);
    for (const key of after) {
      const bucket = this.#bucket(key);
      bucket.splice(placeOf(bucket, entry.order), 0, entry);
    }
  }

  /** `userId` leaves the line. */
  remove(userId: string): void {
    const entry = this.#entries.get(userId);
    if (!entry) return;
    this.#entries.delete(userId);
    for (const key of keysOf(entry.user)) this.#leave(key, entry);
  }

  /**
   * Whom `seeker` meets, as `partnerFor` would choose: the earliest candidate sharing an
   * interest, else the earliest open one (only an open seeker may meet one sharing none).
   * The candidates `mayMeet` turns down are the seeker itself and those either one
   * avoids or blocked.
   */
  partnerFor(seeker: WaitingUser): WaitingUser | undefined {
    // mayMeet turns every candidate down.
    if (seeker.away) return undefined;
    const kinds = KINDS_MET[kindOf(seeker)]!;
    const sharing = this.#earliest(
      seeker,
      kinds.flatMap((kind) => seeker.interests.map((interest) => interestKey(kind, interest))),
    );
    if (sharing || !isOpen(seeker)) return sharing;
    return this.#earliest(seeker, kinds.map(openKey));
  }

  /** The earliest user of these buckets that `seeker` may meet. */
  #earliest(seeker: WaitingUser, keys: readonly string[]): WaitingUser | undefined {
    let found: Entry | undefined;
    for (const key of keys) {
      for (const entry of this.#buckets.get(key) ?? []) {
        if (found && entry.order > found.order) break;
        if (mayMeet(entry.user, seeker)) {
          found = entry;
          break;
        }
      }
    }
    return found?.user;
  }

  #bucket(key: string): Entry[] {
    const known = this.#buckets.get(key);
    if (known) return known;
    const bucket: Entry[] = [];
    this.#buckets.set(key, bucket);
    return bucket;
  }

  #leave(key: string, entry: Entry): void {
    const bucket = this.#buckets.get(key)!;
    bucket.splice(placeOf(bucket, entry.order), 1);
    // Interests are free text: a bucket no one stands in goes.
    if (bucket.length === 0) this.#buckets.delete(key);
  }
}
