/**
 * The matching rules: who in the waiting line may meet whom, and whom a user meets
 * first. Pure functions of the waiting users; the queue chart's named guards call
 * them (machines/queue.ts), and the tests call them directly.
 *
 * Two waiting users may meet when neither is away, neither avoids the other (the
 * partner just left, until the rematch time passes), neither blocked the other, each
 * one's `meet` admits what the other says it is, and they share an interest or both
 * are open to anyone: a user with no interests, or whose interest wait is over. Among
 * those a user may meet, one sharing an interest comes first, then arrival order.
 * `partnerFor` says so by walking the line; the queue asks an index that proposes only
 * candidates these rules may accept (machines/waitingIndex.ts), and must choose alike.
 */

/** What a user says it is. A declaration, not a proof. */
export type IAm = 'agent' | 'human';
/** Whom a user wants to meet. */
export type Meet = 'anyone' | 'agents' | 'humans';

/** What a user asks of its partners; a bare `next` keeps the last. */
export interface Preferences {
  /** Trimmed, lowercased, distinct; [] = anyone. */
  interests: readonly string[];
  /** Undefined when the user did not say. */
  iAm?: IAm;
  meet: Meet;
}

export const NO_PREFERENCES: Preferences = { interests: [], meet: 'anyone' };

export interface WaitingUser extends Preferences {
  userId: string;
  /** A partner this user is not paired with again until the rematch time passes. */
  avoid: string | null;
  /** Users this user never meets again. */
  blocked: readonly string[];
  /** No sign of life for a while: it keeps its place but is not paired until it is back. */
  away?: boolean;
  /** Its interest wait is over (or it had no interests): it may meet anyone open to it. */
  widened: boolean;
  /** When its interest wait ends, on the clock of the join's `at`, while it runs. */
  widensAt?: number;
  /** When its avoidance of `avoid` ends, on the same clock. */
  avoidUntil?: number;
  /** The join's room id, unused while it waits: the room a timer's pairing opens. */
  spareRoomId: string;
}

/** `meet` admits a user who says it is `iAm`. */
export const admits = (meet: Meet, iAm: IAm | undefined): boolean =>
  meet === 'anyone' || (meet === 'agents' && iAm === 'agent') || (meet === 'humans' && iAm === 'human');

/** Each one's `meet` admits the other's `i_am`, and neither blocked the other: nothing a timer lifts. */
export const couldEverMeet = (a: WaitingUser, b: WaitingUser): boolean =>
  a.userId !== b.userId && admits(a.meet, b.iAm) && admits(b.meet, a.iAm) && !a.blocked.includes(b.userId) && !b.blocked.includes(a.userId);

export const sharesInterest = (a: Preferences, b: Preferences): boolean => a.interests.some((i) => b.interests.includes(i));

/** Open to anyone: no interests, or the interest wait is over. */
export const isOpen = (user: WaitingUser): boolean => user.interests.length === 0 || user.widened;

export const mayMeet = (a: WaitingUser, b: WaitingUser): boolean =>
  !a.away &&
  !b.away &&
  a.avoid !== b.userId &&
  b.avoid !== a.userId &&
  couldEverMeet(a, b) &&
  (sharesInterest(a, b) || (isOpen(a) && isOpen(b)));

/**
 * Whom `seeker` meets: the earliest waiting user sharing an interest with it, else the
 * earliest it may meet at all. One pass over the line: the reference that the queue's
 * index (machines/waitingIndex.ts) is held to.
 */
export function partnerFor(waiting: Iterable<WaitingUser>, seeker: WaitingUser): WaitingUser | undefined {
  let earliest: WaitingUser | undefined;
  for (const candidate of waiting) {
    if (!mayMeet(candidate, seeker)) continue;
    if (sharesInterest(candidate, seeker)) return candidate;
    earliest ??= candidate;
  }
  return earliest;
}

/** The interests two users share, in the first one's order. */
export const commonInterests = (a: Preferences, b: Preferences): string[] => a.interests.filter((i) => b.interests.includes(i));

/** 1-based place of a waiting user among those ahead that it could ever meet. */
export function positionIn(waiting: Iterable<WaitingUser>, userId: string): number | undefined {
  const ahead: WaitingUser[] = [];
  for (const user of waiting) {
    if (user.userId === userId) return ahead.filter((w) => couldEverMeet(w, user)).length + 1;
    ahead.push(user);
  }
  return undefined;
}
