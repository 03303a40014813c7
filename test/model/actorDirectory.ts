/**
 * Finds the actors of a running system: by their `systemId` (`queue`, `user:<id>`), or
 * a room by the id in its context (the broker starts each room as an actor of its own,
 * with no system id), from the inspection events the system reports, so that a replay
 * can read an actor's state after it stopped (a closed room is gone from the broker).
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';

type Seen = AnyActorRef & { systemId?: string; logic?: { id?: string } };

export class ActorDirectory {
  /** Every actor seen; XState reports an actor before it assigns its `systemId`, so it is read later. */
  readonly #actors: Seen[] = [];

  /** An inspection observer: pass it (or call it from one) as `inspect`. */
  readonly see = (event: InspectionEvent): void => {
    if (event.type === '@xstate.actor') this.#actors.push(event.actorRef as Seen);
  };

  get(systemId: string): AnyActorRef {
    const actor = this.#actors.findLast((ref) => ref.systemId === systemId);
    if (!actor) throw new Error(`no actor ${systemId} was seen in this system`);
    return actor;
  }

  /** The room actor whose room id is `roomId`. */
  room(roomId: string): AnyActorRef {
    const actor = this.#actors.findLast(
      (ref) => ref.logic?.id === 'room' && (ref.getSnapshot() as { context?: { roomId?: string } } | undefined)?.context?.roomId === roomId,
    );
    if (!actor) throw new Error(`no room ${roomId} was seen in this system`);
    return actor;
  }
}
