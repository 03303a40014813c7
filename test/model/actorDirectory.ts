/**
 * Finds the actors of a running system by their `systemId` (`queue`, `room:<id>`,
 * `user:<id>`), from the inspection events the system reports, so that a replay can
 * read an actor's state after it stopped (a closed room is gone from the system).
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';

export class ActorDirectory {
  /** Every actor seen; XState reports an actor before it assigns its `systemId`, so it is read later. */
  readonly #actors: AnyActorRef[] = [];

  /** An inspection observer: pass it (or call it from one) as `inspect`. */
  readonly see = (event: InspectionEvent): void => {
    if (event.type === '@xstate.actor') this.#actors.push(event.actorRef as AnyActorRef);
  };

  get(systemId: string): AnyActorRef {
    const actor = this.#actors.findLast((ref) => (ref as AnyActorRef & { systemId?: string }).systemId === systemId);
    if (!actor) throw new Error(`no actor ${systemId} was seen in this system`);
    return actor;
  }
}
