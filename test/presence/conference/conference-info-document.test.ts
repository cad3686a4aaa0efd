import { expect } from 'chai';
import { buildConferenceInfo, deletedUser, parseConferenceInfo, serializeUser } from '../../../src/presence/conference/conference-info-document.js';

describe('presence: conference-info documents (RFC 4575)', () => {
  it('writes a full document that reads back: entity, version, subject, users with roles', () => {
    const body = buildConferenceInfo('sip:lobby@example.com', 3, 'full', 'a <topic> & more', [
      serializeUser({ entity: 'sip:alice@example.com', displayText: 'alice', roles: ['owner', 'participant'] }),
      serializeUser({ entity: 'sip:bob@example.com', roles: ['participant'] }),
    ]);
    const r = parseConferenceInfo(body);
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(r.document).to.deep.equal({
      entity: 'sip:lobby@example.com',
      version: 3,
      state: 'full',
      subject: 'a <topic> & more',
      users: [
        { entity: 'sip:alice@example.com', state: 'full', displayText: 'alice', roles: ['owner', 'participant'] },
        { entity: 'sip:bob@example.com', state: 'full', roles: ['participant'] },
      ],
    });
  });

  it('reads a partial document with a deleted user, and no subject when the topic is empty', () => {
    const r = parseConferenceInfo(buildConferenceInfo('sip:lobby@example.com', 4, 'partial', '', [deletedUser('sip:bob@example.com')]));
    expect(r.ok && r.document).to.deep.equal({ entity: 'sip:lobby@example.com', version: 4, state: 'partial', users: [{ entity: 'sip:bob@example.com', state: 'deleted', roles: [] }] });
  });

  for (const [what, xml] of [
    ['another root', '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="x"/>'],
    ['no version', '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:a@b"/>'],
    ['no entity', '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" version="1"/>'],
    ['a deleted document', '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:a@b" version="1" state="deleted"/>'],
    ['a user twice', '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:a@b" version="1"><users><user entity="sip:x@b"/><user entity="sip:x@b"/></users></conference-info>'],
    ['a bad user state', '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:a@b" version="1"><users><user entity="sip:x@b" state="gone"/></users></conference-info>'],
    ['not XML', '<conference-info'],
  ] as const) {
    it(`refuses ${what} with a reason, never a throw`, () => {
      const r = parseConferenceInfo(xml);
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.reason).to.match(/^Invalid conference-info: /);
    });
  }
});
