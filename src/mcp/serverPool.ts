/**
 * 2026-07-28 servers, kept between requests. The SDK serves each request on a server of
 * its own, connected to a transport for that one exchange, and closes it when the answer
 * has gone out or the client went away; a closed server holds nothing of the exchange
 * (its transport, pending requests and handlers' abort signals go with the close), so
 * the next request of the same kind is served by it instead of by a new one. One
 * request at a time: a server is lent until its exchange closes, or, when the SDK never
 * connected it (a listen, a request refused before dispatch), until the request is over.
 */
import type { McpServer } from '@modelcontextprotocol/server';

/** A server lent to one request. */
export interface Loan {
  readonly server: McpServer;
}

/**
 * Servers of each kind, lent one request at a time. What the SDK seeds into a server from
 * a request's envelope (the client's info and capabilities) stays until the next request
 * overwrites it: no handler here reads it, as with the 2025 era's shared server.
 */
export class ServerPool<K> {
  readonly #idle = new Map<K, McpServer[]>();
  /** Each lent server's loan: a late release of an earlier loan must not free a later one. */
  readonly #loans = new Map<McpServer, Loan & { kind: K }>();
  #built = 0;

  /**
   * @param build makes a server of a kind (the tools it serves).
   * @param maxIdle servers of one kind kept between requests; more are left to the collector.
   */
  constructor(
    private readonly build: (kind: K) => McpServer,
    private readonly maxIdle: number,
  ) {}

  /** A server of `kind` for one request: an idle one, else a new one. */
  lend(kind: K): Loan {
    const server = this.#idle.get(kind)?.pop() ?? this.#newServer(kind);
    const loan = { server, kind };
    this.#loans.set(server, loan);
    return loan;
  }

  /**
   * The request that had `loan` is over. A server the SDK never connected is free now;
   * one it connected is freed when its exchange closes (a streamed answer may still be
   * going out).
   */
  returned(loan: Loan): void {
    if (loan.server.server.transport === undefined) this.#free(loan);
  }

  /** Servers lent now. */
  get lent(): number {
    return this.#loans.size;
  }

  /** Servers built so far. */
  get built(): number {
    return this.#built;
  }

  #newServer(kind: K): McpServer {
    this.#built++;
    const server = this.build(kind);
    // The SDK wraps this for each exchange and calls it once the exchange has closed.
    // A server is connected only while lent, so the loan it is on now is the one whose exchange closed.
    server.server.onclose = () => {
      const loan = this.#loans.get(server);
      if (loan) this.#free(loan);
    };
    return server;
  }

  /** Takes the loan's server back, unless it has been freed and lent again since. */
  #free(loan: Loan): void {
    const current = this.#loans.get(loan.server);
    if (current !== loan) return;
    this.#loans.delete(loan.server);
    const idle = this.#idle.get(current.kind);
    if (!idle) this.#idle.set(current.kind, [loan.server]);
    else if (idle.length < this.maxIdle) idle.push(loan.server);
  }
}
