/**
 * machines/user.ts as paths: one person, A, and the strangers A meets. A's user is
 * made by A's first enter_queue (the prelude: a user is never seen before it entered),
 * so every path starts with A waiting. Each chart event is what A's client, a
 * stranger's client, the network or the clock does:
 *
 * | event | what happens |
 * |---|---|
 * | `queue.enter` | A calls enter_queue |
 * | `chat.next` | A calls next |
 * | `chat.leave` | A calls leave_chat (with the room id while chatting); idle after a chat, with `block: true` or a `report` on its last partner |
 * | `chat.send` | A calls send_message |
 * | `room.paired` | a new stranger connects and calls enter_queue |
 * | `room.message` | the partner calls send_message |
 * | `room.closed` | the partner calls leave_chat; or sends DELETE and does not come back in the grace period; or goes quiet until the idle timeout |
 * | `session.closed` | A sends DELETE and does not come back in the grace period (once a call named A by its token, DELETE does not detach it: A times out), or goes quiet until the idle timeout |
 * | `client.offline` | A's stream drops, and A's client reopens it |
 * | `client.detached` | A, never named by its token, sends DELETE, then comes back with its token in a new session within the grace period |
 * | `client.leaving` | A closes the page (leave_chat with `grace: true`) and, reloaded, calls get_status within the page grace: it stays where it was, and nobody hears a thing |
 * | `presence.away` | A, waiting, goes quiet (its client closes without DELETE) for the pairable time |
 * | `presence.back` | A, away, comes back: a new session whose first call is get_status with its token |
 * | `client.online` | not a step: it comes when A's stream or a call comes back |
 * | `after rematchAfter` (idle) | not waited for here: the rematch time outlasts these paths, so A avoids its last partner all along (the queue chart that waits the timers out drives it) |
 *
 * The same paths run through a per-call client (`userChart('per-call')`), which opens a
 * session for each call and holds wait_for_events between them: there its held call is
 * what drops and comes back, it goes quiet by no longer calling, and it comes back by
 * calling with its token. It never ends a session (the server drops each once idle,
 * which detaches no one), so DELETE — `client.detached`, and `session.closed` or
 * `room.closed` for `disconnected` by A — does not apply to it.
 *
 * The chart does not keep whether A is away (it tells the queue, which keeps it), nor
 * whether a call has named A by its token (the server keeps that), so the model adds
 * both: an away user is paired with no one, and any call would bring it back first,
 * so the paths take only `presence.back` or the idle timeout from there; and the end
 * of a session detaches a user only until a call names it by its token.
 *
 * The model's strangers are all `B`: A never meets one twice (each is a new person),
 * so whom A avoids or blocked is checked against the scene's people.
 */
import { expect } from 'vitest';
import type { ActorLogic, AnyActorScope, SnapshotFrom } from 'xstate';
import type { queueMachine } from '../../machines/queue.js';
import { type UserEvent, userMachine } from '../../machines/user.js';
import { Ledger } from './ledger.js';
import type { ChartSpec } from './replay.js';
import { MATCHING_NEVER, type Person, type Status, type VerdictArgs, type World } from './world.js';

/** What A says of its last partner, idle after the chat. */
const VERDICTS = { block: { block: true }, report: { report: 'rude' } } as const satisfies Record<string, VerdictArgs>;

type UserSnapshot = SnapshotFrom<typeof userMachine> & { readonly away?: true; readonly named?: true };

/**
 * The user chart, and what the server keeps beside it: whether A is away (set by
 * `presence.away`, gone with the next event), and whether a call has named A's user by
 * its token (A coming back; every call of a per-call client after its first).
 */
function userModel(perCall: boolean) {
  return {
    config: userMachine.config,
    getInitialSnapshot: (scope: AnyActorScope, input: unknown) => userMachine.getInitialSnapshot(scope, input as never),
    transition(state: UserSnapshot, event: UserEvent, scope: AnyActorScope): UserSnapshot {
      const { away: _away, named: _named, ...to } = userMachine.transition(state, event, scope) as UserSnapshot;
      const named = perCall || state.named || event.type === 'client.detached' || event.type === 'presence.back';
      return { ...to, ...(event.type === 'presence.away' && { away: true as const }), ...(named && { named: true as const }) };
    },
    getPersistedSnapshot: (state: UserSnapshot) => state,
  } as unknown as ActorLogic<UserSnapshot, UserEvent, unknown>;
}

type Client = 'sdk' | 'per-call';

interface UserScene {
  world: World;
  a: Person;
  partner: Person | undefined;
  /** The partner of A's last chat, until the next. */
  lastPartner: Person | undefined;
  /** Whom A blocked (or reported), in order. */
  blocked: Person[];
  /** How many reports A made. */
  reports: number;
  roomId: string | undefined;
  /** The room's `seq` so far. */
  seq: number;
  strangers: Person[];
  ledger: Ledger;
}

const REASONS = {
  left: 'leaves (leave_chat)',
  disconnected: 'ends its session (DELETE) for good',
  timeout: 'goes quiet and times out',
} as const;
type Reason = keyof typeof REASONS;

/** A `session.closed` step that A's DELETE starts (the chart cannot tell: it ends A either way). */
const DELETED = { by: 'DELETE' } as const;
const deleted = (event: UserEvent) => 'by' in event && event.by === DELETED.by;

const active = (state: UserSnapshot) => state.status === 'active';
/** Any call of A's is a sign of life: while A is away, only coming back (or silence) is a step. */
const present = (state: UserSnapshot) => active(state) && !state.away;

/** Makes `person` go, for `reason`, as its client would. */
async function depart(person: Person, reason: Reason, roomId: string | undefined): Promise<void> {
  if (reason === 'left') await person.leave(roomId);
  else {
    await (reason === 'disconnected' ? person.end() : person.vanish());
    await person.gone();
  }
}

/** A's partner hears that A went, and is idle again. */
function partnerHears(scene: UserScene, reason: string): void {
  const { partner, roomId } = scene;
  if (!partner || !roomId) throw new Error('A has no partner to tell');
  scene.ledger.owe(partner, 'partner.disconnected', { room_id: roomId, reason });
  scene.ledger.statuses.set(partner, { state: 'idle' });
  scene.partner = undefined;
  scene.roomId = undefined;
}

/** Whether A's joins ask the queue to avoid its last partner in `state`. */
const avoiding = (state: UserSnapshot) => !state.matches('chatting') && state.context.avoidsLastPartner && state.context.lastChat !== null;

/** What A's get_status answers in `state` (strangers share no interest, and say nothing of what they are). */
function statusIn(scene: UserScene, state: UserSnapshot): Status {
  if (state.matches('chatting')) return { state: 'chatting', room_id: scene.roomId, common_interests: [] };
  if (state.matches('waiting')) return { state: 'waiting', position: 1 };
  return { state: String(state.value) as Status['state'] };
}

/** A's presence (white box): `online`, `offline.recent`, `detached`… */
function presenceOf(a: Person): string {
  const { children } = a.actor().getSnapshot() as { children: Record<string, { getSnapshot(): { value: unknown } } | undefined> };
  const value = children.presence?.getSnapshot().value;
  return typeof value === 'object' && value !== null
    ? Object.entries(value)
        .map(([parent, child]) => `${parent}.${String(child)}`)
        .join()
    : String(value);
}

/** A person's name, by the id of its user. */
const nameOf = (scene: UserScene, userId: string) => [scene.a, ...scene.strangers].find((p) => p.userId === userId)?.name ?? userId;

/** A's place in the queue actor: whether it is away there, whom it avoids and whom it blocked (white box). */
function placeOf(scene: UserScene) {
  const { waiting } = (scene.world.queue().getSnapshot() as SnapshotFrom<typeof queueMachine>).context;
  const place = waiting.userOf(scene.a.userId);
  return (
    place && {
      away: place.away === true,
      avoid: place.avoid && nameOf(scene, place.avoid),
      blocked: place.blocked.map((id) => nameOf(scene, id)),
    }
  );
}

export function userChart(client: Client): ChartSpec<UserSnapshot, UserEvent, UserScene> {
  const perCall = client === 'per-call';
  return {
    name: perCall ? 'user (per-call client)' : 'user',
    machine: userMachine,
    model: {
      logic: userModel(perCall),
      input: {
        userId: 'A',
        presence: { idleMs: 1_000, pairableMs: 500, graceMs: 1_000, pageGraceMs: 1_000 },
        rate: { perSecond: 5, burst: 20 },
        rematchAfterMs: MATCHING_NEVER.rematchAfterMs,
      },
      prelude: [{ type: 'queue.enter' }],
      key: (state) => {
        const notes = [
          state.away && 'away',
          avoiding(state) && 'avoiding its last partner',
          // Every call of a per-call client after its first names A by its token: no news there.
          !perCall && state.named && 'by token',
        ].filter(Boolean);
        return `${String(state.value)}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
      },
      maxSimpleSteps: 6,
      maxSimplePaths: 12,
    },
    drivers: {
      'queue.enter': {
        events: (state) => (present(state) ? [{ type: 'queue.enter' }] : []),
        label: () => 'enter_queue',
        async run({ a }) {
          expect(await a.enterQueue()).toEqual({ status: 'waiting', position: 1 });
        },
      },
      'chat.next': {
        events: (state) => (present(state) ? [{ type: 'chat.next' }] : []),
        label: (_, from) => (from.matches('chatting') ? 'next, leaving the partner' : 'next'),
        async run(scene, _, from) {
          const answer = await scene.a.next();
          if (from.matches('chatting')) partnerHears(scene, 'left');
          expect(answer).toEqual({ status: 'waiting', position: 1 });
        },
      },
      'chat.leave': {
        events: (state): UserEvent[] => {
          if (!present(state)) return [];
          if (state.context.roomId) return [{ type: 'chat.leave', roomId: state.context.roomId }];
          // Idle after a chat, A may block its last partner, or report it (which blocks it too).
          if (state.matches('idle')) return [VERDICTS.block, VERDICTS.report].map((verdict) => ({ type: 'chat.leave', ...verdict }));
          return [{ type: 'chat.leave' }];
        },
        label: (event, from) => {
          if (from.matches('chatting')) return 'leave_chat';
          if (from.matches('waiting')) return 'leave_chat, leaving the queue';
          return event.type === 'chat.leave' && event.report
            ? 'leave_chat, reporting its last partner'
            : 'leave_chat, blocking its last partner';
        },
        async run(scene, event, from) {
          if (event.type !== 'chat.leave') throw new Error(`not chat.leave: ${event.type}`);
          const verdict = { ...(event.block && { block: true }), ...(event.report && { report: event.report }) };
          expect(await scene.a.leave(from.matches('chatting') ? scene.roomId : undefined, verdict)).toEqual({ status: 'idle' });
          if (from.matches('chatting')) partnerHears(scene, 'left');
          if (!from.matches('idle')) return;
          const judged = scene.lastPartner!;
          if (!scene.blocked.includes(judged)) scene.blocked.push(judged);
          if (event.report) scene.reports += 1;
          expect(await scene.world.reports(), 'reports the operator had').toBe(scene.reports);
        },
      },
      // Not waited for: see the table above.
      'xstate.after.rematchAfter.user.idle': {
        drivenIn: 'queue (2 users, liking chess or not, waiting the timers out): time passes with a user idle after a chat',
      },
      'chat.send': {
        events: (state) => [{ type: 'chat.send', roomId: state.context.roomId ?? 'none', text: 'hello', at: 0 }],
        label: () => 'send_message',
        async run(scene) {
          const { a, partner, roomId, ledger } = scene;
          const text = `message ${scene.seq + 1}, from A`;
          const sent = await a.send(roomId!, text);
          expect(sent).toEqual({ status: 'sent', message_id: expect.any(String), seq: ++scene.seq });
          ledger.oweMessage(partner!, roomId!, text, sent);
        },
      },
      'room.paired': {
        // An away user is paired with no one: a stranger who entered then would wait.
        events: (state) => (present(state) ? [{ type: 'room.paired', roomId: 'room', partnerId: 'B', commonInterests: [] }] : []),
        label: () => 'a stranger enters the queue',
        async run(scene) {
          const stranger = await scene.world.join(`B${scene.strangers.length + 1}`);
          scene.strangers.push(stranger);
          const answer = await stranger.enterQueue();
          expect(answer).toEqual({ status: 'matched', room_id: expect.any(String), common_interests: [] });
          Object.assign(scene, { partner: stranger, lastPartner: stranger, roomId: answer.room_id, seq: 0 });
          for (const person of [scene.a, stranger])
            scene.ledger.owe(person, 'chatroom.found', { room_id: answer.room_id, common_interests: [] });
          scene.ledger.statuses.set(stranger, { state: 'chatting', room_id: answer.room_id!, common_interests: [] });
        },
      },
      'room.message': {
        events: (state) => [
          { type: 'room.message', roomId: state.context.roomId ?? 'none', messageId: 'm', seq: 1, sentAt: 't', text: 'hi' },
        ],
        label: () => 'the partner sends a message',
        async run(scene) {
          const { a, partner, roomId, ledger } = scene;
          const text = `message ${scene.seq + 1}, from the partner`;
          const sent = await partner!.send(roomId!, text);
          expect(sent.seq).toBe(++scene.seq);
          ledger.oweMessage(a, roomId!, text, sent);
        },
      },
      'room.closed': {
        events: (state) =>
          (Object.keys(REASONS) as Reason[]).map((reason) => ({ type: 'room.closed', roomId: state.context.roomId ?? 'none', reason })),
        label: (event) => `the partner ${REASONS[event.type === 'room.closed' ? (event.reason as Reason) : 'left']}`,
        async run(scene, event) {
          if (event.type !== 'room.closed') throw new Error(`not room.closed: ${event.type}`);
          const { a, partner, roomId, ledger } = scene;
          await depart(partner!, event.reason as Reason, roomId);
          ledger.owe(a, 'partner.disconnected', { room_id: roomId, reason: event.reason });
          ledger.statuses.set(partner!, { state: event.reason === 'left' ? 'idle' : 'ended' });
          Object.assign(scene, { partner: undefined, roomId: undefined });
        },
      },
      'session.closed': {
        events: (state) => [
          // Its session's end detaches a user that no call has named by its token; a named one lives on until it times out.
          ...(present(state) && !perCall && !state.named ? [{ type: 'session.closed' as const, reason: 'disconnected' as const }] : []),
          ...(present(state) && !perCall && state.named
            ? [{ type: 'session.closed' as const, reason: 'timeout' as const, ...DELETED }]
            : []),
          ...(active(state) ? [{ type: 'session.closed' as const, reason: 'timeout' as const }] : []),
        ],
        label: (event, from) => {
          if (event.type === 'session.closed' && event.reason === 'disconnected') return 'A ends its session (DELETE) for good';
          if (deleted(event)) return 'A ends its session (DELETE) for good, and times out (its token named it)';
          return from.away ? 'A stays quiet and times out' : 'A goes quiet and times out';
        },
        async run(scene, event, from) {
          if (event.type !== 'session.closed') throw new Error(`not session.closed: ${event.type}`);
          const { world, a } = scene;
          const detaches = event.reason === 'disconnected';
          await (detaches || deleted(event) ? a.end() : a.vanish());
          // Only the end of the session of an A no call named by its token detaches it; else A is offline, and times out.
          await world.eventually(() => expect(presenceOf(a), "A's presence").toMatch(detaches ? 'detached' : /^offline\./));
          await a.gone();
          if (from.matches('chatting')) partnerHears(scene, event.reason);
        },
      },
      'client.online': { follows: 'client.offline, client.detached and presence.back: the stream or a call comes back' },
      'client.offline': {
        events: (state) => (present(state) ? [{ type: 'client.offline' }] : []),
        label: () => (perCall ? 'its held wait_for_events is cut, and it waits again' : 'the stream drops and comes back'),
        async run({ a }) {
          await a.dropStream();
        },
      },
      'client.detached': {
        events: (state) => (present(state) && !perCall && !state.named ? [{ type: 'client.detached' }] : []),
        label: () => 'A ends its session (DELETE) and comes back with its token',
        async run(scene, _, from) {
          const { world, a } = scene;
          await a.end();
          await world.eventually(() => expect(presenceOf(a), "A's presence").toBe('detached'));
          expect(await a.comeBack(), "A's get_status, back").toEqual(statusIn(scene, from));
        },
      },
      'client.leaving': {
        events: (state) => (present(state) ? [{ type: 'client.leaving' }] : []),
        label: () => 'A closes the page (leave_chat with grace) and, reloaded, calls get_status',
        async run(scene, _, from) {
          const { world, a } = scene;
          expect(await a.leaveWithGrace(), "A's leave_chat with grace").toEqual({
            status: 'leaving',
            within_s: Math.ceil(world.timers.pageGraceMs / 1000),
          });
          // Any call inside the page grace keeps A, silently: the ledger checks that nobody heard a thing.
          expect(await a.status(), "A's get_status, back").toEqual(statusIn(scene, from));
        },
      },
      'presence.away': {
        events: (state) => (present(state) ? [{ type: 'presence.away' }] : []),
        label: () => (perCall ? 'A stops calling for the pairable time' : "A's client closes (no DELETE) for the pairable time"),
        async run(scene) {
          await scene.a.vanish();
          await scene.world.eventually(() => expect(placeOf(scene)?.away, 'A away in the queue').toBe(true));
        },
      },
      'presence.back': {
        events: (state) => (state.away ? [{ type: 'presence.back' }] : []),
        label: () =>
          perCall ? 'A calls with its token and waits for events again' : 'A comes back: a new session, get_status with its token',
        async run(scene, _, from) {
          expect(await scene.a.comeBack(), "A's get_status, back").toEqual(statusIn(scene, from));
        },
      },
    },

    async setup(world) {
      const a = await world.join('A', { client });
      expect(await a.enterQueue()).toEqual({ status: 'waiting', position: 1 });
      return {
        world,
        a,
        partner: undefined,
        lastPartner: undefined,
        blocked: [],
        reports: 0,
        roomId: undefined,
        seq: 0,
        strangers: [],
        ledger: new Ledger(),
      };
    },

    async check(scene, state, world) {
      const { a } = scene;
      // A call is a sign of life: an away A is not asked (the queue says where it stands).
      if (!state.away) expect(await a.status(), "A's get_status").toEqual(statusIn(scene, state));
      await scene.ledger.check([a, ...scene.strangers]);
      const { value, context } = a.actor().getSnapshot() as SnapshotFrom<typeof userMachine>;
      expect(value, "A's user actor").toBe(state.value);
      expect(
        context.blocked.map((id) => nameOf(scene, id)),
        'whom A blocked',
      ).toEqual(scene.blocked.map((p) => p.name));
      expect(context.blocked.length > 0, 'whether A blocked anyone, as the model has it').toBe(state.context.blocked.length > 0);
      expect(placeOf(scene), "A's place in the queue").toEqual(
        state.matches('waiting')
          ? {
              away: state.away === true,
              avoid: avoiding(state) ? scene.lastPartner!.name : null,
              blocked: scene.blocked.map((p) => p.name),
            }
          : undefined,
      );
      expect(await world.health(), '/healthz').toMatchObject({ queue: state.matches('waiting') ? 1 : 0 });
    },
  };
}
