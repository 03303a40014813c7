import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { type UserEmitted, userMachine } from '../../machines/user.js';

const presence = { idleMs: 60_000, pairableMs: 30_000, graceMs: 30_000, pageGraceMs: 8_000 };
const rate = { perSecond: 2, burst: 3 };

function startUser(clock = new SimulatedClock()) {
  const user = createActor(userMachine, { input: { userId: 'u1', presence, rate, rematchAfterMs: 30_000 }, clock });
  const emitted: UserEmitted[] = [];
  user.on('*', (event) => emitted.push(event));
  user.start();
  const state = () => user.getSnapshot().value;
  const pair = (roomId = 'r1', partnerId = 'u2') => user.send({ type: 'room.paired', roomId, partnerId });
  return { user, emitted, state, pair, clock };
}

describe('userMachine', () => {
  it('idle → waiting on queue.enter, asking the queue for a place', () => {
    const { user, emitted, state } = startUser();
    user.send({ type: 'queue.enter' });
    expect(state()).toBe('waiting');
    expect(emitted).toEqual([{ type: 'queue.join', userId: 'u1', avoid: null, blocked: [], interests: [], meet: 'anyone' }]);
  });

  it('waiting → chatting when a partner arrives, telling the client the room', () => {
    const { user, emitted, state, pair } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    expect(state()).toBe('chatting');
    expect(user.getSnapshot().context).toMatchObject({ roomId: 'r1', partnerId: 'u2' });
    expect(emitted.at(-1)).toEqual({ type: 'chat.matched', roomId: 'r1', commonInterests: [] });
  });

  it('waiting → idle on chat.leave, leaving the queue', () => {
    const { user, emitted, state } = startUser();
    user.send({ type: 'queue.enter' });
    expect(user.getSnapshot().can({ type: 'chat.leave', roomId: 'someone-elses' })).toBe(false);
    user.send({ type: 'chat.leave' });
    expect(state()).toBe('idle');
    expect(emitted.at(-1)).toEqual({ type: 'queue.leave', userId: 'u1' });
  });

  it('sends only to its own room, and only while chatting', () => {
    const { user, emitted, pair } = startUser();
    expect(user.getSnapshot().can({ type: 'chat.send', roomId: 'r1', text: 'hi', at: 0 })).toBe(false);
    user.send({ type: 'queue.enter' });
    expect(user.getSnapshot().can({ type: 'chat.send', roomId: 'r1', text: 'hi', at: 0 })).toBe(false);
    pair();
    expect(user.getSnapshot().can({ type: 'chat.send', roomId: 'elsewhere', text: 'hi', at: 0 })).toBe(false);
    user.send({ type: 'chat.send', roomId: 'r1', text: 'hi', at: 0 });
    expect(emitted.at(-1)).toEqual({ type: 'room.send', roomId: 'r1', userId: 'u1', text: 'hi' });
  });

  it('passes on messages from its room only', () => {
    const { user, emitted, pair } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    user.send({ type: 'room.message', roomId: 'other', messageId: 'x', seq: 9, sentAt: 't', text: 'stray' });
    user.send({ type: 'room.message', roomId: 'r1', messageId: 'm2', seq: 2, sentAt: 't2', text: 'hello' });
    expect(emitted.filter((e) => e.type === 'chat.received')).toEqual([
      { type: 'chat.received', roomId: 'r1', messageId: 'm2', seq: 2, sentAt: 't2', text: 'hello' },
    ]);
  });

  it('chatting → idle on chat.leave, closing the room as "left"', () => {
    const { user, emitted, state, pair } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    expect(user.getSnapshot().can({ type: 'chat.leave', roomId: 'not-mine' })).toBe(false);
    user.send({ type: 'chat.leave', roomId: 'r1' });
    expect(state()).toBe('idle');
    expect(user.getSnapshot().context).toMatchObject({ roomId: null, partnerId: null });
    expect(emitted.at(-1)).toEqual({ type: 'room.leave', roomId: 'r1', userId: 'u1', reason: 'left' });
  });

  it('chatting → idle when the page grace passes with no call, closing the room as "left"', () => {
    const { user, emitted, state, pair, clock } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    user.send({ type: 'client.online' });
    expect(user.getSnapshot().can({ type: 'client.leaving', roomId: 'not-mine' })).toBe(false);
    user.send({ type: 'client.leaving', roomId: 'r1' });
    user.send({ type: 'client.offline' });
    clock.increment(7_999);
    expect(state()).toBe('chatting');
    expect(emitted.filter((e) => e.type === 'room.leave')).toEqual([]);
    clock.increment(1);
    expect(state()).toBe('idle');
    expect(emitted.at(-1)).toEqual({ type: 'room.leave', roomId: 'r1', userId: 'u1', reason: 'left' });
    // Alive and idle, as after leave_chat.
    expect(user.getSnapshot().status).toBe('active');
  });

  it('a call inside the page grace keeps the chat: nothing is said to anyone', () => {
    const { user, emitted, state, pair, clock } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    user.send({ type: 'client.online' });
    user.send({ type: 'client.leaving' });
    user.send({ type: 'client.offline' });
    const before = emitted.length;
    clock.increment(5_000);
    user.send({ type: 'client.online' });
    clock.increment(60_000);
    expect(state()).toBe('chatting');
    expect(emitted.length).toBe(before);
  });

  it('waiting → idle when the page grace passes, held meanwhile and then out of the queue', () => {
    const { user, emitted, state, clock } = startUser();
    user.send({ type: 'queue.enter' });
    user.send({ type: 'client.online' });
    user.send({ type: 'client.leaving' });
    // Nobody is paired with a person closing the page.
    expect(emitted.at(-1)).toEqual({ type: 'queue.away', userId: 'u1' });
    user.send({ type: 'client.offline' });
    clock.increment(8_000);
    expect(state()).toBe('idle');
    expect(emitted.at(-1)).toEqual({ type: 'queue.leave', userId: 'u1' });
  });

  it('an idle user has nothing to leave with a page grace', () => {
    const { user } = startUser();
    expect(user.getSnapshot().can({ type: 'client.leaving' })).toBe(false);
  });

  it('chatting → idle when the partner goes, telling the client why', () => {
    const { user, emitted, state, pair } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    user.send({ type: 'room.closed', roomId: 'r1', reason: 'disconnected' });
    expect(state()).toBe('idle');
    expect(emitted.at(-1)).toEqual({ type: 'chat.partnerLeft', roomId: 'r1', reason: 'disconnected' });
  });

  it('chatting → waiting on chat.next, leaving the room and queueing away from that partner', () => {
    const { user, emitted, state, pair } = startUser();
    user.send({ type: 'queue.enter' });
    pair('r1', 'u2');
    user.send({ type: 'chat.next' });
    expect(state()).toBe('waiting');
    expect(emitted.slice(-2)).toEqual([
      { type: 'room.leave', roomId: 'r1', userId: 'u1', reason: 'left' },
      { type: 'queue.join', userId: 'u1', avoid: 'u2', blocked: [], interests: [], meet: 'anyone' },
    ]);
  });

  it('ends from chatting when the session closes, telling the room why', () => {
    const { user, emitted, pair } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    user.send({ type: 'session.closed', reason: 'timeout' });
    expect(user.getSnapshot().status).toBe('done');
    expect(user.getSnapshot().value).toBe('ended');
    expect(emitted.at(-1)).toEqual({ type: 'room.leave', roomId: 'r1', userId: 'u1', reason: 'timeout' });
  });

  it('ends from waiting when the session closes, leaving the queue', () => {
    const { user, emitted } = startUser();
    user.send({ type: 'queue.enter' });
    user.send({ type: 'session.closed', reason: 'disconnected' });
    expect(user.getSnapshot().value).toBe('ended');
    expect(emitted.at(-1)).toEqual({ type: 'queue.leave', userId: 'u1' });
  });

  it('ends from idle without a word to anyone', () => {
    const { user, emitted } = startUser();
    user.send({ type: 'session.closed', reason: 'disconnected' });
    expect(user.getSnapshot().value).toBe('ended');
    expect(emitted).toEqual([]);
  });

  it('chatting → ended after the idle timeout offline, telling the room "timeout"', () => {
    const { user, emitted, pair, clock } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    user.send({ type: 'client.online' });
    user.send({ type: 'client.offline' });
    clock.increment(59_999);
    expect(user.getSnapshot().value).toBe('chatting');
    clock.increment(1);
    expect(user.getSnapshot().value).toBe('ended');
    expect(emitted.at(-1)).toEqual({ type: 'room.leave', roomId: 'r1', userId: 'u1', reason: 'timeout' });
  });

  it('stays put while the client is online, however long', () => {
    const { user, clock } = startUser();
    user.send({ type: 'queue.enter' });
    user.send({ type: 'client.online' });
    clock.increment(10 * 60_000);
    expect(user.getSnapshot().value).toBe('waiting');
  });

  it('a return before the timeout is silent, and the clock starts again at the next absence', () => {
    const { user, emitted, pair, clock } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    const before = emitted.length;
    clock.increment(50_000);
    user.send({ type: 'client.online' });
    user.send({ type: 'client.offline' });
    clock.increment(50_000);
    expect(user.getSnapshot().value).toBe('chatting');
    expect(emitted.length).toBe(before);
    // The new absence has a deadline of its own: 60 s after it began.
    clock.increment(10_000);
    expect(user.getSnapshot().value).toBe('ended');
    expect(emitted.at(-1)).toEqual({ type: 'room.leave', roomId: 'r1', userId: 'u1', reason: 'timeout' });
  });

  it('waiting → ended after the idle timeout, leaving the queue so nobody meets a ghost', () => {
    const { user, emitted, clock } = startUser();
    user.send({ type: 'queue.enter' });
    clock.increment(60_000);
    expect(user.getSnapshot().value).toBe('ended');
    expect(emitted.at(-1)).toEqual({ type: 'queue.leave', userId: 'u1' });
  });

  it('spends its send budget: a burst goes through, then one message per refill', () => {
    const { user, emitted, pair } = startUser();
    user.send({ type: 'queue.enter' });
    pair();
    const send = (at: number) => ({ type: 'chat.send', roomId: 'r1', text: `at ${at}`, at }) as const;
    for (const at of [1000, 1000, 1000]) user.send(send(at));
    expect(user.getSnapshot().can(send(1000))).toBe(false);
    expect(user.getSnapshot().can(send(1499))).toBe(false);
    expect(user.getSnapshot().can(send(1500))).toBe(true); // 2 per second: one token every 500 ms
    user.send(send(1500));
    expect(user.getSnapshot().can(send(1500))).toBe(false);
    expect(user.getSnapshot().can(send(10_000))).toBe(true);
    expect(emitted.filter((e) => e.type === 'room.send')).toHaveLength(4);
  });
});

describe('userMachine: matching', () => {
  const joins = (emitted: UserEmitted[]) => emitted.filter((e) => e.type === 'queue.join');

  it('keeps its preferences for a bare next, and changes only the ones given', () => {
    const { user, emitted, pair } = startUser();
    user.send({ type: 'queue.enter', preferences: { interests: ['chess'], iAm: 'agent', meet: 'humans' } });
    pair('r1', 'u2');
    user.send({ type: 'chat.next' });
    user.send({ type: 'chat.leave' });
    user.send({ type: 'queue.enter', preferences: { meet: 'anyone' } });
    expect(joins(emitted).map(({ interests, iAm, meet }) => ({ interests, iAm, meet }))).toEqual([
      { interests: ['chess'], iAm: 'agent', meet: 'humans' },
      { interests: ['chess'], iAm: 'agent', meet: 'humans' },
      { interests: ['chess'], iAm: 'agent', meet: 'anyone' },
    ]);
  });

  it('tells the client what the pairing said: shared interests and what the partner is', () => {
    const { user, emitted } = startUser();
    user.send({ type: 'queue.enter' });
    user.send({ type: 'room.paired', roomId: 'r1', partnerId: 'u2', commonInterests: ['go'], partnerIs: 'human' });
    expect(emitted.at(-1)).toEqual({ type: 'chat.matched', roomId: 'r1', commonInterests: ['go'], partnerIs: 'human' });
  });

  it('asks the queue to avoid its last partner until it has been idle for the rematch time', () => {
    const { user, emitted, pair, clock } = startUser();
    user.send({ type: 'queue.enter' });
    pair('r1', 'u2');
    user.send({ type: 'room.closed', roomId: 'r1', reason: 'left' });
    clock.increment(29_999);
    user.send({ type: 'queue.enter' });
    user.send({ type: 'chat.leave' });
    clock.increment(30_000);
    user.send({ type: 'queue.enter' });
    expect(joins(emitted).map((j) => j.avoid)).toEqual([null, 'u2', null]);
  });

  it('blocks the partner with next or leave_chat, and reports it to the operator with the room', () => {
    const { user, emitted, pair } = startUser();
    user.send({ type: 'queue.enter' });
    pair('r1', 'u2');
    user.send({ type: 'chat.next', block: true });
    pair('r2', 'u3');
    user.send({ type: 'chat.leave', report: 'spam' });
    user.send({ type: 'queue.enter' });
    expect(joins(emitted).at(-1)!.blocked).toEqual(['u2', 'u3']);
    expect(emitted.filter((e) => e.type === 'chat.reported')).toEqual([
      { type: 'chat.reported', roomId: 'r2', userId: 'u1', partnerId: 'u3', reason: 'spam' },
    ]);
  });

  it('an idle user blocks or reports its last partner after the chat ended; with none, there is nothing to do', () => {
    const { user, emitted, pair, state } = startUser();
    expect(user.getSnapshot().can({ type: 'chat.leave', block: true })).toBe(false);
    user.send({ type: 'queue.enter' });
    pair('r1', 'u2');
    user.send({ type: 'room.closed', roomId: 'r1', reason: 'left' });
    expect(user.getSnapshot().can({ type: 'chat.leave' })).toBe(false);
    user.send({ type: 'chat.leave', report: 'rude' });
    expect(state()).toBe('idle');
    expect(user.getSnapshot().context.blocked).toEqual(['u2']);
    expect(emitted.at(-1)).toEqual({ type: 'chat.reported', roomId: 'r1', userId: 'u1', partnerId: 'u2', reason: 'rude' });
  });
});
