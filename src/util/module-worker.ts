import { Worker, type ResourceLimits } from 'node:worker_threads';

/**
 * Starts a worker thread on the module `name` beside `base` (an `import.meta.url`): in dist
 * the JavaScript sibling; under tsx (tests, development) the TypeScript one, and since a
 * worker thread does not inherit tsx's loader, it registers it first.
 */
export function startModuleWorker(base: string, name: string, workerData?: unknown, resourceLimits?: ResourceLimits): Worker {
  const typescript = base.endsWith('.ts');
  const file = new URL(`./${name}${typescript ? '.ts' : '.js'}`, base);
  return typescript
    ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); });`, { eval: true, workerData, ...(resourceLimits ? { resourceLimits } : {}) })
    : new Worker(file, { workerData, ...(resourceLimits ? { resourceLimits } : {}) });
}
