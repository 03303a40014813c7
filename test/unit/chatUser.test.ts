import { describe, expect, it } from 'vitest';
import type { AnyActorRef } from 'xstate';
import { memoryBroker } from '../../src/chat/broker/memoryBroker.js';
import type { ChatBroker } from '../../src/chat/broker.js';
import { startChatUser, type UserNews } from '../../src/chat/chatUser.js';
import { sleep } from '../support/eventually.js';

/** A real chat user on `broker`, its log keeping its news as the actor emits it. */
const chatUser = (userId: string, broker: ChatBroker, inspect?: Parameters<typeof startChatUser>[0]['inspect']) =>
  startChatUser({
    userId,
    token: `token-${userId}`,
    eventsKey: `key-${userId}`,
    presence: { idleMs: 60_000, pairableMs: 30_000, graceMs: 30_000, pageGraceMs: 8_000 },
    rate: { perSecond: 5, burst: 20 },
    rematchAfterMs: 30_000,
    broker,
    log: { events: 100, bytes: 100_000 },
    toEntry: (news: UserNews) => news,
    sizeOf: () => 1,
    inspect,
  });

/** A real user actor; `seen` lists the events its presence child hears, as the inspector sees them. */
function startUser() {
  const seen: string[] = [];
  const user = chatUser('u1', memoryBroker(), (inspection) => {
    if (
      inspection.type === '@xstate.event' &&
      (inspection.actorRef as AnyActorRef).id === 'presence' &&
      inspection.event.type !== 'xstate.init'
    )
      seen.push(inspection.event.type);
  });
  const presence = () =>
    (user.actor.getSnapshot().children as { presence?: { getSnapshot(): { value: unknown } } }).presence?.getSnapshot().value;
  return { user, seen, presence };
}

/** The chart hears a closed last link within 250 ms (pairable time / 20, at most 250 ms); a generous margin. */
const OFFLINE_TOLD_WITHIN_MS = 400;

describe('a chat user’s links', () => {
  it('tells the actor only the edges: online at the first link, offline a moment after the last closes', async () => {
    const { user, seen, presence } = startUser();
    expect(presence()).toEqual({ offline: 'recent' });
    const stream = user.openLink();
    const call = user.openLink();
    const request = user.openLink();
    expect(presence()).toBe('online');
    request();
    call();
    expect(presence()).toBe('online');
    stream();
    expect(presence()).toBe('online');
    await sleep(OFFLINE_TOLD_WITHIN_MS);
    expect(presence()).toEqual({ offline: 'recent' });
    expect(seen).toEqual(['client.online', 'client.offline']);
  });

  it('tells nothing when a link opens right after the last closed (the next call of a client that keeps calling)', async () => {
    const { user, seen, presence } = startUser();
    const poll = user.openLink();
    poll();
    const next = user.openLink();
    await sleep(OFFLINE_TOLD_WITHIN_MS);
    expect(presence()).toBe('online');
    next();
    await sleep(OFFLINE_TOLD_WITHIN_MS);
    expect(presence()).toEqual({ offline: 'recent' });
    expect(seen).toEqual(['client.online', 'client.offline']);
  });

  it('tells an offline still pending before the last session detaches, so the chart hears both in order', () => {
    const { user, seen, presence } = startUser();
    const unbind = user.bind(() => {});
    user.openLink()();
    unbind(true);
    expect(presence()).toBe('detached');
    expect(seen).toEqual(['client.online', 'client.offline', 'client.detached']);
  });

  it('counts a link closed twice once, and says nothing once the actor has stopped', () => {
    const { user, seen, presence } = startUser();
    const first = user.openLink();
    const second = user.openLink();
    first();
    first();
    expect(presence()).toBe('online');
    user.actor.stop();
    second();
    user.openLink();
    expect(seen).toEqual(['client.online']);
  });
});

describe('a chat user’s messages', () => {
  it('answers a message with the receipt its room gave, the partner’s log holding the same message', async () => {
    const broker = memoryBroker();
    const [a, b] = [chatUser('a', broker), chatUser('b', broker)];
    a.actor.send({ type: 'queue.enter' });
    b.actor.send({ type: 'queue.enter' });
    const roomId = a.actor.getSnapshot().context.roomId!;
    const sent = await a.sendMessage({ type: 'chat.send', roomId, text: 'hello', at: 0 });
    const [[, received]] = [...b.events.after(1)] as [[number, UserNews]];
    expect(received).toMatchObject({ type: 'chat.received', roomId, text: 'hello', seq: 1 });
    expect(sent).toEqual({
      status: 'sent',
      receipt: { roomId, messageId: (received as { messageId: string }).messageId, seq: 1, sentAt: expect.any(String) },
    });
    await expect(b.sendMessage({ type: 'chat.send', roomId: 'not-mine', text: 'x', at: 0 })).rejects.toThrow(/did not take chat.send/);
    for (const user of [a, b]) user.actor.stop();
    await broker.close();
  });
});
