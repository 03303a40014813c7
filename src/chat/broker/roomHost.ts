/**
 * The rooms a broker holds in this process: a room actor per pair the queue made
 * (machines/room.ts), opened by telling both members `room.paired`, and what each room
 * says routed to its members — a message to the partner, its receipt to the sender, the
 * room's end to whoever stayed. Both brokers host their rooms with it.
 */
import { type Actor, createActor, type InspectionEvent, type Observer } from 'xstate';
import type { QueueEmitted } from '../../../machines/queue.js';
import { type DepartureReason, type RoomEmitted, type RoomEvent, roomMachine } from '../../../machines/room.js';
import type { Receipt } from '../../../machines/user.js';
import type { Delivery } from '../broker.js';

/** A pair the queue made: the room to open, its members, what they share and what each said it is. */
export type Pairing = Omit<QueueEmitted, 'type'>;

/** A message on its way into its room, stamped by the sender's process. */
export type RoomMessage = Omit<Extract<RoomEvent, { type: 'room.message' }>, 'type'>;

export interface RoomHostOptions {
  /** Hands a delivery to a member, in this process or in its own. */
  deliver(userId: string, delivery: Delivery): void;
  /** Hands the sender of a message its receipt, in this process or in its own. */
  receipt(from: string, receipt: Receipt): void;
  /** A room actor failed. */
  onError(error: unknown): void;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

export class RoomHost {
  readonly #rooms = new Map<string, Actor<typeof roomMachine>>();

  constructor(private readonly options: RoomHostOptions) {}

  /** Rooms open here now. */
  get size(): number {
    return this.#rooms.size;
  }

  has(roomId: string): boolean {
    return this.#rooms.has(roomId);
  }

  /** Opens the pair's room here and tells each member whom it met. */
  open({ roomId, members, commonInterests, declared: [firstIs, secondIs] }: Pairing): void {
    const { deliver, onError, inspect } = this.options;
    const room = createActor(roomMachine, { input: { roomId, members }, inspect });
    this.#rooms.set(roomId, room);
    room.on('room.relayed', this.#route);
    room.on('room.closed', this.#route);
    room.subscribe({ complete: () => this.#rooms.delete(roomId), error: onError });
    room.start();
    const [first, second] = members;
    deliver(first, { type: 'room.paired', roomId, partnerId: second, commonInterests, ...(secondIs && { partnerIs: secondIs }) });
    deliver(second, { type: 'room.paired', roomId, partnerId: first, commonInterests, ...(firstIs && { partnerIs: firstIs }) });
  }

  /** Hands a message to its room here; false when no room here takes it (it closed, or is elsewhere). */
  relay(roomId: string, message: RoomMessage): boolean {
    const event = { type: 'room.message' as const, ...message };
    const room = this.#rooms.get(roomId);
    if (!room?.getSnapshot().can(event)) return false;
    room.send(event);
    return true;
  }

  /** A member leaves its room here (the room closes under the partner). */
  leave(roomId: string, userId: string, reason: DepartureReason): void {
    this.#rooms.get(roomId)?.send({ type: 'room.leave', userId, reason });
  }

  /** Every member here for whom `gone` holds leaves its room, `disconnected`. */
  disconnect(gone: (userId: string) => boolean): void {
    for (const room of [...this.#rooms.values()])
      for (const member of room.getSnapshot().context.members)
        if (gone(member)) room.send({ type: 'room.leave', userId: member, reason: 'disconnected' });
  }

  /** Closes every room here under both members (`shutdown`). */
  shutdown(): void {
    for (const room of [...this.#rooms.values()]) room.send({ type: 'room.shutdown' });
  }

  /** Stops every room here, telling no one. */
  stop(): void {
    for (const room of this.#rooms.values()) room.stop();
    this.#rooms.clear();
  }

  readonly #route = (event: RoomEmitted): void => {
    if (event.type === 'room.closed') {
      this.options.deliver(event.to, { type: 'room.closed', roomId: event.roomId, reason: event.reason });
      return;
    }
    const { roomId, messageId, seq, sentAt } = event;
    this.options.deliver(event.to, { type: 'room.message', roomId, messageId, seq, sentAt, text: event.text });
    this.options.receipt(event.from, { roomId, messageId, seq, sentAt });
  };
}
