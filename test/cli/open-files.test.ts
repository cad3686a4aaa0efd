import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectionRoom, fitConnectionsToOpenFiles, openFiles, RESERVED_FILES } from '../../src/cli/open-files.js';
import { loadConfig } from '../../src/config/config.js';
import { freePort, startServerProcess } from '../support/server-process.js';

function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

describe('cli: the open-file limit at start-up', function () {
  this.timeout(60_000);

  it('reads this process\'s limit and the descriptors it holds', () => {
    const files = openFiles();
    expect(files).to.not.equal(undefined);
    expect(files!.soft).to.be.at.least(files!.inUse);
    expect(files!.hard).to.be.at.least(files!.soft);
    expect(connectionRoom({ soft: 1000, hard: 1000, inUse: 40 })).to.equal(1000 - 40 - RESERVED_FILES);
    expect(connectionRoom({ soft: 50, hard: 50, inUse: 40 })).to.equal(0);
    expect(openFiles('/nonexistent')).to.equal(undefined);
  });

  it('keeps limits.maxConnections when the limit has room for it, and says so', () => {
    const { log, lines } = capture();
    const config = loadConfig({ overrides: { limits: { maxConnections: 500 } } });
    const out = fitConnectionsToOpenFiles(config, log, { soft: 20_000, hard: 20_000, inUse: 30 });
    expect(out.limits.maxConnections).to.equal(500);
    expect(lines).to.have.length(1);
    expect(lines[0]!.level).to.equal(30);
    expect(lines[0]!.connectionRoom).to.equal(20_000 - 30 - RESERVED_FILES);
    expect(lines[0]!.msg).to.contain('open-file limit 20000');
  });

  it('caps limits.maxConnections at what the limit allows, with a warning that says how to raise it', () => {
    const { log, lines } = capture();
    const config = loadConfig({ overrides: { limits: { maxConnections: 10_000 } } });
    const out = fitConnectionsToOpenFiles(config, log, { soft: 1024, hard: 1024, inUse: 24 });
    expect(out.limits.maxConnections).to.equal(900);
    expect(config.limits.maxConnections, 'the config given is left alone').to.equal(10_000);
    expect(lines[0]!.level).to.equal(40);
    expect(lines[0]!.msg).to.contain('caps connections at 900').and.contain('LimitNOFILE');
  });

  it('started under `ulimit -n 256`, logs the limit and the cap it puts on connections', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-nofile-'));
    try {
      const port = await freePort();
      const srv = await startServerProcess(
        dir,
        { sip: { hosts: ['127.0.0.1'], port }, http: { host: '127.0.0.1', port: 0 }, store: { enabled: false }, auth: { required: false } },
        {},
        30_000,
        { openFiles: 256 },
      );
      try {
        const line = srv.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.openFiles !== undefined);
        expect(line, srv.lines.join('\n')).to.not.equal(undefined);
        expect(line!.openFiles).to.equal(256);
        expect(line!.level).to.equal(40);
        expect(line!.configuredMaxConnections).to.equal(10_000);
        expect(line!.maxConnections).to.equal(line!.connectionRoom).and.be.below(256 - RESERVED_FILES);
      } finally {
        await srv.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
