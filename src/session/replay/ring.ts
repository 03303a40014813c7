/**
 * A bounded run of numbered entries, oldest dropped first. Entry `n` lives in slot
 * `(n - 1) % capacity`; the slots grow as entries come, so an idle session costs
 * nothing for the capacity it may never use.
 */
export class Ring<T> {
  readonly #slots: T[] = [];
  #last = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  }

  /** Id of the newest entry; 0 when empty. */
  get last(): number {
    return this.#last;
  }

  /** Id of the oldest entry still held. */
  get first(): number {
    return Math.max(1, this.#last - this.capacity + 1);
  }

  push(value: T): number {
    if (this.#slots.length < this.capacity) this.#slots.push(value);
    else this.#slots[this.#last % this.capacity] = value;
    this.#last += 1;
    return this.#last;
  }

  /** Entry `id`, if the ring still holds it. */
  at(id: number): T | undefined {
    return id >= this.first && id <= this.#last ? this.#slots[(id - 1) % this.capacity] : undefined;
  }

  /** Entries after `id`, oldest first (from `first` when `id` fell out of the ring). */
  *after(id: number): Generator<[number, T]> {
    for (let n = Math.max(id + 1, this.first); n <= this.#last; n++) {
      yield [n, this.#slots[(n - 1) % this.capacity] as T];
    }
  }
}
