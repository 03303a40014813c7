/**
 * The matching rules, each on the queue chart with a simulated clock: interests first,
 * the interest wait widening to anyone, agents or humans, the rematch time after
 * `next`, blocks, and what `position` counts.
 */

import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { type IAm, type Meet, positionIn } from '../../machines/matching.js';
import { type QueueEmitted, queueMachine } from '../../machines/queue.js';

const INTEREST_WAIT = 10_000;
const REMATCH_AFTER = 30_000;

interface Asks {
  interests?: string[];
  iAm?: IAm;
  meet?: Meet;
  avoid?: string;
  blocked?: string[];
}

function startQueue() {
  const clock = new SimulatedClock();
  const queue = createActor(queueMachine, { input: { interestWaitMs: INTEREST_WAIT, rematchAfterMs: REMATCH_AFTER }, clock });
  const paired: QueueEmitted[] = [];
  queue.on('queue.paired', (event) => paired.push(event));
  queue.start();
  const join = (userId: string, asks: Asks = {}) =>
    queue.send({ type: 'queue.join', userId, ...asks, avoid: asks.avoid ?? null, roomId: `room-of-${userId}`, at: clock.now() });
  const waiting = () => [...queue.getSnapshot().context.waiting].map((w) => w.userId);
  const pairs = () => paired.map((p) => p.members.join('+'));
  const advance = (ms: number) => clock.increment(ms);
  return { queue, paired, join, waiting, pairs, advance };
}

describe('matching: interests', () => {
  it('pairs a joiner with the earliest waiting user sharing an interest, over an earlier stranger', () => {
    const { join, pairs, waiting, paired } = startQueue();
    join('stranger');
    join('chess-1', { interests: ['chess', 'go'] });
    join('chess-2', { interests: ['jazz', 'chess'] });
    expect(pairs()).toEqual(['chess-1+chess-2']);
    expect(paired[0]!.commonInterests).toEqual(['chess']);
    expect(waiting()).toEqual(['stranger']);
  });

  it('among those it may meet, one sharing an interest comes first, then arrival order', () => {
    const { join, pairs } = startQueue();
    join('a', { interests: ['go'] });
    join('b', { interests: ['chess'] });
    join('c', { interests: ['chess'] });
    expect(pairs()).toEqual(['b+c']);
  });

  it('does not let a user with no interests take one still inside its interest wait', () => {
    const { join, pairs, waiting } = startQueue();
    join('keen', { interests: ['chess'] });
    join('anyone');
    expect(pairs()).toEqual([]);
    expect(waiting()).toEqual(['keen', 'anyone']);
  });

  it('widens after the interest wait, not before, and then pairs with anyone open at once', () => {
    const { join, pairs, advance } = startQueue();
    join('keen', { interests: ['chess'] });
    join('anyone');
    advance(INTEREST_WAIT - 1);
    expect(pairs()).toEqual([]);
    advance(1);
    expect(pairs()).toEqual(['keen+anyone']);
  });

  it('a widened user meets a newcomer with no interests at once', () => {
    const { join, pairs, advance } = startQueue();
    join('keen', { interests: ['chess'] });
    advance(INTEREST_WAIT);
    join('anyone');
    expect(pairs()).toEqual(['keen+anyone']);
  });

  it('two users with different interests meet once both waits are over', () => {
    const { join, pairs, advance, paired } = startQueue();
    join('chess', { interests: ['chess'] });
    advance(5_000);
    join('jazz', { interests: ['jazz'] });
    advance(5_000);
    expect(pairs()).toEqual([]); // chess widened; jazz still waits for a jazz fan
    advance(5_000);
    expect(pairs()).toEqual(['chess+jazz']);
    expect(paired[0]!.commonInterests).toEqual([]);
  });

  it('cancels the interest wait of a user who left, and of a user who was paired', () => {
    const { join, pairs, advance, queue } = startQueue();
    join('left', { interests: ['chess'] });
    queue.send({ type: 'queue.leave', userId: 'left' });
    join('a', { interests: ['go'] });
    join('b', { interests: ['go'] });
    join('anyone');
    advance(INTEREST_WAIT * 2);
    expect(pairs()).toEqual(['a+b']);
    expect([...queue.getSnapshot().context.waiting].map((w) => w.userId)).toEqual(['anyone']);
  });

  it('says when the interest wait ends, on the join clock', () => {
    const { join, queue, advance } = startQueue();
    advance(1_000);
    join('keen', { interests: ['chess'] });
    join('open');
    const [keen, open] = queue.getSnapshot().context.waiting;
    expect(keen!.widensAt).toBe(1_000 + INTEREST_WAIT);
    expect(open!.widensAt).toBeUndefined();
  });
});

describe('matching: agents or humans', () => {
  it('pairs two users only when each one admits what the other says it is', () => {
    const { join, pairs, waiting } = startQueue();
    join('bot', { iAm: 'agent', meet: 'humans' });
    join('bot-2', { iAm: 'agent' });
    expect(pairs()).toEqual([]);
    join('person', { iAm: 'human', meet: 'agents' });
    expect(pairs()).toEqual(['bot+person']);
    expect(waiting()).toEqual(['bot-2']);
  });

  it('one who did not say what it is meets only those who meet anyone', () => {
    const { join, pairs } = startQueue();
    join('picky', { meet: 'humans' });
    join('unsaid');
    expect(pairs()).toEqual([]);
    join('unsaid-2');
    expect(pairs()).toEqual(['unsaid+unsaid-2']);
  });

  it('tells each member what the other said it is', () => {
    const { join, paired } = startQueue();
    join('bot', { iAm: 'agent' });
    join('person', { iAm: 'human' });
    expect(paired[0]!.declared).toEqual(['agent', 'human']);
  });

  it('a preference widens nothing: an agent that wants humans waits past the interest wait', () => {
    const { join, pairs, advance } = startQueue();
    join('bot', { iAm: 'agent', meet: 'humans', interests: ['chess'] });
    join('bot-2', { iAm: 'agent', interests: ['chess'] });
    advance(INTEREST_WAIT * 10);
    expect(pairs()).toEqual([]);
  });
});

describe('matching: next never strands, blocks hold', () => {
  it('avoids the partner just left for the rematch time, then pairs the two again', () => {
    const { join, pairs, advance, waiting } = startQueue();
    join('a', { avoid: 'b' });
    join('b', { avoid: 'a' });
    advance(REMATCH_AFTER - 1);
    expect(pairs()).toEqual([]);
    expect(waiting()).toEqual(['a', 'b']);
    advance(1);
    expect(pairs()).toEqual(['a+b']);
  });

  it('pairs with a stranger at once while avoiding', () => {
    const { join, pairs } = startQueue();
    join('a', { avoid: 'b' });
    join('b', { avoid: 'a' });
    join('c');
    expect(pairs()).toEqual(['a+c']);
  });

  it('never pairs users who blocked each other, whatever the time', () => {
    const { join, pairs, advance } = startQueue();
    join('a', { avoid: 'b', blocked: ['b'] });
    join('b', { avoid: 'a' });
    advance(REMATCH_AFTER * 10);
    expect(pairs()).toEqual([]);
    join('c');
    expect(pairs()).toEqual(['a+c']);
  });

  it('a waiting user asking again keeps its place and takes its new blocks and preferences', () => {
    const { join, pairs, waiting } = startQueue();
    join('a');
    join('x', { meet: 'humans' });
    join('a', { blocked: ['b'] });
    expect(waiting()).toEqual(['a', 'x']);
    join('b');
    expect(pairs()).toEqual([]);
    join('x', { meet: 'anyone' });
    expect(pairs()).toEqual(['a+x']);
    expect(waiting()).toEqual(['b']);
  });
});

describe('matching: position', () => {
  it('counts only the users ahead who could ever be paired with this one', () => {
    const { join, queue } = startQueue();
    join('human-only', { iAm: 'human', meet: 'humans' });
    join('blocker', { blocked: ['bot'] });
    join('chess', { interests: ['chess'] });
    join('bot', { iAm: 'agent' });
    const { waiting } = queue.getSnapshot().context;
    expect(positionIn(waiting, 'bot')).toBe(2);
    expect(positionIn(waiting, 'chess')).toBe(2);
    expect(positionIn(waiting, 'nobody')).toBeUndefined();
  });
});

describe('matching: a big line', () => {
  // npm run bench measures a line of 10,000; this checks that nobody is lost or paired twice.
  it('pairs 2,000 joiners with random preferences, each at most once', () => {
    const { join, paired, waiting } = startQueue();
    const topics = ['chess', 'go', 'jazz', 'rust', 'ml', 'poetry', 'film', 'math'];
    let seed = 7;
    const random = () => {
      seed = (seed * 48271) % 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const users = 2_000;
    for (let i = 0; i < users; i++)
      join(`u${i}`, {
        interests: random() < 0.5 ? [] : [topics[Math.floor(random() * topics.length)]!],
        iAm: random() < 0.5 ? 'agent' : 'human',
        meet: random() < 0.8 ? 'anyone' : random() < 0.5 ? 'agents' : 'humans',
      });
    expect(paired.length * 2 + waiting().length).toBe(users);
    expect(new Set(paired.flatMap((p) => p.members)).size).toBe(paired.length * 2);
  });
});
