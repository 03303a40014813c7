/**
 * Reports and bans (src/chat/moderation.ts) shared through Redis, so every process
 * sees them and they outlive the processes: reports in one list (`LPUSH` + `LTRIM`,
 * newest first, the last 10,000), bans in one hash (ban id → JSON, dropped once ended),
 * the address each user was made from in a key that expires (`PX`). Operators' reads
 * and changes go to Redis; the ban check on enter_queue reads this process's copy of
 * the bans, read again every `refreshMs` (1 s): a ban made elsewhere takes hold here
 * within that, one made here at once.
 */
import {
  ADDRESS_KEPT_MS,
  type Ban,
  BanList,
  MAX_REPORTS,
  type ModerationOptions,
  type ModerationStore,
  newBan,
  newReport,
  type Report,
} from '../../moderation.js';
import { connectRedis, DEFAULT_KEY_PREFIX, type RedisTarget, redisFailure, untilRedisReady } from './connection.js';

export interface RedisModerationOptions extends RedisTarget, ModerationOptions {
  keyPrefix?: string;
  /** How often this process reads the bans again, in ms (1,000 by default). */
  refreshMs?: number;
  /** A failed background command (a refresh, an address noted); the last copy of the bans stays in force. */
  onError?: (error: unknown) => void;
}

/** The keys, by prefix. */
export const moderationKeys = (keyPrefix = DEFAULT_KEY_PREFIX) => ({
  reports: `${keyPrefix}moderation:reports`,
  bans: `${keyPrefix}moderation:bans`,
  address: (userId: string) => `${keyPrefix}moderation:address:${userId}`,
});

/** Connects (rejects when Redis cannot be reached within the command timeout), reads the bans, and answers the store. */
export async function redisModeration(options: RedisModerationOptions): Promise<ModerationStore> {
  const { url, tlsCa, keyPrefix, now = Date.now, refreshMs = 1_000, onError = () => {} } = options;
  const client = connectRedis({ url, tlsCa }, { name: 'moderation', onError });
  await untilRedisReady(client).catch((error: unknown) => {
    client.disconnect();
    throw error;
  });
  const keys = moderationKeys(keyPrefix);
  // A Redis out of reach fails a command with a RedisUnavailableError (the routes answer 503).
  const command = <T>(run: Promise<T>): Promise<T> => run.catch((error: unknown) => Promise.reject(redisFailure(error)));
  const bans = new BanList(now);
  // Changes made here since a refresh began: its answer may not hold them, so it is dropped.
  let changes = 0;
  const readBans = async (): Promise<Ban[]> => {
    const stored = await command(client.hgetall(keys.bans));
    const all = Object.values(stored).map((json) => JSON.parse(json) as Ban);
    const ended = all.filter((ban) => ban.until <= now()).map((ban) => ban.banId);
    if (ended.length > 0) await command(client.hdel(keys.bans, ...ended));
    return all.filter((ban) => ban.until > now());
  };
  const refresh = async () => {
    const began = changes;
    const live = await readBans();
    if (began === changes) bans.replace(live);
  };
  await refresh();
  const timer = setInterval(() => void refresh().catch(onError), refreshMs);
  timer.unref();
  return {
    async report(input) {
      const report = newReport(input, now());
      await command(
        client
          .multi()
          .lpush(keys.reports, JSON.stringify(report))
          .ltrim(keys.reports, 0, MAX_REPORTS - 1)
          .exec(),
      );
      return report;
    },
    reports: async () => (await command(client.lrange(keys.reports, 0, -1))).map((json) => JSON.parse(json) as Report),
    noteAddress(userId, address) {
      void command(client.set(keys.address(userId), address, 'PX', ADDRESS_KEPT_MS)).catch(onError);
    },
    addressOf: async (userId) => (await command(client.get(keys.address(userId)))) ?? undefined,
    async ban(input) {
      const ban = newBan(input, now());
      changes += 1;
      await command(client.hset(keys.bans, ban.banId, JSON.stringify(ban)));
      bans.add(ban);
      return ban;
    },
    async bans() {
      const live = await readBans();
      return live.sort((a, b) => b.until - a.until);
    },
    async lift(banId) {
      changes += 1;
      const stored = await command(client.hget(keys.bans, banId));
      const removed = (await command(client.hdel(keys.bans, banId))) > 0;
      bans.remove(banId);
      return removed && stored !== null && (JSON.parse(stored) as Ban).until > now();
    },
    banOn: (who) => bans.on(who),
    async close() {
      clearInterval(timer);
      client.disconnect();
    },
  };
}
