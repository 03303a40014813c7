/**
 * The broker port: how a user actor reaches the queue and its room, and how their
 * answers reach the user again. The machines never see it; `src/` wires each user
 * actor's emitted intents to these calls, and the deliveries back into the actor.
 *
 * The default, `memoryBroker()`, runs the queue and room actors in this process. A
 * broker over Redis (several processes, one queue) implements the same interface.
 *
 * Ordering contract: deliveries for one user arrive in the order the queue and room
 * produced them. The in-memory broker delivers synchronously (a pairing has arrived when
 * its join resolves); a broker that delivers later (over Redis) resolves a call once its
 * intent is stored. A send resolves to the message's receipt, wherever its room is. A
 * call that rejects could not reach the queue or the room: the tool says so.
 */
import type { JoinRequest } from '../../machines/queue.js';
import type { DepartureReason, Receipt, UserEvent } from '../../machines/user.js';

export type { JoinRequest } from '../../machines/queue.js';

/** What a broker delivers to a user actor: the events its queue and room send it. */
export type Delivery = Extract<UserEvent, { type: 'room.paired' | 'room.message' | 'room.closed' }>;

/** What became of a message: its room numbered and relayed it (its receipt), or the room had closed. */
export type SendResult = { status: 'sent'; receipt: Receipt } | { status: 'closed' };

export interface BrokerStats {
  /** Users waiting in the queue. */
  waiting: number;
  /** Rooms open (each has two members). */
  rooms: number;
}

/** Where a waiting user stands. */
export interface WaitingPlace {
  /** 1-based, counting only the users ahead it could be paired with. */
  position: number;
  /** How long until it may meet anyone open to it, while its interest wait runs. */
  widensInMs?: number;
}

export interface ChatBroker {
  /** Delivers events for `userId` to `deliver` until the returned function is called. */
  attach(userId: string, deliver: (event: Delivery) => void): () => void;
  /**
   * Pairs a user with the waiting user it meets first (machines/matching.ts), or puts it
   * at the tail; a user already waiting keeps its place with the new preferences.
   */
  join(request: JoinRequest): Promise<void>;
  /** Takes a waiting user out of the queue. */
  leaveQueue(userId: string): Promise<void>;
  /** A waiting user shows no sign of life: it keeps its place but is paired with no one. */
  away(userId: string): Promise<void>;
  /** It is back: paired at once if it can be, else it waits at its place. */
  back(userId: string): Promise<void>;
  /**
   * Relays text to the sender's partner; resolves to the message's receipt, or `closed`
   * when its room had closed. Rejects when no answer came in time (src/chat/broker/localUsers.ts).
   */
  send(roomId: string, from: string, text: string): Promise<SendResult>;
  /** Closes a room on behalf of a member; the partner gets `room.closed`. */
  leaveRoom(roomId: string, userId: string, reason: DepartureReason): Promise<void>;
  /** Where a waiting user stands, or undefined when it is not waiting. */
  placeOf(userId: string): Promise<WaitingPlace | undefined>;
  /** What this process holds. */
  stats(): BrokerStats;
  /** Whether it reaches what it shares with other processes now (a broker that shares nothing leaves it out). */
  healthy?(): boolean;
  /** Empties the queue (of this process's users) and closes every room it holds, telling both members `room.closed` (shutdown). */
  shutdown(): Promise<void>;
  /** Stops the queue and every room, and lets go of any connection. */
  close(): Promise<void>;
  /**
   * Calls `listener` once if the broker fails for good (its queue actor errs, a
   * connection is lost), after which it pairs and relays nothing.
   */
  onFailure(listener: (error: unknown) => void): void;
}
