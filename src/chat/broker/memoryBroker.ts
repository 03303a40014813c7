/**
 * The in-memory broker: one queue actor for the process, which spawns a room actor
 * per pair; deliveries are plain function calls, so a tool call's effects (a pairing,
 * a relayed message and its receipt) are complete when `actor.send` returns.
 */
import { randomUUID } from 'node:crypto';
import { createActor, type InspectionEvent, type Observer } from 'xstate';
import { positionIn } from '../../../machines/matching.js';
import { DEFAULT_QUEUE_INPUT, queueMachine, type QueueInput } from '../../../machines/queue.js';
import type { RoomEmitted, roomMachine } from '../../../machines/room.js';
import type { ActorRefFrom } from 'xstate';
import type { ChatBroker, Delivery } from '../broker.js';

export interface MemoryBrokerOptions {
  /** Passed to the queue actor (and so to its rooms), e.g. the Stately inspector. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Clock for message stamps; tests may fix it. */
  now?: () => Date;
  /** Id source for rooms and messages. */
  newId?: () => string;
  /** The queue's matching timers. */
  matching?: Partial<QueueInput>;
}

export function memoryBroker(options: MemoryBrokerOptions = {}): ChatBroker {
  const { now = () => new Date(), newId = randomUUID } = options;
  const inboxes = new Map<string, (event: Delivery) => void>();
  const queue = createActor(queueMachine, {
    systemId: 'queue',
    input: { ...DEFAULT_QUEUE_INPUT, ...options.matching },
    inspect: options.inspect,
  });

  const deliver = (userId: string, event: Delivery) => inboxes.get(userId)?.(event);
  const roomRef = (roomId: string) =>
    queue.system.get(`room:${roomId}`) as ActorRefFrom<typeof roomMachine> | undefined;

  const route = (event: RoomEmitted) => {
    if (event.type === 'room.closed') {
      deliver(event.to, { type: 'room.closed', roomId: event.roomId, reason: event.reason });
      return;
    }
    const { roomId, messageId, seq, sentAt } = event;
    deliver(event.to, { type: 'room.message', roomId, messageId, seq, sentAt, text: event.text });
    deliver(event.from, { type: 'room.receipt', roomId, messageId, seq, sentAt });
  };

  queue.on('queue.paired', ({ roomId, members: [first, second], commonInterests, declared: [firstIs, secondIs] }) => {
    const room = roomRef(roomId);
    room?.on('room.relayed', route);
    room?.on('room.closed', route);
    deliver(first, { type: 'room.paired', roomId, partnerId: second, commonInterests, ...(secondIs && { partnerIs: secondIs }) });
    deliver(second, { type: 'room.paired', roomId, partnerId: first, commonInterests, ...(firstIs && { partnerIs: firstIs }) });
  });
  // The queue's errors (and its rooms', which reach it) go to the failure listeners;
  // without an error observer XState would rethrow them and end the process.
  const failureListeners: ((error: unknown) => void)[] = [];
  queue.subscribe({
    error: (error: unknown) => {
      if (failureListeners.length === 0) console.error('mcp-chat: the queue actor failed', error);
      for (const listener of failureListeners) listener(error);
    },
  });
  queue.start();

  return {
    attach(userId, inbox) {
      inboxes.set(userId, inbox);
      return () => {
        if (inboxes.get(userId) === inbox) inboxes.delete(userId);
      };
    },
    join(request) {
      queue.send({ type: 'queue.join', ...request, roomId: newId(), at: now().getTime() });
    },
    leaveQueue(userId) {
      queue.send({ type: 'queue.leave', userId });
    },
    away(userId) {
      queue.send({ type: 'queue.away', userId });
    },
    back(userId) {
      queue.send({ type: 'queue.back', userId, roomId: newId() });
    },
    send(roomId, from, text) {
      roomRef(roomId)?.send({
        type: 'room.message',
        from,
        text,
        messageId: newId(),
        sentAt: now().toISOString(),
      });
    },
    leaveRoom(roomId, userId, reason) {
      roomRef(roomId)?.send({ type: 'room.leave', userId, reason });
    },
    placeOf(userId) {
      const { waiting } = queue.getSnapshot().context;
      const position = positionIn(waiting, userId);
      if (position === undefined) return undefined;
      const widensAt = waiting.find((w) => w.userId === userId)?.widensAt;
      return { position, ...(widensAt !== undefined && { widensInMs: Math.max(0, widensAt - now().getTime()) }) };
    },
    stats() {
      const { waiting, rooms } = queue.getSnapshot().context;
      return { waiting: waiting.length, rooms: rooms.length };
    },
    onFailure(listener) {
      failureListeners.push(listener);
    },
    shutdown() {
      queue.send({ type: 'queue.shutdown' });
    },
    close() {
      queue.stop();
      inboxes.clear();
    },
  };
}
