/**
 * How a chart's paths become tests. A chart spec pairs a machine with drivers: for every
 * event type the machine takes, what a person or the network does to cause it (and the
 * concrete events the paths may use), or — for an event that is never a step of its own —
 * which step causes it. A replay sets up a scene, checks the start, then for each step
 * runs its driver and checks what people observe in the state the chart says comes next.
 */
import type { AnyEventObject, AnyStateMachine, Snapshot } from 'xstate';
import { chartTransitions } from '../../scripts/machineCatalog.js';
import { type ChartModel, type ChartPath, chartPaths, takes } from './chartPaths.js';
import { MATCHING_NEVER, type Timers, type World } from './world.js';

export interface Driver<S, E extends AnyEventObject, Scene> {
  /** The concrete events of this type the world can cause in `state`. */
  events(state: S): E[];
  /** What a person or the network does, in a few words: the step's name in a test title. */
  label(event: E, from: S): string;
  /** Does it, and records in the scene what people should observe next. */
  run(scene: Scene, event: E, from: S, to: S): Promise<void>;
}

/** An event that is never a step of its own: `follows` names the step that causes it. */
export interface Follows {
  follows: string;
}

/** An event no world can cause yet: the coverage report lists it, with why. */
export interface Pending {
  pending: string;
}

/**
 * An event this chart's paths never wait for, that another chart's paths drive (the
 * coverage test still measures it): `drivenIn` names that chart, and says how.
 */
export interface Elsewhere {
  drivenIn: string;
}

export type DriverEntry<S, E extends AnyEventObject, Scene> = Driver<S, E, Scene> | Follows | Pending | Elsewhere;

export interface ChartSpec<S extends Snapshot<unknown>, E extends AnyEventObject, Scene> {
  /** The chart's name in test titles, e.g. `user` or `queue (3 users)`. */
  readonly name: string;
  /** The machine in machines/ whose transitions the drivers must all know. */
  readonly machine: AnyStateMachine;
  readonly model: Omit<ChartModel<S, E>, 'events'>;
  /** Keyed by event type as the machine names it (`xstate.done.actor.*` included). */
  readonly drivers: Readonly<Record<string, DriverEntry<S, E, Scene>>>;
  /**
   * Steps of the model that are no event of the chart: what the rest of the system does
   * around it (a room's end, beside the queue), keyed by the model's event type, which
   * the machine must not take. The model takes every event their drivers give.
   */
  readonly steps?: Readonly<Record<string, Driver<S, E, Scene>>>;
  /** Transitions (by key) that no client can drive through the running system, and why. */
  readonly unreachable?: Readonly<Record<string, string>>;
  /**
   * The timers its paths run with, made from a world's (default: the world's presence
   * timers, and matching timers no path outlasts): a chart whose people stay quiet for
   * many steps asks for users that do not time out meanwhile; a chart whose paths wait
   * the matching timers out asks for the world's.
   */
  timers?(world: Timers): Timers;
  setup(world: World): Promise<Scene>;
  /** Asserts what people observe, and what the server's actors hold, in `state`. */
  check(scene: Scene, state: S, world: World): Promise<void>;
}

export interface NamedPath<S, E> extends ChartPath<S, E> {
  /** `idle ─enter_queue→ waiting ─a stranger enters the queue→ chatting`. */
  readonly story: string;
}

/** The timers a spec's paths run with in a world whose timers are `world`. */
export function timersOf(spec: { timers?(world: Timers): Timers }, world: Timers): Timers {
  return spec.timers ? spec.timers(world) : { ...world, ...MATCHING_NEVER };
}

const isDriver = <S, E extends AnyEventObject, Scene>(entry: DriverEntry<S, E, Scene> | undefined): entry is Driver<S, E, Scene> =>
  entry !== undefined && 'run' in entry;

/** The driver entry for an event type: exact, else a wildcard such as `xstate.done.actor.*`. */
export function entryFor<S, E extends AnyEventObject, Scene>(
  drivers: Readonly<Record<string, DriverEntry<S, E, Scene>>>,
  type: string,
): DriverEntry<S, E, Scene> | undefined {
  if (drivers[type]) return drivers[type];
  const wildcard = Object.keys(drivers).find((key) => key.endsWith('.*') && type.startsWith(key.slice(0, -1)));
  return wildcard === undefined ? undefined : drivers[wildcard];
}

/**
 * Fails when the machine takes an event type the drivers do not know, or the drivers
 * know one the machine no longer takes: a chart cannot grow a transition the replay
 * has not been taught to drive.
 */
export function assertDriversMatch(spec: ChartSpec<Snapshot<unknown>, AnyEventObject, unknown>): void {
  const types = new Set(chartTransitions(spec.machine).map((t) => t.eventType));
  const unknown = [...types].filter((type) => !spec.drivers[type]);
  const stale = Object.keys(spec.drivers).filter((type) => !types.has(type));
  const clashing = Object.keys(spec.steps ?? {}).filter((type) => types.has(type));
  const problems = [
    ...unknown.map((type) => `${spec.machine.id} takes "${type}", and the ${spec.name} drivers do not say how a client causes it`),
    ...stale.map((type) => `the ${spec.name} drivers know "${type}", which ${spec.machine.id} no longer takes`),
    ...clashing.map((type) => `the ${spec.name} model's own step "${type}" is an event ${spec.machine.id} takes: make it a driver`),
  ];
  if (problems.length > 0) throw new Error(`${problems.join('; ')}. Teach test/model how to drive it.`);
}

/**
 * The transitions each machine is known not to take end to end, and why: those of an
 * event type whose driver is pending, and those a spec names as unreachable.
 */
export function pendingTransitions(
  specs: readonly ChartSpec<Snapshot<unknown>, AnyEventObject, unknown>[],
): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const spec of specs) {
    const pending = out.get(spec.machine.id) ?? new Map<string, string>();
    for (const transition of chartTransitions(spec.machine)) {
      const entry = spec.drivers[transition.eventType];
      if (entry && 'pending' in entry) pending.set(transition.key, entry.pending);
    }
    for (const [key, why] of Object.entries(spec.unreachable ?? {})) pending.set(key, why);
    out.set(spec.machine.id, pending);
  }
  return out;
}

export function specPaths<S extends Snapshot<unknown>, E extends AnyEventObject, Scene>(spec: ChartSpec<S, E, Scene>): NamedPath<S, E>[] {
  return chartPaths(specModel(spec)).map((path) => ({ ...path, story: story(spec, path) }));
}

export function specModel<S extends Snapshot<unknown>, E extends AnyEventObject, Scene>(spec: ChartSpec<S, E, Scene>): ChartModel<S, E> {
  const steps = spec.steps ?? {};
  return {
    ...spec.model,
    events: (state) =>
      [...Object.values(spec.drivers), ...Object.values(steps)].flatMap((entry) => (isDriver(entry) ? entry.events(state) : [])),
    ...(spec.steps && { takes: (state: S, event: E) => event.type in steps || takes(state, event) }),
  };
}

/** The driver of a step: the model's own, else the chart event's. */
function driverOf<S extends Snapshot<unknown>, E extends AnyEventObject, Scene>(
  spec: ChartSpec<S, E, Scene>,
  type: string,
): Driver<S, E, Scene> {
  const entry = spec.steps?.[type] ?? entryFor(spec.drivers, type);
  if (!isDriver(entry)) throw new Error(`no driver for ${type}`);
  return entry;
}

function story<S extends Snapshot<unknown>, E extends AnyEventObject, Scene>(spec: ChartSpec<S, E, Scene>, path: ChartPath<S, E>): string {
  let from = path.start;
  const parts = [spec.model.key(from)];
  for (const step of path.steps) {
    parts.push(`─${labelOf(spec, step.event, from)}→ ${spec.model.key(step.state)}`);
    from = step.state;
  }
  return parts.join(' ');
}

function labelOf<S extends Snapshot<unknown>, E extends AnyEventObject, Scene>(spec: ChartSpec<S, E, Scene>, event: E, from: S): string {
  return driverOf(spec, event.type).label(event, from);
}

/** Replays one path in a world: each step done as a person would, then checked. */
export async function replay<S extends Snapshot<unknown>, E extends AnyEventObject, Scene>(
  spec: ChartSpec<S, E, Scene>,
  path: ChartPath<S, E>,
  world: World,
): Promise<void> {
  const scene = await spec.setup(world);
  await within(`at the start (${spec.model.key(path.start)})`, () => spec.check(scene, path.start, world));
  let from = path.start;
  for (const [index, step] of path.steps.entries()) {
    const entry = driverOf(spec, step.event.type);
    const where = `step ${index + 1}, ${entry.label(step.event, from)} → ${spec.model.key(step.state)}`;
    await within(where, () => entry.run(scene, step.event, from, step.state));
    await within(`${where}, checking`, () => spec.check(scene, step.state, world));
    from = step.state;
  }
}

async function within(where: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (error instanceof Error) error.message = `${where}: ${error.message}`;
    throw error;
  }
}
