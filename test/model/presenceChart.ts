/**
 * machines/presence.ts as paths: the presence of one user, P, chatting with a partner
 * Q, while P's client opens and drops its links, ends its session, comes back, and the
 * clock runs. What P's presence decides, Q observes: nothing while P may still come
 * back (away or detached included: a user in a chat keeps it), `partner.disconnected`
 * once P's user ends — `timeout` after a silence, `disconnected` after its last
 * session went and the grace period passed. The chart runs with P on each transport:
 *
 * - Streamable HTTP: P is a session opened with plain fetch and nothing else open, so
 *   that its one link is the one the replay opened.
 *
 *   | event | what happens |
 *   |---|---|
 *   | `client.online`, offline | P opens a GET stream |
 *   | `client.online`, detached | P opens a new session and its GET stream, and calls get_status with its token |
 *   | `client.offline` | P's stream is cut (the fetch is aborted, as a dropped connection) |
 *   | `client.detached` | P ends its only session (DELETE) |
 *   | `after pairableTimeout` | nothing, for longer than the pairable time |
 *   | `after idleTimeout` | nothing, for longer than the idle timeout: Q hears `timeout` |
 *   | `after graceTimeout` | nothing, for longer than the grace period: Q hears `disconnected` |
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
 *   | `client.online`, detached or offline | P opens a new SSE stream and calls get_status with its token |
 *   | `after pairableTimeout`, `after idleTimeout`, `after graceTimeout` | as above |
 *
 * Once a call has named P's user by its token, P lives by its token: the end of a
 * session (DELETE, a legacy stream gone) no longer detaches it, only silence ends it.
 * The chart does not keep that (the server does), so the model adds it, and the
 * paths take `client.detached` only before.
 *
 * The chart's `sendParent` actions are given fakes with `provide`, as the model has no
 * parent: the replay checks what the parent (the user actor) does with Q instead.
 */
import { expect } from 'vitest';
import type { ActorLogic, AnyActorScope, SnapshotFrom } from 'xstate';
import { presenceMachine, type PresenceEvent } from '../../machines/presence.js';
import { Ledger } from './ledger.js';
import type { ChartSpec } from './replay.js';
import type { Person } from './world.js';

type PresenceSnapshot = SnapshotFrom<typeof presenceMachine> & { readonly named?: true };

const modelPresence = presenceMachine.provide({
  actions: { reportAway: () => {}, reportBack: () => {}, expireDisconnected: () => {}, expireTimedOut: () => {} },
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
      if (legacy && event.type === 'client.offline' && !state.named) to = modelPresence.transition(to, { type: 'client.detached' }, scope) as PresenceSnapshot;
      const { named: _, ...plain } = to;
      return state.named || (event.type === 'client.online' && state.matches('detached')) ? { ...plain, named: true } : plain;
    },
    getPersistedSnapshot: (state: PresenceSnapshot) => state,
  } as unknown as ActorLogic<PresenceSnapshot, PresenceEvent, unknown>;
}

interface PresenceScene {
  p: Person;
  q: Person;
  roomId: string;
  ledger: Ledger;
}

const presenceOf = (p: Person) =>
  (p.actor().getSnapshot() as { children: Record<string, { getSnapshot(): PresenceSnapshot } | undefined> }).children.presence?.getSnapshot();

/** `offline.recent`, `detached`: the state as one word, and whether P is named by its token. */
const presenceKey = (state: PresenceSnapshot) =>
  (typeof state.value === 'string' ? state.value : Object.entries(state.value).map(([parent, child]) => `${parent}.${String(child)}`).join()) +
  (state.named ? ' (by token)' : '');

type Delay = 'pairableTimeout' | 'idleTimeout' | 'graceTimeout';
const AFTER: Record<Delay, string> = { pairableTimeout: 'offline.recent', idleTimeout: 'offline', graceTimeout: 'detached' };
const after = (delay: Delay) => ({ type: `xstate.after.${delay}.presence.${AFTER[delay]}` }) as unknown as PresenceEvent;

/**
 * Whose notifications are checked: a bare session reads none (its stream is a link and
 * nothing more), so only Q's and, on the legacy transport, P's.
 */
const heard = ({ p, q }: PresenceScene, legacy: boolean) => (legacy ? [p, q] : [q]);

/** P's user ended: Q hears why, and is idle; P's token names no user. */
async function expired(scene: PresenceScene, reason: 'timeout' | 'disconnected'): Promise<void> {
  const { p, q, roomId, ledger } = scene;
  await p.gone();
  ledger.owe(q, 'partner.disconnected', { room_id: roomId, reason });
  ledger.statuses.set(q, { state: 'idle' });
  ledger.statuses.set(p, { state: 'ended' });
}

export function presenceChart(transport: 'streamable' | 'legacy'): ChartSpec<PresenceSnapshot, PresenceEvent, PresenceScene> {
  const legacy = transport === 'legacy';
  return {
    name: `presence (${legacy ? 'legacy HTTP+SSE' : 'Streamable HTTP'})`,
    machine: presenceMachine,
    model: {
      logic: presenceModel(legacy),
      input: { idleMs: 1_000, pairableMs: 500, graceMs: 1_000 },
      ...(legacy && { prelude: [{ type: 'client.online' }] }),
      key: presenceKey,
      maxSimpleSteps: 8,
      maxSimplePaths: 6,
    },
    drivers: {
      'client.online': {
        // A legacy P offline has no session left (its stream was it): it comes back as from detached.
        events: (state) => (state.matches('detached') || (state.matches('offline') && (!legacy || state.named)) ? [{ type: 'client.online' }] : []),
        label: (_, from) =>
          from.matches('detached') || legacy
            ? `P opens a new ${legacy ? 'SSE stream' : 'session and its stream'} and calls with its token`
            : 'P opens a GET stream',
        async run({ p, roomId }, _, from) {
          if (from.matches('detached') || legacy) expect(await p.comeBack(), "P's get_status, back").toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
          else await p.openLink();
        },
      },
      'client.offline': {
        events: (state) => (state.matches('online') ? [{ type: 'client.offline' }] : []),
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
        async run(scene) {
          await expired(scene, 'timeout');
        },
      },
      'xstate.after.graceTimeout.presence.detached': {
        events: (state) => (state.matches('detached') ? [after('graceTimeout')] : []),
        label: () => 'nothing for the grace period',
        async run(scene) {
          await expired(scene, 'disconnected');
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
      for (const person of heard({ p, q, roomId, ledger }, legacy)) ledger.owe(person, 'chatroom.found', { room_id: roomId, common_interests: [] });
      ledger.statuses.set(q, { state: 'chatting', room_id: roomId, common_interests: [] });
      return { p, q, roomId, ledger };
    },

    async check(scene, state, world) {
      const { p, roomId, ledger } = scene;
      if (state.matches('expired')) {
        await ledger.check(heard(scene, legacy));
        expect(p.actor().getSnapshot().status, "P's user actor").toBe('done');
        return;
      }
      // A link cut over HTTP closes on the server a moment later.
      await world.eventually(() => {
        expect(presenceOf(p)?.value, "P's presence").toEqual(state.value);
      });
      expect(p.actor().getSnapshot().value, "P's user actor").toBe('chatting');
      // A call is a sign of life: P is asked only while it is online anyway.
      if (state.matches('online')) expect(await p.status(), "P's get_status").toEqual({ state: 'chatting', room_id: roomId, common_interests: [] });
      await ledger.check(heard(scene, legacy));
    },
  };
}
