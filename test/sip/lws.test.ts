import { expect } from 'chai';
import { trimLws } from '../../src/sip/lws.js';

describe('sip/lws', () => {
  describe('trimLws', () => {
    it('strips SP and HTAB from both ends', () => {
      expect(trimLws('  a b\t')).to.equal('a b');
      expect(trimLws('\t \tx')).to.equal('x');
      expect(trimLws(' \t ')).to.equal('');
      expect(trimLws('')).to.equal('');
    });

    it('returns the same string when there is nothing to strip', () => {
      const s = 'no white space';
      expect(trimLws(s)).to.equal(s);
    });

    it('keeps every other white space character (RFC 3261 §25.1: LWS is SP and HTAB)', () => {
      for (const c of ['\ufeff', '\u00a0', '\u2003', '\u3000', '\v', '\f', '\r', '\n']) {
        expect(trimLws(`${c}v${c}`), JSON.stringify(c)).to.equal(`${c}v${c}`);
        expect(trimLws(` ${c}v${c}\t`), JSON.stringify(c)).to.equal(`${c}v${c}`);
      }
    });
  });
});
