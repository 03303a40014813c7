/**
 * A chat user: a user actor (machines/user.ts) wired to the broker — its intents
 * (`queue.join`, `room.send`, …) become broker calls, the broker's deliveries its events
 * — with the bounded log of its news (`chat.matched`, `chat.received`,
 * `chat.partnerLeft`, kept as `E`: the composition root maps news to the wire's
 * notifications) and the sessions bound to it. It lives by its presence, not by any
 * session, and ends with its actor.
 */
import { type Actor, createActor, type InspectionEvent, type Observer } from 'xstate';
import type { IAm } from '../../machines/matching.js';
import { LEAVING, type PresenceEvent, type PresenceInput } from '../../machines/presence.js';
import { type RateLimit, type UserEmitted, type UserEvent, type UserState, userMachine } from '../../machines/user.js';
import type { ChatBroker, SendResult } from './broker.js';
import { EventLog, type LogBudget, type LogLimits } from './eventLog.js';

/** What a user actor tells its client about: its news, not its intents for the broker. */
export type UserNews = Extract<UserEmitted, { type: 'chat.matched' | 'chat.received' | 'chat.partnerLeft' }>;
const NEWS = new Set<UserEmitted['type']>(['chat.matched', 'chat.received', 'chat.partnerLeft']);
const isNews = (event: UserEmitted): event is UserNews => NEWS.has(event.type);

/** The longest a closed last link waits before the user's presence hears it (a call may follow at once). */
const MAX_OFFLINE_DELAY_MS = 250;

/** What a user does with each intent its actor emits. */
type EmittedHandlers = { [T in UserEmitted['type']]?: (event: Extract<UserEmitted, { type: T }>) => void };

/** The user chart running: where a user's calls are decided. */
export type UserActor = Actor<typeof userMachine>;

/** A user reported its partner: for the operator, never the partner. */
export type UserReport = Omit<Extract<UserEmitted, { type: 'chat.reported' }>, 'type'>;

/** A message the user sends (`send_message`). */
export type MessageEvent = Extract<UserEvent, { type: 'chat.send' }>;

export interface ChatUser<E> {
  readonly userId: string;
  /** The secret that names the user in calls. */
  readonly token: string;
  /**
   * Names the user's events for reading, never for acting: derived from the token one
   * way, so it can travel in a resource URI (and a header) without being a credential.
   */
  readonly eventsKey: string;
  readonly actor: UserActor;
  readonly events: EventLog<E>;
  readonly state: UserState;
  /**
   * A call acting for this user, or a stream of a session bound to it, is open until
   * the returned function is called. The actor hears only the edges, `client.online`
   * when the first link opens and `client.offline` when the last closes, so a call on
   * a session whose stream is open costs its actors nothing — except while a leave
   * waits out its page grace, when every new link is news. The last close is told a
   * moment later (at most 250 ms), and not at all when a link opens before: a client
   * that calls again at once never went offline.
   */
  openLink(): () => void;
  /** The last session bound to this user went away (DELETE, or a legacy stream gone). */
  detached(): void;
  /**
   * A call named this user by its token: from now on the user lives by its token, and
   * the end of a session (a client that opens one per call may DELETE each) is not a
   * sign that it left; only silence ends it.
   */
  calledByToken(): void;
  /**
   * Binds a session: `listener` hears every entry the log gets, until the returned
   * function is called — with `gone: true` when the client ended the session (DELETE,
   * a legacy stream closed): if no session is left bound then, and no call ever named
   * the user by its token, the user is detached and has the grace period to call again.
   */
  bind(listener: (entry: E, id: number) => void): (gone: boolean) => void;
  /**
   * Resolves once every queue and room call this user's intents made so far has settled;
   * rejects with the first that failed since the last time it was asked (the queue or
   * the room could not be reached: a tool says so).
   */
  settled(): Promise<void>;
  /** Sends a message the chart takes (ask `can` first); resolves to its receipt, as the broker answers it. */
  sendMessage(event: MessageEvent): Promise<SendResult>;
  /** What `get_status` answers. */
  status(): Promise<ChatStatus>;
}

export interface ChatUserOptions<E> {
  userId: string;
  token: string;
  eventsKey: string;
  presence: PresenceInput;
  rate: RateLimit;
  /** How long an idle user still avoids its last partner, in ms. */
  rematchAfterMs: number;
  broker: ChatBroker;
  log: LogLimits;
  /** What all users' logs may hold together; unbounded without one. */
  logBudget?: LogBudget;
  /** What the log keeps for a piece of news. */
  toEntry(news: UserNews): E;
  /** An entry's size in bytes, for the log's byte bound. */
  sizeOf(entry: E): number;
  /** Hears each piece of news once, with its log id (e.g. to log it). */
  onNews?(user: ChatUser<E>, entry: E, id: number): void;
  onReport?(report: UserReport): void;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

export function startChatUser<E>(options: ChatUserOptions<E>): ChatUser<E> {
  const { userId, presence, rate, rematchAfterMs, broker, onReport, onNews, toEntry, inspect } = options;
  const actor = createActor(userMachine, { input: { userId, presence, rate, rematchAfterMs }, systemId: `user:${userId}`, inspect });
  const events = new EventLog<E>(options.log, options.sizeOf, options.logBudget);
  const listeners = new Set<(entry: E, id: number) => void>();
  // Broker calls in flight, and the first that failed since a tool last asked.
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const track = (call: Promise<void>) => {
    const settled: Promise<void> = call
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => inFlight.delete(settled));
    inFlight.add(settled);
  };
  // The answer to the `room.send` a `chat.send` made, taken by sendMessage as the actor emits it.
  const sends: Promise<SendResult>[] = [];
  // The actor's intents become broker calls; its news goes to the log and to the bound sessions.
  const intents: EmittedHandlers = {
    'queue.join': ({ type: _join, ...request }) => track(broker.join(request)),
    'chat.reported': ({ type: _report, ...report }) => onReport?.(report),
    'queue.leave': (e) => track(broker.leaveQueue(e.userId)),
    'queue.away': (e) => track(broker.away(e.userId)),
    'queue.back': (e) => track(broker.back(e.userId)),
    'room.send': (e) => {
      const sent = broker.send(e.roomId, e.userId, e.text);
      // Its caller hears of a failure; a chat.send sent to the actor directly has none.
      sent.catch(() => {});
      sends.push(sent);
    },
    'room.leave': (e) => track(broker.leaveRoom(e.roomId, e.userId, e.reason)),
  };
  // One listener for all of them: each `actor.on` costs every user a map entry and a bound wrapper.
  actor.on('*', (e) => {
    if (!isNews(e)) {
      (intents[e.type] as ((event: UserEmitted) => void) | undefined)?.(e);
      return;
    }
    const entry = toEntry(e);
    const id = events.append(entry);
    onNews?.(user, entry, id);
    for (const listener of listeners) listener(entry, id);
  });
  let links = 0;
  let byToken = false;
  const tell = (type: PresenceEvent['type']) => {
    if (actor.getSnapshot().status === 'active') actor.send({ type });
  };
  // The last link's close is told a moment later, and not at all if a link opens before:
  // a client that calls again at once (the next wait_for_events) never went offline.
  const offlineAfterMs = Math.min(MAX_OFFLINE_DELAY_MS, presence.pairableMs / 20);
  let offline: NodeJS.Timeout | undefined;
  const tellOffline = () => {
    clearTimeout(offline);
    offline = undefined;
    tell('client.offline');
  };
  // A pending offline is told first, so that `client.detached` finds the chart offline, as it would have.
  const tellDetached = () => {
    if (offline) tellOffline();
    tell('client.detached');
  };
  const detach = broker.attach(userId, (delivery) => actor.send(delivery));
  const release = () => {
    listeners.clear();
    events.release();
  };
  actor.subscribe({
    complete: () => {
      clearTimeout(offline);
      detach();
      release();
    },
    // A failed actor says nothing more: take it out of the queue and its room here, so
    // nobody is paired with it and its partner hears it is gone.
    error: () => {
      clearTimeout(offline);
      detach();
      release();
      const { roomId } = actor.getSnapshot().context;
      track(broker.leaveQueue(userId));
      if (roomId) track(broker.leaveRoom(roomId, userId, 'disconnected'));
    },
  });
  actor.start();
  // While a leave waits out its page grace, any new link is the call that keeps the user, not only the first.
  const leaving = () => actor.getSnapshot().children.presence?.getSnapshot().hasTag(LEAVING) === true;
  const user: ChatUser<E> = {
    userId,
    token: options.token,
    eventsKey: options.eventsKey,
    actor,
    events,
    get state() {
      return actor.getSnapshot().value as UserState;
    },
    openLink() {
      // An offline not yet told is taken back: for the chart, the user never left.
      const chartHeardOffline = offline === undefined;
      clearTimeout(offline);
      offline = undefined;
      if ((links++ === 0 && chartHeardOffline) || leaving()) tell('client.online');
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        if (--links === 0) offline = setTimeout(tellOffline, offlineAfterMs).unref();
      };
    },
    detached: tellDetached,
    calledByToken: () => {
      byToken = true;
    },
    bind(listener) {
      listeners.add(listener);
      let bound = true;
      return (gone) => {
        if (!bound) return;
        bound = false;
        listeners.delete(listener);
        if (gone && listeners.size === 0 && !byToken) tellDetached();
      };
    },
    async settled() {
      await Promise.all(inFlight);
      const failed = failure;
      failure = undefined;
      if (failed) throw failed.error;
    },
    sendMessage(event) {
      sends.length = 0;
      actor.send(event);
      return sends.pop() ?? Promise.reject(new Error(`the user chart did not take ${event.type} in ${String(actor.getSnapshot().value)}`));
    },
    status: () => statusOf(actor, userId, broker),
  };
  return user;
}

/** What `get_status` answers: the state, the room and what the pairing said, or the queue place. */
export interface ChatStatus {
  state: UserState;
  room_id?: string;
  common_interests?: string[];
  partner_is?: IAm;
  position?: number;
  /** Seconds until the user may meet anyone, while its interest wait runs. */
  widens_in_s?: number;
}

async function statusOf(actor: UserActor, userId: string, broker: ChatBroker): Promise<ChatStatus> {
  const snapshot = actor.getSnapshot();
  const state = snapshot.value as UserState;
  const status: ChatStatus = { state };
  const { roomId, lastChat } = snapshot.context;
  if (roomId) {
    status.room_id = roomId;
    status.common_interests = lastChat?.commonInterests ?? [];
    if (lastChat?.partnerIs) status.partner_is = lastChat.partnerIs;
  }
  const place = state === 'waiting' ? await broker.placeOf(userId) : undefined;
  if (place) {
    status.position = place.position;
    if (place.widensInMs !== undefined) status.widens_in_s = Math.ceil(place.widensInMs / 1000);
  }
  return status;
}
