// Preloaded by bench/run-bench.py into our server (node --expose-gc --import ...): SIGUSR2 runs
// a full garbage collection, so memory is compared after one (start-up garbage, such as
// PGlite's, otherwise goes away in the middle of a measurement and reads as negative growth).
// It is the memory-reducing kind the server's heap trimmer runs (src/util/heap-trim.ts), so
// a reading is what the server holds once the trimmer has given the freed pages back, which
// it does on its own within its spacing (at most 15 s) and 3 s of quiet after the garbage
// came free, a time the reading would otherwise depend on.
process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') globalThis.gc({ type: 'major', flavor: 'last-resort' });
});
