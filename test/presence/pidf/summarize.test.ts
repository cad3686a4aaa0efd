import { expect } from 'chai';
import { composePresence, summarizePresence } from '../../../src/presence/pidf/index.js';
import { BARESIP, DOUBANGO, LINPHONE, pidf, RFC4480_EXAMPLE, tuple } from './fixtures.js';
import { mustParse } from './helpers.js';

describe('pidf: summarizePresence', () => {
  it('open when any service is open, with the person activities', () => {
    expect(summarizePresence(mustParse(RFC4480_EXAMPLE))).to.deep.equal({
      basic: 'open',
      note: "I'll be in Tokyo next week",
      activities: ['away'],
    });
  });

  it('closed when every service that says is closed; undefined when none says', () => {
    expect(summarizePresence(mustParse(pidf(tuple('a', 'closed') + tuple('b', 'closed')))).basic).to.equal('closed');
    expect(summarizePresence(mustParse(pidf('<tuple id="a"><status/></tuple>'))).basic).to.equal(undefined);
    expect(summarizePresence(mustParse(pidf('')))).to.deep.equal({ basic: undefined, activities: [] });
  });

  it('the note: the presentity’s, then the person’s, then the open services’', () => {
    expect(summarizePresence(mustParse(LINPHONE)).note).to.equal('Back at two');
    expect(summarizePresence(mustParse(DOUBANGO)).note).to.equal('Come and chat');
    const d = mustParse(pidf(tuple('c', 'closed', '<note>closed one</note>') + tuple('o', 'open', '<note>open one</note>')));
    expect(summarizePresence(d).note).to.equal('open one');
    expect(summarizePresence(mustParse(BARESIP))).to.deep.equal({ basic: 'open', activities: [] });
  });

  it('prefers a note in the asked-for language', () => {
    const d = mustParse(pidf(`${tuple('t')}<note xml:lang="en">Away</note><note xml:lang="fr-CA">Absent</note>`));
    expect(summarizePresence(d).note).to.equal('Away');
    expect(summarizePresence(d, 'fr').note).to.equal('Absent');
    expect(summarizePresence(d, 'de').note).to.equal('Away');
  });

  it('works on composed documents', () => {
    const doc = composePresence('sip:bob@example.org', [
      { document: mustParse(BARESIP), publishedAt: 1 },
      { document: mustParse(LINPHONE), publishedAt: 2 },
    ]);
    expect(summarizePresence(doc)).to.deep.equal({ basic: 'open', note: 'Back at two', activities: ['meal'] });
  });
});
