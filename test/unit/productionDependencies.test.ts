/**
 * What users install is what the server runs: the packages that the server's code
 * (src/ but its browser window, machines/) imports are exactly package.json's
 * `dependencies`. Build steps and test tools (esbuild, ext-apps, the Node 22 binary)
 * stay dev dependencies, so a production install stays small.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

function serverFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (path === join('src', 'ui')) return []; // browser code, bundled by the build
    if (statSync(join(root, path)).isDirectory()) return serverFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** The package a bare specifier names: `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
const packageOf = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

function importedPackages(): Set<string> {
  const packages = new Set<string>();
  for (const file of [...serverFiles('src'), ...serverFiles('machines')]) {
    const source = readFileSync(join(root, file), 'utf8');
    for (const [, specifier] of source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"]([^'".][^'"]*)['"]/g)) {
      if (!specifier!.startsWith('node:')) packages.add(packageOf(specifier!));
    }
  }
  return packages;
}

describe('the production install', () => {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

  it('holds every package the server imports, and nothing else', () => {
    expect([...importedPackages()].sort()).toEqual(Object.keys(manifest.dependencies).sort());
  });
});
