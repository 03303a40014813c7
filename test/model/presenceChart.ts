/**
 * machines/presence.ts as paths: the presence of one user, P, chatting with a partner
 * Q, while P's client opens and drops its links, ends its session, comes back, and the
 * clock runs. What P's presence decides, Q observes: nothing while P may still come
 * back (away, detached or leaving included: a user in a chat keeps it), `partner.disconnected`
 * once P's user ends — `timeout` after a silence, `disconnected` after its last
 * session went and the grace period passed — or once P left after a page grace (`left`;
 * P is idle then, and Q hears nothing more). The chart runs with P on each transport:
 *
 * - Streamable HTTP: P is a session opened with plain fetch and nothing else open, so
 *   that its one link is the one the replay opened.
 *
 *   | event | what happens |
 *   |---|---|
 *   | `client.online`, offline | P opens a GET stream |
 *   | `client.online`, detached | P opens a new session and its GET stream, and calls get_status with its token |
 *   | `client.online`, leaving | P calls get_status (its stream still open), or opens a GET stream (its stream was cut) |
 *   | `client.leaving` | P calls leave_chat with `grace: true`, as a page being closed or reloaded |
 *   | `client.offline` | P's stream is cut (the fetch is aborted, as a dropped connection) |
 *   | `client.detached` | P ends its only session (DELETE) |
 *   | `after pairableTimeout` | nothing, for longer than the pairable time |
 *   | `after idleTimeout` | nothing, for longer than the idle timeout: Q hears `timeout` |
 *   | `after graceTimeout` | nothing, for longer than the grace period: Q hears `disconnected` |
 *   | `after pageGrace` | nothing, for longer than the page grace: Q hears `left`, P is idle |
 *
 *   More links at once (a held wait_for_events beside the stream) are no chart events:
 *   the server counts a user's links and tells presence only the edges (test/unit/chatUser.test.ts).
 *
 * - legacy HTTP+SSE: P is an MCP SDK client on GET /sse, whose stream is bound to P's
 *   user from its first enter_queue (the prelude) and cannot resume: when it drops,
 *   its session ends with it.
 *
 *   | event | what happens |
 *   |---|---|
 *   | `client.offline` (and `client.detached`, unless named by its token) | P's SSE stream drops |
 *   | `client.online`, detached, offline or leaving without its stream | P opens a new SSE stream and calls get_status with its token |
 *   | `client.online`, leaving with its stream | P calls get_status |
 *   | `client.leaving` | as above |
 *   | `after pairableTimeout`, `after idleTimeout`, `after graceTimeout`, `after pageGrace` | as above |
 *
 * Once a call has named P's user by its token, P lives by its token: the end of a
 * session (DELETE, a legacy stream gone) no longer detaches it, only silence ends it.
 * The chart does not keep that (the server does), so the model adds it, and the
 * paths take `client.detached` only before. Nor does it keep whether P left its chat
 * after a page grace (P's user does): the model adds that too, and a P that left
 * closes no page again.
 *
 * The chart's `sendParent` actions are given fakes with `provide`, as the model has no
 * parent: the replay checks what the parent (the user actor) does with Q instead.
 */
import { expect } from 'vitest';
import type { ActorLogic, AnyActorScope, SnapshotFrom } from 'xstate';
import { type PresenceEvent, presenceMachine } from '../../machines/presence.js';
import { Ledger } from './ledger.js';
import type { ChartSpec } from './replay.js';
import { eventually, type Person } from './world.js';

type PresenceSnapshot = SnapshotFrom<typeof presenceMachine> & { readonly named?: true; readonly left?: true };

const modelPresence = presenceMachine.provide({
  actions: { reportAway: () => {}, reportBack: () => {}, leaveChat: () => {}, expireDisconnected: () => {}, expireTimedOut: () => {} },
});

/**
 * The chart as P's client drives it, and whether a call has named P's user by its token
 * (P coming back from detached: it calls with its token). A legacy stream that drops
 * ends its session too: unless named, P is detached in the same step.
 */
function presenceModel(legacy: boolean) {
  return {
    config: modelPresence.config,
    getInitialSnapshot: (scope: AnyActorScope, input: unknown) => modelPresence.getInitialSnapshot(scope, input as never),
    transition(state: PresenceSnapshot, event: PresenceEvent, scope: AnyActorScope): PresenceSnapshot {
      let to = modelPresence.transition(state, event, scope) as PresenceSnapshot;
      if (legacy && event.type === 'client.offline' && !state.named)
        to = modelPresence.transition(to, { type: 'client.detached' }, scope) as PresenceSnapshot;
      const { named: _named, left: _left, ...plain } = to;
      const named =
        state.named ||
        (event.type === 'client.online' && (state.matches('detached') || (legacy && state.matches({ leaving: 'unlinked' }))));
      const left = state.left || event.type === after('pageGrace').type;
      return { ...plain, ...(named && { named: true as const }), ...(left && { left: true as const }) };
    },
    getPersistedSnapshot: (state: PresenceSnapshot) => state,
  } as unknown as ActorLogic<PresenceSnapshot, PresenceEvent, unknown>;
}

interface PresenceScene {
  p: Person;
  q: Person;
  roomId: string;
  ledger: Ledger;
  /** What leave_chat with grace answers as `within_s`. */
  pageGraceS: number;
}

const presenceOf = (p: Person) =>
  (
    p.actor().getSnapshot() as { children: Record<string, { getSnapshot(): PresenceSnapshot } | undefined> }
  ).children.presence?.getSnapshot();

/** `offline.recent`, `detached`: the state as one word, and whether P is named by its token. */
const presenceKey = (state: PresenceSnapshot) =>
  (typeof state.value === 'string'
    ? state.value
    : Object.entries(state.value)
        .map(([parent, child]) => `${parent}.${String(child)}`)
        .join()) +
  (state.named ? ' (by token)' : '') +
  (state.left ? ' (left)' : '');

type Delay = 'pairableTimeout' | 'idleTimeout' | 'graceTimeout' | 'pageGrace';
const AFTER: Record<Delay, string> = {
  pairableTimeout: 'offline.recent',
  idleTimeout: 'offline',
  graceTimeout: 'detached',
  pageGrace: 'leaving',
};
const after = (delay: Delay) => ({ type: `xstate.after.${delay}.presence.${AFTER[delay]}` }) as unknown as PresenceEvent;

/**
 * Whose notifications are checked: a bare session reads none (its stream is a link and
 * nothing more), so only Q's and, on the legacy transport, P's.
 */
const heard = ({ p, q }: Pick<PresenceScene, 'p' | 'q'>, legacy: boolean) => (legacy ? [p, q] : [q]);

/** P's user ended: Q hears why (unless P left before), and is idle; P's token names no user. */
async function expired(scene: PresenceScene, reason: 'timeout' | 'disconnected', from: PresenceSnapshot): Promise<void> {
  const { p, q, roomId, ledger } = scene;
  await p.gone();
  if (!from.left) ledger.owe(q, 'partner.disconnected', { room_id: roomId, reason });
  ledger.statuses.set(q, { state: 'idle' });
  ledger.statuses.set(p, { state: 'ended' });
}

/** What P's get_status answers while its user lives: chatting, or idle once it left. */
const statusOf = ({ roomId }: PresenceScene, state: PresenceSnapshot) =>
  state.left ? { state: 'idle' } : { state: 'chatting', room_id: roomId, common_interests: [] };

export function presenceChart(transport: 'streamable' | 'legacy'): ChartSpec<PresenceSnapshot, PresenceEvent, PresenceScene> {
  const legacy = transport === 'legacy';
  return {
    name: `presence (${legacy ? 'legacy HTTP+SSE' : 'Streamable HTTP'})`,
    machine: presenceMachine,
    model: {
      logic: presenceModel(legacy),
      input: { idleMs: 1_000, pairableMs: 500, graceMs: 1_000, pageGraceMs: 1_000 },
      ...(legacy && { prelude: [{ type: 'client.online' }] }),
      key: presenceKey,
      maxSimpleSteps: 8,
      maxSimplePaths: 6,
    },
    drivers: {
      'client.online': {
        // A legacy P offline has no session left (its stream was it): it comes back as from detached.
        events: (state) =>
          state.matches('detached') || state.matches('leaving') || (state.matches('offline') && (!legacy || state.named))
            ? [{ type: 'client.online' }]
            : [],
        label: (_, from) => {
          // Leaving with a link still open, any call is the sign of life, not only the first link.
          if (from.matches({ leaving: 'linked' })) return 'P calls get_status, its stream still open';
          return from.matches('detached') || legacy
            ? `P opens a new ${legacy ? 'SSE stream' : 'session and its stream'} and calls with its token`
            : 'P opens a GET stream';
        },
        async run(scene, _, from) {
          const { p } = scene;
          if (from.matches({ leaving: 'linked' })) expect(await p.status(), "P's get_status").toEqual(statusOf(scene, from));
          else if (from.matches('detached') || legacy) expect(await p.comeBack(), "P's get_status, back").toEqual(statusOf(scene, from));
          else await p.openLink();
        },
      },
      'client.leaving': {
        events: (state) => (state.matches('online') && !state.left ? [{ type: 'client.leaving' }] : []),
        label: () => 'P closes the page (leave_chat with grace)',
        async run({ p, pageGraceS }) {
          expect(await p.leaveWithGrace(), "P's leave_chat with grace").toEqual({ status: 'leaving', within_s: pageGraceS });
        },
      },
      'xstate.after.pageGrace.presence.leaving': {
        events: (state) => (state.matches('leaving') ? [after('pageGrace')] : []),
        label: () => 'nothing for the page grace',
        async run({ p, q, roomId, ledger }, _, __, to) {
          await eventually(() => expect(p.actor().getSnapshot().value, "P's user actor").toBe('idle'));
          ledger.owe(q, 'partner.disconnected', { room_id: roomId, reason: 'left' });
          ledger.statuses.set(q, { state: 'idle' });
          expect(to.left).toBe(true);
        },
      },
      'client.offline': {
        events: (state) => (state.matches('online') || state.matches({ leaving: 'linked' }) ? [{ type: 'client.offline' }] : []),
        label: () => (legacy ? 'the SSE stream drops (and its session ends)' : 'the stream is cut'),
        async run({ p }) {
          await p.closeLink();
        },
      },
      'client.detached': {
        // A legacy session has no DELETE: its stream's drop detaches P (client.offline above).
        events: (state) => (!legacy && !state.named && state.matches('offline') ? [{ type: 'client.detached' }] : []),
        label: () => 'P ends its session (DELETE)',
        async run({ p }) {
          await p.end();
        },
      },
      'xstate.after.pairableTimeout.presence.offline.recent': {
        events: (state) => (state.matches({ offline: 'recent' }) ? [after('pairableTimeout')] : []),
        label: () => 'nothing for the pairable time',
        // Nothing to do: the check waits until P's presence says it.
        async run() {},
      },
      'xstate.after.idleTimeout.presence.offline': {
        // The pairable time is the shorter: P is away by the time it times out.
        events: (state) => (state.matches({ offline: 'away' }) ? [after('idleTimeout')] : []),
        label: () => 'nothing for the idle timeout',
        async run(scene, _, from) {
          await expired(scene, 'timeout', from);
        },
      },
      'xstate.after.graceTimeout.presence.detached': {
        events: (state) => (state.matches('detached') ? [after('graceTimeout')] : []),
        label: () => 'nothing for the grace period',
        async run(scene, _, from) {
          await expired(scene, 'disconnected', from);
        },
      },
    },

    async setup(world) {
      const p = await world.join(legacy ? 'P (legacy)' : 'P', { client: legacy ? 'legacy' : 'bare' });
      const q = await world.join('Q');
      const ledger = new Ledger();
      expect(await p.enterQueue()).toEqual({ status: 'waiting', position: 1 });
      const answer = await q.enterQueue();
      expect(answer).toEqual({ status: 'matched', room_id: expect.any(String), common_interests: [] });
      const roomId = answer.room_id!;
      for (const person of heard({ p, q }, legacy)) ledger.owe(person, 'chatroom.found', { room_id: roomId, common_interests: [] });
      ledger.statuses.set(q, { state: 'chatting', room_id: roomId, common_interests: [] });
      return { p, q, roomId, ledger, pageGraceS: Math.ceil(world.timers.pageGraceMs / 1000) };
    },

    async check(scene, state, world) {
      const { p, ledger } = scene;
      if (state.matches('expired')) {
        await ledger.check(heard(scene, legacy));
        expect(p.actor().getSnapshot().status, "P's user actor").toBe('done');
        return;
      }
      // A link cut over HTTP closes on the server a moment later.
      await world.eventually(() => {
        expect(presenceOf(p)?.value, "P's presence").toEqual(state.value);
      });
      expect(p.actor().getSnapshot().value, "P's user actor").toBe(state.left ? 'idle' : 'chatting');
      // A call is a sign of life: P is asked only while it is online anyway.
      if (state.matches('online')) expect(await p.status(), "P's get_status").toEqual(statusOf(scene, state));
      await ledger.check(heard(scene, legacy));
    },
  };
}
