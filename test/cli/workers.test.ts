import { expect } from 'chai';
import { workerConfig } from '../../src/cli/workers.js';
import { loadConfig } from '../../src/config/config.js';

describe('cli: the configuration each worker of serve --workers runs with', () => {
  const base = loadConfig({ env: {}, overrides: { store: { url: 'postgres://db/sp' }, cluster: { natsUrl: 'nats://127.0.0.1:4222', workers: 4 } } });

  it('is one process of the cluster, and parses PIDF in line when several share the cores', () => {
    expect(base.presence.parseThread).to.equal(undefined);
    const w = workerConfig(base, 4);
    expect(w.cluster.workers).to.equal(1);
    expect(w.presence.parseThread).to.equal(false);
    // Nothing else changes.
    expect({ ...w, cluster: base.cluster, presence: base.presence }).to.deep.equal(base);
    expect({ ...w.presence, parseThread: undefined }).to.deep.equal({ ...base.presence, parseThread: undefined });
  });

  it('keeps the parse thread for a single worker, and what the configuration says either way', () => {
    expect(workerConfig(base, 1).presence.parseThread).to.equal(true);
    const on = loadConfig({ env: {}, overrides: { presence: { parseThread: true } } });
    expect(workerConfig(on, 2).presence.parseThread).to.equal(true);
    const off = loadConfig({ env: {}, overrides: { presence: { parseThread: false } } });
    expect(workerConfig(off, 1).presence.parseThread).to.equal(false);
  });
});
