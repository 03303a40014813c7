/**
 * The folders of src/ are its architecture (README "How it is built"): dependencies
 * point inward — http → session → mcp → chat → machines — and no file imports, even
 * for types, a file that imports it back. The chat window (src/ui/) is browser code on
 * its own: it imports nothing of the server and no package, and the server imports
 * none of it (scripts/buildWindow.ts builds it into dist/window/, which the server reads).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Each file of src/ and machines/ and the files it imports (relative imports, types included). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of [...sourceFiles('src'), ...sourceFiles('machines')]) {
    const source = readFileSync(join(root, file), 'utf8');
    const specifiers = [...source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
    graph.set(
      file,
      specifiers.map((specifier) => relative(root, resolve(root, dirname(file), specifier)).replace(/\.js$/, '.ts')),
    );
  }
  return graph;
}

/** Every cycle's files, in import order; none when the graph is acyclic. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (file: string) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      found.push([...path.slice(path.indexOf(file)), file]);
      return;
    }
    state.set(file, 'visiting');
    path.push(file);
    for (const next of graph.get(file) ?? []) visit(next);
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file);
  return found;
}

/** What each part may not import (by path prefix). */
const FORBIDDEN: Record<string, string[]> = {
  'src/chat/': ['src/mcp/', 'src/session/', 'src/http/', 'src/ops/', 'src/server.ts'],
  'src/mcp/': ['src/session/', 'src/http/', 'src/server.ts'],
  'src/session/': ['src/http/', 'src/server.ts'],
  // The composition root alone chooses the broker: the HTTP layer serves whichever it is given.
  'src/http/': [
    'src/chat/broker/memoryBroker.ts',
    'src/chat/broker/redisBroker.ts',
    'src/chat/broker/redis/',
    'src/chat/broker/roomHost.ts',
  ],
  'src/ops/': ['src/chat/', 'src/mcp/', 'src/session/', 'src/http/', 'src/server.ts'],
  'machines/': ['src/'],
};

describe('the layout of src/', () => {
  const graph = importGraph();

  it('reads every file and resolves every import to a file that exists', () => {
    expect(graph.size).toBeGreaterThan(20);
    for (const [file, imports] of graph) for (const target of imports) expect(graph.has(target), `${file} imports ${target}`).toBe(true);
  });

  it('has no import cycle, counting type-only imports', () => {
    expect(cycles(graph).map((cycle) => cycle.join(' → '))).toEqual([]);
  });

  it('points dependencies inward: chat and ops know nothing of MCP, sessions or HTTP', () => {
    const violations: string[] = [];
    for (const [file, imports] of graph)
      for (const [part, forbidden] of Object.entries(FORBIDDEN))
        if (file.startsWith(part))
          for (const target of imports) if (forbidden.some((prefix) => target.startsWith(prefix))) violations.push(`${file} → ${target}`);
    expect(violations).toEqual([]);
  });

  it('keeps the chat window apart: the server imports none of src/ui/, and src/ui/ imports only its own files', () => {
    const intoWindow = [...graph].flatMap(([file, imports]) =>
      file.startsWith('src/ui/') ? [] : imports.filter((target) => target.startsWith('src/ui/')).map((target) => `${file} → ${target}`),
    );
    expect(intoWindow).toEqual([]);
    const windowFiles = sourceFiles('src/ui');
    expect(windowFiles).toContain('src/ui/window.ts');
    const packages = windowFiles.flatMap((file) =>
      [...readFileSync(join(root, file), 'utf8').matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]/g)]
        .map((m) => m[1]!)
        // './x.js' is a file of src/ui/; anything else is the server's ('../') or a package.
        .filter((specifier) => !specifier.startsWith('./'))
        .map((specifier) => `${file} → ${specifier}`),
    );
    expect(packages).toEqual([]);
  });

  it('the cycle finder finds a cycle (so the check above can fail)', () => {
    const withCycle = new Map([...graph, ['src/a.ts', ['src/b.ts']], ['src/b.ts', ['src/a.ts']]]);
    expect(cycles(withCycle)).toContainEqual(['src/a.ts', 'src/b.ts', 'src/a.ts']);
  });
});
