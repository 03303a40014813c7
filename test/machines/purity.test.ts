import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const machinesDir = new URL('../../machines/', import.meta.url);
const files = readdirSync(machinesDir).filter((name) => name.endsWith('.ts'));

describe('machines/ stays pure', () => {
  it.each(files)('%s imports only xstate, zod and sibling machines, and touches no clock, process or I/O', (name) => {
    // Comments may speak of clocks and processes; the code may not use them.
    const source = readFileSync(new URL(name, machinesDir), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    const imported = [
      ...[...source.matchAll(/\bfrom\s+['"]([^'"]+)['"]/g)].map((m) => m[1]),
      ...[...source.matchAll(/\bimport\s+['"]([^'"]+)['"]/g)].map((m) => m[1]),
    ];
    for (const specifier of imported) expect(specifier).toMatch(/^(xstate|zod|\.\/[\w-]+\.js)$/);
    expect(source).not.toMatch(/\bimport\s*\(|\brequire\s*\(/);
    expect(source).not.toMatch(
      /Date\.now\(|new Date\(|performance\.now\(|Math\.random\(|randomUUID|setTimeout|setInterval|\bprocess\.|globalThis\./,
    );
  });
});
