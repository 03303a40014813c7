/**
 * machines/presence.ts as paths: the presence of one session, P, chatting with a
 * partner Q, while P's links open and drop and the clock runs. What P's presence
 * decides, Q observes: nothing while P may still come back, `partner.disconnected`
 * once P's session ends. The chart runs with each input the server gives it:
 *
 * - Streamable HTTP (`resumable`): P is a session opened with plain fetch and nothing
 *   else open, so that each link is one the replay opened.
 *
 *   | event | what happens |
 *   |---|---|
 *   | `client.online` | P opens a GET stream |
 *   | `client.offline` | P's stream is cut (the fetch is aborted, as a dropped connection) |
 *   | `after idleTimeout` | nothing, for longer than the idle timeout: Q hears `timeout` |
 *
 *   More links at once (a held wait_for_events beside the stream) are no chart events:
 *   the session counts its links and tells presence only the edges (test/unit/chatUser.test.ts).
 *
 * - legacy HTTP+SSE (not `resumable`): P is an MCP SDK client on GET /sse, whose
 *   session opens with its stream (the prelude), and a stream that drops cannot resume.
 *
 *   | event | what happens |
 *   |---|---|
 *   | `client.offline` | P's SSE stream drops |
 *   | `after graceTimeout` | nothing, for longer than the grace period: Q hears `disconnected` |
 *
 * The chart's `sendParent` actions are given fakes with `provide`, as the model has no
 * parent: the replay checks what the parent (the user actor) does with Q instead.
 */
import { expect } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import { presenceMachine, type PresenceEvent } from '../../machines/presence.js';
import { Ledger } from './ledger.js';
import type { ChartSpec } from './replay.js';
import type { Person } from './world.js';

type PresenceSnapshot = SnapshotFrom<typeof presenceMachine>;

const modelPresence = presenceMachine.provide({ actions: { expireDisconnected: () => {}, expireTimedOut: () => {} } });

interface PresenceScene {
  p: Person;
  q: Person;
  roomId: string;
  ledger: Ledger;
  /** Whether P can still hear answers (a legacy client cannot, once its stream dropped). */
  answers: boolean;
}

const presenceOf = (p: Person) =>
  (p.actor().getSnapshot() as { children: Record<string, { getSnapshot(): PresenceSnapshot } | undefined> }).children.presence?.getSnapshot();

const after = (delay: 'idleTimeout' | 'graceTimeout') => ({ type: `xstate.after.${delay}.presence.offline` }) as unknown as PresenceEvent;

/**
 * Whose notifications are checked: a bare session reads none (its stream, when it has
 * one, is a link and nothing more), so only Q's and, on the legacy transport, P's.
 */
const heard = ({ p, q }: PresenceScene) => (p.name === 'P (legacy)' ? [p, q] : [q]);

export function presenceChart(transport: 'streamable' | 'legacy'): ChartSpec<PresenceSnapshot, PresenceEvent, PresenceScene> {
  const legacy = transport === 'legacy';
  return {
    name: `presence (${legacy ? 'legacy HTTP+SSE' : 'Streamable HTTP'})`,
    machine: presenceMachine,
    model: {
      logic: modelPresence,
      input: { resumable: !legacy, graceMs: 1_000, idleMs: 1_000 },
      ...(legacy && { prelude: [{ type: 'client.online' }] }),
      key: (state) => String(state.value),
      maxSimpleSteps: 6,
      maxSimplePaths: 6,
    },
    drivers: {
      'client.online': {
        // A legacy session's only stream opens with it; a new POST is a link that closes at once.
        events: (state) => (!legacy && state.matches('offline') ? [{ type: 'client.online' }] : []),
        label: () => 'a GET stream opens',
        async run({ p }) {
          await p.openLink();
        },
      },
      'client.offline': {
        events: (state) => (state.matches('online') ? [{ type: 'client.offline' }] : []),
        label: () => (legacy ? 'the SSE stream drops' : 'the stream is cut'),
        async run(scene) {
          await scene.p.closeLink();
          if (legacy) scene.answers = false;
        },
      },
      'xstate.after.idleTimeout.presence.offline': {
        events: () => [after('idleTimeout')],
        label: () => 'nothing for the idle timeout',
        async run({ p }) {
          await p.gone();
        },
      },
      'xstate.after.graceTimeout.presence.offline': {
        events: () => [after('graceTimeout')],
        label: () => 'nothing for the grace period',
        async run({ p }) {
          await p.gone();
        },
      },
    },

    async setup(world) {
      const p = await world.join(legacy ? 'P (legacy)' : 'P', { client: legacy ? 'legacy' : 'bare' });
      const q = await world.join('Q');
      const ledger = new Ledger();
      expect(await p.enterQueue()).toEqual({ status: 'waiting', position: 1 });
      const answer = await q.enterQueue();
      expect(answer).toEqual({ status: 'matched', room_id: expect.any(String) });
      const roomId = answer.room_id!;
      if (legacy) ledger.owe(p, 'chatroom.found', { room_id: roomId });
      ledger.owe(q, 'chatroom.found', { room_id: roomId });
      ledger.statuses.set(q, { state: 'chatting', room_id: roomId });
      return { p, q, roomId, ledger, answers: true };
    },

    async check(scene, state, world) {
      const { p, q, roomId, ledger } = scene;
      if (state.matches('expired')) {
        ledger.owe(q, 'partner.disconnected', { room_id: roomId, reason: legacy ? 'disconnected' : 'timeout' });
        ledger.statuses.set(q, { state: 'idle' });
        ledger.statuses.set(p, { state: 'ended' });
        await ledger.check(heard(scene));
        expect(p.actor().getSnapshot().status, "P's user actor").toBe('done');
        return;
      }
      // A link cut over HTTP closes on the server a moment later.
      await world.eventually(() => {
        const presence = presenceOf(p);
        expect(presence?.value, "P's presence").toBe(state.value);
      });
      if (scene.answers) expect(await p.status(), "P's get_status").toEqual({ state: 'chatting', room_id: roomId });
      await ledger.check(heard(scene));
    },
  };
}
