import { createActor, createMachine, type ActorRefFrom, type AnyEventObject } from 'xstate';
import { describe, expect, it } from 'vitest';
import { roomMachine, type RoomEmitted } from '../../machines/room.js';

/** Runs the room as the queue does, as a child, and records what it emits and tells its parent. */
function openRoom() {
  const told: AnyEventObject[] = [];
  const parent = createMachine({
    invoke: { id: 'room', src: roomMachine, input: { roomId: 'r1', members: ['a', 'b'] } },
    on: { 'room.ended': { actions: ({ event }) => told.push(event) } },
  });
  const actor = createActor(parent).start();
  const room = actor.getSnapshot().children.room as ActorRefFrom<typeof roomMachine>;
  const emitted: RoomEmitted[] = [];
  room.on('*', (event) => emitted.push(event));
  return { room, emitted, told };
}

const message = (from: string, text: string, n: number) =>
  ({ type: 'room.message', from, text, messageId: `m${n}`, sentAt: `2026-01-01T00:00:0${n}Z` }) as const;

describe('roomMachine', () => {
  it('numbers messages from 1 in the order they arrive, whoever sends them', () => {
    const { room, emitted } = openRoom();
    room.send(message('a', 'hi', 1));
    room.send(message('b', 'hello', 2));
    room.send(message('a', 'how are you?', 3));
    expect(emitted).toEqual([
      { type: 'room.relayed', roomId: 'r1', from: 'a', to: 'b', text: 'hi', messageId: 'm1', seq: 1, sentAt: '2026-01-01T00:00:01Z' },
      { type: 'room.relayed', roomId: 'r1', from: 'b', to: 'a', text: 'hello', messageId: 'm2', seq: 2, sentAt: '2026-01-01T00:00:02Z' },
      { type: 'room.relayed', roomId: 'r1', from: 'a', to: 'b', text: 'how are you?', messageId: 'm3', seq: 3, sentAt: '2026-01-01T00:00:03Z' },
    ]);
  });

  it('ignores messages from someone who is not a member', () => {
    const { room, emitted } = openRoom();
    expect(room.getSnapshot().can(message('mallory', 'hi', 1))).toBe(false);
    room.send(message('mallory', 'hi', 1));
    expect(emitted).toEqual([]);
    expect(room.getSnapshot().context.seq).toBe(0);
  });

  it('open → closed when a member leaves, telling the other member why and the queue that it ended', () => {
    const { room, emitted, told } = openRoom();
    room.send({ type: 'room.leave', userId: 'b', reason: 'left' });
    expect(room.getSnapshot().value).toBe('closed');
    expect(emitted).toEqual([{ type: 'room.closed', roomId: 'r1', to: 'a', reason: 'left' }]);
    expect(told).toEqual([{ type: 'room.ended', roomId: 'r1' }]);
  });

  it('passes on the reason a member was disconnected', () => {
    const { room, emitted } = openRoom();
    room.send({ type: 'room.leave', userId: 'a', reason: 'timeout' });
    expect(emitted).toEqual([{ type: 'room.closed', roomId: 'r1', to: 'b', reason: 'timeout' }]);
  });

  it('relays nothing once closed', () => {
    const { room } = openRoom();
    room.send({ type: 'room.leave', userId: 'a', reason: 'left' });
    expect(room.getSnapshot().can(message('b', 'anyone?', 1))).toBe(false);
  });

  it('open → closed on shutdown, telling both members and the queue that it ended', () => {
    const { room, emitted, told } = openRoom();
    room.send({ type: 'room.shutdown' });
    expect(room.getSnapshot().value).toBe('closed');
    expect(emitted).toEqual([
      { type: 'room.closed', roomId: 'r1', to: 'a', reason: 'shutdown' },
      { type: 'room.closed', roomId: 'r1', to: 'b', reason: 'shutdown' },
    ]);
    expect(told).toEqual([{ type: 'room.ended', roomId: 'r1' }]);
  });
});
