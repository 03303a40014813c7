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
 *   memory and never touches Redis per message (src/chat/broker/roomHost.ts). A member
 *   on another process sends and receives through the process mailboxes
 *   (redis/mailbox.ts: exactly once, in order).
 * - Membership (redis/membership.ts) notices dead processes: their waiting users leave
 *   the line, the rooms they held close under their partners (`disconnected`), and the
 *   rooms this process holds with a member there close too. A process declared dead
 *   itself (it was frozen) stops serving (`onFailure`).
 *
 * Calls resolve once Redis has the intent (or reject within seconds when it cannot be
 * reached); a join resolves once the holder decided it, so its answer says what the
 * queue decided, as on one process; a send resolves to its receipt (localUsers.ts). What
 * follows arrives as deliveries.
 */
import { randomUUID } from 'node:crypto';
import type { InspectionEvent, Observer } from 'xstate';
import { DEFAULT_QUEUE_INPUT, type JoinRequest, type QueueInput } from '../../../machines/queue.js';
import type { DepartureReason, Receipt } from '../../../machines/user.js';
import type { ChatBroker, Delivery } from '../broker.js';
import { inProcess, processOf } from '../processDirectory.js';
import { LocalUsers } from './localUsers.js';
import { connectRedis, type RedisTarget, untilRedisReady } from './redis/connection.js';
import { createMailbox } from './redis/mailbox.js';
import { joinMembership, type Membership } from './redis/membership.js';
import { QUEUE_INBOX, type QueueRecord, startQueueHolder } from './redis/queueHolder.js';
import { type Pairing, RoomHost, type RoomMessage } from './roomHost.js';
import { placeIn } from './waitingPlace.js';

/** What processes send each other. */
type ProcessRecord =
  | { kind: 'open'; pairing: Pairing }
  | { kind: 'deliver'; userId: string; delivery: Delivery; host: string }
  | { kind: 'receipt'; receipt: Receipt }
  | ({ kind: 'message'; roomId: string } & RoomMessage)
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

  const local = new LocalUsers();
  /** Rooms this process holds. */
  const rooms = new RoomHost({
    deliver: (userId, delivery) => deliver(userId, delivery, processId),
    receipt: (from, receipt) => deliverReceipt(from, receipt),
    onError: (error) => onError?.(error),
    inspect,
  });
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

  const openMailbox = () =>
    createMailbox<ProcessRecord | QueueRecord>({
      url,
      tlsCa,
      client,
      processId,
      onRecord: (record) => receive(record as ProcessRecord),
      onError,
      // A record between processes (a delivery, an intent) is never given up while its
      // destination lives: a send keeps trying through cuts and a Redis outage (a dead
      // destination is forgotten, which ends its sends). A tool that waits for one says
      // after a few seconds that the store is out of reach (src/mcp/tools.ts, localUsers.ts).
      sendTimeoutMs: SEND_GIVE_UP_MS,
    });
  let mailbox = openMailbox();
  const toQueue = (record: QueueRecord) => mailbox.send(QUEUE_INBOX, record);

  /** Delivers to a user here, or sends it to its process. */
  const deliver = (userId: string, delivery: Delivery, host: string): void => {
    const owner = processOf(userId);
    if (owner === undefined || owner === processId) {
      deliverHere(userId, delivery, host);
      return;
    }
    mailbox.send(owner, { kind: 'deliver', userId, delivery, host }).catch((error: unknown) => onError?.(error));
  };

  /** Hands a receipt to its sender here, or sends it to the sender's process. */
  const deliverReceipt = (from: string, receipt: Receipt): void => {
    const owner = processOf(from);
    if (owner === undefined || owner === processId) local.receipt(receipt);
    else mailbox.send(owner, { kind: 'receipt', receipt }).catch((error: unknown) => onError?.(error));
  };

  const deliverHere = (userId: string, delivery: Delivery, host: string) => {
    if (delivery.type === 'room.paired') {
      const room = hostOf.get(delivery.roomId) ?? { host, users: new Set<string>() };
      hostOf.set(delivery.roomId, room.users.add(userId) && room);
      waiting.delete(userId);
    }
    if (delivery.type === 'room.closed') hostOf.delete(delivery.roomId);
    local.deliver(userId, delivery);
  };

  const openRoom = (pairing: Pairing) => {
    const { roomId, members } = pairing;
    if (opened.has(roomId)) return;
    opened.add(roomId);
    if (opened.size > REMEMBERED_ROOMS) opened.delete(opened.values().next().value!);
    rooms.open(pairing);
    // The line may pair a user whose process died before the line heard of it.
    for (const member of members)
      if (goneProcesses.has(processOf(member) ?? processId)) queueMicrotask(() => rooms.leave(roomId, member, 'disconnected'));
  };

  const receive = (record: ProcessRecord) => {
    switch (record.kind) {
      case 'open':
        return openRoom(record.pairing);
      case 'deliver':
        return deliverHere(record.userId, record.delivery, record.host);
      case 'receipt':
        return local.receipt(record.receipt);
      case 'message': {
        const { kind: _message, roomId, ...message } = record;
        // A room that closed meanwhile told its members so (room.closed): that answers the send.
        return void rooms.relay(roomId, message);
      }
      case 'leave':
        return rooms.leave(record.roomId, record.userId, record.reason);
      case 'joined':
        return decided(record.joinId);
    }
  };

  /** A process is gone: its users leave the line, and every room with it closes under the others. */
  const forget = (gone: string) => {
    goneProcesses.add(gone);
    void toQueue({ kind: 'gone', processId: gone }).catch((error: unknown) => onError?.(error));
    rooms.disconnect((member) => processOf(member) === gone);
    for (const [roomId, { host, users }] of [...hostOf])
      if (host === gone) for (const userId of users) deliverHere(userId, { type: 'room.closed', roomId, reason: 'disconnected' }, gone);
    mailbox.forget(gone);
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
      return mailbox.send(host, { kind: 'open', pairing });
    },
    onJoined: ({ userId, joinId }) => {
      // On the mailbox lane that carried the pairing, after it: the joiner has its room first.
      const owner = processOf(userId) ?? processId;
      if (owner === processId) {
        decided(joinId);
        return Promise.resolve();
      }
      return goneProcesses.has(owner) ? Promise.resolve() : mailbox.send(owner, { kind: 'joined', joinId });
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
   * the mailbox starts afresh, and the users who were waiting ask the new line again.
   */
  const afterReset = async () => {
    for (const [roomId, { users }] of [...hostOf])
      for (const userId of users) deliverHere(userId, { type: 'room.closed', roomId, reason: 'disconnected' }, processId);
    rooms.stop();
    const stale = mailbox;
    mailbox = openMailbox();
    await stale.close();
    for (const request of waiting.values())
      await toQueue({ kind: 'join', request, roomId: newId(), at: Date.now() }).catch((error: unknown) => onError?.(error));
  };

  const newId = () => inProcess(processId, randomUUID());

  return {
    processId,
    healthy: () => !declaredDead && membership.status() === 'alive',
    attach: (userId, inbox) => local.attach(userId, inbox),
    /** Resolves once the holder decided the join: the user is paired (its room delivered) or waits in the stored line. */
    async join(request) {
      waiting.set(request.userId, request);
      const joinId = newId();
      const answered = new Promise<void>((resolve) =>
        undecided.set(joinId, { decided: resolve, timer: setTimeout(() => decided(joinId), JOIN_ANSWER_MS) }),
      );
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
    send(roomId, from, text) {
      const message = { from, text, messageId: randomUUID(), sentAt: new Date().toISOString() };
      const host = hostOf.get(roomId)?.host;
      return local.send(message.messageId, roomId, from, async () => {
        if (host === undefined || host === processId) return rooms.relay(roomId, message);
        await mailbox.send(host, { kind: 'message', roomId, ...message });
        return true;
      });
    },
    async leaveRoom(roomId, userId, reason) {
      const host = hostOf.get(roomId)?.host;
      hostOf.delete(roomId);
      if (host === undefined || host === processId) {
        rooms.leave(roomId, userId, reason);
        return;
      }
      await mailbox.send(host, { kind: 'leave', roomId, userId, reason });
    },
    async placeOf(userId) {
      const line = await queue.line();
      // Not in the stored line yet (its holder has not taken the join in): it is at the tail.
      const place = line && placeIn(line, userId, Date.now());
      return place ?? (waiting.has(userId) ? { position: (line?.length ?? 0) + 1 } : undefined);
    },
    stats: () => ({ waiting: waiting.size, rooms: rooms.size }),
    onFailure(listener) {
      failureListeners.push(listener);
    },
    async shutdown() {
      // Only what this process holds: the line and the other processes go on.
      rooms.shutdown();
    },
    async close() {
      for (const joinId of [...undecided.keys()]) decided(joinId);
      rooms.stop();
      local.clear();
      await queue.close();
      await membership.leave().catch((error: unknown) => onError?.(error));
      await mailbox.close();
      client.disconnect();
    },
  };
}
