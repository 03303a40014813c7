/**
 * Who a request came from: the socket's peer, or, behind proxies named by
 * `--trust-proxy`, the rightmost `X-Forwarded-For` entry that a trusted hop did not add.
 * Entries a client wrote itself sit to the left of what trusted proxies appended, so
 * they never count (README "Running it on the open internet").
 */
import { BlockList, isIP } from 'node:net';
import type { TrustProxy } from '../config.js';

/** Resolves a request's client address from its socket peer and its `X-Forwarded-For`. */
export type AddressResolver = (peer: string | undefined, forwardedFor: string | undefined) => string;

/**
 * An address as it is compared: an IPv4 address as IPv6 sockets report it
 * (`::ffff:127.0.0.1`) is that IPv4 address, and the port some proxies write after an
 * entry (`1.2.3.4:5678`, `[2001:db8::7]:443`) is not part of it.
 */
export function plainAddress(address: string): string {
  const unported = /^\[([^\]]+)\](?::\d+)?$/.exec(address)?.[1] ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(address)?.[1] ?? address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(unported);
  return mapped ? mapped[1]! : unported;
}

/**
 * The resolver for a `--trust-proxy` setting. The hops, nearest first, are the peer and
 * then the `X-Forwarded-For` entries from right to left; the client is the first hop
 * that is not a trusted proxy (with a count: the hop that many steps away, or the
 * farthest there is).
 */
export function addressResolver(trust: TrustProxy): AddressResolver {
  const trusted = 'cidrs' in trust ? blockListOf(trust.cidrs) : undefined;
  const hops = 'hops' in trust ? trust.hops : 0;
  return (peer, forwardedFor) => {
    const nearest = plainAddress(peer ?? 'unknown');
    if ((trusted === undefined && hops === 0) || forwardedFor === undefined) return nearest;
    const chain = [
      nearest,
      ...forwardedFor
        .split(',')
        .map((entry) => plainAddress(entry.trim()))
        .reverse(),
    ];
    if (trusted === undefined) return validOr(chain[Math.min(hops, chain.length - 1)]!, nearest);
    let client = 0;
    while (client < chain.length - 1 && isTrusted(trusted, chain[client]!)) client += 1;
    return validOr(chain[client]!, nearest);
  };
}

/** A forwarded entry that is not an address (garbage a proxy passed on) names nobody: the nearest hop answers for it. */
const validOr = (address: string, nearest: string) => (isIP(address) === 0 ? nearest : address);

function blockListOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = '', prefix] = cidr.split('/');
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

function isTrusted(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}
