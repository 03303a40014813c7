/**
 * Paths through a statechart, generated with @xstate/graph from the machine itself.
 *
 * A chart model says which concrete events the world can cause in a state (each one
 * filtered through the chart: an event the state does not take is never a step) and
 * which part of a snapshot is the state a replay checks. From that, every path is:
 * - a shortest path to every state (`getShortestPaths`);
 * - a simple path (no state twice), at most `maxSimpleSteps` long and at most
 *   `maxSimplePaths` of them, each kept only when it takes a step no path before it took;
 * - for every step (state, event) of the chart's adjacency map that no path above takes,
 *   the shortest path to its state followed by it (unless a model turns this off, and
 *   narrows its shortest paths, where the state space is too big to walk all of it);
 * then a path that is the start of a longer one is dropped, as @xstate/graph's test
 * models do. So every edge of the model is on some path, and the paths stay few.
 */
import { getAdjacencyMap, getShortestPaths } from '@xstate/graph';
import { type ActorLogic, type AnyActorScope, type AnyEventObject, createEmptyActor, type Snapshot } from 'xstate';

export interface ChartModel<S extends Snapshot<unknown>, E extends AnyEventObject> {
  /** A machine (its input, system and emitted events are the model's business, not the paths'). */
  // biome-ignore lint/suspicious/noExplicitAny: each chart has its own input, system and emitted types, and the paths read none of them.
  readonly logic: ActorLogic<S, E, any, any, any>;
  readonly input?: unknown;
  /**
   * Events that happen before a replay can first look, so paths start after them (a
   * legacy SSE session opens with its stream: it is never seen without it).
   */
  readonly prelude?: readonly E[];
  /** The concrete events the world can cause in `state` (events the chart refuses are dropped). */
  events(state: S): E[];
  /** The part of a snapshot a replay checks, as a short readable key. */
  key(state: S): string;
  readonly maxSimpleSteps: number;
  readonly maxSimplePaths: number;
  /** The states shortest paths are made to (default: every state). */
  readonly shortestTo?: (state: S) => boolean;
  /** Whether every edge no other path takes gets a path of its own (default: yes). */
  readonly everyEdge?: boolean;
  /**
   * Whether the model takes `event` in `state` (default: what the chart says with `can`):
   * a model whose steps include what the rest of the system does says so here.
   */
  readonly takes?: (state: S, event: E) => boolean;
}

export interface ChartStep<S, E> {
  readonly event: E;
  /** The state the chart is in after the event. */
  readonly state: S;
}

export interface ChartPath<S, E> {
  readonly start: S;
  readonly steps: readonly ChartStep<S, E>[];
}

type Adjacency<S, E> = Record<string, { state: S; transitions: Record<string, { event: E; state: S }> }>;

const eventKey = (event: AnyEventObject) => JSON.stringify(event);

export function chartPaths<S extends Snapshot<unknown>, E extends AnyEventObject>(model: ChartModel<S, E>): ChartPath<S, E>[] {
  const options = traversal(model);
  // @xstate/graph's options are typed for machines; these are its documented traversal options.
  const adjacency = getAdjacencyMap(model.logic, options as never) as unknown as Adjacency<S, E>;
  const allShortest = getShortestPaths(model.logic, options as never).map((path) => fromGraph<S, E>(path));
  const start = allShortest.find((path) => path.steps.length === 0)?.start ?? allShortest[0]!.start;
  const shortestTo = new Map(allShortest.map((path) => [model.key(lastState(path)), path]));
  const shortest = model.shortestTo ? allShortest.filter((path) => model.shortestTo!(lastState(path))) : allShortest;

  const edgeKey = (from: S, event: E) => `${model.key(from)} ${eventKey(event)}`;
  const taken = new Set<string>();
  const take = (path: ChartPath<S, E>) => {
    let from = path.start;
    for (const step of path.steps) {
      taken.add(edgeKey(from, step.event));
      from = step.state;
    }
  };
  shortest.forEach(take);

  const simple: ChartPath<S, E>[] = [];
  for (const trail of boundedSimplePaths(adjacency, model.key(start), model.maxSimpleSteps, model.key)) {
    if (simple.length >= model.maxSimplePaths) break;
    if (trail.every(([fromKey, event]) => taken.has(`${fromKey} ${eventKey(event)}`))) continue;
    const path = {
      start,
      steps: trail.map(([fromKey, event]) => ({ event, state: adjacency[fromKey]!.transitions[eventKey(event)]!.state })),
    };
    take(path);
    simple.push(path);
  }

  const completions: ChartPath<S, E>[] = [];
  for (const [fromKey, { state: from, transitions }] of model.everyEdge === false ? [] : Object.entries(adjacency)) {
    for (const { event, state } of Object.values(transitions)) {
      if (taken.has(edgeKey(from, event))) continue;
      const prefix = shortestTo.get(fromKey);
      if (!prefix) continue;
      const path = { start, steps: [...prefix.steps, { event, state }] };
      take(path);
      completions.push(path);
    }
  }
  return withoutPrefixes([...shortest, ...simple, ...completions]).map((path) => derive(model, path));
}

/**
 * An actor scope in which a chart's transitions run without a live actor, as
 * @xstate/graph runs them: actions are resolved, never executed. The events the
 * transitions emit (`emit`, resolved with their payload) are pushed to `emitted`, when given.
 */
export function mockActorScope(emitted?: AnyEventObject[]): AnyActorScope {
  const empty = createEmptyActor();
  return {
    self: empty,
    logger: () => {},
    id: '',
    sessionId: 'model',
    defer: () => {},
    system: empty.system,
    stopChild: () => {},
    emit: () => {},
    actionExecutor: ({ type, params }: { type: string; params?: unknown }) => {
      if (emitted && type === 'xstate.emit') emitted.push((params as { event: AnyEventObject }).event);
    },
  } as unknown as AnyActorScope;
}

/**
 * The path's states recomputed by running its events from the initial state: the
 * adjacency map keeps one snapshot per key, and the replay checks the real ones. A key
 * that changes on the way means the model's key is too coarse for its events.
 */
function derive<S extends Snapshot<unknown>, E extends AnyEventObject>(model: ChartModel<S, E>, path: ChartPath<S, E>): ChartPath<S, E> {
  const scope = mockActorScope();
  const start = initialState(model, scope);
  let state = start;
  const steps = path.steps.map((step) => {
    state = model.logic.transition(state, step.event, scope);
    if (model.key(state) !== model.key(step.state))
      throw new Error(
        `the model's key misses something: ${eventKey(step.event)} reaches ${model.key(state)}, not ${model.key(step.state)}`,
      );
    return { event: step.event, state };
  });
  return { start, steps };
}

/** Every edge (state key, event) of the model: what the generated paths must take. */
export function chartEdges<S extends Snapshot<unknown>, E extends AnyEventObject>(model: ChartModel<S, E>): string[] {
  const adjacency = getAdjacencyMap(model.logic, traversal(model) as never) as unknown as Adjacency<S, E>;
  return Object.entries(adjacency).flatMap(([fromKey, { transitions }]) =>
    Object.values(transitions).map(({ event }) => `${fromKey} ${eventKey(event)}`),
  );
}

export function pathEdges<S extends Snapshot<unknown>, E extends AnyEventObject>(model: ChartModel<S, E>, path: ChartPath<S, E>): string[] {
  let from = path.start;
  return path.steps.map((step) => {
    const key = `${model.key(from)} ${eventKey(step.event)}`;
    from = step.state;
    return key;
  });
}

/** @xstate/graph's traversal options for a model: its events, its keys, its start. */
function traversal<S extends Snapshot<unknown>, E extends AnyEventObject>(model: ChartModel<S, E>) {
  return {
    input: model.input,
    fromState: initialState(model, mockActorScope()),
    serializeState: (state: S) => model.key(state),
    events: (state: S) => model.events(state).filter((event) => (model.takes ?? takes)(state, event)),
  };
}

/** The model's state once its prelude has happened. */
function initialState<S extends Snapshot<unknown>, E extends AnyEventObject>(model: ChartModel<S, E>, scope: AnyActorScope): S {
  let state = model.logic.getInitialSnapshot(scope, model.input);
  for (const event of model.prelude ?? []) state = model.logic.transition(state, event, scope);
  return state;
}

const lastState = <S, E>(path: ChartPath<S, E>): S => path.steps.at(-1)?.state ?? path.start;

/** Whether the chart takes `event` in `state` (a machine says so with `can`). */
export function takes(state: Snapshot<unknown>, event: AnyEventObject): boolean {
  const can = (state as { can?: (event: AnyEventObject) => boolean }).can;
  return typeof can === 'function' ? can.call(state, event) : true;
}

/** @xstate/graph's path (its first step is the initial state, reached by `xstate.init`) as a ChartPath. */
function fromGraph<S, E>(path: { steps: { state: unknown; event: unknown }[] }): ChartPath<S, E> {
  const [init, ...rest] = path.steps;
  return { start: init!.state as S, steps: rest.map((step) => ({ event: step.event as E, state: step.state as S })) };
}

/** Depth-first, in event order: simple paths that cannot be extended within `maxSteps`. */
function boundedSimplePaths<S, E>(
  adjacency: Adjacency<S, E>,
  startKey: string,
  maxSteps: number,
  key: (state: S) => string,
): [string, E][][] {
  const out: [string, E][][] = [];
  const trail: [string, E][] = [];
  const onTrail = new Set([startKey]);
  const visit = (fromKey: string) => {
    let extended = false;
    if (trail.length < maxSteps) {
      for (const { event, state } of Object.values(adjacency[fromKey]!.transitions)) {
        const nextKey = key(state);
        if (onTrail.has(nextKey)) continue;
        extended = true;
        trail.push([fromKey, event]);
        onTrail.add(nextKey);
        visit(nextKey);
        onTrail.delete(nextKey);
        trail.pop();
      }
    }
    if (!extended && trail.length > 0) out.push([...trail]);
  };
  visit(startKey);
  return out;
}

/** Drops every path whose events are the start of another path's. */
function withoutPrefixes<S, E extends AnyEventObject>(paths: ChartPath<S, E>[]): ChartPath<S, E>[] {
  const sequences = paths.map((path) => path.steps.map((step) => eventKey(step.event)));
  const kept: ChartPath<S, E>[] = [];
  const keptSequences: string[][] = [];
  const order = paths.map((_, i) => i).sort((a, b) => sequences[b]!.length - sequences[a]!.length);
  for (const i of order) {
    const sequence = sequences[i]!;
    const isPrefix = keptSequences.some((longer) => sequence.every((event, n) => longer[n] === event));
    if (isPrefix || sequence.length === 0) continue;
    kept.push(paths[i]!);
    keptSequences.push(sequence);
  }
  return kept.sort((a, b) => paths.indexOf(a) - paths.indexOf(b));
}
