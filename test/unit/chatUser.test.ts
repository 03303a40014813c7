import type { AnyActorRef } from 'xstate';
import { describe, expect, it } from 'vitest';
import { memoryBroker } from '../../src/chat/broker/memoryBroker.js';
import { startChatUser } from '../../src/chat/chatUser.js';

/** A real user actor; `seen` lists the events its presence child hears, as the inspector sees them. */
function startUser() {
  const seen: string[] = [];
  const user = startChatUser({
    userId: 'u1',
    presence: { idleMs: 60_000, pairableMs: 30_000, graceMs: 30_000, pageGraceMs: 8_000 },
    rate: { perSecond: 5, burst: 20 },
    rematchAfterMs: 30_000,
    broker: memoryBroker(),
    notify: () => {},
    inspect: (inspection) => {
      if (inspection.type === '@xstate.event' && (inspection.actorRef as AnyActorRef).id === 'presence' && inspection.event.type !== 'xstate.init') seen.push(inspection.event.type);
    },
  });
  const presence = () => (user.actor.getSnapshot().children as { presence?: { getSnapshot(): { value: unknown } } }).presence?.getSnapshot().value;
  return { user, seen, presence };
}

describe('a chat user’s links', () => {
  it('tells the actor only the edges: online at the first link, offline when the last closes', () => {
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
    expect(presence()).toEqual({ offline: 'recent' });
    expect(seen).toEqual(['client.online', 'client.offline']);
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
