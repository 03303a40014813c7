import { describe, expect, it } from 'vitest';
import { createActor, type InspectionEvent, SimulatedClock } from 'xstate';
import { type QueueEmitted, type QueueInput, queueMachine, restoredQueue, type StoredQueue } from '../../machines/queue.js';

function startQueue(input: Partial<QueueInput> = {}, clock = new SimulatedClock()) {
  const queue = createActor(queueMachine, { input, clock });
  const paired: QueueEmitted[] = [];
  queue.on('queue.paired', (event) => paired.push(event));
  queue.start();
  const join = (userId: string, avoid: string | null = null) =>
    queue.send({ type: 'queue.join', userId, avoid, roomId: `room-of-${userId}` });
  const waiting = () => [...queue.getSnapshot().context.waiting].map((w) => w.userId);
  return { queue, paired, join, waiting };
}

describe('queueMachine', () => {
  it('keeps a lone user waiting at position 1', () => {
    const { join, waiting, paired } = startQueue();
    join('a');
    expect(waiting()).toEqual(['a']);
    expect(paired).toEqual([]);
  });

  it('pairs first come, first served, naming the room each pair opens', () => {
    const { join, waiting, paired } = startQueue();
    for (const user of ['a', 'b', 'c', 'd', 'e']) join(user);
    expect(paired.map((p) => [p.roomId, ...p.members])).toEqual([
      ['room-of-b', 'a', 'b'],
      ['room-of-d', 'c', 'd'],
    ]);
    expect(waiting()).toEqual(['e']);
  });

  it('does not queue a user twice', () => {
    const { join, waiting, paired } = startQueue();
    join('a');
    join('a');
    expect(waiting()).toEqual(['a']);
    expect(paired).toEqual([]);
  });

  it('does not pair a user with the partner it just left, but with the next stranger', () => {
    const { join, waiting, paired } = startQueue();
    join('a', 'b');
    join('b', 'a');
    expect(paired).toEqual([]);
    expect(waiting()).toEqual(['a', 'b']);
    join('c');
    expect(paired.map((p) => p.members)).toEqual([['a', 'c']]);
    expect(waiting()).toEqual(['b']);
  });

  it('takes a user who leaves out of the line', () => {
    const { join, queue, waiting, paired } = startQueue();
    join('a');
    queue.send({ type: 'queue.leave', userId: 'a' });
    join('b');
    expect(waiting()).toEqual(['b']);
    expect(paired).toEqual([]);
  });

  it('empties the line on shutdown, and its timers with it', () => {
    const { join, queue, waiting, paired } = startQueue({ interestWaitMs: 100 });
    for (const user of ['a', 'b', 'c']) join(user);
    queue.send({ type: 'queue.join', userId: 'keen', avoid: null, interests: ['chess'], roomId: 'r-keen', at: 0 });
    queue.send({ type: 'queue.shutdown' });
    expect(waiting()).toEqual([]);
    expect(paired.map((p) => p.members)).toEqual([['a', 'b']]);
    expect(Object.keys(queue.system.getSnapshot()._scheduledEvents)).toEqual([]);
  });

  it('resumes a restored line: each timer runs for what was left of it', () => {
    const clock = new SimulatedClock();
    const first = createActor(queueMachine, { input: { interestWaitMs: 10_000, rematchAfterMs: 30_000 }, clock }).start();
    first.send({ type: 'queue.join', userId: 'keen', avoid: null, interests: ['chess'], roomId: 'r1', at: 0 });
    first.send({ type: 'queue.join', userId: 'left', avoid: 'other', iAm: 'agent', meet: 'humans', roomId: 'r2', at: 0 });
    first.send({ type: 'queue.join', userId: 'anyone', avoid: null, roomId: 'r3', at: 0 });
    const stored = JSON.parse(JSON.stringify(first.getPersistedSnapshot())) as StoredQueue;
    first.stop();
    // Another holder takes the line over 4 s later, on its own clock.
    const later = new SimulatedClock();
    const second = createActor(queueMachine, { input: {}, snapshot: restoredQueue(stored), clock: later }).start();
    const paired: QueueEmitted[] = [];
    second.on('queue.paired', (event) => paired.push(event));
    second.send({ type: 'queue.resume', at: 4_000 });
    later.increment(5_999);
    expect(paired).toEqual([]);
    later.increment(1);
    expect(paired.map((p) => p.members)).toEqual([['keen', 'anyone']]);
    expect([...second.getSnapshot().context.waiting].map((w) => [w.userId, w.avoid])).toEqual([['left', 'other']]);
    later.increment(20_000);
    expect([...second.getSnapshot().context.waiting].map((w) => [w.userId, w.avoid])).toEqual([['left', null]]);
    second.stop();
  });

  it('is asked to handle the same few event types however many users it has paired', () => {
    // XState caches the transitions it finds for each event type a state node is asked
    // about, on the machine, for the life of the process: an event type that names a
    // user or a room would make that cache grow with every one ever seen.
    const asked = new Set<string>();
    const see = (inspection: InspectionEvent) => {
      if (inspection.type === '@xstate.event' && inspection.actorRef.sessionId === inspection.rootId) asked.add(inspection.event.type);
    };
    const queue = createActor(queueMachine, {
      input: { interestWaitMs: 1, rematchAfterMs: 1 },
      inspect: see,
      clock: new SimulatedClock(),
    }).start();
    for (let n = 0; n < 2_000; n++) {
      queue.send({ type: 'queue.join', userId: `a${n}`, avoid: `b${n - 1}`, interests: ['x'], roomId: `r${n}`, at: 0 });
      queue.send({ type: 'queue.join', userId: `b${n}`, avoid: null, roomId: `s${n}`, at: 0 });
      queue.send({ type: 'queue.leave', userId: `b${n}` });
    }
    queue.send({ type: 'queue.shutdown' });
    expect([...asked].sort()).toEqual(['queue.join', 'queue.leave', 'queue.shutdown', 'xstate.init']);
    queue.stop();
  });
});
