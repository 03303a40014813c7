/**
 * `npm run soak`: opens and closes many rooms through the in-memory broker, one pair
 * at a time, and prints the heap after a full GC every `--every` rooms, so that memory
 * which grows with the number of rooms ever served shows as a slope. Each room is what
 * two users do: attach, enter the queue, get paired, one message, one leaves.
 *
 *   npm run soak -- [--rooms 100000] [--every 10000]
 *
 * The slope is reported from the first checkpoint on (the first rooms also pay for
 * warm-up: compiled code, XState's caches for the event types it meets). Exits 1 when a
 * room's deliveries were not the five expected or the broker is not back to 0 waiting,
 * 0 rooms at the end; 2 on a bad flag or without `--expose-gc`.
 */
import { parseArgs } from 'node:util';
import { memoryBroker } from '../src/chat/broker/memoryBroker.js';
import type { Delivery } from '../src/chat/broker.js';

const USAGE = 'usage: npm run soak -- [--rooms N (default 100000)] [--every N (default 10000)]';

function count(flag: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1) throw new Error(`--${flag} must be a whole number ≥ 1, not ${JSON.stringify(raw)}\n${USAGE}`);
  return value;
}

function readOptions(): { rooms: number; every: number } {
  const { values } = parseArgs({
    options: { rooms: { type: 'string', default: '100000' }, every: { type: 'string', default: '10000' } },
    strict: true,
    allowPositionals: false,
  });
  return { rooms: count('rooms', values.rooms), every: count('every', values.every) };
}

const kb = (bytes: number) => `${(bytes / 1024).toLocaleString('en-US', { maximumFractionDigits: 1 })} KB`;

function heapAfterGc(gc: () => void): number {
  // Twice: the first pass may only queue finalizers (WeakMap entries, weak refs).
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function main(): Promise<number> {
  let options: ReturnType<typeof readOptions>;
  try {
    options = readOptions();
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const gc = globalThis.gc;
  if (!gc) {
    console.error('soak needs a callable GC: run it with `node --expose-gc` (npm run soak does).');
    return 2;
  }
  const { rooms, every } = options;
  const broker = memoryBroker();
  let delivered = 0;
  let roomId = '';
  const inbox = (event: Delivery) => {
    delivered++;
    if (event.type === 'room.paired') roomId = event.roomId;
  };

  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  const checkpoints: { rooms: number; heap: number }[] = [];
  const base = heapAfterGc(gc);
  console.log(`rooms ${(0).toLocaleString('en-US').padStart(10)}  heap ${kb(base).padStart(12)}  ${elapsed()}`);
  for (let n = 1; n <= rooms; n++) {
    const [a, b] = [`a${n}`, `b${n}`];
    const detach = [broker.attach(a, inbox), broker.attach(b, inbox)];
    await broker.join({ userId: a, avoid: null });
    await broker.join({ userId: b, avoid: null });
    await broker.send(roomId, a, 'hi');
    await broker.leaveRoom(roomId, a, 'left');
    for (const off of detach) off();
    if (n % every === 0 || n === rooms) {
      const heap = heapAfterGc(gc);
      checkpoints.push({ rooms: n, heap });
      console.log(`rooms ${n.toLocaleString('en-US').padStart(10)}  heap ${kb(heap).padStart(12)}  ${elapsed()}`);
    }
  }

  const first = checkpoints.length > 1 ? checkpoints[0]! : { rooms: 0, heap: base };
  const last = checkpoints.at(-1)!;
  const perTenThousand = ((last.heap - first.heap) / (last.rooms - first.rooms)) * 10_000;
  console.log(
    `growth per 10,000 rooms: ${kb(perTenThousand)} (${(perTenThousand / 10_000).toFixed(1)} bytes a room, ` +
      `from ${first.rooms.toLocaleString('en-US')} to ${last.rooms.toLocaleString('en-US')} rooms) in ${elapsed()}`,
  );

  // Two joins' pairings, the message and its receipt, the partner's room.closed.
  const stats = broker.stats();
  await broker.close();
  let failed = false;
  if (delivered !== rooms * 5) {
    console.error(`expected ${rooms * 5} deliveries (5 a room), got ${delivered}`);
    failed = true;
  }
  if (stats.waiting !== 0 || stats.rooms !== 0) {
    console.error(`the broker should be empty at the end, yet holds ${stats.waiting} waiting and ${stats.rooms} rooms`);
    failed = true;
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
