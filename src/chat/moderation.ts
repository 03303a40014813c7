/**
 * What operators act on: the reports users make of their partners, and the bans they
 * give. `ModerationStore` is the port; `memoryModeration()` the default, and
 * src/chat/broker/redis/moderation.ts shares both between processes. Time comes from
 * an injected clock (`now`), so expiry is tested without waiting. Users are named by
 * their internal id (`<processId>.<uuid>`), which no client ever sees.
 */
import { randomUUID } from 'node:crypto';

/** Reports kept: past it, the oldest go. */
export const MAX_REPORTS = 10_000;
/** The longest ban: a year, in minutes. */
export const MAX_BAN_MINUTES = 525_600;
/** How long the address a user was made from is remembered (for a ban that takes the address too). */
export const ADDRESS_KEPT_MS = 24 * 60 * 60 * 1000;
/** How many users' addresses one process remembers at most: past it, the oldest go. */
export const MAX_ADDRESSES = 100_000;

/** A user's report of its partner, as it came from the user's `chat.reported`. */
export interface ReportInput {
  roomId: string;
  reason: string;
  /** The reported user's id. */
  reported: string;
  /** The reporting user's id. */
  reporter: string;
}

export interface Report extends ReportInput {
  reportId: string;
  /** When it was made, in ms since the epoch. */
  at: number;
}

export interface BanInput {
  userId: string;
  minutes: number;
  /** The client address the user was made from: new users from it are refused too. */
  address?: string;
}

export interface Ban {
  banId: string;
  userId: string;
  /** When it ends, in ms since the epoch. */
  until: number;
  address?: string;
}

/** Where reports and bans live. Reads and changes are the operators'; `banOn` is every enter_queue's, so it never waits. */
export interface ModerationStore {
  /** Keeps a report (past MAX_REPORTS the oldest go) and answers it with its id and time. */
  report(report: ReportInput): Promise<Report>;
  /** The reports kept, newest first. */
  reports(): Promise<Report[]>;
  /** Remembers (for ADDRESS_KEPT_MS) the client address a user was made from; never waits. */
  noteAddress(userId: string, address: string): void;
  /** The address a user was made from, while it is remembered. */
  addressOf(userId: string): Promise<string | undefined>;
  /** Bans a user, and with `address` new users from it, for `minutes` from now. */
  ban(ban: BanInput): Promise<Ban>;
  /** The bans in force, the longest-running first. */
  bans(): Promise<Ban[]>;
  /** Lifts a ban; false when no ban in force has this id. */
  lift(banId: string): Promise<boolean>;
  /**
   * The ban in force on this user, or on this address, from what this process holds
   * (no I/O): the one that ends last, if any.
   */
  banOn(who: { userId?: string; address?: string }): Ban | undefined;
  close(): Promise<void>;
}

export interface ModerationOptions {
  /** The clock, in ms since the epoch (`Date.now` by default). */
  now?: () => number;
}

/** A new ban from its input, on the given clock. */
export const newBan = ({ userId, minutes, address }: BanInput, now: number): Ban => ({
  banId: randomUUID(),
  userId,
  until: now + minutes * 60_000,
  ...(address !== undefined && { address }),
});

/** A new report from its input, on the given clock. */
export const newReport = (input: ReportInput, now: number): Report => ({ reportId: randomUUID(), at: now, ...input });

/**
 * The bans a process holds, indexed by user and by address, each key to the ban that
 * ends last (when it has ended, every other on that key has too). Expired bans are
 * dropped whenever the list is read.
 */
export class BanList {
  readonly #bans = new Map<string, Ban>();
  #byUser = new Map<string, Ban>();
  #byAddress = new Map<string, Ban>();

  constructor(private readonly now: () => number) {}

  /** Replaces every ban with `bans` (a fresh read of a shared store). */
  replace(bans: Iterable<Ban>): void {
    this.#bans.clear();
    for (const ban of bans) this.#bans.set(ban.banId, ban);
    this.#index();
  }

  add(ban: Ban): void {
    this.#bans.set(ban.banId, ban);
    this.#index();
  }

  remove(banId: string): boolean {
    const live = this.#bans.get(banId)?.until ?? 0;
    const removed = this.#bans.delete(banId);
    if (removed) this.#index();
    return removed && live > this.now();
  }

  /** The bans in force, the longest-running first. */
  live(): Ban[] {
    const now = this.now();
    const ended = [...this.#bans.values()].filter((ban) => ban.until <= now);
    if (ended.length > 0) {
      for (const ban of ended) this.#bans.delete(ban.banId);
      this.#index();
    }
    return [...this.#bans.values()].sort((a, b) => b.until - a.until);
  }

  on({ userId, address }: { userId?: string; address?: string }): Ban | undefined {
    const now = this.now();
    const byUser = userId === undefined ? undefined : this.#byUser.get(userId);
    const byAddress = address === undefined ? undefined : this.#byAddress.get(address);
    const found = [byUser, byAddress].filter((ban): ban is Ban => ban !== undefined && ban.until > now);
    return found.sort((a, b) => b.until - a.until)[0];
  }

  #index(): void {
    const longest = (index: Map<string, Ban>, key: string | undefined, ban: Ban) => {
      if (key !== undefined && (index.get(key)?.until ?? -Infinity) < ban.until) index.set(key, ban);
    };
    this.#byUser = new Map();
    this.#byAddress = new Map();
    for (const ban of this.#bans.values()) {
      longest(this.#byUser, ban.userId, ban);
      longest(this.#byAddress, ban.address, ban);
    }
  }
}

/** The in-memory store: one process's, gone when it stops. */
export function memoryModeration({ now = Date.now }: ModerationOptions = {}): ModerationStore {
  // Newest last: a push is cheap, and the oldest go from the front.
  const kept: Report[] = [];
  const addresses = new Map<string, { address: string; at: number }>();
  const bans = new BanList(now);
  return {
    async report(input) {
      const report = newReport(input, now());
      kept.push(report);
      if (kept.length > MAX_REPORTS) kept.splice(0, kept.length - MAX_REPORTS);
      return report;
    },
    reports: async () => kept.toReversed(),
    noteAddress(userId, address) {
      const at = now();
      // Insertion order is age order: the forgotten ones are at the front.
      for (const [id, noted] of addresses) {
        if (at - noted.at < ADDRESS_KEPT_MS && addresses.size < MAX_ADDRESSES) break;
        addresses.delete(id);
      }
      addresses.set(userId, { address, at });
    },
    async addressOf(userId) {
      const noted = addresses.get(userId);
      return noted && now() - noted.at < ADDRESS_KEPT_MS ? noted.address : undefined;
    },
    async ban(input) {
      const ban = newBan(input, now());
      bans.add(ban);
      return ban;
    },
    bans: async () => bans.live(),
    lift: async (banId) => bans.remove(banId),
    banOn: (who) => bans.on(who),
    close: async () => {},
  };
}
