import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { type UserEvent, userMachine } from '../../machines/user.js';
import { whyNot } from '../../src/mcp/refusals.js';

const input = {
  userId: 'u1',
  presence: { idleMs: 60_000, pairableMs: 30_000, graceMs: 30_000, pageGraceMs: 8_000 },
  rate: { perSecond: 5, burst: 20 },
  rematchAfterMs: 30_000,
};

/** A user chart (or a variant of it) chatting in room r1. */
function chatting(machine = userMachine) {
  const user = createActor(machine, { input }).start();
  user.send({ type: 'queue.enter' });
  user.send({ type: 'room.paired', roomId: 'r1', partnerId: 'u2' });
  return user;
}

/** The refusal for `event`, once the chart said no to it. */
function refusalOf(user: ReturnType<typeof chatting>, event: UserEvent) {
  const snapshot = user.getSnapshot();
  expect(snapshot.can(event)).toBe(false);
  return whyNot(snapshot, event);
}

const send = (roomId: string): UserEvent => ({ type: 'chat.send', roomId, text: 'hi', at: 0 });

describe('refusals read the chart', () => {
  it('names the guard that refused: another room, or no send budget left', () => {
    const user = chatting();
    expect(refusalOf(user, send('r2'))).toEqual({
      reason: 'not_your_room',
      sentence: 'room_id "r2" is not your room; you are chatting in room r1.',
    });
    expect(refusalOf(user, { type: 'chat.leave', roomId: 'r2' }).reason).toBe('not_your_room');
    expect(refusalOf(user, { type: 'queue.enter' }).reason).toBe('already_chatting');
  });

  it('follows a change of the chart’s guards, with no copy of them to update', () => {
    const broke = chatting(userMachine.provide({ guards: { hasSendBudget: () => false } }));
    expect(refusalOf(broke, send('r1')).reason).toBe('rate_limited');
    expect(refusalOf(broke, send('r1')).sentence).toMatch(/at most 5 message\(s\) per second, in bursts of up to 20/);
    const strict = chatting(userMachine.provide({ guards: { isOwnRoom: () => false } }));
    expect(refusalOf(strict, send('r1')).reason).toBe('not_your_room');
  });

  it('says what to do when the state takes no such event', () => {
    const user = createActor(userMachine, { input }).start();
    expect(refusalOf(user, send('r1')).reason).toBe('not_chatting');
    expect(refusalOf(user, { type: 'chat.leave', block: true })).toEqual({
      reason: 'nothing_to_leave',
      sentence: 'You have had no partner yet, so there is no one to block or report. Call enter_queue to meet someone.',
    });
    expect(refusalOf(user, { type: 'chat.leave' }).sentence).toMatch(/nothing to leave/);
    user.send({ type: 'queue.enter' });
    expect(refusalOf(user, send('r1')).reason).toBe('still_waiting');
    expect(refusalOf(user, { type: 'chat.leave', roomId: 'r1' }).sentence).toBe(
      'You are waiting in the queue, not in room "r1". Call leave_chat without room_id to leave the queue.',
    );
  });
});
