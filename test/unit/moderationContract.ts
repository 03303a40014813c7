/**
 * The contract every ModerationStore keeps, as one suite to run against each
 * implementation (in memory here, Redis in test/redis/moderation.test.ts): reports
 * newest first and capped, bans that end by themselves on the store's clock, lifted
 * bans, and the addresses users were made from.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_REPORTS, type ModerationStore, type ReportInput } from '../../src/chat/moderation.js';
import { eventually } from '../support/eventually.js';

/** A store on the given clock; each call a fresh one that shares nothing with the last. */
export type MakeStore = (now: () => number) => Promise<ModerationStore>;

const START = Date.parse('2026-12-07T08:00:00.000Z');
const MINUTE = 60_000;

const reportOf = (n: number): ReportInput => ({
  roomId: `room-${n}`,
  reason: `reason ${n}`,
  reported: `p.reported-${n}`,
  reporter: `p.reporter-${n}`,
});

export function describeModerationContract(name: string, makeStore: MakeStore): void {
  describe(`ModerationStore contract: ${name}`, () => {
    let clock = START;
    let store: ModerationStore | undefined;
    const start = async () => {
      clock = START;
      store = await makeStore(() => clock);
      return store;
    };
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    it('keeps reports newest first, each with its own id and the time it was made', async () => {
      const moderation = await start();
      const first = await moderation.report(reportOf(1));
      clock += 1_000;
      const second = await moderation.report(reportOf(2));
      expect(first.reportId).not.toBe(second.reportId);
      expect(await moderation.reports()).toEqual([
        { ...reportOf(2), reportId: second.reportId, at: START + 1_000 },
        { ...reportOf(1), reportId: first.reportId, at: START },
      ]);
    });

    it(`keeps only the last ${MAX_REPORTS} reports`, async () => {
      const moderation = await start();
      const extra = 5;
      // In batches, each issued in order (a Redis connection runs them in the order they
      // were sent), small enough to meet the command timeout on a busy machine.
      for (let from = 0; from < MAX_REPORTS + extra; from += 500)
        await Promise.all(
          Array.from({ length: Math.min(500, MAX_REPORTS + extra - from) }, (_, n) => moderation.report(reportOf(from + n))),
        );
      const kept = await moderation.reports();
      expect(kept).toHaveLength(MAX_REPORTS);
      expect(kept[0]).toMatchObject({ roomId: `room-${MAX_REPORTS + extra - 1}` });
      expect(kept.at(-1)).toMatchObject({ roomId: `room-${extra}` });
    });

    it('bans a user until its time is over, on the store’s clock, and no one else', async () => {
      const moderation = await start();
      const ban = await moderation.ban({ userId: 'p.spammer', minutes: 10 });
      expect(ban).toMatchObject({ userId: 'p.spammer', until: START + 10 * MINUTE });
      expect(ban).not.toHaveProperty('address');
      expect(moderation.banOn({ userId: 'p.spammer' })).toEqual(ban);
      expect(moderation.banOn({ userId: 'p.someone-else' })).toBeUndefined();
      expect(moderation.banOn({ address: '203.0.113.7' })).toBeUndefined();
      expect(await moderation.bans()).toEqual([ban]);
      clock += 10 * MINUTE - 1;
      expect(moderation.banOn({ userId: 'p.spammer' })).toEqual(ban);
      clock += 1;
      expect(moderation.banOn({ userId: 'p.spammer' })).toBeUndefined();
      expect(await moderation.bans()).toEqual([]);
      expect(await moderation.lift(ban.banId)).toBe(false);
    });

    it('bans an address with its user, and answers the ban that ends last', async () => {
      const moderation = await start();
      const short = await moderation.ban({ userId: 'p.spammer', minutes: 5 });
      const long = await moderation.ban({ userId: 'p.spammer', minutes: 60, address: '203.0.113.7' });
      expect(moderation.banOn({ userId: 'p.spammer' })).toEqual(long);
      expect(moderation.banOn({ address: '203.0.113.7' })).toEqual(long);
      expect(moderation.banOn({ address: '203.0.113.8' })).toBeUndefined();
      expect(await moderation.bans()).toEqual([long, short]);
      expect(await moderation.lift(long.banId)).toBe(true);
      expect(moderation.banOn({ address: '203.0.113.7' })).toBeUndefined();
      expect(moderation.banOn({ userId: 'p.spammer' })).toEqual(short);
    });

    it('lifts a ban once; an unknown id lifts nothing', async () => {
      const moderation = await start();
      const ban = await moderation.ban({ userId: 'p.spammer', minutes: 5 });
      expect(await moderation.lift('no-such-ban')).toBe(false);
      expect(await moderation.lift(ban.banId)).toBe(true);
      expect(await moderation.lift(ban.banId)).toBe(false);
      expect(moderation.banOn({ userId: 'p.spammer' })).toBeUndefined();
      expect(await moderation.bans()).toEqual([]);
    });

    it('remembers the address a user was made from', async () => {
      const moderation = await start();
      moderation.noteAddress('p.user-1', '198.51.100.1');
      await eventually(async () => expect(await moderation.addressOf('p.user-1')).toBe('198.51.100.1'));
      expect(await moderation.addressOf('p.user-2')).toBeUndefined();
    });
  });
}
