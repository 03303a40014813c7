/**
 * The broker over Redis: several server processes, one queue.
 *
 * - Users belong to the process that made them; their ids start with its process id
 *   (`<processId>.<uuid>`), so every process knows where to deliver.
 * - The queue is the queue chart run by the holder of a lease (redis/queueHolder.ts);
 *   each process appends its users' intents to the queue's stream.
 * - A pairing is handed to the process of the member that made it (its intent just came,
 *   so that process is the one most surely alive), which opens the room there
 *   (machines/room.ts, an actor of that process): a pair on one process relays in
 *   memory and never touches Redis per message. A member on another process sends and
 *   receives through the process inboxes (redis/inbox.ts: exactly once, in order).
 * - Membership (redis/membership.ts) notices dead processes: their waiting users leave
 *   the line, the rooms they held close under their partners (`disconnected`), and the
 *   rooms this process holds with a member there close too. A process declared dead
 *   itself (it was frozen) stops serving (`onFailure`).
 *
 * Calls resolve once Redis has the intent (or reject within seconds when it cannot be
 * reached); a join resolves once the holder decided it, so its answer says what the
 * queue decided, as on one process. What follows arrives as deliveries.
 */
import { randomUUID } from 'node:crypto';
import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { positionIn } from '../../../machines/matching.js';
import { DEFAULT_QUEUE_INPUT, type JoinRequest, type QueueInput } from '../../../machines/queue.js';
import { roomMachine, type DepartureReason, type RoomEmitted } from '../../../machines/room.js';
import type { ChatBroker, Delivery } from '../broker.js';
import { inProcess, processOf } from '../processDirectory.js';
import { connectRedis, untilRedisReady, type RedisTarget } from './redis/connection.js';
import { createInbox } from './redis/inbox.js';
import { joinMembership, type Membership } from './redis/membership.js';
import { QUEUE_INBOX, startQueueHolder, type Pairing, type QueueRecord } from './redis/queueHolder.js';

/** What processes send each other. */
type ProcessRecord =
  | { kind: 'open'; pairing: Pairing }
  | { kind: 'deliver'; userId: string; delivery: Delivery; host: string }
  | { kind: 'message'; roomId: string; from: string; text: string; messageId: string; sentAt: string }
  | { kind: 'leave'; roomId: string; userId: string; reason: DepartureReason }
  | { kind: 'joined'; joinId: string };

export interface RedisBrokerOptions extends RedisTarget {
  /** This process (no "." or ":"). */
  processId: string;
  matching?: Partial<QueueInput>;
  /** How often this process beats, and how long a silent one lives (ms). */
  beatEveryMs?: number;
  deadAfterMs?: number;
  leaseTtlMs?: number;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  onError?: (error: unknown) => void;
  /** Another process was declared dead or left (after this broker let go of it). */
  onProcessGone?: (processId: string) => void;
}

export interface RedisChatBroker extends ChatBroker {
  readonly processId: string;
  /** Whether this process may serve: Redis reachable and this process not declared dead. */
  healthy(): boolean;
}

/** How long a record between processes may wait for Redis before it is given up. */
const SEND_GIVE_UP_MS = 120_000;

/**
 * How long a join waits for the holder's decision before it lets go (the tools answer
 * that the queue is out of reach after 5 s; the join itself stays stored and is decided
 * when a holder reads it).
 */
const JOIN_ANSWER_MS = 10_000;

/** Rooms opened lately, to drop a pairing handed over twice (after a change of queue holder). */
const REMEMBERED_ROOMS = 10_000;

export async function redisBroker(options: RedisBrokerOptions): Promise<RedisChatBroker> {
  const { url, tlsCa, processId, inspect, onError } = options;
  if (/[.:]/.test(processId)) throw new RangeError('a process id may not contain "." or ":"');
  const client = connectRedis({ url, tlsCa }, { name: `mcp-chat:${processId}` });
  try {
    await untilRedisReady(client);
  } catch (error) {
    client.disconnect();
    throw error;
  }

  const local = new Map<string, (event: Delivery) => void>();
  /** Rooms this process holds. */
  const rooms = new Map<string, { actor: Actor<typeof roomMachine>; members: readonly [string, string] }>();
  /** The process holding each room users of this process are in, and those users. */
  const hostOf = new Map<string, { host: string; users: Set<string> }>();
  const opened = new Set<string>();
  /** Processes declared dead or gone: a room seated with one of their users closes at once. */
  const goneProcesses = new Set<string>();
  /** Users of this process waiting in the line, with what they asked (to ask again after a Redis reset). */
  const waiting = new Map<string, JoinRequest>();
  const failureListeners: ((error: unknown) => void)[] = [];
  let declaredDead = false;
  /** Joins of this process's users waiting for the holder's decision, by join id. */
  const undecided = new Map<string, { decided: () => void; timer: NodeJS.Timeout }>();
  const decided = (joinId: string) => {
    const join = undecided.get(joinId);
    if (!join) return;
    undecided.delete(joinId);
    clearTimeout(join.timer);
    join.decided();
  };

  const openInbox = () =>
    createInbox<ProcessRecord | QueueRecord>({
      url,
      tlsCa,
      client,
      processId,
      onRecord: (record) => receive(record as ProcessRecord),
      onError,
      // A record between processes (a delivery, an intent) is never given up while its
      // destination lives: a send keeps trying through cuts and a Redis outage (a dead
      // destination is forgotten, which ends its sends). A tool that waits for one says
      // after a few seconds that the store is out of reach (src/mcp/tools.ts).
      sendTimeoutMs: SEND_GIVE_UP_MS,
    });
  let inbox = openInbox();
  const toQueue = (record: QueueRecord) => inbox.send(QUEUE_INBOX, record);

  /** Delivers to a user here, or sends it to its process. */
  const deliver = (userId: string, delivery: Delivery, host: string): void => {
    const owner = processOf(userId);
    if (owner === undefined || owner === processId) {
      deliverHere(userId, delivery, host);
      return;
    }
    inbox.send(owner, { kind: 'deliver', userId, delivery, host }).catch((error: unknown) => onError?.(error));
  };

  const deliverHere = (userId: string, delivery: Delivery, host: string) => {
    if (delivery.type === 'room.paired') {
      const room = hostOf.get(delivery.roomId) ?? { host, users: new Set<string>() };
      hostOf.set(delivery.roomId, room.users.add(userId) && room);
      waiting.delete(userId);
    }
    if (delivery.type === 'room.closed') hostOf.delete(delivery.roomId);
    local.get(userId)?.(delivery);
  };

  const route = (event: RoomEmitted) => {
    if (event.type === 'room.closed') {
      deliver(event.to, { type: 'room.closed', roomId: event.roomId, reason: event.reason }, processId);
      return;
    }
    const { roomId, messageId, seq, sentAt } = event;
    deliver(event.to, { type: 'room.message', roomId, messageId, seq, sentAt, text: event.text }, processId);
    deliver(event.from, { type: 'room.receipt', roomId, messageId, seq, sentAt }, processId);
  };

  const openRoom = ({ roomId, members, commonInterests, declared: [firstIs, secondIs] }: Pairing) => {
    if (opened.has(roomId)) return;
    opened.add(roomId);
    if (opened.size > REMEMBERED_ROOMS) opened.delete(opened.values().next().value!);
    const actor = createActor(roomMachine, { input: { roomId, members }, inspect });
    rooms.set(roomId, { actor, members });
    actor.on('room.relayed', route);
    actor.on('room.closed', route);
    actor.subscribe({ complete: () => rooms.delete(roomId), error: (error) => onError?.(error) });
    actor.start();
    const [first, second] = members;
    // The line may pair a user whose process died before the line heard of it.
    for (const member of members)
      if (goneProcesses.has(processOf(member) ?? processId)) queueMicrotask(() => actor.send({ type: 'room.leave', userId: member, reason: 'disconnected' }));
    deliver(first, { type: 'room.paired', roomId, partnerId: second, commonInterests, ...(secondIs && { partnerIs: secondIs }) }, processId);
    deliver(second, { type: 'room.paired', roomId, partnerId: first, commonInterests, ...(firstIs && { partnerIs: firstIs }) }, processId);
  };

  const receive = (record: ProcessRecord) => {
    switch (record.kind) {
      case 'open':
        return openRoom(record.pairing);
      case 'deliver':
        return deliverHere(record.userId, record.delivery, record.host);
      case 'message':
        return rooms.get(record.roomId)?.actor.send({ type: 'room.message', from: record.from, text: record.text, messageId: record.messageId, sentAt: record.sentAt });
      case 'leave':
        return rooms.get(record.roomId)?.actor.send({ type: 'room.leave', userId: record.userId, reason: record.reason });
      case 'joined':
        return decided(record.joinId);
    }
  };

  /** A process is gone: its users leave the line, and every room with it closes under the others. */
  const forget = (gone: string) => {
    goneProcesses.add(gone);
    void toQueue({ kind: 'gone', processId: gone }).catch((error: unknown) => onError?.(error));
    for (const { actor, members } of rooms.values())
      for (const member of members) if (processOf(member) === gone) actor.send({ type: 'room.leave', userId: member, reason: 'disconnected' });
    for (const [roomId, { host, users }] of [...hostOf])
      if (host === gone) for (const userId of users) deliverHere(userId, { type: 'room.closed', roomId, reason: 'disconnected' }, gone);
    inbox.forget(gone);
  };

  const queue = startQueueHolder({
    client,
    url,
    tlsCa,
    processId,
    matching: { ...DEFAULT_QUEUE_INPUT, ...options.matching },
    processOf,
    onPaired: (pairing) => {
      // Seated where the member that made the pair lives: its intent just came, so its
      // process is the one most surely alive (the other may have waited long).
      const host = processOf(pairing.seeker) ?? processId;
      if (host === processId) {
        openRoom(pairing);
        return Promise.resolve();
      }
      return inbox.send(host, { kind: 'open', pairing });
    },
    onJoined: ({ userId, joinId }) => {
      // On the inbox that carried the pairing, after it: the joiner has its room first.
      const owner = processOf(userId) ?? processId;
      if (owner === processId) {
        decided(joinId);
        return Promise.resolve();
      }
      return goneProcesses.has(owner) ? Promise.resolve() : inbox.send(owner, { kind: 'joined', joinId });
    },
    leaseTtlMs: options.leaseTtlMs,
    onError,
  });

  const membership: Membership = await joinMembership({
    client,
    url,
    tlsCa,
    processId,
    beatEveryMs: options.beatEveryMs,
    deadAfterMs: options.deadAfterMs,
    onDeclaredDead: () => {
      declaredDead = true;
      const error = new Error(`process ${processId} was declared dead (silent longer than the others allow): it stops serving`);
      for (const listener of failureListeners) listener(error);
    },
    onMemberGone: ({ processId: gone }) => {
      forget(gone);
      options.onProcessGone?.(gone);
    },
    onRedisReset: () => void afterReset(),
    onError,
  });

  /**
   * Redis lost its data (restarted without persistence): the line, the inboxes and what
   * was in flight are gone. Every chat of this process's users ends (`disconnected`),
   * the inbox starts afresh, and the users who were waiting ask the new line again.
   */
  const afterReset = async () => {
    for (const [roomId, { users }] of [...hostOf]) for (const userId of users) deliverHere(userId, { type: 'room.closed', roomId, reason: 'disconnected' }, processId);
    for (const { actor } of rooms.values()) actor.stop();
    rooms.clear();
    const stale = inbox;
    inbox = openInbox();
    await stale.close();
    for (const request of waiting.values()) await toQueue({ kind: 'join', request, roomId: newId(), at: Date.now() }).catch((error: unknown) => onError?.(error));
  };

  const newId = () => inProcess(processId, randomUUID());

  return {
    processId,
    healthy: () => !declaredDead && membership.status() === 'alive',
    attach(userId, inboxOf) {
      local.set(userId, inboxOf);
      return () => {
        if (local.get(userId) === inboxOf) local.delete(userId);
      };
    },
    /** Resolves once the holder decided the join: the user is paired (its room delivered) or waits in the stored line. */
    async join(request) {
      waiting.set(request.userId, request);
      const joinId = newId();
      const answered = new Promise<void>((resolve) => undecided.set(joinId, { decided: resolve, timer: setTimeout(() => decided(joinId), JOIN_ANSWER_MS) }));
      try {
        await toQueue({ kind: 'join', request, roomId: joinId, at: Date.now() });
      } catch (error) {
        decided(joinId);
        throw error;
      }
      await answered;
    },
    async leaveQueue(userId) {
      waiting.delete(userId);
      await toQueue({ kind: 'leave', userId });
    },
    async away(userId) {
      await toQueue({ kind: 'away', userId });
    },
    async back(userId) {
      await toQueue({ kind: 'back', userId, roomId: newId() });
    },
    async send(roomId, from, text) {
      const messageId = randomUUID();
      const sentAt = new Date().toISOString();
      const host = hostOf.get(roomId)?.host;
      if (host === undefined || host === processId) {
        rooms.get(roomId)?.actor.send({ type: 'room.message', from, text, messageId, sentAt });
        return;
      }
      await inbox.send(host, { kind: 'message', roomId, from, text, messageId, sentAt });
    },
    async leaveRoom(roomId, userId, reason) {
      const host = hostOf.get(roomId)?.host;
      hostOf.delete(roomId);
      if (host === undefined || host === processId) {
        rooms.get(roomId)?.actor.send({ type: 'room.leave', userId, reason });
        return;
      }
      await inbox.send(host, { kind: 'leave', roomId, userId, reason });
    },
    async placeOf(userId) {
      const line = await queue.line();
      const position = line && positionIn(line, userId);
      // Not in the stored line yet (its holder has not taken the join in): it is at the tail.
      if (position === undefined || !line) return waiting.has(userId) ? { position: (line?.length ?? 0) + 1 } : undefined;
      const widensAt = line.find((w) => w.userId === userId)?.widensAt;
      return { position, ...(widensAt !== undefined && { widensInMs: Math.max(0, widensAt - Date.now()) }) };
    },
    stats: () => ({ waiting: waiting.size, rooms: rooms.size }),
    onFailure(listener) {
      failureListeners.push(listener);
    },
    async shutdown() {
      // Only what this process holds: the line and the other processes go on.
      for (const { actor } of [...rooms.values()]) actor.send({ type: 'room.shutdown' });
    },
    async close() {
      for (const joinId of [...undecided.keys()]) decided(joinId);
      for (const { actor } of rooms.values()) actor.stop();
      rooms.clear();
      await queue.close();
      await membership.leave().catch((error: unknown) => onError?.(error));
      await inbox.close();
      client.disconnect();
    },
  };
}
