import { describe, expect, it } from 'vitest';
import { memoryBroker } from '../../src/chat/broker/memoryBroker.js';
import { UserDirectory } from '../../src/chat/userDirectory.js';
import { eventsPage, readEventsPage } from '../../src/mcp/eventsResource.js';
import { type ChatMessage, toChatMessage } from '../../src/mcp/notifications.js';

/** Two users paired on the in-memory broker, the first keeping at most three events. */
async function pair() {
  const broker = memoryBroker();
  const users = new UserDirectory<ChatMessage>({
    broker,
    presence: { idleMs: 60_000, pairableMs: 30_000, graceMs: 30_000, pageGraceMs: 8_000 },
    rate: { perSecond: 100, burst: 100 },
    rematchAfterMs: 30_000,
    log: { events: 3, bytes: 100_000 },
    toEntry: toChatMessage,
    sizeOf: (message) => JSON.stringify(message.params).length,
  });
  const [a, b] = [users.create(), users.create()];
  a.actor.send({ type: 'queue.enter' });
  b.actor.send({ type: 'queue.enter' });
  const roomId = b.actor.getSnapshot().context.roomId!;
  const close = async () => {
    await users.endAll('shutdown');
    await broker.close();
  };
  return { users, a, b, roomId, close };
}

describe('a page of a user’s events', () => {
  it('reads the resource as wait_for_events answers: events.missed first when older events left the log, with its note', async () => {
    const { users, a, b, roomId, close } = await pair();
    for (const text of ['m1', 'm2', 'm3', 'm4']) await b.sendMessage({ type: 'chat.send', roomId, text, at: 0 });
    const page = readEventsPage(users, a.eventsKey, '0');
    expect(page).toEqual({
      events: [
        { id: '2', method: 'events.missed', params: { count: 2 } },
        ...['m2', 'm3', 'm4'].map((message, n) => ({
          id: String(n + 3),
          method: 'message.received',
          params: expect.objectContaining({ message }),
        })),
      ],
      cursor: '5',
      missed: 2,
      note: expect.stringMatching(/untrusted data.*2 older event\(s\) left the log/s),
    });
    // The same renderer as the tool's, and a read takes nothing: the tool's untaken read still gets it all.
    expect(eventsPage(a.events, 0)).toEqual(page);
    expect(eventsPage(a.events, null)).toEqual(page);
    expect(readEventsPage(users, a.eventsKey, '5')).toEqual({ events: [], cursor: '5' });
    expect(readEventsPage(users, 'no-such-key', undefined)).toBeUndefined();
    await close();
  });
});
