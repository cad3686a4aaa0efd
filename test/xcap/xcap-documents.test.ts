import { expect } from 'chai';
import { migrate } from '../../src/store/migrations.js';
import { XcapDocumentRepository } from '../../src/store/repositories/xcap-documents.js';
import { TARGETS, type TestDb } from '../store/helpers.js';

for (const target of TARGETS) {
  describe(`xcap: stored documents on ${target.name} (schemas/sql/005)`, function () {
    this.timeout(30_000);
    let t: TestDb;
    let repo: XcapDocumentRepository;

    before(async () => {
      t = await target.open();
      await migrate(t.db);
      repo = new XcapDocumentRepository(t.db);
    });
    after(async () => t?.cleanup());

    const doc = (content: string, etag: string) => ({ auid: 'pidf-manipulation', owner: 'sip:a@example.com', path: 'index', content, etag });

    it('writes compare-and-set on the entity-tag: a second writer with the old tag loses', async () => {
      expect(await repo.putIf(doc('<a/>', '"1"'), undefined)).to.equal(true);
      expect(await repo.putIf(doc('<b/>', '"2"'), undefined)).to.equal(false);
      expect(await repo.putIf(doc('<b/>', '"2"'), '"1"')).to.equal(true);
      expect(await repo.putIf(doc('<c/>', '"3"'), '"1"')).to.equal(false);
      expect(await repo.get('pidf-manipulation', 'sip:a@example.com', 'index')).to.deep.equal(doc('<b/>', '"2"'));
      expect(await repo.delete('pidf-manipulation', 'sip:a@example.com', 'index', '"1"')).to.equal(false);
      expect(await repo.delete('pidf-manipulation', 'sip:a@example.com', 'index', '"2"')).to.equal(true);
      expect(await repo.get('pidf-manipulation', 'sip:a@example.com', 'index')).to.equal(undefined);
    });

    it('lists a usage and deletes an owner with everything it has', async () => {
      await repo.put(doc('<x/>', '"x"'));
      await repo.put({ ...doc('<r/>', '"r"'), auid: 'pres-rules' });
      await repo.put({ ...doc('<o/>', '"o"'), owner: 'sip:b@example.com' });
      expect((await repo.listByAuid('pidf-manipulation', 10)).map((d) => d.owner)).to.deep.equal(['sip:a@example.com', 'sip:b@example.com']);
      expect(await repo.deleteOwner('sip:a@example.com')).to.equal(2);
      expect((await repo.listByAuid('pidf-manipulation', 10)).map((d) => d.owner)).to.deep.equal(['sip:b@example.com']);
    });
  });
}
