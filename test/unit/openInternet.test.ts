/**
 * The parts that let one server face the open internet: who a request came from
 * (behind proxies or not), what one address may hold, what all event logs may hold
 * together, the push bus indexed by URI, what a listen may name, and the events key
 * that names a user's events without being its token.
 */
import { randomBytes } from 'node:crypto';
import type { ServerEvent } from '@modelcontextprotocol/server';
import { describe, expect, it, vi } from 'vitest';
import { EventLog, LogBudget } from '../../src/chat/eventLog.js';
import { eventsKeyOf } from '../../src/chat/userDirectory.js';
import { ConfigError, helpText, loadConfig } from '../../src/config.js';
import { addressResolver, plainAddress } from '../../src/http/clientAddress.js';
import { checkListen, isListen } from '../../src/http/listenGate.js';
import { eventsUri, isBareEventsUri, keyOfEventsUri } from '../../src/mcp/eventsResource.js';
import { ListenBus, type ListenScope } from '../../src/mcp/listenBus.js';
import { AddressAllowance, allowanceSentence, type Holding } from '../../src/session/addressAllowance.js';

const CLIENT = '198.51.100.7';
const PROXY = '10.0.0.2';

describe('plainAddress', () => {
  it('reads an IPv4-mapped IPv6 address as the IPv4 address, in either case', () => {
    expect(plainAddress('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(plainAddress('::FFFF:10.1.2.3')).toBe('10.1.2.3');
  });

  it('leaves plain IPv4, plain IPv6 and near-misses as they are', () => {
    expect(plainAddress('203.0.113.9')).toBe('203.0.113.9');
    expect(plainAddress('2001:db8::1')).toBe('2001:db8::1');
    expect(plainAddress('::ffff:1.2.3')).toBe('::ffff:1.2.3');
    expect(plainAddress('::1')).toBe('::1');
  });
});

describe('addressResolver by hop count', () => {
  it('{hops: 0} answers the peer and ignores X-Forwarded-For entirely', () => {
    const resolve = addressResolver({ hops: 0 });
    expect(resolve('203.0.113.9', '1.1.1.1')).toBe('203.0.113.9');
    expect(resolve('::ffff:203.0.113.9', `6.6.6.6, ${CLIENT}`)).toBe('203.0.113.9');
  });

  it('answers "unknown" when the socket has no peer and nothing trusted says more', () => {
    expect(addressResolver({ hops: 0 })(undefined, CLIENT)).toBe('unknown');
    expect(addressResolver({ hops: 1 })(undefined, undefined)).toBe('unknown');
    expect(addressResolver({ cidrs: ['10.0.0.0/8'] })(undefined, CLIENT)).toBe('unknown');
  });

  it('{hops: 1} answers the entry the one proxy appended, and the peer when there is no header', () => {
    const resolve = addressResolver({ hops: 1 });
    expect(resolve(PROXY, CLIENT)).toBe(CLIENT);
    expect(resolve(`::ffff:${PROXY}`, ` ::ffff:${CLIENT} `)).toBe(CLIENT);
    expect(resolve(PROXY, undefined)).toBe(PROXY);
  });

  it('a client that writes X-Forwarded-For: 6.6.6.6 through one appending proxy is still seen at its real address', () => {
    // The client sent `X-Forwarded-For: 6.6.6.6`; the proxy appended the peer it saw.
    expect(addressResolver({ hops: 1 })(PROXY, `6.6.6.6, ${CLIENT}`)).toBe(CLIENT);
    expect(addressResolver({ hops: 1 })(PROXY, `6.6.6.6,7.7.7.7,${CLIENT}`)).toBe(CLIENT);
  });

  it('{hops: 2} skips the two nearest proxies, whatever the client wrote to their left', () => {
    expect(addressResolver({ hops: 2 })(PROXY, `6.6.6.6, ${CLIENT}, 10.0.0.1`)).toBe(CLIENT);
  });

  it('with more hops than the chain has, answers the farthest hop', () => {
    expect(addressResolver({ hops: 5 })(PROXY, `${CLIENT}, 10.0.0.1`)).toBe(CLIENT);
    expect(addressResolver({ hops: 3 })(PROXY, CLIENT)).toBe(CLIENT);
  });

  it.each([
    ['an address with a port', `${CLIENT}:4711`, CLIENT],
    ['a bracketed IPv6 address', '[2001:db8::7]', '2001:db8::7'],
    ['a bracketed IPv6 address with a port', '[2001:db8::7]:443', '2001:db8::7'],
  ])('a forwarded entry that is %s names that address (proxies that write ports)', (_what, entry, address) => {
    expect(addressResolver({ hops: 1 })(PROXY, entry)).toBe(address);
  });

  it.each([
    ['a word', 'unknown'],
    ['an empty header', ''],
    ['an obfuscated identifier', '_hidden'],
  ])('a forwarded entry that is %s falls back to the nearest hop', (_what, entry) => {
    expect(addressResolver({ hops: 1 })(`::ffff:${PROXY}`, entry)).toBe(PROXY);
  });
});

describe('addressResolver by trusted addresses', () => {
  const resolve = addressResolver({ cidrs: ['10.0.0.0/8', '192.0.2.10', 'fd00::/8'] });

  it('answers the first hop outward that is not a trusted proxy', () => {
    expect(resolve(PROXY, CLIENT)).toBe(CLIENT);
    expect(resolve(PROXY, `${CLIENT}, 10.0.0.1, 192.0.2.10`)).toBe(CLIENT);
  });

  it('believes nothing a peer outside the trusted list says', () => {
    expect(resolve('203.0.113.9', CLIENT)).toBe('203.0.113.9');
    expect(resolve('192.0.2.11', CLIENT)).toBe('192.0.2.11');
  });

  it('a client that writes a trusted address to the left of what the proxy appended is still seen at its real address', () => {
    expect(resolve(PROXY, `10.0.0.5, ${CLIENT}`)).toBe(CLIENT);
    expect(resolve(PROXY, `6.6.6.6, ${CLIENT}`)).toBe(CLIENT);
  });

  it('answers the farthest hop when every hop is trusted', () => {
    expect(resolve(PROXY, '10.0.0.7, 10.0.0.8')).toBe('10.0.0.7');
  });

  it('matches an IPv4-mapped peer against IPv4 ranges', () => {
    expect(resolve(`::ffff:${PROXY}`, CLIENT)).toBe(CLIENT);
    expect(resolve('::ffff:11.0.0.1', CLIENT)).toBe('11.0.0.1');
  });

  it('trusts IPv6 ranges, and only them', () => {
    expect(resolve('fd12:3456::1', '2001:db8::7, fd00::2')).toBe('2001:db8::7');
    expect(resolve('fe80::1', '2001:db8::7')).toBe('fe80::1');
    expect(resolve('fd00::1', `${CLIENT}, fd99::9`)).toBe(CLIENT);
  });

  it('a forwarded entry that is not an address falls back to the nearest hop', () => {
    expect(resolve(PROXY, 'garbage')).toBe(PROXY);
    expect(resolve(PROXY, `${CLIENT}, garbage`)).toBe(PROXY);
  });
});

describe('configuration of the open-internet settings', () => {
  it.each([
    [[], {}, { hops: 0 }],
    [['--trust-proxy'], {}, { hops: 1 }],
    [['--trust-proxy=true'], {}, { hops: 1 }],
    [['--trust-proxy=2'], {}, { hops: 2 }],
    [['--trust-proxy=false'], {}, { hops: 0 }],
    [['--trust-proxy=10.0.0.0/8,fd00::/8'], {}, { cidrs: ['10.0.0.0/8', 'fd00::/8'] }],
    [['--trust-proxy=10.0.0.0/8, 192.0.2.1'], {}, { cidrs: ['10.0.0.0/8', '192.0.2.1'] }],
    [[], { MCP_CHAT_TRUST_PROXY: '1' }, { hops: 1 }],
    [[], { MCP_CHAT_TRUST_PROXY: 'true' }, { hops: 1 }],
    [[], { MCP_CHAT_TRUST_PROXY: 'false' }, { hops: 0 }],
    [[], { MCP_CHAT_TRUST_PROXY: '10.0.0.0/8,fd00::/8' }, { cidrs: ['10.0.0.0/8', 'fd00::/8'] }],
    [['--trust-proxy=false'], { MCP_CHAT_TRUST_PROXY: '10.0.0.0/8' }, { hops: 0 }],
  ])('--trust-proxy %j with env %j is %j', (argv, env, trustProxy) => {
    expect(loadConfig(argv, env).trustProxy).toEqual(trustProxy);
  });

  it('--trust-proxy alone before another flag is one hop, and the next flag still counts', () => {
    expect(loadConfig(['--trust-proxy', '--port', '5000'], {})).toMatchObject({ trustProxy: { hops: 1 }, port: 5000 });
  });

  it('--trust-proxy takes its value as the next argument, as the README writes it', () => {
    expect(loadConfig(['--trust-proxy', '10.0.0.0/8,fd00::/8'], {}).trustProxy).toEqual({ cidrs: ['10.0.0.0/8', 'fd00::/8'] });
    expect(loadConfig(['--trust-proxy', '2', '--port', '5000'], {})).toMatchObject({ trustProxy: { hops: 2 }, port: 5000 });
    expect(() => loadConfig(['--trust-proxy', 'banana'], {})).toThrow('--trust-proxy (MCP_CHAT_TRUST_PROXY) cannot be "banana"');
  });

  it.each(['10.0.0.0/33', 'banana', '1.2.3.4/8/9', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8,banana', '100', 'TRUE'])(
    'refuses --trust-proxy=%s, naming the flag',
    (value) => {
      expect(() => loadConfig([`--trust-proxy=${value}`], {})).toThrow(ConfigError);
      expect(() => loadConfig([`--trust-proxy=${value}`], {})).toThrow(
        `--trust-proxy (MCP_CHAT_TRUST_PROXY) cannot be ${JSON.stringify(value)}`,
      );
      expect(() => loadConfig([], { MCP_CHAT_TRUST_PROXY: value })).toThrow(/^--trust-proxy \(MCP_CHAT_TRUST_PROXY\) cannot be/);
    },
  );

  it('--help shows trust-proxy off as `false`, not as JSON', () => {
    const line = helpText()
      .split('\n')
      .find((row) => row.includes('--trust-proxy'));
    expect(line).toMatch(/MCP_CHAT_TRUST_PROXY .*\(default: false\)$/);
    expect(helpText()).not.toContain('{"hops"');
  });

  const limits = [
    ['max-per-address', 'MCP_CHAT_MAX_PER_ADDRESS', 'maxPerAddress', 100, '7'],
    ['max-users', 'MCP_CHAT_MAX_USERS', 'maxUsers', 20_000, '300'],
    ['event-log-budget-bytes', 'MCP_CHAT_EVENT_LOG_BUDGET_BYTES', 'eventLogBudgetBytes', 268_435_456, '65536'],
    ['max-listen-uris', 'MCP_CHAT_MAX_LISTEN_URIS', 'maxListenUris', 8, '1000'],
  ] as const;

  it.each(limits)('--%s (%s) defaults to its documented value, shown in --help', (flag, _env, key, defaultValue) => {
    expect(loadConfig([], {})[key]).toBe(defaultValue);
    expect(
      helpText()
        .split('\n')
        .find((row) => row.includes(`--${flag} `)),
    ).toMatch(new RegExp(`\\(default: ${defaultValue}\\)$`));
  });

  it.each(limits)('--%s and its env twin %s set %s, the flag winning', (flag, env, key, _default, value) => {
    expect(loadConfig([`--${flag}`, value], {})[key]).toBe(Number(value));
    expect(loadConfig([], { [env]: value })[key]).toBe(Number(value));
    expect(loadConfig([`--${flag}=${value}`], { [env]: '9999' })[key]).toBe(Number(value));
  });

  it.each([
    ['max-per-address', 'MCP_CHAT_MAX_PER_ADDRESS', '0'],
    ['max-per-address', 'MCP_CHAT_MAX_PER_ADDRESS', 'lots'],
    ['max-per-address', 'MCP_CHAT_MAX_PER_ADDRESS', '1.5'],
    ['max-users', 'MCP_CHAT_MAX_USERS', '0'],
    ['max-users', 'MCP_CHAT_MAX_USERS', '-5'],
    ['event-log-budget-bytes', 'MCP_CHAT_EVENT_LOG_BUDGET_BYTES', '65535'],
    ['event-log-budget-bytes', 'MCP_CHAT_EVENT_LOG_BUDGET_BYTES', '1e9'],
    ['max-listen-uris', 'MCP_CHAT_MAX_LISTEN_URIS', '0'],
    ['max-listen-uris', 'MCP_CHAT_MAX_LISTEN_URIS', '1001'],
  ])('refuses --%s (%s) = %s, naming the flag', (flag, env, value) => {
    const named = `--${flag} (${env}) cannot be ${JSON.stringify(value)}`;
    expect(() => loadConfig([`--${flag}=${value}`], {})).toThrow(ConfigError);
    expect(() => loadConfig([`--${flag}=${value}`], {})).toThrow(named);
    expect(() => loadConfig([], { [env]: value })).toThrow(named);
  });
});

describe('AddressAllowance', () => {
  const A = '203.0.113.1';
  const B = '203.0.113.2';
  const kinds: Holding[] = ['sessions', 'streams', 'waits', 'listens'];

  it.each(kinds)('an address may hold perAddress %s, and one more is refused', (kind) => {
    const allowance = new AddressAllowance(3);
    const taken = [allowance.take(A, kind), allowance.take(A, kind), allowance.take(A, kind)];
    expect(taken.every((release) => typeof release === 'function')).toBe(true);
    expect(allowance.take(A, kind)).toBeUndefined();
    expect(allowance.holding(A, kind)).toBe(3);
  });

  it('a full address leaves other addresses and its own other kinds unaffected', () => {
    const allowance = new AddressAllowance(2);
    allowance.take(A, 'streams');
    allowance.take(A, 'streams');
    expect(allowance.take(A, 'streams')).toBeUndefined();
    expect(allowance.take(B, 'streams')).toBeTypeOf('function');
    expect(allowance.take(B, 'streams')).toBeTypeOf('function');
    for (const kind of kinds.filter((k) => k !== 'streams')) {
      expect(allowance.take(A, kind)).toBeTypeOf('function');
      expect(allowance.holding(A, kind)).toBe(1);
    }
    expect(allowance.holding(A, 'streams')).toBe(2);
    expect(allowance.holding(B, 'streams')).toBe(2);
  });

  it('a release gives back exactly one: one more take succeeds, the next is refused', () => {
    const allowance = new AddressAllowance(2);
    const first = allowance.take(A, 'waits')!;
    allowance.take(A, 'waits');
    first();
    expect(allowance.holding(A, 'waits')).toBe(1);
    expect(allowance.take(A, 'waits')).toBeTypeOf('function');
    expect(allowance.take(A, 'waits')).toBeUndefined();
  });

  it('releasing twice frees only one', () => {
    const allowance = new AddressAllowance(3);
    const first = allowance.take(A, 'listens')!;
    allowance.take(A, 'listens');
    allowance.take(A, 'listens');
    first();
    first();
    expect(allowance.holding(A, 'listens')).toBe(2);
    expect(allowance.take(A, 'listens')).toBeTypeOf('function');
    expect(allowance.take(A, 'listens')).toBeUndefined();
  });

  it('forgets an address once it holds nothing of any kind, and not before', () => {
    const allowance = new AddressAllowance(1);
    const session = allowance.take(A, 'sessions')!;
    const stream = allowance.take(A, 'streams')!;
    const other = allowance.take(B, 'waits')!;
    expect(allowance.addresses).toBe(2);
    expect(allowance.take(A, 'sessions')).toBeUndefined(); // a refusal holds nothing more
    session();
    expect(allowance.addresses).toBe(2);
    stream();
    stream();
    expect(allowance.addresses).toBe(1);
    other();
    expect(allowance.addresses).toBe(0);
    expect(allowance.holding(A, 'streams')).toBe(0);
  });

  it('a forgotten address starts afresh with its full allowance', () => {
    const allowance = new AddressAllowance(1);
    allowance.take(A, 'sessions')!();
    const again = allowance.take(A, 'sessions');
    expect(again).toBeTypeOf('function');
    expect(allowance.take(A, 'sessions')).toBeUndefined();
    again!();
    expect(allowance.addresses).toBe(0);
  });

  it.each([
    ['sessions', 'sessions'],
    ['streams', 'open streams'],
    ['waits', 'held wait_for_events calls'],
    ['listens', 'subscriptions/listen'],
  ] as const)('the refusal for %s names them and the number allowed', (kind, named) => {
    const sentence = allowanceSentence(kind, 37);
    expect(sentence).toContain(`Too many ${named}`);
    expect(sentence).toContain('at most 37 at once');
  });
});

describe('LogBudget shared by EventLogs', () => {
  /** An event is its own size in bytes; each log is bounded only by the budget. */
  const logsUnder = (budget: LogBudget, count: number) =>
    Array.from({ length: count }, () => new EventLog<number>({ events: 100_000, bytes: 1 << 30 }, (size) => size, budget));
  const appendEach = (log: EventLog<number>, times: number, size: number) => {
    for (let i = 0; i < times; i++) log.append(size);
  };

  it('counts the bytes of every log, including what a log trims under its own bounds', () => {
    const budget = new LogBudget(1_000_000);
    const [a, b] = logsUnder(budget, 2) as [EventLog<number>, EventLog<number>];
    const short = new EventLog<number>({ events: 2, bytes: 1 << 30 }, (size) => size, budget);
    appendEach(a, 3, 10);
    appendEach(b, 2, 25);
    appendEach(short, 3, 7);
    expect(short.bytes).toBe(14);
    expect(budget.bytes).toBe(30 + 50 + 14);
    expect(budget.shed).toBe(0);
  });

  it('takes nothing while the logs hold exactly the limit', () => {
    const onShed = vi.fn();
    const budget = new LogBudget(1000, onShed);
    const [a, b] = logsUnder(budget, 2) as [EventLog<number>, EventLog<number>];
    appendEach(a, 50, 10);
    appendEach(b, 50, 10);
    expect(budget.bytes).toBe(1000);
    expect([budget.shed, a.first, b.first]).toEqual([0, 1, 1]);
    expect(onShed).not.toHaveBeenCalled();
  });

  it('over the limit, the oldest events of the largest logs go, down to 90%, and small logs are untouched', () => {
    const onShed = vi.fn();
    const budget = new LogBudget(1000, onShed);
    const [small, a, b] = logsUnder(budget, 3) as [EventLog<number>, EventLog<number>, EventLog<number>];
    appendEach(small, 10, 10);
    for (let i = 0; i < 45; i++) {
      a.append(10);
      b.append(10);
    }
    expect(budget.shed).toBe(0);
    a.append(10); // 1010 bytes: 10 over
    expect(budget.bytes).toBe(900);
    expect(budget.bytes).toBe(small.bytes + a.bytes + b.bytes);
    expect([small.bytes, small.first, small.last]).toEqual([100, 1, 10]);
    expect([a.bytes, b.bytes]).toEqual([400, 400]);
    // The oldest went: the newest of each log is still there.
    expect([a.first, a.last, b.first, b.last]).toEqual([7, 46, 6, 45]);
    expect(budget.shed).toBe(a.first - 1 + (b.first - 1));
    expect(budget.shed).toBe(11);
    expect(onShed.mock.calls).toEqual([[11, 2]]);
  });

  it('a log over its share keeps at least its newest event, however large', () => {
    const budget = new LogBudget(1000);
    const [big, other] = logsUnder(budget, 2) as [EventLog<number>, EventLog<number>];
    appendEach(big, 10, 10);
    big.append(800);
    other.append(150); // 1050 bytes: the level is 750, below big's newest event
    expect([big.first, big.last, big.at(11), big.bytes]).toEqual([11, 11, 800, 800]);
    expect([other.first, other.bytes]).toEqual([1, 150]);
    expect(budget.shed).toBe(10);
    expect(budget.bytes).toBe(950);
  });

  it('a reader of a shed log is told exactly how many events it lost', () => {
    const budget = new LogBudget(1000);
    const [a, b] = logsUnder(budget, 2) as [EventLog<number>, EventLog<number>];
    appendEach(a, 50, 10);
    appendEach(b, 50, 10);
    expect(b.read(null).missed).toBe(0); // takes all 50 of b
    a.append(10); // 1010 bytes: a and b both cut to 450
    expect([a.first, b.first]).toEqual([7, 6]);

    const fromStart = a.read(0);
    expect(fromStart.missed).toBe(6);
    expect(fromStart.events.map(([id]) => id)).toEqual(Array.from({ length: 45 }, (_, i) => i + 7));
    expect(a.read(3).missed).toBe(3); // lost 4, 5 and 6
    expect(a.read(6).missed).toBe(0);
    expect(a.read(10).missed).toBe(0);

    const untaken = a.read(null);
    expect(untaken.missed).toBe(6);
    expect(untaken.events).toHaveLength(45);
    expect(a.read(null)).toEqual({ events: [], cursor: 51, missed: 0 });

    // b's untaken reader had taken everything before the cut: it lost nothing.
    expect(b.read(null)).toEqual({ events: [], cursor: 50, missed: 0 });
    expect(b.read(0).missed).toBe(5);
  });

  it('release gives a log’s bytes back, once, and the budget no longer counts or cuts it', () => {
    const onShed = vi.fn();
    const budget = new LogBudget(1000, onShed);
    const [gone, kept, never] = logsUnder(budget, 3) as [EventLog<number>, EventLog<number>, EventLog<number>];
    appendEach(gone, 50, 10);
    appendEach(kept, 30, 10);
    expect(budget.bytes).toBe(800);
    gone.release();
    expect(budget.bytes).toBe(300);
    gone.release();
    never.release();
    expect(budget.bytes).toBe(300);
    appendEach(kept, 70, 10); // 1000 bytes: within the limit only because `gone` was given back
    expect(budget.bytes).toBe(1000);
    expect([budget.shed, kept.first]).toEqual([0, 1]);
    expect(onShed).not.toHaveBeenCalled();
  });

  // Once cut to their newest events, logs shed nothing more: an overflow must not recurse.
  it('logs whose newest events alone exceed the budget keep them, and appending goes on', () => {
    const budget = new LogBudget(65_536); // the smallest --event-log-budget-bytes
    const logs = logsUnder(budget, 70);
    for (const log of logs) log.append(1000);
    expect(logs.every((log) => log.bytes === 1000 && log.first === 1)).toBe(true);
    expect(budget.bytes).toBe(70_000);
  });

  it('one overflow is heard once, with every event and log it cut', () => {
    const onShed = vi.fn();
    const budget = new LogBudget(1000, onShed);
    const [a, b, c] = logsUnder(budget, 3) as [EventLog<number>, EventLog<number>, EventLog<number>];
    for (let i = 0; i < 45; i++) {
      a.append(10);
      b.append(10);
    }
    c.append(300);
    expect(budget.shed).toBe(30);
    expect(onShed.mock.calls).toEqual([[30, 2]]);
  });
});

describe('ListenBus', () => {
  const U1 = eventsUri('p.one');
  const U2 = eventsUri('p.two');
  const U3 = eventsUri('p.three');
  const updated = (uri: string): ServerEvent => ({ kind: 'resource_updated', uri });

  const scopeOf = (...uris: string[]) => {
    const scope = { uris, subscribed: vi.fn(), unsubscribed: vi.fn() } satisfies ListenScope;
    return scope;
  };
  /** Subscribes a recording listener inside a listen's scope. */
  const listen = (bus: ListenBus, scope: ListenScope) => {
    const heard: ServerEvent[] = [];
    const unsubscribe = bus.serveListen(scope, () => bus.subscribe((event) => heard.push(event)));
    return { heard, unsubscribe };
  };

  it('a listen hears resource updates for its URIs only', () => {
    const bus = new ListenBus();
    const first = listen(bus, scopeOf(U1, U2));
    const third = listen(bus, scopeOf(U3));
    const event = updated(U2);
    bus.publish(updated(U1));
    bus.publish(event);
    bus.publish(updated(eventsUri('p.nobody')));
    expect(first.heard).toEqual([updated(U1), updated(U2)]);
    expect(first.heard[1]).toBe(event);
    expect(third.heard).toEqual([]);
  });

  it('two listens on one URI both hear it, and either may leave without silencing the other', () => {
    const bus = new ListenBus();
    const one = listen(bus, scopeOf(U1));
    const two = listen(bus, scopeOf(U1));
    bus.publish(updated(U1));
    one.unsubscribe();
    bus.publish(updated(U1));
    expect([one.heard.length, two.heard.length]).toEqual([1, 2]);
  });

  it('tells the scope once that the listen subscribed, and once that it ended, however often it unsubscribes', () => {
    const bus = new ListenBus();
    const scope = scopeOf(U1);
    const { unsubscribe } = listen(bus, scope);
    expect(scope.subscribed).toHaveBeenCalledTimes(1);
    expect(scope.unsubscribed).not.toHaveBeenCalled();
    unsubscribe();
    unsubscribe();
    expect(scope.subscribed).toHaveBeenCalledTimes(1);
    expect(scope.unsubscribed).toHaveBeenCalledTimes(1);
  });

  it('an unsubscribed listen hears nothing more on any of its URIs, and size counts the listens open', () => {
    const bus = new ListenBus();
    const gone = listen(bus, scopeOf(U1, U2, U3));
    const kept = listen(bus, scopeOf(U3));
    expect(bus.size).toBe(2);
    gone.unsubscribe();
    gone.unsubscribe();
    expect(bus.size).toBe(1);
    for (const uri of [U1, U2, U3]) bus.publish(updated(uri));
    bus.publish({ kind: 'tools_list_changed' });
    expect(gone.heard).toEqual([]);
    expect(kept.heard).toEqual([updated(U3), { kind: 'tools_list_changed' }]);
    kept.unsubscribe();
    expect(bus.size).toBe(0);
  });

  it('a subscription made after an await inside serveListen is still filed under its scope', async () => {
    const bus = new ListenBus();
    const scope = scopeOf(U2);
    const heard: ServerEvent[] = [];
    const answer = await bus.serveListen(scope, async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      bus.subscribe((event) => heard.push(event));
      return 'served';
    });
    expect(answer).toBe('served');
    bus.publish(updated(U1));
    bus.publish(updated(U2));
    expect(heard).toEqual([updated(U2)]);
    expect(scope.subscribed).toHaveBeenCalledTimes(1);
  });

  it('a listener that throws does not stop the others, and the error is reported', () => {
    const boom = new Error('listener failed');
    const onError = vi.fn();
    const bus = new ListenBus(onError);
    const before = listen(bus, scopeOf(U1));
    bus.serveListen(scopeOf(U1), () =>
      bus.subscribe(() => {
        throw boom;
      }),
    );
    const after = listen(bus, scopeOf(U1));
    bus.publish(updated(U1));
    bus.publish({ kind: 'tools_list_changed' });
    expect(before.heard).toHaveLength(2);
    expect(after.heard).toHaveLength(2);
    expect(onError.mock.calls).toEqual([[boom], [boom]]);
  });

  it.each(['tools_list_changed', 'prompts_list_changed', 'resources_list_changed'] as const)(
    '%s reaches every listen, whatever URIs it names',
    (kind) => {
      const bus = new ListenBus();
      const listens = [listen(bus, scopeOf(U1)), listen(bus, scopeOf(U2, U3)), listen(bus, scopeOf())];
      bus.publish({ kind });
      expect(listens.map(({ heard }) => heard)).toEqual([[{ kind }], [{ kind }], [{ kind }]]);
    },
  );

  it('a listener subscribed outside any listen hears every update', () => {
    const bus = new ListenBus();
    const heard: ServerEvent[] = [];
    bus.subscribe((event) => heard.push(event));
    const scoped = listen(bus, scopeOf(U1));
    bus.publish(updated(U1));
    bus.publish(updated(U2));
    expect(heard).toEqual([updated(U1), updated(U2)]);
    expect(scoped.heard).toEqual([updated(U1)]);
  });

  it('an update costs only the listens naming its URI: 1,000 listens on other URIs are not called', () => {
    const bus = new ListenBus();
    let otherCalls = 0;
    for (let i = 0; i < 1000; i++)
      bus.serveListen(scopeOf(eventsUri(`p.other${i}`)), () =>
        bus.subscribe(() => {
          otherCalls += 1;
        }),
      );
    bus.publish(updated(U1));
    expect(otherCalls).toBe(0);
    const named = listen(bus, scopeOf(U1));
    bus.publish(updated(U1));
    expect([otherCalls, named.heard.length]).toEqual([0, 1]);
    expect(bus.size).toBe(1001);
  });
});

describe('checkListen and isListen', () => {
  const KEY = 'p1.abcDEF_-123';
  const URI = eventsUri(KEY);
  const listenOf = (resourceSubscriptions: unknown) => ({
    jsonrpc: '2.0',
    id: 1,
    method: 'subscriptions/listen',
    params: { notifications: { resourceSubscriptions } },
  });
  const everyone = () => true;

  it('knows a subscriptions/listen request from anything else', () => {
    expect(isListen(listenOf([URI]))).toBe(true);
    expect(isListen({ jsonrpc: '2.0', method: 'subscriptions/listen' })).toBe(false); // a notification
    expect(isListen({ jsonrpc: '2.0', id: 1, method: 'tools/call' })).toBe(false);
    expect(isListen([listenOf([URI])])).toBe(false);
    expect(isListen(null)).toBe(false);
    expect(isListen('subscriptions/listen')).toBe(false);
  });

  it('lets through the events URIs of users that exist, looking each key up', () => {
    const other = eventsUri('p2.other/key');
    const userExists = vi.fn((key: string) => key === KEY || key === 'p2.other/key');
    expect(checkListen(listenOf([URI, other]), 8, userExists)).toEqual({ uris: [URI, other] });
    expect(userExists.mock.calls).toEqual([[KEY], ['p2.other/key']]);
  });

  it('leaves a body without resourceSubscriptions (or a malformed one) to the SDK', () => {
    expect(checkListen({ jsonrpc: '2.0', id: 1, method: 'subscriptions/listen', params: { notifications: {} } }, 8, everyone)).toEqual({
      uris: [],
    });
    expect(checkListen({ jsonrpc: '2.0', id: 1, method: 'subscriptions/listen' }, 8, everyone)).toEqual({ uris: [] });
    expect(checkListen(listenOf(URI), 8, everyone)).toEqual({ uris: [] });
    expect(checkListen(null, 8, everyone)).toEqual({ uris: [] });
  });

  it('refuses more URIs than the maximum, naming both numbers, before looking any up', () => {
    const userExists = vi.fn(everyone);
    const uris = [URI, eventsUri('p.b'), eventsUri('p.c')];
    expect(checkListen(listenOf(uris.slice(0, 2)), 2, userExists)).toEqual({ uris: uris.slice(0, 2) });
    userExists.mockClear();
    const check = checkListen(listenOf(uris), 2, userExists);
    expect(check).toEqual({ refusal: expect.stringMatching(/names 3 resource URIs; at most 2 may be named/) });
    expect(userExists).not.toHaveBeenCalled();
  });

  it.each([
    ['with a cursor', `${URI}?after=3`],
    ['with a fragment', `${URI}#x`],
    ['of another scheme', `https://users/${KEY}/events`],
    ['with a trailing slash', `${URI}/`],
    ['with no key', 'chat://users//events'],
    ['with a key holding a slash', 'chat://users/a/b/events'],
    ['with a broken escape', 'chat://users/%ZZ/events'],
    ['naming another resource', `chat://users/${KEY}/profile`],
  ])('refuses a URI %s, quoting it', (_what, uri) => {
    const userExists = vi.fn(everyone);
    const check = checkListen(listenOf([URI, uri]), 8, userExists);
    expect(check).toEqual({ refusal: expect.stringContaining(`${JSON.stringify(uri)} is not a user's events URI`) });
    expect(userExists.mock.calls).toEqual([[KEY]]);
  });

  it.each([
    [42, '42'],
    [null, 'null'],
    [{ uri: URI }, JSON.stringify({ uri: URI })],
  ])('refuses a URI that is not a string (%j), quoting it', (value, quoted) => {
    expect(checkListen(listenOf([value]), 8, everyone)).toEqual({
      refusal: expect.stringContaining(`${quoted} is not a user's events URI`),
    });
  });

  it('quotes a huge URI cut short', () => {
    const huge = `chat://users/${'x'.repeat(10_000)}/events?after=1`;
    const check = checkListen(listenOf([huge]), 8, everyone);
    if (!('refusal' in check)) throw new Error(`expected a refusal, got ${JSON.stringify(check)}`);
    expect(check.refusal).toContain(JSON.stringify(huge).slice(0, 100));
    expect(check.refusal).toContain('…');
    expect(check.refusal).not.toContain('x'.repeat(200));
    expect(check.refusal.length).toBeLessThan(400);
  });

  it('refuses a well-formed events URI that names no user, quoting it', () => {
    const ghost = eventsUri('p1.ghost');
    const check = checkListen(listenOf([URI, ghost]), 8, (key) => key === KEY);
    expect(check).toEqual({ refusal: expect.stringContaining(`${JSON.stringify(ghost)} names no user here`) });
  });
});

describe('events keys and events URIs', () => {
  const secretOf = () => randomBytes(24).toString('base64url');

  it("keeps the token's process prefix and none of its secret", () => {
    const secret = secretOf();
    const key = eventsKeyOf(`proc-7.${secret}`);
    expect(key.startsWith('proc-7.')).toBe(true);
    expect(key).not.toContain(secret);
    expect(key).not.toContain(secret.slice(0, 8));
    expect(key).toMatch(/^proc-7\.[A-Za-z0-9_-]{32}$/);
  });

  it('is the same for one token and differs between tokens', () => {
    const secret = secretOf();
    expect(eventsKeyOf(`p1.${secret}`)).toBe(eventsKeyOf(`p1.${secret}`));
    expect(eventsKeyOf(`p1.${secret}`)).not.toBe(eventsKeyOf(`p1.${secretOf()}`));
    expect(eventsKeyOf(`p2.${secret}`)).not.toBe(eventsKeyOf(`p1.${secret}`).replace(/^p1\./, 'p2.'));
  });

  it('a token without a process prefix gives a bare key', () => {
    const secret = secretOf();
    const key = eventsKeyOf(secret);
    expect(key).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(key).not.toContain(secret);
  });

  it.each(['p1.abc', eventsKeyOf(`p9.${randomBytes(24).toString('base64url')}`), 'a/b', 'sp ace?#%', 'ключ'])(
    'eventsUri(%j) reads back as the same key, and is a bare events URI',
    (key) => {
      const uri = eventsUri(key);
      expect(uri).toMatch(/^chat:\/\/users\/[^/?#]+\/events$/);
      expect(keyOfEventsUri(uri)).toBe(key);
      expect(keyOfEventsUri(`${uri}?after=12`)).toBe(key);
      expect(isBareEventsUri(uri)).toBe(true);
    },
  );

  it('a URI with ?after= names the key for reading but is not bare', () => {
    expect(keyOfEventsUri('chat://users/p1.k/events?after=5')).toBe('p1.k');
    expect(isBareEventsUri('chat://users/p1.k/events?after=5')).toBe(false);
    expect(isBareEventsUri('chat://users/p1.k/events?')).toBe(false);
  });

  it.each(['chat://users/p1.k/event', 'chat://user/p1.k/events', 'chat://users/%E0%A4%A/events', 'x-chat://users/p1.k/events', ''])(
    '%j is no events URI',
    (uri) => {
      expect(keyOfEventsUri(uri)).toBeUndefined();
      expect(isBareEventsUri(uri)).toBe(false);
    },
  );
});
