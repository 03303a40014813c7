/**
 * The statecharts as data, read from the machines themselves: which machines
 * `machines/` exports, their states, and every transition with its event, guard,
 * delay, target and actions. The README diagrams, the Stately Studio exports and the
 * model-based tests' coverage all read the charts here, so none of them can drift
 * from the code.
 */
import { readdirSync } from 'node:fs';
import { type AnyStateMachine, StateMachine } from 'xstate';

/** A state node as XState builds it from a machine's config (the parts read here). */
export interface ChartNode {
  readonly id: string;
  readonly key: string;
  readonly path: readonly string[];
  readonly type: string;
  readonly parent?: ChartNode;
  readonly states: Readonly<Record<string, ChartNode>>;
  readonly transitions: ReadonlyMap<string, readonly ChartTransitionDefinition[]>;
  readonly always?: readonly ChartTransitionDefinition[];
  readonly invoke: readonly { id: string; src: unknown }[];
  readonly initial?: { target: readonly ChartNode[] };
}

/** A transition as XState builds it (the parts read here). */
export interface ChartTransitionDefinition {
  readonly eventType: string;
  readonly source: ChartNode;
  readonly target?: readonly ChartNode[];
  readonly guard?: unknown;
  readonly actions: readonly unknown[];
  readonly delay?: string | number;
}

export interface ChartTransition {
  /** The machine's id, e.g. `user`. */
  readonly machine: string;
  /** Unique within the machine, and readable: `chatting ─chat.send [isOwnRoom]→ chatting`. */
  readonly key: string;
  /** The source state's path (`waiting`), or `*` for a transition the machine takes in any state. */
  readonly source: string;
  /** The event as a person reads it: `chat.send`, or `after idleTimeout` for a delay. */
  readonly event: string;
  /** The event type XState matches, e.g. `xstate.after.idleTimeout.presence.offline`. */
  readonly eventType: string;
  readonly guard?: string;
  /** The target state's path; undefined when the machine stays where it is. */
  readonly target?: string;
  readonly actions: readonly string[];
  readonly delay?: string;
}

/** Machines listed first in diagrams and reports; any other machine follows by name. */
const PREFERRED_ORDER = ['user', 'presence', 'queue', 'room'];

/**
 * Every machine exported by a module of `machines/` (the sources under vitest, the
 * compiled modules under `dist/`), in a stable order.
 */
export async function loadMachines(dir = new URL('../machines/', import.meta.url)): Promise<AnyStateMachine[]> {
  return (await loadMachineFiles(dir)).map(({ machine }) => machine);
}

/** Like `loadMachines`, with the file each machine comes from (`user.ts`, or `user.js` once built). */
export async function loadMachineFiles(
  dir = new URL('../machines/', import.meta.url),
): Promise<{ file: string; machine: AnyStateMachine }[]> {
  const files = readdirSync(dir)
    .filter((name) => /\.(ts|js)$/.test(name) && !name.endsWith('.d.ts'))
    .sort();
  const machines = new Map<string, { file: string; machine: AnyStateMachine }>();
  for (const file of files) {
    const module = (await import(new URL(file, dir).href)) as Record<string, unknown>;
    for (const value of Object.values(module)) if (value instanceof StateMachine) machines.set(value.id, { file, machine: value });
  }
  const rank = (id: string) => (PREFERRED_ORDER.includes(id) ? PREFERRED_ORDER.indexOf(id) : PREFERRED_ORDER.length);
  return [...machines.values()].sort((a, b) => rank(a.machine.id) - rank(b.machine.id) || a.machine.id.localeCompare(b.machine.id));
}

export function rootOf(machine: AnyStateMachine): ChartNode {
  return machine.root as unknown as ChartNode;
}

/** Every state node below the root, parents before children, in document order. */
export function chartStates(machine: AnyStateMachine): ChartNode[] {
  const out: ChartNode[] = [];
  const walk = (node: ChartNode) => {
    for (const child of Object.values(node.states)) {
      out.push(child);
      walk(child);
    }
  };
  walk(rootOf(machine));
  return out;
}

export const statePath = (node: ChartNode): string => (node.path.length === 0 ? '*' : node.path.join('.'));

/** `isOwnRoom`, `!isResumable`, `a && b`: a guard as the chart names it. */
export function guardLabel(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const { name, guards } = guard as { name?: string; guards?: unknown[] };
    if (Array.isArray(guards)) {
      const parts = guards.map((g) => guardLabel(g) ?? 'guard');
      if (name === 'not') return `!${parts[0]}`;
      if (name === 'and') return parts.join(' && ');
      if (name === 'or') return parts.join(' || ');
    }
    return name || 'inline guard';
  }
  if (typeof guard === 'object' && 'type' in guard) return String((guard as { type: unknown }).type);
  return 'guard';
}

/** An action as the chart names it; inline actions by their XState type. */
export function actionLabel(action: unknown): string {
  if (typeof action === 'string') return action;
  if (action && (typeof action === 'object' || typeof action === 'function') && 'type' in action)
    return String((action as { type: unknown }).type);
  if (typeof action === 'function') return action.name || 'inline action';
  return 'action';
}

const AFTER = /^xstate\.after\.([^.]+)\./;

/** `after idleTimeout` for a delayed transition, else the event type itself. */
function eventLabel(definition: ChartTransitionDefinition): { event: string; delay?: string } {
  if (definition.delay !== undefined) return { event: `after ${definition.delay}`, delay: String(definition.delay) };
  const after = AFTER.exec(definition.eventType);
  return after ? { event: `after ${after[1]}` } : { event: definition.eventType };
}

/** Every transition of the machine, from its definition, in document order. */
export function chartTransitions(machine: AnyStateMachine): ChartTransition[] {
  return [rootOf(machine), ...chartStates(machine)].flatMap((node) => describeNode(machine.id, node));
}

/**
 * The transition a definition stands for, keyed as `chartTransitions` keys it, also for
 * a definition that inspection reports as taken at run time.
 */
export function describeTransition(machine: string, definition: ChartTransitionDefinition): ChartTransition {
  const siblings = describeNode(machine, definition.source);
  const index = definitionsOf(definition.source).indexOf(definition);
  return siblings[index] ?? describeOne(machine, definition);
}

function definitionsOf(node: ChartNode): ChartTransitionDefinition[] {
  return [...node.transitions.values()].flat().concat(node.always ?? []);
}

/** The transitions leaving one node; a key repeated within it gets a `#n` suffix. */
function describeNode(machine: string, node: ChartNode): ChartTransition[] {
  const seen = new Map<string, number>();
  return definitionsOf(node).map((definition) => {
    const transition = describeOne(machine, definition);
    const count = (seen.get(transition.key) ?? 0) + 1;
    seen.set(transition.key, count);
    return count === 1 ? transition : { ...transition, key: `${transition.key} #${count}` };
  });
}

function describeOne(machine: string, definition: ChartTransitionDefinition): ChartTransition {
  const source = statePath(definition.source);
  const target = definition.target && definition.target.length > 0 ? definition.target.map(statePath).join(', ') : undefined;
  const guard = guardLabel(definition.guard);
  const { event, delay } = eventLabel(definition);
  return {
    machine,
    key: `${source} ─${event}${guard ? ` [${guard}]` : ''}→ ${target ?? source}`,
    source,
    event,
    eventType: definition.eventType,
    ...(guard !== undefined && { guard }),
    ...(target !== undefined && { target }),
    actions: definition.actions.map(actionLabel),
    ...(delay !== undefined && { delay }),
  };
}
