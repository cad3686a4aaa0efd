import { expect } from 'chai';
import { mergeSummaries, parseMessageSummary, serializeMessageSummary } from '../../../src/presence/message-summary/message-summary-document.js';

describe('message-summary documents (RFC 3842 §5)', () => {
  it('reads the RFC 3842 §A example: status, account, classes with urgent counts; message headers after the blank line are ignored', () => {
    const r = parseMessageSummary('Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\nVoice-Message: 4/8 (1/2)\r\n\r\nTo: <alice@atlanta.example.com>\r\nFrom: <bob@biloxi.example.com>\r\n');
    if (!r.ok) throw new Error(r.reason);
    expect(r.summary.waiting).to.equal(true);
    expect(r.summary.account).to.equal('sip:alice@vmail.example.com');
    expect([...r.summary.counts]).to.deep.equal([['voice-message', { newMessages: 4, oldMessages: 8, newUrgent: 1, oldUrgent: 2 }]]);
  });

  it('refuses what is not a summary, with a reason', () => {
    expect(parseMessageSummary('Voice-Message: 1/2\r\n')).to.deep.equal({ ok: false, reason: 'Invalid message-summary: no Messages-Waiting line' });
    expect(parseMessageSummary('Messages-Waiting: maybe\r\n').ok).to.equal(false);
    expect(parseMessageSummary('Messages-Waiting: yes\r\nFax-Message: 1/-2\r\n').ok).to.equal(false);
    expect(parseMessageSummary(`Messages-Waiting: yes\r\n${'X-Extra: 1\r\n'.repeat(40)}`).ok).to.equal(false);
    expect(parseMessageSummary(Buffer.alloc(9000, 'a')).ok).to.equal(false);
  });

  it('adds summaries up per class and writes them in RFC 3458 order', () => {
    const a = parseMessageSummary('Messages-Waiting: no\r\nVoice-Message: 0/3\r\n');
    const b = parseMessageSummary('messages-waiting: no\r\ntext-message: 2/0\r\nvoice-message: 1/0 (1/0)\r\n');
    if (!a.ok || !b.ok) throw new Error('test documents');
    const merged = mergeSummaries([a.summary, b.summary]);
    expect(merged.waiting).to.equal(true); // new messages wait, whatever the publishers said
    expect(serializeMessageSummary(merged, 'sip:bob@example.com').toString()).to.equal(
      'Messages-Waiting: yes\r\nMessage-Account: sip:bob@example.com\r\nVoice-Message: 1/3 (1/0)\r\nText-Message: 2/0\r\n',
    );
  });
});
