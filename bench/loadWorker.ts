/**
 * A load-generator process, forked by the bench (run.ts) and driven over IPC: it opens
 * sessions, pairs them, and runs load phases (workerProtocol.ts); or makes token clients
 * of one kind, pairs them, runs load phases over them, and stops them. Loopback only;
 * every loop stops at a deadline; the process exits when its parent goes away.
 */
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { Pool } from 'undici';
import { TokenClient } from '../test/support/tokenClient.js';
import { Chatter } from './chatter.js';
import { type LeanEndpoint, LeanSession, leanSender, WireTally } from './leanSession.js';
import { latencyHistogram, RelayLoad } from './relayLoad.js';
import { boundedTimes, messageOf } from './timing.js';
import type { ClientKind, OpenReport, PairReport, ReleaseReport, WorkerCommand, WorkerReply } from './workerProtocol.js';

/** Sessions with streams, opened by `open`. */
const chatters: Chatter<LeanSession>[] = [];
/** Token clients of the kind being measured, made by `pair` and stopped by `release`. */
let tokenChatters: Chatter<TokenClient>[] = [];
const tally = new WireTally();
let endpoint: LeanEndpoint | undefined;
let progress = () => 0;

/** How long a token client's poll is held, in seconds: a stopped client abandons it, so this only sets how often an idle user asks again. */
const POLL_S = 10;

const now = () => performance.timeOrigin + performance.now();

function reply(message: WorkerReply): void {
  process.send?.(message);
}

function endpointFor(url: URL, postConnections: number): LeanEndpoint {
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') throw new Error(`refusing non-loopback target ${url.href}`);
  endpoint ??= {
    // Idle connections are dropped after 4 s, before Node's 5 s server-side keep-alive
    // timeout (not every response carries a Keep-Alive hint), so that a POST never
    // races the server closing the connection under it.
    posts: new Pool(url.origin, { connections: postConnections, pipelining: 1, keepAliveTimeout: 4_000 }),
    // One connection per open GET stream; a streaming connection is never reused meanwhile.
    streams: new Pool(url.origin, { connections: null, pipelining: 1 }),
    path: url.pathname,
    tally,
  };
  return endpoint;
}

/** Makes `count` token clients of `kind`; their held polls get connections of their own. */
function enlist(kind: Exclude<ClientKind, 'session'>, target: LeanEndpoint, count: number): Chatter<TokenClient>[] {
  if (tokenChatters.length > 0) throw new Error(`release the token clients before making ${kind} ones`);
  const polls: LeanEndpoint = { ...target, posts: target.streams };
  const client = () => new TokenClient(leanSender(kind, target), { pollWith: leanSender(kind, polls), cursor: '0' });
  tokenChatters = Array.from({ length: count }, (_, i) => new Chatter(i, client()));
  return tokenChatters;
}

async function release(): Promise<ReleaseReport> {
  const clients = tokenChatters.map((chatter) => chatter.client);
  tokenChatters = [];
  await Promise.all(clients.map((client) => client.stop()));
  const firstError = clients.find((client) => client.firstPollError !== undefined)?.firstPollError;
  return {
    type: 'released',
    clients: clients.length,
    pollErrors: clients.reduce((total, client) => total + client.pollErrors, 0),
    ...(firstError !== undefined && { firstError }),
  };
}

async function open(command: Extract<WorkerCommand, { type: 'open' }>): Promise<OpenReport> {
  const target = endpointFor(new URL(command.url), command.postConnections);
  const latency = latencyHistogram();
  let opened = 0;
  let failed = 0;
  let firstError: string | undefined;
  progress = () => opened;
  const startedAt = now();
  await boundedTimes(command.count, { concurrency: command.concurrency, signal: AbortSignal.timeout(300_000) }, async () => {
    const session = new LeanSession(target);
    const began = performance.now();
    try {
      await session.open();
      latency.recordValue(Math.max(1, Math.round((performance.now() - began) * 1000)));
      chatters.push(new Chatter(chatters.length, session));
      opened += 1;
    } catch (error) {
      failed += 1;
      firstError ??= messageOf(error);
    }
  });
  return {
    type: 'opened',
    opened,
    failed,
    ...(firstError !== undefined && { firstError }),
    liveStreams: chatters.filter((c) => c.client.streamOpen).length,
    startedAt,
    endedAt: now(),
    latency: encodeIntoCompressedBase64(latency),
  };
}

/**
 * Pairs this worker's first `2 × pairs` sessions among themselves, or as many new token
 * clients. The bench pairs one worker at a time, so the server's FIFO queue only ever
 * holds this worker's users.
 */
async function pair(command: Extract<WorkerCommand, { type: 'pair' }>): Promise<PairReport> {
  const wanted = command.pairs * 2;
  const members: Chatter[] =
    command.clients === 'session'
      ? chatters.slice(0, wanted)
      : enlist(command.clients, endpointFor(new URL(command.url), command.postConnections), wanted);
  if (members.length < wanted) throw new Error(`only ${chatters.length} sessions to make ${command.pairs} pairs`);
  const rooms = new Map<string, Chatter>();
  let pairs = 0;
  let failed = 0;
  let firstError: string | undefined;
  let allPaired = () => {};
  const done = new Promise<void>((resolve) => {
    allPaired = resolve;
  });
  for (const chatter of members) {
    chatter.onRoom = (joined) => {
      const other = rooms.get(joined.roomId);
      if (!other) return void rooms.set(joined.roomId, joined);
      rooms.delete(joined.roomId);
      joined.partner = other;
      other.partner = joined;
      pairs += 1;
      if (pairs === command.pairs) allPaired();
    };
  }
  progress = () => pairs;
  const startedAt = now();
  const deadline = performance.now() + command.deadlineMs;
  await boundedTimes(members.length, { concurrency: command.concurrency, signal: AbortSignal.timeout(command.deadlineMs) }, async (i) => {
    const chatter = members[i]!;
    try {
      const answer = await chatter.client.call('enter_queue', {});
      if (chatter.client instanceof TokenClient) chatter.client.poll(POLL_S);
      if (answer.status === 'matched' && typeof answer.room_id === 'string') chatter.joinRoom(answer.room_id);
      else if (answer.status !== 'waiting') throw new Error(`enter_queue answered ${JSON.stringify(answer)}`);
    } catch (error) {
      failed += 1;
      firstError ??= messageOf(error);
    }
  });
  if (pairs < command.pairs && failed === 0) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - performance.now()))))]);
    clearTimeout(timer);
  }
  const endedAt = now();
  if (pairs < command.pairs) firstError ??= `only ${pairs} of ${command.pairs} pairs formed before the deadline`;
  return { type: 'paired', pairs, failed, ...(firstError !== undefined && { firstError }), startedAt, endedAt };
}

async function load(command: Extract<WorkerCommand, { type: 'load' }>) {
  // A worker without pairs still answers (at once), with how many of its streams live.
  const group: Chatter[] = command.clients === 'session' ? chatters : tokenChatters;
  const senders = group.filter((c) => c.partner !== undefined);
  const phase = new RelayLoad(senders, command, () => chatters.filter((c) => c.client.streamOpen).length, tally);
  progress = () => phase.progress;
  return phase.run();
}

async function handle(command: WorkerCommand): Promise<WorkerReply> {
  switch (command.type) {
    case 'open':
      return open(command);
    case 'pair':
      return pair(command);
    case 'load':
      return load(command);
    case 'release':
      return release();
  }
}

let busy = false;
const ticker = setInterval(() => {
  if (busy) reply({ type: 'progress', done: progress() });
}, 200);
ticker.unref();

process.on('message', (command: WorkerCommand) => {
  busy = true;
  void handle(command)
    .catch((error: unknown): WorkerReply => ({ type: 'failed', message: messageOf(error) }))
    .then((answer) => {
      busy = false;
      reply(answer);
    });
});
// The bench owns this process: when it goes, so do we (and our sockets). Exiting
// through process.exit also lets `--cpu-prof` write its profile.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
