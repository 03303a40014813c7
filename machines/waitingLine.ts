/**
 * WaitingLine — the queue's `context.waiting`: its users in arrival order, as an
 * immutable value. A change makes a new line and leaves the old one as it was (a
 * snapshot's line stays what it was, for `can()` and for @xstate/graph), but copies
 * only what it touches: the users stand in chunks of at most `CHUNK` that lines share,
 * so a join into a line of 10,000 copies one chunk and the list of chunks, not the
 * line.
 *
 * The line's index (machines/waitingIndex.ts) is mutable and belongs to one line at a
 * time: each line made from another takes its index over, updated; a line whose index
 * has moved on (an older snapshot asked again) builds its own.
 *
 * Stored, a line is the array of its users (`toJSON`); `WaitingLine.of` reads one back.
 */
import type { WaitingUser } from './matching.js';
import { WaitingIndex } from './waitingIndex.js';

/** The most users one chunk holds: a change copies one chunk and the chunk list (about 2n / CHUNK). */
const CHUNK = 128;

type Chunk = readonly WaitingUser[];

/** The index, and the line it is now true of. */
interface IndexSlot {
  readonly index: WaitingIndex;
  owner: WaitingLine;
}

export class WaitingLine implements Iterable<WaitingUser> {
  /** The line no one waits in. */
  static get empty(): WaitingLine {
    return EMPTY;
  }

  /** The line of `users`, in this order (as stored). */
  static of(users: Iterable<WaitingUser>): WaitingLine {
    const all = [...users];
    const chunks: Chunk[] = [];
    for (let start = 0; start < all.length; start += CHUNK) chunks.push(all.slice(start, start + CHUNK));
    return new WaitingLine(chunks, all.length);
  }

  readonly #chunks: readonly Chunk[];
  /** How many users wait. */
  readonly size: number;
  #slot: IndexSlot | undefined;

  private constructor(chunks: readonly Chunk[], size: number, slot?: IndexSlot) {
    this.#chunks = chunks;
    this.size = size;
    this.#slot = slot;
  }

  *[Symbol.iterator](): Iterator<WaitingUser> {
    for (const chunk of this.#chunks) yield* chunk;
  }

  /** The line as stored: its users in arrival order. */
  toJSON(): WaitingUser[] {
    return this.#chunks.flat();
  }

  /** The waiting user `userId` as it stands, if it waits. */
  userOf(userId: string): WaitingUser | undefined {
    return this.#index().userOf(userId);
  }

  /** Whom `seeker` meets: what `partnerFor` (machines/matching.ts) answers, without walking the line. */
  partnerFor(seeker: WaitingUser): WaitingUser | undefined {
    return this.#index().partnerFor(seeker);
  }

  /** Whether `a` stands ahead of `b`; both wait. */
  standsAhead(a: string, b: string): boolean {
    return this.#index().arrivedBefore(a, b);
  }

  /** This line with `user` at its tail. */
  with(user: WaitingUser): WaitingLine {
    const index = this.#index();
    const chunks = this.#chunks;
    const last = chunks.at(-1);
    const next = last && last.length < CHUNK ? chunks.with(-1, [...last, user]) : [...chunks, [user]];
    index.add(user);
    return this.#handedOn(next, this.size + 1);
  }

  /** This line with its user of `user.userId` standing as `user`, at the same place; this line if no such user waits. */
  replacing(user: WaitingUser): WaitingLine {
    const index = this.#index();
    const place = this.#placeOf(user.userId);
    if (!place) return this;
    const [at, within] = place;
    const next = this.#chunks.with(at, this.#chunks[at]!.with(within, user));
    index.replace(user);
    return this.#handedOn(next, this.size);
  }

  /** This line without the users `userIds`; this line if none of them waits. */
  without(userIds: readonly string[]): WaitingLine {
    const index = this.#index();
    let chunks = this.#chunks;
    let size = this.size;
    for (const userId of userIds) {
      const place = placeIn(chunks, index, userId);
      if (!place) continue;
      chunks = withoutAt(chunks, ...place);
      index.remove(userId);
      size--;
    }
    return size === this.size ? this : this.#handedOn(chunks, size);
  }

  #index(): WaitingIndex {
    if (this.#slot?.owner !== this) this.#slot = { index: WaitingIndex.of(this), owner: this };
    return this.#slot.index;
  }

  /** Where `userId` stands: its chunk, and its place in it. */
  #placeOf(userId: string): readonly [number, number] | undefined {
    return placeIn(this.#chunks, this.#index(), userId);
  }

  /** The line of `chunks`, which takes this line's index over (already updated to it). */
  #handedOn(chunks: readonly Chunk[], size: number): WaitingLine {
    const slot = this.#slot!;
    const next = new WaitingLine(chunks, size, slot);
    slot.owner = next;
    return next;
  }
}

const EMPTY = WaitingLine.of([]);

/** Where `userId` stands in `chunks` (whose users `index` knows, in arrival order): its chunk, and its place in it. */
function placeIn(chunks: readonly Chunk[], index: WaitingIndex, userId: string): readonly [number, number] | undefined {
  const user = index.userOf(userId);
  if (!user) return undefined;
  const order = index.orderOf(userId)!;
  // The last chunk whose first user came no later than this one.
  let low = 0;
  let high = chunks.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (index.orderOf(chunks[middle]![0]!.userId)! <= order) low = middle;
    else high = middle - 1;
  }
  return [low, chunks[low]!.indexOf(user)];
}

/**
 * `chunks` without the user at `within` of chunk `at`. A chunk left small enough joins a
 * neighbour, so that any two neighbours hold more than `CHUNK` together and the chunk
 * list stays short however the line is thinned.
 */
function withoutAt(chunks: readonly Chunk[], at: number, within: number): readonly Chunk[] {
  const chunk = chunks[at]!.toSpliced(within, 1);
  const before = chunks[at - 1];
  const after = chunks[at + 1];
  if (before && before.length + chunk.length <= CHUNK) return chunks.toSpliced(at - 1, 2, [...before, ...chunk]);
  if (after && after.length + chunk.length <= CHUNK) return chunks.toSpliced(at, 2, [...chunk, ...after]);
  return chunk.length === 0 ? chunks.toSpliced(at, 1) : chunks.with(at, chunk);
}
