import { expect } from 'chai';
import { parsePidf, serializePidf } from '../../src/presence/pidf/index.js';
import { matchRule } from '../../src/presence/rules/rule-matching.js';
import { NO_TRANSFORMATIONS, type PresenceRule } from '../../src/presence/rules/rule-types.js';
import { applyTransformations } from '../../src/presence/rules/transform.js';

const DOC = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="t1"><status><basic>open</basic></status><contact priority="0.8">sip:alice@192.0.2.1</contact><note>in a meeting</note><dm:deviceID>urn:uuid:d1</dm:deviceID></tuple>
  <note>whole-presentity note</note>
  <dm:person id="p1"><rpid:activities><rpid:meeting/></rpid:activities><dm:note>person note</dm:note></dm:person>
  <dm:device id="d1"><dm:deviceID>urn:uuid:d1</dm:deviceID><dm:note>phone</dm:note></dm:device>
</presence>`;

function doc() {
  const r = parsePidf(Buffer.from(DOC));
  if (!r.ok) throw new Error(r.reason);
  return r.document;
}

describe('presence rules: RFC 5025 transformations and matching', () => {
  it('hide notes: every note goes, at any depth, the rest stays', () => {
    const out = serializePidf(applyTransformations(doc(), { ...NO_TRANSFORMATIONS, hideNotes: true })).toString();
    expect(out).to.not.match(/note/);
    expect(out).to.contain('<basic>open</basic>').and.to.contain('meeting').and.to.contain('urn:uuid:d1');
    expect(parsePidf(Buffer.from(out)).ok).to.equal(true);
  });

  it('hide devices: device elements go, notes stay', () => {
    const out = serializePidf(applyTransformations(doc(), { ...NO_TRANSFORMATIONS, hideDevices: true })).toString();
    expect(out).to.not.contain('<dm:device ').and.not.contain('>phone<');
    expect(out).to.contain('in a meeting');
  });

  it('basic only: tuples with their basic status and nothing else', () => {
    const out = serializePidf(applyTransformations(doc(), { ...NO_TRANSFORMATIONS, basicOnly: true })).toString();
    expect(out).to.contain('<tuple id="t1">').and.contain('<basic>open</basic>');
    expect(out).to.not.match(/note|contact|person|device|meeting/);
    expect(parsePidf(Buffer.from(out)).ok).to.equal(true);
  });

  it('the most specific rule wins: URI, then *@domain, then *', () => {
    const rule = (watcher: string, action: PresenceRule['action']): PresenceRule => ({ presentity: 'sip:a@example.com', watcher, action, transformations: NO_TRANSFORMATIONS });
    const rules = [rule('*', 'block'), rule('*@example.org', 'allow'), rule('sip:eve@example.org', 'polite-block')];
    expect(matchRule(rules, 'sip:eve@example.org')?.action).to.equal('polite-block');
    expect(matchRule(rules, 'sip:bob@Example.org')?.action).to.equal('allow');
    expect(matchRule(rules, 'sip:zed@example.net')?.action).to.equal('block');
    expect(matchRule([], 'sip:zed@example.net')).to.equal(undefined);
  });
});
