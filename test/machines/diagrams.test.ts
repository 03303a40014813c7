import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import {
  committedSection,
  type DrawnMachine,
  loadDrawnMachines,
  mermaid,
  renderMachinesSection,
  STUDIO_DIR,
  studioConfig,
  studioFiles,
} from '../../scripts/diagrams.js';
import { chartTransitions } from '../../scripts/machineCatalog.js';

const root = new URL('../../', import.meta.url);
const FIX = 'Run `npm run diagrams` and commit README.md and scripts/studio/.';

let machines: DrawnMachine[];
beforeAll(async () => {
  machines = await loadDrawnMachines();
});

describe('the machine diagrams are generated from the code', () => {
  it('README.md shows what the machines are now', () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    expect(committedSection(readme), FIX).toBe(renderMachinesSection(machines));
  });

  it('scripts/studio/ holds one Stately Studio export per machine, as the code generates it', () => {
    const dir = new URL(`${STUDIO_DIR}/`, root);
    const expected = studioFiles(machines);
    const committed = existsSync(dir)
      ? readdirSync(dir)
          .filter((name) => name.endsWith('.json'))
          .sort()
      : [];
    expect(committed, FIX).toEqual([...expected.keys()].sort());
    for (const [name, text] of expected) expect(readFileSync(new URL(name, dir), 'utf8'), `${STUDIO_DIR}/${name}: ${FIX}`).toBe(text);
  });

  it('draws every machine in machines/, and every transition of each', () => {
    expect(machines.map(({ machine }) => machine.id)).toEqual(expect.arrayContaining(['user', 'presence', 'queue', 'room']));
    for (const { machine } of machines) {
      const drawn = mermaid(machine).join('\n');
      for (const t of chartTransitions(machine)) expect(drawn, `${machine.id}: ${t.key}`).toContain(t.event);
    }
  });

  it('exports each machine as a config that XState reads back into the same chart', () => {
    for (const { machine } of machines) {
      const imported = createMachine(JSON.parse(JSON.stringify(studioConfig(machine))) as never);
      expect(
        chartTransitions(imported).map((t) => [t.key, t.actions]),
        machine.id,
      ).toEqual(chartTransitions(machine).map((t) => [t.key, t.actions]));
    }
  });

  it('shows guards and delays, as the charts name them', () => {
    const presence = machines.find(({ machine }) => machine.id === 'presence')!.machine;
    expect(mermaid(presence)).toContain('  offline --> expired : after idleTimeout / expireTimedOut');
    expect(mermaid(presence)).toContain('    offline_recent --> offline_away : after pairableTimeout / reportAway');
    expect(studioConfig(presence)).toMatchObject({
      id: 'presence',
      initial: 'offline',
      states: { offline: { after: { idleTimeout: { target: 'expired' } } }, detached: { after: { graceTimeout: { target: 'expired' } } } },
    });
    const user = machines.find(({ machine }) => machine.id === 'user')!.machine;
    expect(mermaid(user)).toContain('  waiting --> idle : chat.leave [leavesOwnRoom] / judgePartner, leaveQueue');
  });
});
