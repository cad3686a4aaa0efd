import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { markCleanStop } from '../../src/store/clean-stop.js';
import { makeDir } from '../../src/util/make-dir.js';

describe('util: makeDir, and the clean-stop mark, when the directory is gone', () => {
  it('makes nested directories', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-mkdir-'));
    try {
      makeDir(join(dir, 'a', 'b'));
      expect(existsSync(join(dir, 'a', 'b'))).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('throws ENOENT in a deleted working directory, where a relative recursive mkdir spins for ever', () => {
    // In a process of its own: the working directory is deleted under it.
    const script = `
      import { mkdirSync, rmdirSync } from 'node:fs';
      const { makeDir } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../../src/util/make-dir.ts')).href)});
      const dir = ${JSON.stringify(join(tmpdir(), `sp-cwd-${process.pid}`))};
      mkdirSync(dir); process.chdir(dir); rmdirSync(dir);
      try { makeDir('./data'); console.log('made'); } catch (e) { console.log(e.code); }`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.signal, r.stderr).to.equal(null);
    expect(r.stdout.trim()).to.equal('ENOENT');
  });

  it('leaves no mark (and makes no directory) when the data directory was deleted under a stopping server', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-mark-'));
    rmSync(dir, { recursive: true });
    expect(() => markCleanStop(dir)).to.throw(/ENOENT/);
    expect(existsSync(dir)).to.equal(false);
  });
});
