/**
 * Transition coverage, measured: which transitions of which machine the running actors
 * took, as their inspection events report them (`@xstate.microstep` lists the
 * transitions of each step), against every transition the machines define.
 */
import type { AnyActorRef, AnyStateMachine, InspectionEvent } from 'xstate';
import { type ChartTransitionDefinition, chartTransitions, describeTransition } from '../../scripts/machineCatalog.js';

export class TransitionRecorder {
  /** Transition keys taken, by machine id. */
  readonly #taken = new Map<string, Set<string>>();

  /** An inspection observer for every actor of the systems to measure. */
  readonly see = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.microstep') return;
    const machine = (event.actorRef as AnyActorRef & { logic?: { id?: string } }).logic?.id;
    const transitions = (event as { _transitions?: ChartTransitionDefinition[] })._transitions ?? [];
    if (!machine) return;
    const taken = this.#taken.get(machine) ?? new Set<string>();
    for (const transition of transitions) taken.add(describeTransition(machine, transition).key);
    this.#taken.set(machine, taken);
  };

  taken(machine: string): ReadonlySet<string> {
    return this.#taken.get(machine) ?? new Set();
  }
}

export interface MachineCoverage {
  machine: string;
  total: number;
  covered: string[];
  /** Not driven, and known not to be drivable yet: transition key → why. */
  pending: Map<string, string>;
  /** Neither driven nor known pending: what fails the suite. */
  missing: string[];
  /** Listed as pending, yet driven: the list is stale. */
  stalePending: string[];
}

export function coverageOf(machine: AnyStateMachine, recorder: TransitionRecorder, pending: ReadonlyMap<string, string>): MachineCoverage {
  const all = chartTransitions(machine).map((t) => t.key);
  const taken = recorder.taken(machine.id);
  const covered = all.filter((key) => taken.has(key));
  const notCovered = all.filter((key) => !taken.has(key));
  return {
    machine: machine.id,
    total: all.length,
    covered,
    pending: new Map(notCovered.filter((key) => pending.has(key)).map((key) => [key, pending.get(key)!])),
    missing: notCovered.filter((key) => !pending.has(key)),
    stalePending: covered.filter((key) => pending.has(key)),
  };
}

/** `user: 15/15 transitions`, with a line for each pending one. */
export function coverageLine(coverage: MachineCoverage): string {
  const head = `${coverage.machine}: ${coverage.covered.length}/${coverage.total} transitions`;
  const pending = [...coverage.pending].map(([key, why]) => `\n    pending  ${key} — ${why}`);
  const missing = coverage.missing.map((key) => `\n    MISSING  ${key}`);
  return head + missing.join('') + pending.join('');
}
