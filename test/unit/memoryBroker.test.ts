import { describe, expect, it } from 'vitest';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { memoryBroker } from '../../src/chat/broker/memoryBroker.js';
import type { Delivery } from '../../src/chat/broker.js';
import { describeBrokerContract } from './brokerContract.js';

describeBrokerContract('memoryBroker', async () => {
  const broker = memoryBroker();
  return { brokers: [broker], userId: (name) => name, close: () => broker.close() };
});

describe('memoryBroker: rooms', () => {
  it('opens a room per pair outside the queue, asks each chart about a fixed set of event types, and keeps no room that closed', async () => {
    // XState caches what it finds for each event type a machine is asked about, for the
    // life of the process: a type per room would grow with every room ever served.
    const asked = new Map<string, Set<string>>();
    const see = (inspection: InspectionEvent) => {
      if (inspection.type !== '@xstate.event') return;
      const machine = (inspection.actorRef as AnyActorRef & { logic: { id: string } }).logic.id;
      asked.set(machine, (asked.get(machine) ?? new Set()).add(inspection.event.type));
    };
    const broker = memoryBroker({ inspect: see });
    const rooms: string[] = [];
    const inbox = (event: Delivery) => {
      if (event.type === 'room.paired') rooms.push(event.roomId);
    };
    for (let n = 0; n < 1_000; n++) {
      const off = [broker.attach(`a${n}`, inbox), broker.attach(`b${n}`, inbox)];
      await broker.join({ userId: `a${n}`, avoid: null });
      await broker.join({ userId: `b${n}`, avoid: null });
      await broker.send(rooms.at(-1)!, `a${n}`, 'hi');
      await broker.leaveRoom(rooms.at(-1)!, `b${n}`, 'left');
      for (const detach of off) detach();
    }
    expect(broker.stats()).toEqual({ waiting: 0, rooms: 0 });
    for (let n = 0; n < 200; n++) {
      await broker.join({ userId: `c${n}`, avoid: null });
      await broker.join({ userId: `d${n}`, avoid: null });
    }
    expect(broker.stats().rooms).toBe(200);
    await broker.shutdown();
    expect(broker.stats()).toEqual({ waiting: 0, rooms: 0 });
    expect([...asked.get('queue')!].sort()).toEqual(['queue.join', 'queue.shutdown', 'xstate.init']);
    expect([...asked.get('room')!].sort()).toEqual(['room.leave', 'room.message', 'room.shutdown', 'xstate.init']);
    await broker.close();
  });
});
