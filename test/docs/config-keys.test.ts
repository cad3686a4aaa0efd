import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/config/config.js';

/** Leaf keys of the default configuration; maps keyed by content type (limits.maxBodySize) count as one. */
function leafKeys(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    return v !== null && typeof v === 'object' && !Array.isArray(v) && key !== 'limits.maxBodySize' ? leafKeys(v as Record<string, unknown>, key) : [key];
  });
}

describe('docs: docs/configuration.md has a row for every key of config/default.json', () => {
  it('names each key in the first cell of a table row (`a.b.c`, or `a.b.x`, `c` on one row)', () => {
    const root = packageRoot();
    const defaults = JSON.parse(readFileSync(join(root, 'config', 'default.json'), 'utf8')) as Record<string, unknown>;
    const rows = readFileSync(join(root, 'docs', 'configuration.md'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('|'))
      .map((l) => l.split('|')[1] ?? '');
    const missing = leafKeys(defaults).filter((key) => {
      const dot = key.lastIndexOf('.');
      const parent = key.slice(0, dot);
      const leaf = key.slice(dot + 1);
      return !rows.some((cell) => cell.includes(`\`${key}\``) || (cell.includes(`\`${parent}.`) && cell.includes(`\`${leaf}\``)));
    });
    expect(missing, 'keys without a row in docs/configuration.md').to.deep.equal([]);
  });
});
