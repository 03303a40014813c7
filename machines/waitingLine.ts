/**
 * The waiting line — the queue's `context.waiting`, its users in arrival order — with
 * its index (machines/waitingIndex.ts) kept beside it rather than in the context, so
 * that the context stays the plain data a broker stores and reads. Each line these
 * functions make from another takes that one's index over, updated; a line no index
 * has seen (restored from storage, or an older snapshot asked again) gets one built.
 * Lines are never changed in place: a snapshot's line stays what it was.
 */
import type { WaitingUser } from './matching.js';
import { WaitingIndex } from './waitingIndex.js';

const indexes = new WeakMap<readonly WaitingUser[], WaitingIndex>();

function indexOf(line: readonly WaitingUser[]): WaitingIndex {
  let index = indexes.get(line);
  if (!index) indexes.set(line, (index = WaitingIndex.of(line)));
  return index;
}

/** `to`, made from `from`, takes over its index (already updated). */
function handedOn(from: readonly WaitingUser[], to: WaitingUser[], index: WaitingIndex): WaitingUser[] {
  indexes.delete(from);
  indexes.set(to, index);
  return to;
}

/** The waiting user `userId` as it stands, if it waits. */
export const userIn = (line: readonly WaitingUser[], userId: string): WaitingUser | undefined => indexOf(line).userOf(userId);

/** Whom `seeker` meets in `line`: what `partnerFor` (machines/matching.ts) answers, without walking the line. */
export const partnerIn = (line: readonly WaitingUser[], seeker: WaitingUser): WaitingUser | undefined => indexOf(line).partnerFor(seeker);

/** Whether `a` stands ahead of `b`; both wait. */
export const standsAhead = (line: readonly WaitingUser[], a: string, b: string): boolean => indexOf(line).arrivedBefore(a, b);

/** `line` with `user` at its tail. */
export function lineWith(line: WaitingUser[], user: WaitingUser): WaitingUser[] {
  const index = indexOf(line);
  index.add(user);
  return handedOn(line, line.concat([user]), index);
}

/** `line` with its user of `user.userId` standing as `user`, at the same place; `line` if no such user waits. */
export function lineReplacing(line: WaitingUser[], user: WaitingUser): WaitingUser[] {
  const index = indexOf(line);
  const standing = index.userOf(user.userId);
  if (!standing) return line;
  index.replace(user);
  return handedOn(line, line.with(line.indexOf(standing), user), index);
}

/** `line` without the users `userIds`; `line` if none of them waits. */
export function lineWithout(line: WaitingUser[], userIds: readonly string[]): WaitingUser[] {
  const index = indexOf(line);
  const places = userIds.flatMap((userId) => {
    const standing = index.userOf(userId);
    if (!standing) return [];
    index.remove(userId);
    return [line.indexOf(standing)];
  });
  if (places.length === 0) return line;
  // From the back, so that each place still points at its user.
  const next = places.sort((a, b) => b - a).reduce((rest, place) => rest.toSpliced(place, 1), line);
  return handedOn(line, next, index);
}
