// Preloaded by bench/run-bench.py into our server (node --expose-gc --import ...): SIGUSR2 runs
// a full garbage collection, so memory is compared after one (start-up garbage, such as
// PGlite's, otherwise goes away in the middle of a measurement and reads as negative growth).
process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') globalThis.gc();
});
