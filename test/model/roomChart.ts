/**
 * machines/room.ts as paths: the room of two people, `a` (who entered the queue first)
 * and `b`. Each chart event is what one of them, or the server, does:
 *
 * | event | what happens |
 * |---|---|
 * | `room.message` from a member | that member calls send_message |
 * | `room.leave` by a member, `left` | that member calls leave_chat |
 * | `room.leave` by a member, `disconnected` | that member sends DELETE, and does not come back in the grace period |
 * | `room.leave` by a member, `timeout` | that member goes quiet until the idle timeout |
 * | `room.shutdown` | the server shuts down (what SIGTERM does) |
 *
 * The broker opened the room when the queue paired them, and drops it once it is done
 * (`closed` is final): the replay checks that the room actor completed.
 */
import { expect } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import { type RoomEvent, roomMachine } from '../../machines/room.js';
import { Ledger } from './ledger.js';
import type { ChartSpec } from './replay.js';
import type { Person, World } from './world.js';

type RoomSnapshot = SnapshotFrom<typeof roomMachine>;

interface RoomScene {
  world: World;
  people: Record<'a' | 'b', Person>;
  roomId: string;
  ledger: Ledger;
}

const MEMBERS = ['a', 'b'] as const;
type Member = (typeof MEMBERS)[number];

const DEPARTURES = {
  left: 'leaves (leave_chat)',
  disconnected: 'ends its session (DELETE) for good',
  timeout: 'goes quiet and times out',
} as const;
type Departure = keyof typeof DEPARTURES;

const other = (member: Member): Member => (member === 'a' ? 'b' : 'a');

export const roomChart: ChartSpec<RoomSnapshot, RoomEvent, RoomScene> = {
  name: 'room',
  machine: roomMachine,
  model: {
    logic: roomMachine,
    input: { roomId: 'room', members: MEMBERS },
    key: (state) =>
      state.matches('open') ? `open (${state.context.seq === 0 ? 'no message yet' : 'messages relayed'})` : String(state.value),
    maxSimpleSteps: 3,
    maxSimplePaths: 10,
  },
  drivers: {
    'room.message': {
      events: () => MEMBERS.map((from) => ({ type: 'room.message', from, text: 'hi', messageId: 'm', sentAt: 't' })),
      label: (event) => `${event.type === 'room.message' ? event.from : '?'} sends a message`,
      async run({ people, roomId, ledger }, event, _, to) {
        if (event.type !== 'room.message') throw new Error(`not room.message: ${event.type}`);
        const from = event.from as Member;
        const text = `message ${to.context.seq}, from ${from}`;
        const sent = await people[from].send(roomId, text);
        expect(sent).toEqual({ status: 'sent', message_id: expect.any(String), seq: to.context.seq });
        ledger.oweMessage(people[other(from)], roomId, text, sent);
      },
    },
    'room.leave': {
      events: () =>
        MEMBERS.flatMap((userId) =>
          (Object.keys(DEPARTURES) as Departure[]).map((reason) => ({ type: 'room.leave' as const, userId, reason })),
        ),
      label: (event) => (event.type === 'room.leave' ? `${event.userId} ${DEPARTURES[event.reason as Departure]}` : '?'),
      async run({ people, roomId, ledger }, event) {
        if (event.type !== 'room.leave') throw new Error(`not room.leave: ${event.type}`);
        const leaver = people[event.userId as Member];
        const stayer = people[other(event.userId as Member)];
        if (event.reason === 'left') await leaver.leave(roomId);
        else {
          await (event.reason === 'disconnected' ? leaver.end() : leaver.vanish());
          await leaver.gone();
        }
        ledger.owe(stayer, 'partner.disconnected', { room_id: roomId, reason: event.reason });
        ledger.statuses.set(leaver, { state: event.reason === 'left' ? 'idle' : 'ended' });
        ledger.statuses.set(stayer, { state: 'idle' });
      },
    },
    'room.shutdown': {
      events: () => [{ type: 'room.shutdown' }],
      label: () => 'the server shuts down',
      async run({ world, people, roomId, ledger }) {
        await world.shutdown();
        for (const member of MEMBERS) {
          ledger.owe(people[member], 'partner.disconnected', { room_id: roomId, reason: 'shutdown' });
          ledger.statuses.set(people[member], { state: 'ended' });
        }
      },
    },
  },

  async setup(world) {
    const people = { a: await world.join('a'), b: await world.join('b') };
    const ledger = new Ledger();
    expect(await people.a.enterQueue()).toEqual({ status: 'waiting', position: 1 });
    const answer = await people.b.enterQueue();
    expect(answer).toEqual({ status: 'matched', room_id: expect.any(String), common_interests: [] });
    const roomId = answer.room_id!;
    for (const member of MEMBERS) {
      ledger.owe(people[member], 'chatroom.found', { room_id: roomId, common_interests: [] });
      ledger.statuses.set(people[member], { state: 'chatting', room_id: roomId, common_interests: [] });
    }
    return { world, people, roomId, ledger };
  },

  async check({ world, people, roomId, ledger }, state) {
    await ledger.check(MEMBERS.map((member) => people[member]));
    const room = world.room(roomId).getSnapshot() as RoomSnapshot;
    expect({ value: room.value, status: room.status, seq: room.context.seq, members: room.context.members }, 'the room actor').toEqual({
      value: state.value,
      // A room that closed is done (the broker forgets it).
      status: state.matches('open') ? 'active' : 'done',
      seq: state.context.seq,
      members: [people.a.userId, people.b.userId],
    });
  },
};
