import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLEAN_STOP_FILE, markCleanStop, takeCleanStop } from '../../src/store/clean-stop.js';
import { CRASH_SKIP, skipAfterCrash } from '../../src/presence/subscription.js';
import { subscription } from './fixtures.js';

describe('store: the clean-stop mark, and what a start without it does to restored dialogs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sp-clean-stop-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is there after a graceful stop only, and a start takes it away (a crash after that start leaves none)', () => {
    expect(takeCleanStop(dir), 'never stopped').to.equal(false);
    // A directory deleted under a stopping server is not made again (src/util/make-dir.ts).
    expect(() => markCleanStop(join(dir, 'gone'))).to.throw(/ENOENT/);
    expect(existsSync(join(dir, 'gone')), 'makes no directory').to.equal(false);
    markCleanStop(dir);
    expect(takeCleanStop(dir)).to.equal(true);
    expect(takeCleanStop(dir), 'taken by the start before').to.equal(false);
  });

  it('skips CSeq and version ahead after a crash, keeping the CSeq below 2**31 (RFC 3261 §8.1.1.5)', () => {
    const base = subscription(1, { documentVersion: 7 });
    const record = { ...base, dialog: { ...base.dialog, localSeq: 41, remoteSeq: 3 } };
    const skipped = skipAfterCrash(record);
    expect([skipped.dialog.localSeq, skipped.documentVersion, skipped.dialog.remoteSeq]).to.deep.equal([41 + CRASH_SKIP, 7 + CRASH_SKIP, 3]);
    expect(record.dialog.localSeq, 'the record read is not changed').to.equal(41);
    const high = skipAfterCrash({ ...record, dialog: { ...record.dialog, localSeq: 2 ** 31 - 5 } });
    expect(high.dialog.localSeq).to.equal(2 ** 31 - 1);
  });
});
