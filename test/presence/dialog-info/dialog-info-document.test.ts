import { expect } from 'chai';
import { buildDialogInfo, MAX_DIALOGS_PER_DOCUMENT, parseDialogInfo, serializeDialog } from '../../../src/presence/dialog-info/dialog-info-document.js';

const NS = 'urn:ietf:params:xml:ns:dialog-info';

describe('dialog-info documents (RFC 4235 §4)', () => {
  it('reads the RFC 4235 §5.2 example and writes it again without the parts it does not model', () => {
    const doc =
      `<?xml version="1.0"?><dialog-info xmlns="${NS}" version="1" state="full" entity="sip:alice@example.com">` +
      '<dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774" direction="initiator">' +
      '<state event="rejected" code="486">terminated</state><duration>274</duration>' +
      '<local><identity display="Alice &amp; Co">sip:alice@example.com</identity><target uri="sip:alice@pc33.example.com"><param pname="+sip.rendering" pval="yes"/></target></local>' +
      '<remote><identity>sip:bob@example.org</identity></remote>' +
      '<route-set><hop>sip:proxy.example.com</hop></route-set></dialog></dialog-info>';
    const r = parseDialogInfo(doc);
    if (!r.ok) throw new Error(r.reason);
    expect([r.document.version, r.document.state, r.document.entity]).to.deep.equal([1, 'full', 'sip:alice@example.com']);
    const d = r.document.dialogs[0]!;
    expect(d).to.deep.include({ id: 'as7d900as8', callId: 'a84b4c76e66710', localTag: '1928301774', direction: 'initiator', state: 'terminated', stateEvent: 'rejected', stateCode: 486, duration: 274 });
    const xml = serializeDialog(d);
    expect(xml).to.not.contain('route-set');
    expect(xml).to.contain('display="Alice &amp; Co"');
    const again = parseDialogInfo(buildDialogInfo('sip:alice@example.com', 7, 'partial', [xml]));
    if (!again.ok) throw new Error(again.reason);
    expect(again.document.dialogs[0]).to.deep.equal(d);
    expect(again.document.version).to.equal(7);
  });

  it('refuses hostile and invalid documents with a reason', () => {
    const wrap = (inner: string, attrs = 'version="0" state="full" entity="sip:a@example.com"') => `<dialog-info xmlns="${NS}" ${attrs}>${inner}</dialog-info>`;
    const reason = (s: string) => {
      const r = parseDialogInfo(s);
      return r.ok ? 'ok' : r.reason;
    };
    expect(reason(`<!DOCTYPE d [<!ENTITY x "y">]>${wrap('')}`)).to.match(/^Invalid dialog-info: DOCTYPE/);
    expect(reason(wrap('', 'version="0" state="full"'))).to.equal('Invalid dialog-info: missing entity');
    expect(reason(wrap('', 'version="-1" state="full" entity="x"'))).to.equal('Invalid dialog-info: bad version');
    expect(reason(wrap('<dialog id="a"><state>ringing</state></dialog>'))).to.equal('Invalid dialog-info: bad state ringing');
    expect(reason(wrap('<dialog id="a"><state>early</state></dialog><dialog id="a"><state>early</state></dialog>'))).to.equal('Invalid dialog-info: dialog id a twice');
    expect(reason(wrap('<dialog id="a"><state code="42">terminated</state></dialog>'))).to.equal('Invalid dialog-info: bad code');
    expect(reason(wrap('<dialog><state>early</state></dialog>'))).to.equal('Invalid dialog-info: missing id');
    expect(reason(wrap('<dialog id="b" direction="sideways"><state>early</state></dialog>'))).to.equal('Invalid dialog-info: bad direction');
    const many = Array.from({ length: MAX_DIALOGS_PER_DOCUMENT + 1 }, (_, i) => `<dialog id="d${i}"><state>early</state></dialog>`).join('');
    expect(reason(wrap(many))).to.equal('Invalid dialog-info: too many dialogs');
    expect(reason('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x"/>')).to.equal('Invalid dialog-info: root element is not dialog-info');
    expect(reason(Buffer.alloc(100_000, ' ').toString() + wrap(''))).to.match(/^Invalid dialog-info: /);
  });
});
