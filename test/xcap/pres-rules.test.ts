import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { readXml } from '../../src/presence/pidf/read-xml.js';
import { externalAnchors, renderRules, rulesOfDocument, type WatcherRule } from '../../src/xcap/usages/pres-rules.js';
import { XcapConflict } from '../../src/xcap/xcap-error.js';

const CP = 'urn:ietf:params:xml:ns:common-policy';
const PR = 'urn:ietf:params:xml:ns:pres-rules';
const FULL = { hideNotes: false, hideDevices: false, basicOnly: false };
const NONE = FULL;

function rules(xml: string): WatcherRule[] {
  const r = readXml(xml);
  if (!r.ok) throw new Error(r.reason);
  return rulesOfDocument(r.root);
}

function refusal(xml: string): string {
  try {
    rules(xml);
  } catch (e) {
    if (e instanceof XcapConflict) return `${e.condition.kind}: ${e.condition.phrase ?? ''}`;
    throw e;
  }
  throw new Error('accepted');
}

const doc = (body: string) => `<cp:ruleset xmlns:cp="${CP}" xmlns:pr="${PR}" xmlns:ocp="urn:oma:xml:xdm:common-policy">${body}</cp:ruleset>`;

describe('xcap: pres-rules documents and the presence rules (RFC 5025, RFC 4745)', () => {
  it('reads a Blink-like rule set: one, many domain with except, other-identity, sub-handling, transformations', () => {
    const got = rules(readFileSync(new URL('../fuzz/seeds/pres-rules/blink-like.xml', import.meta.url), 'utf8'));
    expect(got).to.deep.equal([
      { watcher: '*', action: 'confirm', transformations: NONE },
      { watcher: '*@example.org', action: 'allow', transformations: FULL },
      { watcher: 'sip:bob@example.com', action: 'allow', transformations: FULL },
      { watcher: 'sip:eve@example.org', action: 'block', transformations: NONE },
    ]);
  });

  it('maps RFC 5025 transformations onto ours', () => {
    const t = (x: string) => rules(doc(`<cp:rule id="a"><cp:conditions><cp:identity><cp:one id="sip:b@x.org"/></cp:identity></cp:conditions><cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions>${x}</cp:rule>`))[0]!.transformations;
    const services = '<pr:provide-services><pr:all-services/></pr:provide-services>';
    const persons = '<pr:provide-persons><pr:all-persons/></pr:provide-persons>';
    const devices = '<pr:provide-devices><pr:all-devices/></pr:provide-devices>';
    expect(t(`<cp:transformations>${services}${persons}${devices}<pr:provide-all-attributes/></cp:transformations>`)).to.deep.equal(FULL);
    expect(t(`<cp:transformations>${services}${persons}<pr:provide-all-attributes/></cp:transformations>`)).to.deep.equal({ ...FULL, hideDevices: true });
    expect(t(`<cp:transformations>${services}${persons}${devices}<pr:provide-mood>true</pr:provide-mood></cp:transformations>`)).to.deep.equal({ ...FULL, hideNotes: true });
    expect(t(`<cp:transformations>${services}${persons}<pr:provide-note>true</pr:provide-note></cp:transformations>`)).to.deep.equal({ ...FULL, hideDevices: true });
    expect(t(`<cp:transformations>${services}</cp:transformations>`)).to.deep.equal({ hideNotes: true, hideDevices: true, basicOnly: true });
    // RFC 5025 §3.2.2: nothing is provided unless a transformation says so; basic status is our least.
    expect(t('')).to.deep.equal({ hideNotes: true, hideDevices: true, basicOnly: true });
  });

  it('an OMA external list is the members of the resource list it names, resolved by the caller', () => {
    const anc = 'http://x/xcap-root/resource-lists/users/sip:a@x.org/index/~~/resource-lists/list%5b@name=%22g%22%5d';
    const xml = doc(`<cp:rule id="g"><cp:conditions><ocp:external-list><ocp:entry anc="${anc}"/></ocp:external-list></cp:conditions><cp:actions><pr:sub-handling>polite-block</pr:sub-handling></cp:actions></cp:rule><cp:rule id="e"><cp:conditions><ocp:external-list/></cp:conditions></cp:rule>`);
    const r = readXml(xml);
    if (!r.ok) throw new Error(r.reason);
    expect(externalAnchors(r.root)).to.deep.equal([anc]);
    expect(rulesOfDocument(r.root, new Map([[anc, ['sip:b@x.org', 'sips:C@X.org']]]))).to.deep.equal([
      { watcher: 'sip:C@x.org', action: 'polite-block', transformations: NONE },
      { watcher: 'sip:b@x.org', action: 'polite-block', transformations: NONE },
    ]);
  });

  it('combines a watcher named by several rules as RFC 4745 §10.2 does: most permissive action, union of what is shown', () => {
    const one = (id: string, action: string, tr: string) =>
      `<cp:rule id="${id}"><cp:conditions><cp:identity><cp:one id="sip:b@x.org"/></cp:identity></cp:conditions><cp:actions><pr:sub-handling>${action}</pr:sub-handling></cp:actions><cp:transformations>${tr}</cp:transformations></cp:rule>`;
    const got = rules(doc(one('a', 'confirm', '<pr:provide-devices><pr:all-devices/></pr:provide-devices>') + one('b', 'allow', '<pr:provide-persons><pr:all-persons/></pr:provide-persons><pr:provide-note>true</pr:provide-note>')));
    expect(got).to.deep.equal([{ watcher: 'sip:b@x.org', action: 'allow', transformations: FULL }]);
  });

  it('a rule without conditions is everyone; no sub-handling is block; ids must be unique', () => {
    expect(rules(doc('<cp:rule id="a"/>'))).to.deep.equal([{ watcher: '*', action: 'block', transformations: NONE }]);
    expect(refusal(doc('<cp:rule id="a"/><cp:rule id="a"/>'))).to.match(/^uniqueness-failure/);
    try {
      rules(doc('<cp:rule id="a"/><cp:rule id="a-2"/><cp:rule id="a"/>'));
      expect.fail('accepted');
    } catch (e) {
      // §11.2: the repeated field, and a value that would be unique.
      expect((e as XcapConflict).condition).to.deep.equal({ kind: 'uniqueness-failure', field: '/cp:ruleset/cp:rule[3]/@id', altValues: ['a-3'] });
    }
  });

  it('refuses what the rules cannot hold, naming it', () => {
    expect(refusal(doc('<cp:rule id="a"><cp:conditions><cp:validity><cp:from>2020-01-01T00:00:00Z</cp:from></cp:validity></cp:conditions></cp:rule>'))).to.match(/^constraint-failure: condition <validity>/);
    expect(refusal(doc('<cp:rule id="a"><cp:conditions><ocp:external-list><ocp:entry anc="http://x/xcap-root/resource-lists/users/sip:a@x.org/index/~~/resource-lists/list"/></ocp:external-list></cp:conditions></cp:rule>'))).to.match(/^constraint-failure: external list/);
    expect(refusal(doc('<cp:rule id="a"><cp:conditions><ocp:external-list><ocp:entry/></ocp:external-list></cp:conditions></cp:rule>'))).to.match(/^schema-validation-error/);
    expect(refusal(doc('<cp:rule id="a"><cp:conditions><cp:identity><cp:many><cp:except id="sip:z@x.org"/></cp:many></cp:identity></cp:conditions></cp:rule>'))).to.match(/^constraint-failure: <except> sip:z@x.org needs a rule/);
    expect(refusal(doc('<cp:rule id="a"><cp:conditions><cp:identity><cp:one id="tel:+123"/></cp:identity></cp:conditions></cp:rule>'))).to.match(/^constraint-failure: identity/);
    expect(refusal(doc('<cp:rule id="a"><cp:actions><pr:sub-handling>maybe</pr:sub-handling></cp:actions></cp:rule>'))).to.match(/^schema-validation-error/);
    expect(refusal(doc('<cp:rule id="a"><cp:conditions><cp:identity/></cp:conditions></cp:rule>'))).to.match(/^schema-validation-error/);
    expect(refusal(doc('<cp:other/>'))).to.match(/^schema-validation-error/);
    expect(refusal(`<ruleset xmlns="urn:other"/>`)).to.match(/^schema-validation-error: the root/);
    const many = Array.from({ length: 1001 }, (_, i) => `<cp:one id="sip:u${i}@x.org"/>`).join('');
    expect(refusal(doc(`<cp:rule id="a"><cp:conditions><cp:identity>${many}</cp:identity></cp:conditions></cp:rule>`))).to.match(/^constraint-failure: more than 1000 watchers/);
  });

  it('renders the rules in both forms so that they read back the same', () => {
    const set: WatcherRule[] = [
      { watcher: '*', action: 'confirm', transformations: NONE },
      { watcher: '*@example.org', action: 'polite-block', transformations: NONE },
      { watcher: 'sip:a@example.org', action: 'allow', transformations: { hideNotes: true, hideDevices: true, basicOnly: false } },
      { watcher: 'sip:b@example.com', action: 'allow', transformations: { hideNotes: true, hideDevices: true, basicOnly: true } },
      { watcher: 'sip:c@example.com', action: 'block', transformations: NONE },
    ];
    for (const oma of [false, true]) {
      const xml = renderRules(set, oma);
      expect(rules(xml), `oma=${oma}`).to.deep.equal(set);
      expect(xml).to.contain(oma ? '<ocp:other-identity/>' : '<cp:except domain="example.org"/>');
    }
    expect(renderRules(set, false)).to.contain('<cp:many domain="example.org"><cp:except id="sip:a@example.org"/></cp:many>');
    expect(rules(renderRules([], false))).to.deep.equal([]);
  });
});
