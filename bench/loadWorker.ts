/**
 * A load-generator process, forked by the bench (benchTarget.ts) and driven over IPC one
 * command at a time: it opens sessions (with their GET streams), or makes token clients of
 * one kind; pairs them; runs load phases over the pairs; and stops the token clients. In a
 * phase every paired user sends to its partner, either as fast as its previous send is
 * answered (`saturate`: one call in flight per sender) or on a fixed schedule (`rate`: open
 * loop, a message due every 1/rate s, round-robin over the senders); latency is from the
 * call being made to the partner's notification being parsed. Loopback only; every loop
 * stops at a deadline; the process exits when its parent goes away.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { TokenClient } from '../test/support/tokenClient.js';
import { deliveryOf, drained, PairedUser, partners } from './chatter.js';
import { type LeanEndpoint, LeanSession, leanEndpoint, leanSender, type TokenClientKind, WireTally } from './leanSession.js';
import { bounded, messageOf, orAbort, until } from './timing.js';

/** `session`: an MCP session with its GET stream, opened by `open`; or a token client that keeps none, made by `pair` and stopped by `release`. */
export type ClientKind = 'session' | TokenClientKind;

/** Timestamps are absolute ms (performance.timeOrigin + now), comparable across processes; latencies are ms samples. */
export type WorkerCommand =
  | { type: 'open'; url: string; count: number }
  | { type: 'pair'; clients: ClientKind; url: string; pairs: number; deadlineMs: number }
  | {
      type: 'load';
      clients: ClientKind;
      mode: 'saturate' | 'rate';
      rate: number;
      maxMessages: number;
      durationMs: number;
      messageSize: number;
    }
  | { type: 'release' };

const OPEN_CONCURRENCY = 32;
const PAIR_CONCURRENCY = 64;
const POST_CONNECTIONS = 64;
/** How long messages may take to be read once sending stopped. */
const DRAIN_MS = 5_000;
/** How long a token client's poll is held, in seconds: a stopped client abandons it, so this only sets how often an idle user asks again. */
const POLL_S = 10;

const sessions: PairedUser<LeanSession>[] = [];
let tokenUsers: PairedUser<TokenClient>[] = [];
/** The users paired, by kind: the senders of a load phase. */
const senders = new Map<ClientKind, PairedUser[]>();
const tally = new WireTally();
let endpoint: LeanEndpoint | undefined;
let progress = () => 0;

const now = () => performance.timeOrigin + performance.now();
const liveStreams = () => sessions.filter((user) => user.client.streamOpen).length;

function endpointFor(url: URL): LeanEndpoint {
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') throw new Error(`refusing non-loopback target ${url.href}`);
  endpoint ??= leanEndpoint(url, POST_CONNECTIONS, { tally });
  return endpoint;
}

async function open({ url, count }: Extract<WorkerCommand, { type: 'open' }>) {
  const target = endpointFor(new URL(url));
  const latencyMs: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const startedAt = now();
  progress = () => latencyMs.length;
  await bounded(
    Array.from({ length: count }),
    OPEN_CONCURRENCY,
    async () => {
      const session = new LeanSession(target);
      const began = performance.now();
      try {
        await session.open();
        latencyMs.push(performance.now() - began);
        sessions.push(new PairedUser(sessions.length, session));
      } catch (error) {
        failed += 1;
        firstError ??= messageOf(error);
      }
    },
    AbortSignal.timeout(300_000),
  );
  return {
    type: 'opened' as const,
    opened: latencyMs.length,
    failed,
    firstError,
    liveStreams: liveStreams(),
    startedAt,
    endedAt: now(),
    latencyMs,
  };
}

/**
 * Pairs this worker's first `2 × pairs` sessions among themselves, or as many new token
 * clients (each then holding a poll). The bench pairs one worker at a time, so the
 * server's FIFO queue only ever holds this worker's users.
 */
async function pair(command: Extract<WorkerCommand, { type: 'pair' }>) {
  const wanted = command.pairs * 2;
  let members: PairedUser[] = sessions.slice(0, wanted);
  if (command.clients !== 'session') {
    if (tokenUsers.length > 0) throw new Error(`release the token clients before making ${command.clients} ones`);
    const target = endpointFor(new URL(command.url));
    const polls: LeanEndpoint = { ...target, posts: target.streams };
    const client = (kind: TokenClientKind) => new TokenClient(leanSender(kind, target), { pollWith: leanSender(kind, polls), cursor: '0' });
    members = tokenUsers = Array.from({ length: wanted }, (_, i) => new PairedUser(i, client(command.clients as TokenClientKind)));
  }
  if (members.length < wanted) throw new Error(`only ${sessions.length} sessions to make ${command.pairs} pairs`);
  let failed = 0;
  let firstError: string | undefined;
  progress = () => members.filter((user) => user.roomId !== undefined).length / 2;
  const startedAt = now();
  const deadline = AbortSignal.timeout(command.deadlineMs);
  await bounded(
    members,
    PAIR_CONCURRENCY,
    async (user) => {
      try {
        const answer = await user.client.call('enter_queue', {});
        if (user.client instanceof TokenClient) user.client.poll(POLL_S);
        if (answer.status === 'matched' && typeof answer.room_id === 'string') user.joined(answer.room_id);
        else if (answer.status !== 'waiting') throw new Error(`enter_queue answered ${JSON.stringify(answer)}`);
      } catch (error) {
        failed += 1;
        firstError ??= messageOf(error);
      }
    },
    deadline,
  );
  if (failed === 0) await orAbort(Promise.all(members.map((user) => user.found)), deadline).catch(() => {});
  const endedAt = now();
  const rooms = new Map<string, PairedUser[]>();
  for (const user of members) if (user.roomId !== undefined) rooms.set(user.roomId, [...(rooms.get(user.roomId) ?? []), user]);
  const paired = [...rooms.values()].flatMap((users) => (users.length === 2 ? partners(users[0]!, users[1]!) : []));
  senders.set(command.clients, paired);
  const pairs = paired.length / 2;
  if (pairs < command.pairs) firstError ??= `only ${pairs} of ${command.pairs} pairs formed before the deadline`;
  return { type: 'paired' as const, pairs, failed, firstError, startedAt, endedAt };
}

/** One load phase over the pairs of a kind; counts, of this phase only, what was sent, read, lost, duplicated, out of order, misrouted. */
async function load(command: Extract<WorkerCommand, { type: 'load' }>) {
  // A worker without pairs still answers (at once), with how many of its streams are live.
  const users = senders.get(command.clients) ?? [];
  const before = deliveryOf(users);
  const answered = { ...tally };
  const latencyMs: number[] = [];
  const fromDueMs: number[] = [];
  let lastReceivedAt = 0;
  for (const user of users)
    user.onRead = (sentAtUs, dueAtUs, at) => {
      latencyMs.push(Math.round(at * 1000 - sentAtUs) / 1000);
      fromDueMs.push(Math.round(at * 1000 - dueAtUs) / 1000);
      lastReceivedAt = at;
    };
  progress = () => latencyMs.length;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  let budget = command.maxMessages;
  let sent = 0;
  let unsent = 0;
  const startedAt = performance.now();
  const deadline = startedAt + command.durationMs;
  const mayStart = () => budget > 0 && performance.now() < deadline;
  const send = (user: PairedUser, dueAt: number) => {
    sent += 1;
    return user.send(command.messageSize, undefined, dueAt);
  };
  if (command.mode === 'saturate')
    await Promise.all(
      users.map(async (user) => {
        while (mayStart()) {
          budget -= 1;
          await send(user, performance.now());
        }
      }),
    );
  else {
    // Open loop: each message due at its time goes out at once, or after the one its sender has in flight.
    const backlogs = new Map(users.map((user) => [user, [] as number[]]));
    const chains = new Set<Promise<void>>();
    const chain = async (user: PairedUser, dueAt: number) => {
      await send(user, dueAt);
      const backlog = backlogs.get(user)!;
      while (backlog.length > 0 && performance.now() < deadline) await send(user, backlog.shift()!);
      unsent += backlog.splice(0).length;
    };
    const perMs = command.rate / 1000;
    let offered = 0;
    while (mayStart() && users.length > 0) {
      for (const due = Math.floor((performance.now() - startedAt) * perMs); offered < due && budget > 0; offered++, budget--) {
        const user = users[offered % users.length]!;
        const dueAt = startedAt + offered / perMs;
        if (user.sending) backlogs.get(user)!.push(dueAt);
        else {
          const running = chain(user, dueAt).finally(() => chains.delete(running));
          chains.add(running);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(chains);
  }
  const sendEndedAt = performance.now();
  const isDrained = await until(() => drained(users), DRAIN_MS, AbortSignal.timeout(DRAIN_MS + 1000));
  loopDelay.disable();
  for (const user of users) user.onRead = () => {};
  const after = deliveryOf(users);
  const counted = ['acked', 'failed', 'received', 'lost', 'duplicated', 'outOfOrder', 'misrouted'] as const;
  const counts = Object.fromEntries(counted.map((key) => [key, Math.max(0, after[key] - before[key])])) as Record<
    (typeof counted)[number],
    number
  >;
  const absolute = (at: number) => performance.timeOrigin + at;
  return {
    type: 'loaded' as const,
    senders: users.length,
    sent,
    unsent,
    ...counts,
    drained: isDrained,
    firstError: after.firstError,
    startedAt: absolute(startedAt),
    sendEndedAt: absolute(sendEndedAt),
    lastReceivedAt: absolute(lastReceivedAt || sendEndedAt),
    latencyMs,
    fromDueMs,
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
    liveStreams: liveStreams(),
    httpRequests: tally.httpRequests - answered.httpRequests,
    toolCalls: tally.toolCalls - answered.toolCalls,
  };
}

/** Stops the token clients (their held polls are abandoned); their pairs are gone. */
async function release() {
  const clients = tokenUsers.map((user) => user.client);
  for (const kind of senders.keys()) if (kind !== 'session') senders.delete(kind);
  tokenUsers = [];
  await Promise.all(clients.map((client) => client.stop()));
  const pollErrors = clients.reduce((total, client) => total + client.pollErrors, 0);
  return {
    type: 'released' as const,
    clients: clients.length,
    pollErrors,
    firstError: clients.find((c) => c.firstPollError)?.firstPollError,
  };
}

const HANDLERS = { open, pair, load, release } as const;
export type WorkerReply = Awaited<ReturnType<(typeof HANDLERS)[keyof typeof HANDLERS]>>;
export type LoadReport = Awaited<ReturnType<typeof load>>;

let busy = false;
setInterval(() => {
  if (busy) process.send?.({ type: 'progress', done: progress() });
}, 200).unref();
process.on('message', (command: WorkerCommand) => {
  busy = true;
  void (HANDLERS[command.type] as (command: WorkerCommand) => Promise<WorkerReply>)(command)
    .catch((error: unknown) => ({ type: 'failed' as const, message: messageOf(error) }))
    .then((answer) => {
      busy = false;
      process.send?.(answer);
    });
});
// The bench owns this process: when it goes, so do we (and our sockets). Exiting
// through process.exit also lets `--cpu-prof` write its profile.
process.on('disconnect', () => process.exit(0));
