import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningChatServer } from '../../src/http/listen.js';
import { ChatClient } from '../support/chatClient.js';
import { eventually } from '../support/eventually.js';
import { health, startTestServer } from '../support/server.js';

const CLIENTS = 60;
const MESSAGES_EACH_WAY = 20;

let server: RunningChatServer;

beforeAll(async () => {
  // These tests count deliveries, not the rate limit: let every sender through.
  server = await startTestServer({ messagesPerSecond: 10_000, messageBurst: 10_000, graceMs: 100 });
});

afterAll(async () => {
  await server.close();
});

describe('a crowd of 60 clients', () => {
  it('pairs 1st with 2nd, 3rd with 4th…, delivers every message once and in order, and leaves no actor behind', async () => {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => ChatClient.connect(server.url, `crowd-${i}`)));

    // Enter in a known order: one after another.
    const answers: Record<string, unknown>[] = [];
    for (const client of clients) answers.push(await client.call('enter_queue'));

    const rooms = new Map<string, ChatClient[]>();
    for (let i = 0; i < CLIENTS; i += 2) {
      expect(answers[i]).toEqual({ status: 'waiting', position: 1 });
      expect(answers[i + 1]).toMatchObject({ status: 'matched' });
      const roomId = answers[i + 1]!.room_id as string;
      rooms.set(roomId, [clients[i]!, clients[i + 1]!]);
    }
    expect(rooms.size).toBe(CLIENTS / 2);

    // Everyone hears of exactly one room, and it is the one shared with its neighbour.
    await Promise.all(clients.map((client) => client.waitFor('chatroom.found')));
    for (const [roomId, members] of rooms) {
      for (const member of members) expect(member.received('chatroom.found')).toEqual([{ room_id: roomId, common_interests: [] }]);
    }
    expect((await health(server)).actors).toEqual({ users: CLIENTS, rooms: CLIENTS / 2 });

    // Every pair talks both ways at once.
    await Promise.all(
      [...rooms].flatMap(([roomId, members]) =>
        members.map(async (sender, side) => {
          for (let n = 0; n < MESSAGES_EACH_WAY; n++)
            await sender.call('send_message', { room_id: roomId, message: `${roomId}:${side}:${n}` });
        }),
      ),
    );

    let delivered = 0;
    for (const [roomId, members] of rooms) {
      for (const [side, receiver] of members.entries()) {
        const got = await receiver.waitFor('message.received', MESSAGES_EACH_WAY);
        // From the partner only, each once, in the order sent, in this room, seq rising.
        expect(got.map((m) => m.message)).toEqual(Array.from({ length: MESSAGES_EACH_WAY }, (_, n) => `${roomId}:${1 - side}:${n}`));
        expect(got.every((m) => m.room_id === roomId)).toBe(true);
        const seqs = got.map((m) => m.seq as number);
        expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
        expect(new Set(seqs).size).toBe(seqs.length);
        delivered += got.length;
      }
    }
    expect(delivered).toBe(CLIENTS * MESSAGES_EACH_WAY);

    await Promise.all(clients.map((client) => client.end()));
    expect(await health(server)).toMatchObject({ sessions: 0 });
    // Each user had the grace period to come back with its token; then nothing is left.
    await eventually(async () => expect(await health(server)).toMatchObject({ actors: { users: 0, rooms: 0 }, queue: 0 }));
    // Every request got its answer or was dropped with its session: the shared server owes nothing.
    expect(server.services.mcp.inFlight).toBe(0);
  });
});
