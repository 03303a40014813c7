/**
 * The in-memory broker: one queue actor for the process, and a room actor per pair it
 * makes; deliveries are plain function calls, so a tool call's effects (a pairing, a
 * relayed message and its receipt) are complete when its broker call resolves.
 */
import { randomUUID } from 'node:crypto';
import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { positionIn } from '../../../machines/matching.js';
import { DEFAULT_QUEUE_INPUT, queueMachine, type QueueInput } from '../../../machines/queue.js';
import { roomMachine, type RoomEmitted } from '../../../machines/room.js';
import type { ChatBroker, Delivery } from '../broker.js';

export interface MemoryBrokerOptions {
  /** Passed to the queue actor and every room actor, e.g. the Stately inspector. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Clock for message stamps and the queue's join times; tests may fix it. */
  now?: () => Date;
  /** Id source for rooms and messages. */
  newId?: () => string;
  /** The queue's matching timers. */
  matching?: Partial<QueueInput>;
}

export function memoryBroker(options: MemoryBrokerOptions = {}): ChatBroker {
  const { now = () => new Date(), newId = randomUUID, inspect } = options;
  const inboxes = new Map<string, (event: Delivery) => void>();
  const rooms = new Map<string, Actor<typeof roomMachine>>();
  const queue = createActor(queueMachine, { systemId: 'queue', input: { ...DEFAULT_QUEUE_INPUT, ...options.matching }, inspect });

  const deliver = (userId: string, event: Delivery) => inboxes.get(userId)?.(event);

  const route = (event: RoomEmitted) => {
    if (event.type === 'room.closed') {
      deliver(event.to, { type: 'room.closed', roomId: event.roomId, reason: event.reason });
      return;
    }
    const { roomId, messageId, seq, sentAt } = event;
    deliver(event.to, { type: 'room.message', roomId, messageId, seq, sentAt, text: event.text });
    deliver(event.from, { type: 'room.receipt', roomId, messageId, seq, sentAt });
  };

  // The queue's errors (and its rooms') go to the failure listeners; without an error
  // observer XState would rethrow them and end the process.
  const failureListeners: ((error: unknown) => void)[] = [];
  let failed = false;
  const fail = (error: unknown) => {
    if (failureListeners.length === 0) console.error('mcp-chat: the queue actor failed', error);
    for (const listener of failureListeners) listener(error);
  };

  queue.on('queue.paired', ({ roomId, members, commonInterests, declared: [firstIs, secondIs] }) => {
    // Two rooms under one id would cross their members' messages: fail loudly instead.
    if (rooms.has(roomId)) {
      failed = true;
      fail(new Error(`room id ${roomId} is already in use: the id source repeats itself`));
    }
    if (failed) return;
    const room = createActor(roomMachine, { input: { roomId, members }, inspect });
    rooms.set(roomId, room);
    room.on('room.relayed', route);
    room.on('room.closed', route);
    room.subscribe({ complete: () => rooms.delete(roomId), error: fail });
    room.start();
    const [first, second] = members;
    deliver(first, { type: 'room.paired', roomId, partnerId: second, commonInterests, ...(secondIs && { partnerIs: secondIs }) });
    deliver(second, { type: 'room.paired', roomId, partnerId: first, commonInterests, ...(firstIs && { partnerIs: firstIs }) });
  });
  queue.subscribe({ error: fail });
  queue.start();

  return {
    attach(userId, inbox) {
      inboxes.set(userId, inbox);
      return () => {
        if (inboxes.get(userId) === inbox) inboxes.delete(userId);
      };
    },
    async join(request) {
      queue.send({ type: 'queue.join', ...request, roomId: newId(), at: now().getTime() });
    },
    async leaveQueue(userId) {
      queue.send({ type: 'queue.leave', userId });
    },
    async away(userId) {
      queue.send({ type: 'queue.away', userId });
    },
    async back(userId) {
      queue.send({ type: 'queue.back', userId, roomId: newId() });
    },
    async send(roomId, from, text) {
      rooms.get(roomId)?.send({ type: 'room.message', from, text, messageId: newId(), sentAt: now().toISOString() });
    },
    async leaveRoom(roomId, userId, reason) {
      rooms.get(roomId)?.send({ type: 'room.leave', userId, reason });
    },
    async placeOf(userId) {
      const { waiting } = queue.getSnapshot().context;
      const position = positionIn(waiting, userId);
      if (position === undefined) return undefined;
      const widensAt = waiting.userOf(userId)?.widensAt;
      return { position, ...(widensAt !== undefined && { widensInMs: Math.max(0, widensAt - now().getTime()) }) };
    },
    stats() {
      return { waiting: queue.getSnapshot().context.waiting.size, rooms: rooms.size };
    },
    onFailure(listener) {
      failureListeners.push(listener);
    },
    async shutdown() {
      queue.send({ type: 'queue.shutdown' });
      for (const room of [...rooms.values()]) room.send({ type: 'room.shutdown' });
    },
    async close() {
      queue.stop();
      for (const room of rooms.values()) room.stop();
      rooms.clear();
      inboxes.clear();
    },
  };
}
