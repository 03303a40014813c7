import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { type RoomEmitted, roomMachine } from '../../machines/room.js';

/** Runs the room as the broker does, on its own, and records what it emits and whether it is done. */
function openRoom() {
  const room = createActor(roomMachine, { input: { roomId: 'r1', members: ['a', 'b'] } });
  const emitted: RoomEmitted[] = [];
  room.on('*', (event) => emitted.push(event));
  room.start();
  const done = () => room.getSnapshot().status === 'done';
  return { room, emitted, done };
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
      {
        type: 'room.relayed',
        roomId: 'r1',
        from: 'a',
        to: 'b',
        text: 'how are you?',
        messageId: 'm3',
        seq: 3,
        sentAt: '2026-01-01T00:00:03Z',
      },
    ]);
  });

  it('ignores messages from someone who is not a member', () => {
    const { room, emitted } = openRoom();
    expect(room.getSnapshot().can(message('mallory', 'hi', 1))).toBe(false);
    room.send(message('mallory', 'hi', 1));
    expect(emitted).toEqual([]);
    expect(room.getSnapshot().context.seq).toBe(0);
  });

  it('open → closed when a member leaves, telling the other member why, and is done', () => {
    const { room, emitted, done } = openRoom();
    room.send({ type: 'room.leave', userId: 'b', reason: 'left' });
    expect(room.getSnapshot().value).toBe('closed');
    expect(emitted).toEqual([{ type: 'room.closed', roomId: 'r1', to: 'a', reason: 'left' }]);
    expect(done()).toBe(true);
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

  it('open → closed on shutdown, telling both members, and is done', () => {
    const { room, emitted, done } = openRoom();
    room.send({ type: 'room.shutdown' });
    expect(room.getSnapshot().value).toBe('closed');
    expect(emitted).toEqual([
      { type: 'room.closed', roomId: 'r1', to: 'a', reason: 'shutdown' },
      { type: 'room.closed', roomId: 'r1', to: 'b', reason: 'shutdown' },
    ]);
    expect(done()).toBe(true);
  });
});
