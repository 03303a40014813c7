/**
 * A lease on something only one process may run at a time (the queue actor), with a
 * fencing epoch so that a holder that lost it — frozen past its expiry, cut off — can
 * no longer write.
 *
 * - `acquire()`: a Lua script sets the lease key if it is free (`PX ttl`) and takes the
 *   next epoch (`INCR`); the key holds `<holder>:<epoch>`, the holder's token. A resent
 *   acquire finds its own token and answers the same epoch (ioredis may resend it).
 * - Renewal (every `renewEveryMs`, or `renew()` by hand): extends the key only while it
 *   still holds this token. A renewal that finds another token, or none, means the lease
 *   is lost; so does having no renewal confirmed for `ttlMs` by this process's monotonic
 *   clock (Redis may have expired it meanwhile). Loss is reported once (`onLost`), and
 *   `held()` is false from then on — and already false once `ttlMs` passed since the
 *   last confirmed renewal was sent, before any timer runs (a process waking from a
 *   freeze must not act on a lease it cannot confirm).
 * - Fencing: a write a holder makes under its lease goes through `fenced(script)`, a
 *   Lua script that first checks that the lease key still holds the holder's token and
 *   otherwise fails with `FENCED` (rejected as a `FencedError`). So once another process
 *   has taken the lease over (or it expired), the old holder's writes are rejected by
 *   Redis itself, whatever its own clock believes — which is what lets the queue's state
 *   and input position live in Redis for the next holder to continue from.
 */
import { performance } from 'node:perf_hooks';
import { DEFAULT_KEY_PREFIX, type LuaScript, luaScript, type Redis } from './connection.js';

export interface LeaseOptions {
  /** The connection the lease's commands go through. */
  client: Redis;
  /** What is leased (the key is `<prefix>lease:<name>`). */
  name: string;
  /** Who holds it: this process's id (no ":"). */
  holder: string;
  keyPrefix?: string;
  /** How long the lease lasts without renewal. 3,000 ms by default. */
  ttlMs?: number;
  /** Renew this often while held; a third of `ttlMs` by default. `false`: only by `renew()`. */
  renewEveryMs?: number | false;
  /** The lease was lost (taken over, expired, or unconfirmable): stop acting as the holder. Once per epoch. */
  onLost?: (reason: LeaseLoss) => void;
  /** A renewal that failed (it is retried on the next one). */
  onError?: (error: unknown) => void;
}

export type LeaseLoss = 'taken' | 'unconfirmed' | 'fenced';

export interface Lease {
  /** Takes the lease if it is free: resolves with the new epoch, or null when another process holds it. */
  acquire(): Promise<number | null>;
  /** Extends the lease; false when it was lost (and `onLost` was called). */
  renew(): Promise<boolean>;
  /** Gives the lease up, if still held, so another process can take it at once. */
  release(): Promise<void>;
  /** Whether this process holds the lease, as far as it can be sure now. */
  held(): boolean;
  /** The epoch of the current (or last) holding, null before the first. */
  readonly epoch: number | null;
  /**
   * Runs a fenced script (see `fencedScript`) as this holder: rejects with a `FencedError`
   * when the lease is no longer this holder's (and reports the loss).
   */
  fenced(script: FencedScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

/** A write rejected because its writer's lease epoch is stale. */
export class FencedError extends Error {
  override readonly name = 'FencedError';
}

/** A Lua script that runs only while the caller's lease token is current. */
export interface FencedScript {
  readonly script: LuaScript;
}

/**
 * Wraps a Lua body so it runs only under a current lease: the body sees its own `KEYS`
 * and `ARGV` as usual (the lease key and token are passed before them and hidden).
 */
export function fencedScript(body: string, numberOfKeys: number): FencedScript {
  const lua = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED the lease is held by another epoch') end
local KEYS = {unpack(KEYS, 2)}
local ARGV = {unpack(ARGV, 2)}
${body}`;
  return { script: luaScript(lua, numberOfKeys + 1) };
}

/** KEYS: lease, epoch. ARGV: holder, ttl. Returns the epoch, or 0 when another holds it. */
const acquireScript = luaScript(
  `local current = redis.call('GET', KEYS[1])
local mine = ARGV[1] .. ':'
if current then
  if string.sub(current, 1, #mine) == mine then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(current, #mine + 1))
  end
  return 0
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], mine .. epoch, 'PX', ARGV[2])
return epoch`,
  2,
);

/** KEYS: lease. ARGV: token, ttl. */
const renewScript = luaScript(
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`,
  1,
);

/** KEYS: lease. ARGV: token. */
const releaseScript = luaScript(
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`,
  1,
);

export function leaseKeys(name: string, keyPrefix = DEFAULT_KEY_PREFIX): { lease: string; epoch: string } {
  return { lease: `${keyPrefix}lease:${name}`, epoch: `${keyPrefix}lease:${name}:epoch` };
}

export function createLease(options: LeaseOptions): Lease {
  const { client, holder, ttlMs = 3_000, onLost, onError } = options;
  const renewEveryMs = options.renewEveryMs ?? Math.floor(ttlMs / 3);
  if (holder.includes(':')) throw new RangeError('a lease holder may not contain ":" (it separates holder and epoch)');
  if (renewEveryMs !== false && renewEveryMs >= ttlMs) throw new RangeError('renewEveryMs must be shorter than ttlMs');
  const keys = leaseKeys(options.name, options.keyPrefix);

  let epoch: number | null = null;
  let holding = false;
  /** When the last confirmed acquire or renewal was sent (monotonic ms). */
  let confirmedAt = 0;
  let timer: NodeJS.Timeout | undefined;
  const token = () => `${holder}:${epoch}`;
  const fresh = () => performance.now() - confirmedAt < ttlMs;

  const lose = (reason: LeaseLoss) => {
    if (!holding) return;
    holding = false;
    clearInterval(timer);
    onLost?.(reason);
  };

  const renew = async (): Promise<boolean> => {
    if (!holding) return false;
    const sentAt = performance.now();
    const reply = await renewScript.run(client, [keys.lease], [token(), ttlMs]);
    if (reply === 1) {
      confirmedAt = sentAt;
      return true;
    }
    lose('taken');
    return false;
  };

  return {
    get epoch() {
      return epoch;
    },
    async acquire() {
      if (holding && fresh()) return epoch;
      const sentAt = performance.now();
      const reply = Number(await acquireScript.run(client, [keys.lease, keys.epoch], [holder, ttlMs]));
      if (reply === 0) return null;
      epoch = reply;
      holding = true;
      confirmedAt = sentAt;
      clearInterval(timer);
      if (renewEveryMs !== false)
        timer = setInterval(() => {
          if (!fresh()) return lose('unconfirmed');
          renew().catch((error: unknown) => {
            onError?.(error);
            if (!fresh()) lose('unconfirmed');
          });
        }, renewEveryMs);
      return epoch;
    },
    renew,
    async release() {
      const wasHolding = holding;
      holding = false;
      clearInterval(timer);
      if (wasHolding) await releaseScript.run(client, [keys.lease], [token()]);
    },
    held() {
      if (holding && !fresh()) lose('unconfirmed');
      return holding;
    },
    async fenced(script, keys_, args) {
      if (epoch === null) throw new FencedError('this process never held the lease');
      try {
        return await script.script.run(client, [keys.lease, ...keys_], [token(), ...args]);
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('FENCED')) {
          lose('fenced');
          throw new FencedError(`the lease "${options.name}" is no longer held by epoch ${epoch} of ${holder}`);
        }
        throw error;
      }
    },
  };
}
