import { describe, expect, it } from 'vitest';
import { type AnyEventObject, createActor, createMachine, SimulatedClock, sendTo } from 'xstate';
import { type PresenceInput, presenceMachine } from '../../machines/presence.js';

/** Runs presence as the user machine does, as a child, and records what it tells its parent. */
function startPresence(input: Partial<PresenceInput> = {}) {
  const clock = new SimulatedClock();
  const told: AnyEventObject[] = [];
  const parent = createMachine({
    invoke: {
      id: 'presence',
      src: presenceMachine,
      input: { idleMs: 60_000, pairableMs: 20_000, graceMs: 30_000, pageGraceMs: 8_000, ...input },
    },
    on: {
      'session.closed': { actions: ({ event }) => told.push(event) },
      'chat.leave': { actions: ({ event }) => told.push(event) },
      'presence.*': { actions: ({ event }) => told.push(event) },
      'client.*': { actions: sendTo('presence', ({ event }) => event) },
    },
  });
  const actor = createActor(parent, { clock }).start();
  const presence = () => actor.getSnapshot().children.presence!.getSnapshot();
  return { actor, clock, told, presence };
}

/** The page sends leave_chat with grace: that call is a link, which closes once it is answered. */
function closePage(actor: ReturnType<typeof startPresence>['actor']): void {
  actor.send({ type: 'client.online' });
  actor.send({ type: 'client.leaving' });
  actor.send({ type: 'client.offline' });
}

describe('presenceMachine', () => {
  it('starts offline, goes online and offline as the client does', () => {
    const { actor, presence } = startPresence();
    expect(presence().value).toEqual({ offline: 'recent' });
    actor.send({ type: 'client.online' });
    expect(presence().value).toBe('online');
    actor.send({ type: 'client.offline' });
    expect(presence().value).toEqual({ offline: 'recent' });
  });

  it('offline for the idle timeout: away (not pairable) after pairableMs, then ends with "timeout"', () => {
    const { clock, told, presence } = startPresence();
    clock.increment(19_999);
    expect(told).toEqual([]);
    clock.increment(1);
    expect(told).toEqual([{ type: 'presence.away' }]);
    expect(presence().value).toEqual({ offline: 'away' });
    clock.increment(40_000);
    expect(told).toEqual([{ type: 'presence.away' }, { type: 'session.closed', reason: 'timeout' }]);
    expect(presence().value).toBe('expired');
  });

  it('back before pairableMs says nothing; back after it says presence.back; the clocks start again', () => {
    const { actor, clock, told, presence } = startPresence();
    clock.increment(10_000);
    actor.send({ type: 'client.online' });
    actor.send({ type: 'client.offline' });
    clock.increment(19_999);
    expect(told).toEqual([]);
    clock.increment(1);
    actor.send({ type: 'client.online' });
    expect(told).toEqual([{ type: 'presence.away' }, { type: 'presence.back' }]);
    actor.send({ type: 'client.offline' });
    clock.increment(59_999);
    expect(told.filter((e) => e.type === 'session.closed')).toEqual([]);
    clock.increment(1);
    expect(told.at(-1)).toEqual({ type: 'session.closed', reason: 'timeout' });
    expect(presence().value).toBe('expired');
  });

  it('detached (its last session went away): away at once, ends with "disconnected" after the grace period', () => {
    const { actor, clock, told } = startPresence();
    actor.send({ type: 'client.detached' });
    expect(told).toEqual([{ type: 'presence.away' }]);
    clock.increment(29_999);
    expect(told).toEqual([{ type: 'presence.away' }]);
    clock.increment(1);
    expect(told.at(-1)).toEqual({ type: 'session.closed', reason: 'disconnected' });
  });

  it('a call inside the grace period brings a detached user back silently, to the idle rules', () => {
    const { actor, clock, told, presence } = startPresence();
    actor.send({ type: 'client.detached' });
    clock.increment(20_000);
    actor.send({ type: 'client.online' });
    expect(presence().value).toBe('online');
    clock.increment(600_000);
    expect(told).toEqual([{ type: 'presence.away' }, { type: 'presence.back' }]);
    actor.send({ type: 'client.offline' });
    clock.increment(60_000);
    expect(told.at(-1)).toEqual({ type: 'session.closed', reason: 'timeout' });
  });

  it('a detach while a call is in flight changes nothing', () => {
    const { actor, clock, told, presence } = startPresence();
    actor.send({ type: 'client.online' });
    actor.send({ type: 'client.detached' });
    clock.increment(600_000);
    expect(presence().value).toBe('online');
    expect(told).toEqual([]);
  });

  it('leaving (a page closed or reloaded): away at once, leaves its chat after the page grace, offline once its links closed', () => {
    const { actor, clock, told, presence } = startPresence();
    closePage(actor);
    expect(presence().value).toEqual({ leaving: 'unlinked' });
    expect(told).toEqual([{ type: 'presence.away' }]);
    clock.increment(7_999);
    expect(told).toEqual([{ type: 'presence.away' }]);
    clock.increment(1);
    expect(told).toEqual([{ type: 'presence.away' }, { type: 'chat.leave' }]);
    expect(presence().value).toEqual({ offline: 'recent' });
    // Then the idle rules, from the end of the grace.
    clock.increment(60_000);
    expect(told.at(-1)).toEqual({ type: 'session.closed', reason: 'timeout' });
  });

  it('leaving with a link still open (a stream): leaves its chat after the page grace and stays online', () => {
    const { actor, clock, told, presence } = startPresence();
    actor.send({ type: 'client.online' });
    actor.send({ type: 'client.leaving' });
    clock.increment(8_000);
    expect(told).toEqual([{ type: 'presence.away' }, { type: 'chat.leave' }]);
    expect(presence().value).toBe('online');
    clock.increment(600_000);
    expect(told).toHaveLength(2);
  });

  it('a call inside the page grace keeps the user silently: back, and no leave', () => {
    const { actor, clock, told, presence } = startPresence();
    closePage(actor);
    clock.increment(7_000);
    actor.send({ type: 'client.online' });
    expect(presence().value).toBe('online');
    clock.increment(600_000);
    expect(told).toEqual([{ type: 'presence.away' }, { type: 'presence.back' }]);
  });

  it('a DELETE inside the page grace is no call: the leave stands', () => {
    const { actor, clock, told } = startPresence();
    closePage(actor);
    actor.send({ type: 'client.detached' });
    clock.increment(8_000);
    expect(told).toEqual([{ type: 'presence.away' }, { type: 'chat.leave' }]);
  });
});
