/**
 * Which server process a name belongs to, and where that process listens: the port
 * that lets any process serve any request (behind a plain round-robin balancer).
 *
 * Every name a process hands out — user tokens, session ids — starts with its process
 * id and a dot (`<processId>.<rest>`), so any process can tell whose it is without
 * asking anyone; the directory then says where the owner listens. In one process the
 * in-memory directory knows itself alone; several processes share one in Redis
 * (src/chat/broker/redis/addresses.ts).
 */
import { randomBytes } from 'node:crypto';

/** The processes serving one chat, by id, and where each listens. */
export interface ProcessDirectory {
  /** This process's id: the prefix of every token and session id it makes. */
  readonly self: string;
  /** What the processes sign the requests they forward to each other with (src/http/forwardTrust.ts). */
  readonly secret: string;
  /**
   * The base URL (`http://host:port`) the process listens on, or undefined when the
   * directory knows no such process (it is gone, or never was). Rejects when the
   * directory cannot be read now (its store is down): the process may still be there.
   */
  addressOf(processId: string): Promise<string | undefined>;
  /** Lists this process at `url` (its base URL), once it listens. */
  register(url: string): Promise<void>;
  /** Takes this process off the directory and lets go of what the directory holds. */
  close(): Promise<void>;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const PROCESS_ID = /^[a-z0-9_-]{1,64}$/i;

/**
 * A new process id: 10 characters of lowercase base32 (50 bits from the CSPRNG), so it
 * is URL-safe, case-proof, and holds no `.` or `:`.
 */
export function newProcessId(): string {
  // 256 is a multiple of 32: each byte's low five bits are uniform.
  return [...randomBytes(10)].map((byte) => ALPHABET[byte & 31]).join('');
}

/** 256 bits from the CSPRNG, as hex: a cluster secret when none is given. */
export const newSecret = () => randomBytes(32).toString('hex');

/** Whether `value` can be a process id (what `newProcessId` makes, or any other URL-safe word). */
export function isProcessId(value: string): boolean {
  return PROCESS_ID.test(value);
}

/** `rest` named as made by `processId`: `<processId>.<rest>`. */
export function inProcess(processId: string, rest: string): string {
  return `${processId}.${rest}`;
}

/** The process a name (`<processId>.<rest>`) says made it; undefined when it names none. */
export function processOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  if (dot <= 0 || dot === name.length - 1) return undefined;
  const processId = name.slice(0, dot);
  return isProcessId(processId) ? processId : undefined;
}

/** The directory of a process that runs alone: it knows itself, once it listens, and no other. */
export function memoryProcessDirectory(self: string = newProcessId()): ProcessDirectory {
  if (!isProcessId(self)) throw new RangeError(`not a process id: ${JSON.stringify(self)}`);
  let address: string | undefined;
  return {
    self,
    // Alone, it forwards nothing: a secret nobody else knows believes no claim.
    secret: newSecret(),
    addressOf: async (processId) => (processId === self ? address : undefined),
    register: async (url) => {
      address = url;
    },
    close: async () => {
      address = undefined;
    },
  };
}

/**
 * A name that is a secret (a user token, a session id) as logs and refusals may show
 * it: its process and the first four characters of its secret — enough to tell two
 * apart, never enough to use.
 */
export function secretHint(name: string): string {
  const dot = name.indexOf('.');
  return `${name.slice(0, dot + 1)}${name.slice(dot + 1, dot + 5)}…`;
}
