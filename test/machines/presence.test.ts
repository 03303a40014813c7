import { createActor, createMachine, sendTo, SimulatedClock, type AnyEventObject } from 'xstate';
import { describe, expect, it } from 'vitest';
import { presenceMachine, type PresenceInput } from '../../machines/presence.js';

/** Runs presence as the user machine does, as a child, and records what it tells its parent. */
function startPresence(input: Partial<PresenceInput> = {}) {
  const clock = new SimulatedClock();
  const told: AnyEventObject[] = [];
  const parent = createMachine({
    invoke: { id: 'presence', src: presenceMachine, input: { resumable: true, graceMs: 30_000, idleMs: 60_000, ...input } },
    on: {
      'session.closed': { actions: ({ event }) => told.push(event) },
      'client.*': { actions: sendTo('presence', ({ event }) => event) },
    },
  });
  const actor = createActor(parent, { clock }).start();
  const presence = () => actor.getSnapshot().children.presence!.getSnapshot();
  return { actor, clock, told, presence };
}

describe('presenceMachine', () => {
  it('starts offline, goes online and offline as the client does', () => {
    const { actor, presence } = startPresence();
    expect(presence().value).toBe('offline');
    actor.send({ type: 'client.online' });
    expect(presence().value).toBe('online');
    actor.send({ type: 'client.offline' });
    expect(presence().value).toBe('offline');
  });

  it('a resumable session expires with "timeout" after the idle timeout offline', () => {
    const { clock, told, presence } = startPresence();
    clock.increment(30_000);
    expect(told).toEqual([]);
    clock.increment(30_000);
    expect(told).toEqual([{ type: 'session.closed', reason: 'timeout' }]);
    expect(presence().value).toBe('expired');
  });

  it('an unresumable session expires with "disconnected" after the grace period', () => {
    const { clock, told } = startPresence({ resumable: false });
    clock.increment(29_999);
    expect(told).toEqual([]);
    clock.increment(1);
    expect(told).toEqual([{ type: 'session.closed', reason: 'disconnected' }]);
  });

  it('coming back inside the grace period cancels the clock', () => {
    const { actor, clock, told, presence } = startPresence({ resumable: false });
    clock.increment(20_000);
    actor.send({ type: 'client.online' });
    clock.increment(60_000);
    expect(told).toEqual([]);
    expect(presence().value).toBe('online');
  });
});
