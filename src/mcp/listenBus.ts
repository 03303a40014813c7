/**
 * The 2026-07-28 push bus, indexed by resource URI: a user's update reaches the listens
 * naming that user's events URI, at the cost of those listens alone (the SDK's own bus
 * offers every event to every listen, which checks every URI it names).
 *
 * The SDK's listen router subscribes a listener without saying what it listens to, so
 * a listen is served inside `serveListen`, whose scope (the URIs, checked before) the
 * subscription made within it is filed under; the scope also hears when the listen's
 * subscription starts and ends, so what a client address holds can be counted.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';

type Listener = (event: ServerEvent) => void;

/** What one listen listens to, and who hears of its subscription. */
export interface ListenScope {
  readonly uris: readonly string[];
  /** The listen subscribed: its stream is open. */
  subscribed(): void;
  /** Its subscription ended (the client went, or the server closed it). */
  unsubscribed(): void;
}

export class ListenBus implements ServerEventBus {
  readonly #scope = new AsyncLocalStorage<ListenScope>();
  readonly #byUri = new Map<string, Set<Listener>>();
  /** Every listener, for the events that name no resource. */
  readonly #all = new Set<Listener>();
  /** Listeners subscribed outside a listen's scope (none today): they hear every update. */
  readonly #wildcards = new Set<Listener>();

  constructor(private readonly onError: (error: unknown) => void = () => {}) {}

  /** Serves a listen (`serve` reaches the SDK's listen router) filed under `scope.uris`. */
  serveListen<T>(scope: ListenScope, serve: () => T): T {
    return this.#scope.run(scope, serve);
  }

  publish(event: ServerEvent): void {
    const named = event.kind === 'resource_updated' ? this.#byUri.get(event.uri) : this.#all;
    // Every user's every event is published: with no one listening, it costs a lookup.
    if (named === undefined && this.#wildcards.size === 0) return;
    const listeners = this.#wildcards.size === 0 || named === this.#all ? [...named!] : [...(named ?? []), ...this.#wildcards];
    for (const listener of listeners)
      try {
        listener(event);
      } catch (error) {
        this.onError(error);
      }
  }

  subscribe(listener: Listener): () => void {
    const scope = this.#scope.getStore();
    const uris = scope?.uris ?? [];
    this.#all.add(listener);
    for (const uri of uris) {
      const listeners = this.#byUri.get(uri) ?? new Set();
      this.#byUri.set(uri, listeners.add(listener));
    }
    if (!scope) this.#wildcards.add(listener);
    scope?.subscribed();
    let live = true;
    return () => {
      if (!live) return;
      live = false;
      this.#all.delete(listener);
      this.#wildcards.delete(listener);
      for (const uri of uris) {
        const listeners = this.#byUri.get(uri);
        listeners?.delete(listener);
        if (listeners?.size === 0) this.#byUri.delete(uri);
      }
      scope?.unsubscribed();
    };
  }

  /** Listens open now. */
  get size(): number {
    return this.#all.size;
  }
}
