/**
 * machines/user.ts as paths: one person, A, and the strangers A meets. Each chart event
 * is what A's client, a stranger's client, or the network does:
 *
 * | event | what happens |
 * |---|---|
 * | `queue.enter` | A calls enter_queue |
 * | `chat.next` | A calls next |
 * | `chat.leave` | A calls leave_chat (with the room id while chatting) |
 * | `chat.send` | A calls send_message |
 * | `room.paired` | a new stranger connects and calls enter_queue |
 * | `room.message` | the partner calls send_message |
 * | `room.closed` | the partner calls leave_chat, sends DELETE, or vanishes until the idle timeout |
 * | `session.closed` | A sends DELETE, or vanishes until the idle timeout |
 * | `client.offline` | A's stream drops, and A's client reopens it |
 * | `room.receipt`, `client.online` | not steps: they come with send_message, and when the stream comes back |
 */
import { expect } from 'vitest';
import type { SnapshotFrom } from 'xstate';
import { userMachine, type UserEvent } from '../../machines/user.js';
import { Ledger } from './ledger.js';
import type { ChartSpec } from './replay.js';
import type { Person, World } from './world.js';

type UserSnapshot = SnapshotFrom<typeof userMachine>;

interface UserScene {
  world: World;
  a: Person;
  partner: Person | undefined;
  roomId: string | undefined;
  /** The room's `seq` so far. */
  seq: number;
  strangers: Person[];
  ledger: Ledger;
}

const REASONS = {
  left: 'leaves (leave_chat)',
  disconnected: 'ends its session (DELETE)',
  timeout: 'vanishes and times out',
} as const;

const active = (state: UserSnapshot) => state.status === 'active';

/** Makes `person` go, for `reason`, as its client would. */
async function depart(person: Person, reason: keyof typeof REASONS, roomId: string | undefined): Promise<void> {
  if (reason === 'left') await person.leave(roomId);
  else if (reason === 'disconnected') await person.end();
  else {
    await person.vanish();
    await person.gone();
  }
}

/** A's partner hears that A went, and is idle again. */
function partnerHears(scene: UserScene, reason: string): void {
  const { partner, roomId } = scene;
  if (!partner || !roomId) throw new Error('A has no partner to tell');
  scene.ledger.owe(partner, 'partner.disconnected', { room_id: roomId, reason });
  scene.ledger.statuses.set(partner, { state: 'idle' });
  scene.partner = undefined;
  scene.roomId = undefined;
}

export const userChart: ChartSpec<UserSnapshot, UserEvent, UserScene> = {
  name: 'user',
  machine: userMachine,
  model: {
    logic: userMachine,
    input: { userId: 'A', presence: { resumable: true, graceMs: 1_000, idleMs: 1_000 }, rate: { perSecond: 5, burst: 20 } },
    key: (state) => `${String(state.value)}${state.matches('waiting') && state.context.partnerId ? ' (avoiding its last partner)' : ''}`,
    maxSimpleSteps: 6,
    maxSimplePaths: 12,
  },
  drivers: {
    'queue.enter': {
      events: () => [{ type: 'queue.enter' }],
      label: () => 'enter_queue',
      async run({ a }) {
        expect(await a.enterQueue()).toEqual({ status: 'waiting', position: 1 });
      },
    },
    'chat.next': {
      events: () => [{ type: 'chat.next' }],
      label: (_, from) => (from.matches('chatting') ? 'next, leaving the partner' : 'next'),
      async run(scene, _, from) {
        const answer = await scene.a.next();
        if (from.matches('chatting')) partnerHears(scene, 'left');
        expect(answer).toEqual({ status: 'waiting', position: 1 });
      },
    },
    'chat.leave': {
      events: (state) => [state.context.roomId ? { type: 'chat.leave', roomId: state.context.roomId } : { type: 'chat.leave' }],
      label: (_, from) => (from.matches('chatting') ? 'leave_chat' : 'leave_chat, leaving the queue'),
      async run(scene, _, from) {
        expect(await scene.a.leave(from.matches('chatting') ? scene.roomId : undefined)).toEqual({ status: 'idle' });
        if (from.matches('chatting')) partnerHears(scene, 'left');
      },
    },
    'chat.send': {
      events: (state) => [{ type: 'chat.send', roomId: state.context.roomId ?? 'none', text: 'hello', at: 0 }],
      label: () => 'send_message',
      async run(scene) {
        const { a, partner, roomId, ledger } = scene;
        const text = `message ${scene.seq + 1}, from A`;
        const sent = await a.send(roomId!, text);
        expect(sent).toEqual({ status: 'sent', message_id: expect.any(String), seq: ++scene.seq });
        ledger.oweMessage(partner!, roomId!, text, sent);
      },
    },
    'room.receipt': { follows: 'chat.send: the receipt is what send_message answers' },
    'room.paired': {
      events: () => [{ type: 'room.paired', roomId: 'room', partnerId: 'B' }],
      label: () => 'a stranger enters the queue',
      async run(scene) {
        const stranger = await scene.world.join(`B${scene.strangers.length + 1}`);
        scene.strangers.push(stranger);
        const answer = await stranger.enterQueue();
        expect(answer).toEqual({ status: 'matched', room_id: expect.any(String) });
        Object.assign(scene, { partner: stranger, roomId: answer.room_id, seq: 0 });
        for (const person of [scene.a, stranger]) scene.ledger.owe(person, 'chatroom.found', { room_id: answer.room_id });
        scene.ledger.statuses.set(stranger, { state: 'chatting', room_id: answer.room_id! });
      },
    },
    'room.message': {
      events: (state) => [{ type: 'room.message', roomId: state.context.roomId ?? 'none', messageId: 'm', seq: 1, sentAt: 't', text: 'hi' }],
      label: () => 'the partner sends a message',
      async run(scene) {
        const { a, partner, roomId, ledger } = scene;
        const text = `message ${scene.seq + 1}, from the partner`;
        const sent = await partner!.send(roomId!, text);
        expect(sent.seq).toBe(++scene.seq);
        ledger.oweMessage(a, roomId!, text, sent);
      },
    },
    'room.closed': {
      events: (state) =>
        (Object.keys(REASONS) as (keyof typeof REASONS)[]).map((reason) => ({ type: 'room.closed', roomId: state.context.roomId ?? 'none', reason })),
      label: (event) => `the partner ${REASONS[event.type === 'room.closed' ? (event.reason as keyof typeof REASONS) : 'left']}`,
      async run(scene, event) {
        if (event.type !== 'room.closed') throw new Error(`not room.closed: ${event.type}`);
        const { a, partner, roomId, ledger } = scene;
        await depart(partner!, event.reason as keyof typeof REASONS, roomId);
        ledger.owe(a, 'partner.disconnected', { room_id: roomId, reason: event.reason });
        ledger.statuses.set(partner!, { state: event.reason === 'left' ? 'idle' : 'ended' });
        Object.assign(scene, { partner: undefined, roomId: undefined });
      },
    },
    'session.closed': {
      events: () => [
        { type: 'session.closed', reason: 'disconnected' },
        { type: 'session.closed', reason: 'timeout' },
      ],
      label: (event) => (event.type === 'session.closed' && event.reason === 'timeout' ? 'A vanishes and times out' : 'A ends its session (DELETE)'),
      async run(scene, event, from) {
        if (event.type !== 'session.closed') throw new Error(`not session.closed: ${event.type}`);
        await depart(scene.a, event.reason === 'timeout' ? 'timeout' : 'disconnected', undefined);
        if (from.matches('chatting')) partnerHears(scene, event.reason);
      },
    },
    'client.online': { follows: 'client.offline: the client reopens its stream (the presence paths open links one by one)' },
    'client.offline': {
      events: (state) => (active(state) ? [{ type: 'client.offline' }] : []),
      label: () => 'the stream drops and comes back',
      async run({ a }) {
        await a.dropStream();
      },
    },
  },

  async setup(world) {
    return { world, a: await world.join('A'), partner: undefined, roomId: undefined, seq: 0, strangers: [], ledger: new Ledger() };
  },

  async check(scene, state) {
    const { a, roomId } = scene;
    const expected = state.matches('chatting')
      ? { state: 'chatting', room_id: roomId }
      : state.matches('waiting')
        ? { state: 'waiting', position: 1 }
        : { state: String(state.value) };
    expect(await a.status(), "A's get_status").toEqual(expected);
    await scene.ledger.check([a, ...scene.strangers]);
    expect(a.actor().getSnapshot().value, "A's user actor").toBe(state.value);
  },
};
