import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000, // a bound against hangs; tests never assert on speed
    hookTimeout: 30_000,
    pool: 'forks',
    setupFiles: ['test/support/leakCheck.ts'],
    reporters: ['default', './test/summaryReporter.ts'],
  },
});
