/**
 * Preloaded into a server under test (`node --expose-gc --import …/forcedGc.js …`): a
 * full garbage collection on SIGUSR2, so that the bench weighs what the server keeps
 * rather than garbage not yet collected. The server's own code is not touched.
 */
const collect = (globalThis as { gc?: () => void }).gc;
if (!collect) throw new Error('forcedGc.js needs node --expose-gc');
// Twice: the first run's finalizers and weak references free more in the second.
process.on('SIGUSR2', () => {
  collect();
  collect();
});
