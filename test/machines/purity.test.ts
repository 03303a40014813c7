import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const machinesDir = new URL('../../machines/', import.meta.url);
const files = readdirSync(machinesDir).filter((name) => name.endsWith('.ts'));

describe('machines/ stays pure', () => {
  it.each(files)('%s imports only xstate, zod and sibling machines, and reads no clock', (name) => {
    const source = readFileSync(new URL(name, machinesDir), 'utf8');
    const imported = [...source.matchAll(/from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]);
    for (const specifier of imported) expect(specifier).toMatch(/^(xstate|zod|\.\/[\w-]+\.js)$/);
    expect(source).not.toMatch(/Date\.now\(|new Date\(|Math\.random\(|randomUUID|setTimeout|setInterval/);
  });
});
