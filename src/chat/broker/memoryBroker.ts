/**
 * The in-memory broker: one queue actor for the process, and a room actor per pair it
 * makes; deliveries are plain function calls, so a tool call's effects (a pairing, a
 * relayed message and its receipt) are complete when its broker call resolves.
 */
import { randomUUID } from 'node:crypto';
import { createActor, type InspectionEvent, type Observer } from 'xstate';
import { DEFAULT_QUEUE_INPUT, type QueueInput, queueMachine } from '../../../machines/queue.js';
import type { ChatBroker } from '../broker.js';
import { LocalUsers } from './localUsers.js';
import { RoomHost } from './roomHost.js';
import { placeIn } from './waitingPlace.js';

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
  const users = new LocalUsers();
  const queue = createActor(queueMachine, { systemId: 'queue', input: { ...DEFAULT_QUEUE_INPUT, ...options.matching }, inspect });

  // The queue's errors (and its rooms') go to the failure listeners; without an error
  // observer XState would rethrow them and end the process.
  const failureListeners: ((error: unknown) => void)[] = [];
  let failed = false;
  const fail = (error: unknown) => {
    if (failureListeners.length === 0) console.error('mcp-chat: the queue actor failed', error);
    for (const listener of failureListeners) listener(error);
  };
  const rooms = new RoomHost({
    deliver: (userId, delivery) => users.deliver(userId, delivery),
    receipt: (_from, receipt) => users.receipt(receipt),
    onError: fail,
    inspect,
  });

  queue.on('queue.paired', ({ type: _paired, ...pairing }) => {
    // Two rooms under one id would cross their members' messages: fail loudly instead.
    if (rooms.has(pairing.roomId)) {
      failed = true;
      fail(new Error(`room id ${pairing.roomId} is already in use: the id source repeats itself`));
    }
    if (!failed) rooms.open(pairing);
  });
  queue.subscribe({ error: fail });
  queue.start();

  return {
    attach: (userId, inbox) => users.attach(userId, inbox),
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
    send(roomId, from, text) {
      const messageId = newId();
      return users.send(messageId, roomId, from, async () => rooms.relay(roomId, { from, text, messageId, sentAt: now().toISOString() }));
    },
    async leaveRoom(roomId, userId, reason) {
      rooms.leave(roomId, userId, reason);
    },
    async placeOf(userId) {
      return placeIn(queue.getSnapshot().context.waiting, userId, now().getTime());
    },
    stats() {
      return { waiting: queue.getSnapshot().context.waiting.size, rooms: rooms.size };
    },
    onFailure(listener) {
      failureListeners.push(listener);
    },
    async shutdown() {
      queue.send({ type: 'queue.shutdown' });
      rooms.shutdown();
    },
    async close() {
      queue.stop();
      rooms.stop();
      users.clear();
    },
  };
}
