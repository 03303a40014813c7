/**
 * Ends the run with one plain line, `tests: N passed, N failed, N skipped`, that any
 * reader (a person, CI) can find without knowing vitest's own layout.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const { state } = test.result();
        if (state === 'passed') counts.passed += 1;
        else if (state === 'failed') counts.failed += 1;
        else counts.skipped += 1;
      }
      // A file that failed to load, or whose hooks failed (e.g. the check that its tests
      // left no process running), may have no failed test to count, but it failed all the same.
      if (module.state() === 'failed' && ![...module.children.allTests()].some((test) => test.result().state === 'failed'))
        counts.failed += 1;
    }
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
