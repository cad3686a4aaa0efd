import { expect } from 'chai';
import { parsePidf } from '../../../src/presence/pidf/parse-pidf.js';
import { PidfReaderThread } from '../../../src/presence/pidf/reader-thread.js';

const doc = (entity: string, note = 'at lunch') =>
  Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="${entity}">` +
      `<tuple id="t1"><status><basic>open</basic></status><dm:deviceID>urn:x:1</dm:deviceID><note xml:lang="en">${note}</note></tuple>` +
      `<dm:person id="p1"><dm:note>ünïcode</dm:note></dm:person></presence>`,
  );

describe('presence/pidf: the reader thread', () => {
  let reader: PidfReaderThread;
  beforeEach(() => {
    reader = new PidfReaderThread({ maxBytes: 4096 });
  });
  afterEach(async () => {
    await reader.close();
  });

  it('gives what parsePidf gives in line, documents and refusals alike', async () => {
    const bodies = [
      doc('sip:alice@example.com'),
      Buffer.from('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x"><status><basic>maybe</basic></status></tuple></presence>'),
      Buffer.from('<!DOCTYPE x [<!ENTITY a "b">]><presence/>'),
      Buffer.from([0x3c, 0x70, 0xff, 0xfe]),
      Buffer.from(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>${'x'.repeat(5000)}</note></presence>`),
    ];
    const results = await Promise.all(bodies.map((b) => reader.parse(b)));
    expect(results.map((r) => r.ok)).to.deep.equal([true, false, false, false, false]);
    for (let i = 0; i < bodies.length; i++) expect(results[i]).to.deep.equal(parsePidf(bodies[i]!, { maxBytes: 4096 }));
    expect(reader.inFlight).to.equal(0);
  });

  it('checks a document: the verdict, entity and tuple ids parsePidf gives, without the tree', async () => {
    const bodies = [doc('sip:carol@example.com'), Buffer.from('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x"><status><basic>maybe</basic></status></tuple></presence>')];
    const [good, bad] = await Promise.all(bodies.map((b) => reader.check(b)));
    expect(good).to.deep.equal({ ok: true, entity: 'sip:carol@example.com', tupleIds: ['t1'] });
    expect(bad).to.deep.equal(parsePidf(bodies[1]!, { maxBytes: 4096 }));
    expect(bad!.ok).to.equal(false);
    // In line once the thread is gone, the same answer.
    await reader.close();
    expect(await reader.check(bodies[0]!)).to.deep.equal(good);
  });

  it('answers each document with its own result when many are in flight, past its bound too', async () => {
    const bodies = Array.from({ length: 1100 }, (_, i) => doc(`sip:u${i}@example.com`, `n${i}`));
    const pending = bodies.map((b) => reader.parse(b));
    // 1024 went to the thread; the rest were parsed in line at once.
    expect(reader.inFlight).to.equal(1024);
    const results = await Promise.all(pending);
    results.forEach((r, i) => {
      expect(r.ok).to.equal(true);
      if (r.ok) expect(r.document.entity).to.equal(`sip:u${i}@example.com`);
    });
  });

  it('sends the documents of one turn of the event loop in one message, and those of the next turn in another', async () => {
    await reader.check(doc('sip:warm@example.com'));
    const worker = (reader as unknown as { worker: { postMessage: (...args: unknown[]) => void } }).worker;
    let messages = 0;
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (...args: unknown[]) => {
      messages++;
      post(...args);
    };
    const first = Array.from({ length: 20 }, (_, i) => reader.check(doc(`sip:a${i}@example.com`)));
    await new Promise((r) => setImmediate(r));
    const second = Array.from({ length: 5 }, (_, i) => reader.check(doc(`sip:b${i}@example.com`)));
    const results = await Promise.all([...first, ...second]);
    expect(messages).to.equal(2);
    expect(results.map((r) => r.ok && r.entity)).to.deep.equal([...Array.from({ length: 20 }, (_, i) => `sip:a${i}@example.com`), ...Array.from({ length: 5 }, (_, i) => `sip:b${i}@example.com`)]);
  });

  it('reads a slice of a larger buffer as just that slice', async () => {
    const datagram = Buffer.concat([Buffer.from('PUBLISH sip:alice@example.com SIP/2.0\r\n\r\n'), doc('sip:alice@example.com'), Buffer.from('trailing junk')]);
    const body = datagram.subarray(41, datagram.length - 'trailing junk'.length);
    const r = await reader.parse(body);
    expect(r.ok).to.equal(true);
  });

  it('parses in line what was waiting when the thread dies under it, and everything after', async () => {
    await reader.parse(doc('sip:warm@example.com'));
    const pending = reader.parse(doc('sip:bob@example.com'));
    // The thread ends without being asked (a crash): its exit hands the waiting ones back.
    await (reader as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    const r = await pending;
    expect(r.ok && r.document.entity).to.equal('sip:bob@example.com');
    expect((await reader.parse(doc('sip:carol@example.com'))).ok).to.equal(true);
    expect(reader.inFlight).to.equal(0);
  });

  it('gives up a thread that stays silent and parses in line instead', async () => {
    const quick = new PidfReaderThread({ maxBytes: 4096 }, undefined, 100);
    try {
      await quick.parse(doc('sip:warm@example.com'));
      // From now on nothing reaches the thread, so nothing comes back.
      (quick as unknown as { worker: { postMessage(m: unknown): void } }).worker.postMessage = () => {};
      const r = await quick.parse(doc('sip:dave@example.com'));
      expect(r.ok && r.document.entity).to.equal('sip:dave@example.com');
      expect(quick.inFlight).to.equal(0);
    } finally {
      await quick.close();
    }
  });

  it('parses in line what was waiting when the thread is closed, and everything after', async () => {
    const pending = reader.parse(doc('sip:bob@example.com'));
    await reader.close();
    const r = await pending;
    expect(r.ok && r.document.entity).to.equal('sip:bob@example.com');
    const after = await reader.parse(doc('sip:carol@example.com'));
    expect(after.ok && after.document.entity).to.equal('sip:carol@example.com');
    expect(reader.inFlight).to.equal(0);
  });
});
