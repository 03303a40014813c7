import { createActor, SimulatedClock, type AnyActorRef, type InspectionEvent } from 'xstate';
import { describe, expect, it } from 'vitest';
import { queueMachine, type QueueEmitted, type QueueInput } from '../../machines/queue.js';

function startQueue(input: Partial<QueueInput> = {}, clock = new SimulatedClock()) {
  const queue = createActor(queueMachine, { input, clock });
  const paired: QueueEmitted[] = [];
  queue.on('queue.paired', (event) => paired.push(event));
  queue.start();
  const join = (userId: string, avoid: string | null = null) =>
    queue.send({ type: 'queue.join', userId, avoid, roomId: `room-of-${userId}` });
  const waiting = () => queue.getSnapshot().context.waiting.map((w) => w.userId);
  const rooms = () => Object.keys(queue.getSnapshot().children);
  return { queue, paired, join, waiting, rooms };
}

describe('queueMachine', () => {
  it('keeps a lone user waiting at position 1', () => {
    const { join, waiting, paired } = startQueue();
    join('a');
    expect(waiting()).toEqual(['a']);
    expect(paired).toEqual([]);
  });

  it('pairs first come, first served and spawns a room for each pair', () => {
    const { join, waiting, paired, rooms, queue } = startQueue();
    for (const user of ['a', 'b', 'c', 'd', 'e']) join(user);
    expect(paired.map((p) => p.members)).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(waiting()).toEqual(['e']);
    expect(rooms()).toEqual(['room-of-b', 'room-of-d']);
    expect(queue.getSnapshot().context.rooms).toEqual(['room-of-b', 'room-of-d']);
    expect(queue.system.get('room:room-of-b')?.getSnapshot().context.members).toEqual(['a', 'b']);
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

  it('stops and forgets a room once it closes', () => {
    const { join, queue, rooms } = startQueue();
    join('a');
    join('b');
    const room = queue.system.get('room:room-of-b');
    room?.send({ type: 'room.leave', userId: 'a', reason: 'left' });
    expect(rooms()).toEqual([]);
    expect(queue.getSnapshot().context.rooms).toEqual([]);
    expect(queue.system.get('room:room-of-b')).toBeUndefined();
  });

  it('empties the line and closes every room on shutdown', () => {
    const { join, queue, rooms, waiting } = startQueue();
    for (const user of ['a', 'b', 'c', 'd', 'e']) join(user);
    const closed: string[] = [];
    for (const id of rooms()) queue.system.get(`room:${id}`)?.on('room.closed', (e: { to: string }) => closed.push(e.to));
    queue.send({ type: 'queue.shutdown' });
    expect(closed.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(rooms()).toEqual([]);
    expect(waiting()).toEqual([]);
  });

  it('is asked to handle the same few event types however many rooms it has served', () => {
    // XState caches the transitions it finds for each event type a state node is asked
    // about, on the machine, for the life of the process: an event type that names a
    // room would make that cache grow with every room ever opened.
    const asked = new Map<string, Set<string>>();
    const see = (inspection: InspectionEvent) => {
      if (inspection.type !== '@xstate.event') return;
      const machine = (inspection.actorRef as AnyActorRef & { logic: { id: string } }).logic.id;
      asked.set(machine, (asked.get(machine) ?? new Set()).add(inspection.event.type));
    };
    const queue = createActor(queueMachine, { input: {}, inspect: see }).start();
    const rooms = () => Object.keys(queue.getSnapshot().children).length;
    const pair = (n: number) => {
      queue.send({ type: 'queue.join', userId: `a${n}`, avoid: null, roomId: `r${n}` });
      queue.send({ type: 'queue.join', userId: `b${n}`, avoid: null, roomId: `r${n}` });
      return queue.system.get(`room:r${n}`);
    };
    for (let n = 0; n < 2_000; n++) {
      const room = pair(n);
      room?.send({ type: 'room.message', from: `a${n}`, text: 'hi', messageId: `m${n}`, sentAt: 't' });
      room?.send({ type: 'room.leave', userId: `b${n}`, reason: 'left' });
    }
    expect(rooms()).toBe(0);
    // Fewer for the shutdown: it takes time that grows faster than the rooms it closes.
    for (let n = 2_000; n < 2_200; n++) pair(n);
    expect(rooms()).toBe(200);
    queue.send({ type: 'queue.shutdown' });

    const expectAsked = (machine: string, expected: string[]) => {
      const types = [...(asked.get(machine) ?? [])];
      const extra = types.filter((type) => !expected.includes(type));
      // The count first, so that a failure names a few types rather than listing thousands.
      expect(extra.length, `${machine} was also asked about ${extra.slice(0, 3).join(', ')}, …`).toBe(0);
      expect(types.sort(), machine).toEqual(expected);
    };
    expectAsked('queue', ['queue.join', 'queue.shutdown', 'room.ended', 'xstate.init']);
    expectAsked('room', ['room.leave', 'room.message', 'room.shutdown', 'xstate.init']);
    expect(rooms()).toBe(0);
    expect(queue.getSnapshot().context).toMatchObject({ waiting: [], rooms: [] });
    queue.stop();
  });
});
