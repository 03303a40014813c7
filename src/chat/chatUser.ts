/**
 * A user actor wired to the broker: its intents (`queue.join`, `room.send`, …) become
 * broker calls, the broker's deliveries become its events, and its news for the client
 * (`chat.matched`, `chat.received`, `chat.partnerLeft`) go to `notify`, which the
 * session turns into the wire's notifications (src/mcp/notifications.ts).
 */
import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { LEAVING, type PresenceInput } from '../../machines/presence.js';
import type { IAm } from '../../machines/matching.js';
import { userMachine, type RateLimit, type UserEmitted, type UserState } from '../../machines/user.js';
import type { ChatBroker } from './broker.js';

/** What a user actor tells its client about: its news, not its intents for the broker. */
export type UserNews = Extract<UserEmitted, { type: 'chat.matched' | 'chat.received' | 'chat.partnerLeft' }>;
const NEWS = new Set<UserEmitted['type']>(['chat.matched', 'chat.received', 'chat.partnerLeft']);
const isNews = (event: UserEmitted): event is UserNews => NEWS.has(event.type);

export type UserActor = Actor<typeof userMachine>;

export interface ChatUser {
  readonly userId: string;
  readonly actor: UserActor;
  readonly broker: ChatBroker;
  /**
   * A call acting for this user, or a stream of a session bound to it, is open until
   * the returned function is called. The actor hears only the edges, `client.online`
   * when the first link opens and `client.offline` when the last closes, so a call on
   * a session whose stream is open costs its actors nothing — except while a leave
   * waits out its page grace, when every new link is news.
   */
  openLink(): () => void;
  /** The last session bound to this user went away (DELETE, or a legacy stream gone). */
  detached(): void;
  /**
   * Resolves once every broker call this user's intents made so far has settled;
   * rejects with the first that failed since the last time it was asked (the queue or
   * the room could not be reached: a tool says so).
   */
  settled(): Promise<void>;
}

/** A user reported its partner: for the operator, never the partner. */
export type UserReport = Omit<Extract<UserEmitted, { type: 'chat.reported' }>, 'type'>;

export interface ChatUserOptions {
  userId: string;
  presence: PresenceInput;
  rate: RateLimit;
  /** How long an idle user still avoids its last partner, in ms. */
  rematchAfterMs: number;
  onReport?: (report: UserReport) => void;
  broker: ChatBroker;
  notify: (news: UserNews) => void;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

export function startChatUser({ userId, presence, rate, rematchAfterMs, onReport, broker, notify, inspect }: ChatUserOptions): ChatUser {
  const actor = createActor(userMachine, { input: { userId, presence, rate, rematchAfterMs }, systemId: `user:${userId}`, inspect });
  // Broker calls in flight, and the first that failed since a tool last asked.
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const track = (call: Promise<void>) => {
    const settled: Promise<void> = call
      .catch((error: unknown) => void (failure ??= { error }))
      .finally(() => inFlight.delete(settled));
    inFlight.add(settled);
  };
  actor.on('queue.join', ({ type: _join, ...request }) => track(broker.join(request)));
  actor.on('chat.reported', ({ type: _report, ...report }) => onReport?.(report));
  actor.on('queue.leave', (e) => track(broker.leaveQueue(e.userId)));
  actor.on('queue.away', (e) => track(broker.away(e.userId)));
  actor.on('queue.back', (e) => track(broker.back(e.userId)));
  actor.on('room.send', (e) => track(broker.send(e.roomId, e.userId, e.text)));
  actor.on('room.leave', (e) => track(broker.leaveRoom(e.roomId, e.userId, e.reason)));
  actor.on('*', (e) => {
    if (isNews(e)) notify(e);
  });
  const detach = broker.attach(userId, (delivery) => actor.send(delivery));
  actor.subscribe({
    complete: detach,
    // A failed actor says nothing more: take it out of the queue and its room here, so
    // nobody is paired with it and its partner hears it is gone.
    error: () => {
      detach();
      const { roomId } = actor.getSnapshot().context;
      track(broker.leaveQueue(userId));
      if (roomId) track(broker.leaveRoom(roomId, userId, 'disconnected'));
    },
  });
  actor.start();
  let links = 0;
  const tell = (type: 'client.online' | 'client.offline' | 'client.detached') => {
    if (actor.getSnapshot().status === 'active') actor.send({ type });
  };
  // While a leave waits out its page grace, any new link is the call that keeps the user, not only the first.
  const leaving = () => actor.getSnapshot().children.presence?.getSnapshot().hasTag(LEAVING) === true;
  const openLink = () => {
    if (links++ === 0 || leaving()) tell('client.online');
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (--links === 0) tell('client.offline');
    };
  };
  const settled = async () => {
    await Promise.all(inFlight);
    const failed = failure;
    failure = undefined;
    if (failed) throw failed.error;
  };
  return { userId, actor, broker, openLink, detached: () => tell('client.detached'), settled };
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

export async function statusOf({ actor, broker, userId }: ChatUser): Promise<ChatStatus> {
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
