/**
 * Where a waiting user stands in a line, as both brokers answer `placeOf`: its place
 * among the users ahead it could ever meet, and how long until its interest wait ends.
 */
import { positionIn, type WaitingUser } from '../../../machines/matching.js';
import type { WaitingPlace } from '../broker.js';

/** The user's place in `line` at time `now` (ms), or undefined when it is not in it. */
export function placeIn(line: Iterable<WaitingUser>, userId: string, now: number): WaitingPlace | undefined {
  const position = positionIn(line, userId);
  if (position === undefined) return undefined;
  let widensAt: number | undefined;
  for (const user of line)
    if (user.userId === userId) {
      widensAt = user.widensAt;
      break;
    }
  return { position, ...(widensAt !== undefined && { widensInMs: Math.max(0, widensAt - now) }) };
}
