import { expect } from 'chai';
import { SipRequest, SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { createResponse, randomToken, reasonPhrase, REASON_PHRASES, SERVER_HEADER } from '../../src/sip/response.js';

function request(lines: string[]): SipRequest {
  const r = parseMessage(Buffer.from(lines.join('\r\n') + '\r\n\r\n'));
  if (!r.ok) throw new Error(r.error.reason);
  return r.message as SipRequest;
}

const SUBSCRIBE = [
  'SUBSCRIBE sip:bob@example.com SIP/2.0',
  'Via: SIP/2.0/TCP proxy2.example.com;branch=z9hG4bK2, SIP/2.0/TCP proxy1.example.com;branch=z9hG4bK1',
  'Max-Forwards: 68',
  'Via: SIP/2.0/TCP ua.example.com:5070;branch=z9hG4bKua;received=192.0.2.5;rport=40000',
  'To: "Bob" <sip:bob@example.com>',
  'From: "Alice" <sip:alice@example.com>;tag=ftag',
  'Call-ID: sub-1@ua',
  'CSeq: 17 SUBSCRIBE',
  'Contact: <sip:alice@192.0.2.5:5070>',
  'Event: presence',
  'Expires: 600',
  'Accept: application/pidf+xml',
  'Record-Route: <sip:proxy1.example.com;lr>',
];

/** Re-parses a response from its bytes, to be sure it is well-formed on the wire. */
function reparse(res: SipResponse): SipResponse {
  const r = parseMessage(res.toBuffer());
  if (!r.ok) throw new Error(`response does not parse: ${r.error.reason}\n${res.toString()}`);
  expect(r.message).to.be.instanceOf(SipResponse);
  return r.message as SipResponse;
}

describe('sip/response', () => {
  describe('createResponse', () => {
    it('copies Vias in order, From, Call-ID, CSeq; adds a To tag and Server', () => {
      const req = request(SUBSCRIBE);
      const res = createResponse(req, 200, undefined, { toTag: 'totag1' });
      expect(res.status).to.equal(200);
      expect(res.reason).to.equal('OK');
      expect(res.getHeaders('Via')).to.deep.equal(req.getHeaders('Via'));
      expect(res.vias.map((v) => v.host)).to.deep.equal(['proxy2.example.com', 'proxy1.example.com', 'ua.example.com']);
      expect(res.vias[2]!.params.get('received')).to.equal('192.0.2.5');
      expect(res.getHeader('From')).to.equal(req.getHeader('From'));
      expect(res.callId).to.equal('sub-1@ua');
      expect(res.cseq).to.deep.equal({ seq: 17, method: 'SUBSCRIBE' });
      expect(res.getHeader('To')).to.equal('"Bob" <sip:bob@example.com>;tag=totag1');
      expect(res.to.tag).to.equal('totag1');
      expect(res.getHeader('Server')).to.equal(SERVER_HEADER);
      const back = reparse(res);
      expect(back.to.tag).to.equal('totag1');
      expect(back.vias).to.have.length(3);
    });

    it('copies nothing else from the request', () => {
      const res = createResponse(request(SUBSCRIBE), 202, undefined, { toTag: 't' });
      for (const h of ['Max-Forwards', 'Contact', 'Event', 'Expires', 'Accept', 'Record-Route']) {
        expect(res.hasHeader(h), h).to.equal(false);
      }
      expect(res.headers.map((h) => h.key)).to.deep.equal(['via', 'via', 'to', 'from', 'call-id', 'cseq', 'server']);
    });

    it('adds a random tag when none is given', () => {
      const req = request(SUBSCRIBE);
      const a = createResponse(req, 200);
      const b = createResponse(req, 200);
      expect(a.to.tag).to.match(/^[A-Za-z0-9_-]+$/);
      expect(a.to.tag!.length).to.be.at.least(8);
      expect(a.to.tag).to.not.equal(b.to.tag);
    });

    it('adds no To tag to a 100 Trying', () => {
      const res = createResponse(request(SUBSCRIBE), 100);
      expect(res.reason).to.equal('Trying');
      expect(res.getHeader('To')).to.equal('"Bob" <sip:bob@example.com>');
      expect(res.to.tag).to.equal(undefined);
    });

    it('adds a To tag to other provisional responses', () => {
      expect(createResponse(request(SUBSCRIBE), 180, undefined, { toTag: 'r' }).to.tag).to.equal('r');
    });

    it('keeps a To tag that is already there', () => {
      const lines = SUBSCRIBE.map((l) => (l.startsWith('To:') ? 'To: <sip:bob@example.com>;tag=existing' : l));
      const res = createResponse(request(lines), 481, undefined, { toTag: 'ignored' });
      expect(res.getHeader('To')).to.equal('<sip:bob@example.com>;tag=existing');
      expect(res.to.tag).to.equal('existing');
      expect(res.to.params.size).to.equal(1);
    });

    it('recognizes an existing tag written with spaces and upper case', () => {
      const lines = SUBSCRIBE.map((l) => (l.startsWith('To:') ? 'To: <sip:bob@example.com> ; TAG = abc' : l));
      const res = createResponse(request(lines), 200, undefined, { toTag: 'new' });
      expect(res.to.tag).to.equal('abc');
    });

    it('adds a To tag when "tag" appears only inside the To URI or display name', () => {
      // RFC 3261 §8.2.6.2: the To *header* tag is what matters; a URI parameter named tag
      // or the text ";tag=" inside the quoted display name is not one.
      const inUri = SUBSCRIBE.map((l) => (l.startsWith('To:') ? 'To: <sip:bob@example.com;tag=uri-param>' : l));
      const r1 = createResponse(request(inUri), 200, undefined, { toTag: 'hdr' });
      expect(request(inUri).to.tag).to.equal(undefined);
      expect(r1.to.tag).to.equal('hdr');
      const inName = SUBSCRIBE.map((l) => (l.startsWith('To:') ? 'To: "Bob;tag=x" <sip:bob@example.com>' : l));
      const r2 = createResponse(request(inName), 200, undefined, { toTag: 'hdr' });
      expect(r2.to.tag).to.equal('hdr');
    });

    it('reads the tag of a To it cannot parse from the text outside quotes and <>', () => {
      // A 400 answers requests whose To is broken; its tag (if any) still decides.
      const shell = (to: string): SipRequest => {
        const r = parseMessage(Buffer.from(SUBSCRIBE.map((l) => (l.startsWith('To:') ? to : l)).join('\r\n') + '\r\n\r\n'));
        if (r.ok || !r.request) throw new Error('expected a refused request with a shell');
        return r.request;
      };
      const tagged = shell('To: Bob@ <sip:bob@example.com> ; TAG= t1');
      expect(() => tagged.to).to.throw();
      expect(createResponse(tagged, 400, 'Bad To', { toTag: 'new' }).getHeader('To')).to.equal('Bob@ <sip:bob@example.com> ; TAG= t1');
      const inUri = shell('To: Bob@ <sip:bob@example.com;tag=u>');
      expect(createResponse(inUri, 400, 'Bad To', { toTag: 'new' }).getHeader('To')).to.equal('Bob@ <sip:bob@example.com;tag=u>;tag=new');
      const inName = shell('To: "Bob;tag=q" <sip:bob@example.com');
      expect(createResponse(inName, 400, 'Bad To', { toTag: 'new' }).getHeader('To')).to.equal('"Bob;tag=q" <sip:bob@example.com;tag=new');
    });

    it('writes the To of a compact-form request as To', () => {
      const lines = SUBSCRIBE.map((l) => (l.startsWith('To:') ? 't: <sip:bob@example.com>' : l));
      const res = createResponse(request(lines), 200, undefined, { toTag: 'x' });
      expect(res.headers.find((h) => h.key === 'to')!.name).to.equal('To');
      expect(reparse(res).to.tag).to.equal('x');
    });

    it('uses the given reason phrase or the standard one', () => {
      const req = request(SUBSCRIBE);
      expect(createResponse(req, 489).reason).to.equal('Bad Event');
      expect(createResponse(req, 423).reason).to.equal('Interval Too Brief');
      expect(createResponse(req, 400, 'Bad CSeq').reason).to.equal('Bad CSeq');
      expect(createResponse(req, 400, 'Bad CSeq').startLine()).to.equal('SIP/2.0 400 Bad CSeq');
      expect(createResponse(req, 299).reason).to.equal('OK');
    });

    it('appends extra headers after the copied ones', () => {
      const res = createResponse(request(SUBSCRIBE), 423, undefined, {
        toTag: 't',
        headers: [['Min-Expires', 3600], ['Contact', '<sip:bob@192.0.2.4>'], ['X-Note', 'a, b']],
      });
      expect(res.getHeader('Min-Expires')).to.equal('3600');
      expect(res.contacts[0]!.uri.host).to.equal('192.0.2.4');
      expect(res.headers.slice(-3).map((h) => h.name)).to.deep.equal(['Min-Expires', 'Contact', 'X-Note']);
      expect(reparse(res).getHeader('X-Note')).to.equal('a, b');
    });

    it('sets a body with its Content-Type', () => {
      const body = Buffer.from('<presence xmlns="urn:ietf:params:xml:ns:pidf"/>');
      const res = createResponse(request(SUBSCRIBE), 200, undefined, { toTag: 't', body, contentType: 'application/pidf+xml' });
      expect(res.body).to.equal(body);
      expect(res.contentType!.essence).to.equal('application/pidf+xml');
      const back = reparse(res);
      expect(back.body.equals(body)).to.equal(true);
      expect(back.getHeader('Content-Length')).to.equal(String(body.length));
    });

    it('sets a body without Content-Type when none is given; no body by default', () => {
      const res = createResponse(request(SUBSCRIBE), 200, undefined, { toTag: 't', body: Buffer.from('x') });
      expect(res.hasHeader('Content-Type')).to.equal(false);
      expect(res.body.toString()).to.equal('x');
      const empty = createResponse(request(SUBSCRIBE), 200, undefined, { toTag: 't', contentType: 'text/plain' });
      expect(empty.body.length).to.equal(0);
      expect(empty.hasHeader('Content-Type')).to.equal(false);
    });

    it('answers a request shell whose From and To do not parse (copying text)', () => {
      const bad = parseMessage(
        Buffer.from(
          [
            'MESSAGE sip:bob@example.com SIP/2.0',
            'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKshell',
            'To: <sip:bob@example.com',
            'From: garbage <<<',
            'Call-ID: shell-1',
            'CSeq: 1 MESSAGE',
          ].join('\r\n') + '\r\n\r\n',
        ),
      );
      expect(bad.ok).to.equal(false);
      if (bad.ok) return;
      const res = createResponse(bad.request!, 400, bad.error.reason, { toTag: 'z' });
      expect(res.status).to.equal(400);
      expect(res.reason).to.match(/^Bad (From|To)/);
      expect(res.getHeader('From')).to.equal('garbage <<<');
      expect(res.getHeader('To')).to.equal('<sip:bob@example.com;tag=z');
      expect(res.topVia.branch).to.equal('z9hG4bKshell');
      expect(res.callId).to.equal('shell-1');
    });
  });

  describe('reasonPhrase', () => {
    it('knows the table and falls back by class', () => {
      for (const [code, text] of Object.entries(REASON_PHRASES)) expect(reasonPhrase(Number(code))).to.equal(text);
      expect(reasonPhrase(200)).to.equal('OK');
      expect(reasonPhrase(481)).to.equal('Call/Transaction Does Not Exist');
      // RFC 3261 §21: every code the RFC defines has its phrase.
      expect(reasonPhrase(414)).to.equal('Request-URI Too Long');
      expect(reasonPhrase(486)).to.equal('Busy Here');
      expect(reasonPhrase(302)).to.equal('Moved Temporarily');
      expect(reasonPhrase(606)).to.equal('Not Acceptable');
      // An unknown code reads as x00 of its class.
      expect(reasonPhrase(199)).to.equal('Trying');
      expect(reasonPhrase(299)).to.equal('OK');
      expect(reasonPhrase(399)).to.equal('Multiple Choices');
      expect(reasonPhrase(499)).to.equal('Bad Request');
      expect(reasonPhrase(599)).to.equal('Server Internal Error');
      expect(reasonPhrase(699)).to.equal('Busy Everywhere');
    });
  });

  describe('randomToken', () => {
    it('gives URL-safe tokens of the requested entropy', () => {
      expect(randomToken()).to.match(/^[A-Za-z0-9_-]{11}$/);
      expect(randomToken(16)).to.match(/^[A-Za-z0-9_-]{22}$/);
      const seen = new Set<string>();
      for (let i = 0; i < 1000; i++) seen.add(randomToken());
      expect(seen.size).to.equal(1000);
    });

    it('gives 11-character base64url tokens, distinct across several pool refills', () => {
      const seen = new Set<string>();
      for (let i = 0; i < 2000; i++) {
        const t = randomToken();
        expect(t).to.match(/^[A-Za-z0-9_-]{11}$/);
        seen.add(t);
      }
      expect(seen.size).to.equal(2000);
    });
  });
});
