import { expect } from 'chai';
import { pino } from 'pino';
import { SipCore, type IncomingTransaction } from '../../src/core/sip-core.js';
import type { AuthDecision, RequestContext, SipService } from '../../src/core/services.js';
import { SipParseError } from '../../src/sip/errors.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import type { Flow } from '../../src/transport/types.js';

const FLOW: Flow = { protocol: 'udp', remoteAddress: '198.51.100.7', remotePort: 5060, localAddress: '192.0.2.1', localPort: 5060 };

function parse(text: string): SipRequest {
  const parsed = parseMessage(Buffer.from(text.replace(/\n/g, '\r\n')));
  if (!parsed.ok) throw new Error(parsed.error.reason);
  return parsed.message as SipRequest;
}

function request(method: string, extra: string[] = [], uri = 'sip:bob@example.com'): SipRequest {
  return parse(
    [
      `${method} ${uri} SIP/2.0`,
      'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKcore1',
      'Max-Forwards: 70',
      'From: <sip:alice@example.com>;tag=a1',
      'To: <sip:bob@example.com>',
      'Call-ID: core-1@test',
      `CSeq: 1 ${method}`,
      ...extra,
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );
}

/** A server transaction that records what the core answers. */
class FakeTxn implements IncomingTransaction {
  readonly responses: SipResponse[] = [];
  readonly flow = FLOW;
  constructor(readonly request: SipRequest, readonly cancelTarget?: object) {}
  respond(res: SipResponse): void {
    this.responses.push(res);
  }
  get final(): SipResponse | undefined {
    return this.responses.find((r) => r.status >= 200);
  }
}

function service(name: string, methods: string[], handle: (ctx: RequestContext) => void | Promise<void>, extra: Partial<SipService> = {}): SipService {
  return { name, methods, handle, ...extra };
}

const silent = pino({ level: 'silent' });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('core/SipCore', () => {
  let core: SipCore;
  beforeEach(() => {
    core = new SipCore(silent);
  });

  function handle(req: SipRequest, cancelTarget?: object): FakeTxn {
    const txn = new FakeTxn(req, cancelTarget);
    core.handle(txn);
    return txn;
  }

  describe('dispatch table', () => {
    it('hands a request to the service registered for its method', () => {
      const seen: string[] = [];
      core.register(service('pager', ['MESSAGE'], (ctx) => {
        seen.push(ctx.request.method);
        ctx.reply(200);
      }));
      const txn = handle(request('MESSAGE'));
      expect(seen).to.deep.equal(['MESSAGE']);
      expect(txn.final!.status).to.equal(200);
    });

    it('refuses a second service for a method already served', () => {
      core.register(service('a', ['PUBLISH'], () => {}));
      expect(() => core.register(service('b', ['publish'], () => {}))).to.throw(/PUBLISH already served by a/);
    });

    it('answers methods it knows but does not serve with 405 and Allow, INVITE included', () => {
      core.register(service('registrar', ['REGISTER'], () => {}));
      for (const method of ['INVITE', 'BYE', 'REFER', 'INFO', 'UPDATE', 'PRACK', 'MESSAGE']) {
        const res = handle(request(method)).final!;
        expect(res.status, method).to.equal(405);
        expect(res.reason).to.equal('Method Not Allowed');
        expect(res.getHeader('allow')).to.equal('OPTIONS, REGISTER');
      }
    });

    it('answers unknown methods with 501 Not Implemented', () => {
      const res = handle(request('FOO')).final!;
      expect(res.status).to.equal(501);
      expect(res.reason).to.equal('Not Implemented');
      expect(res.getHeader('allow')).to.equal('OPTIONS');
    });

    it('never answers an ACK, nor hands it to a service', () => {
      let called = false;
      core.register(service('x', ['ACK'], () => {
        called = true;
      }));
      expect(handle(request('ACK')).responses).to.have.length(0);
      expect(called).to.equal(false);
    });

    it('answers a response built per RFC 3261 §8.2.6 (Via, From, Call-ID, CSeq copied, To tagged)', () => {
      const res = handle(request('FOO')).final!;
      expect(res.topVia.branch).to.equal('z9hG4bKcore1');
      expect(res.from.tag).to.equal('a1');
      expect(res.callId).to.equal('core-1@test');
      expect(res.cseq).to.deep.equal({ seq: 1, method: 'FOO' });
      expect(res.to.tag).to.be.a('string').and.have.length.above(0);
    });
  });

  describe('OPTIONS (RFC 3261 §11.2)', () => {
    it('answers 200 with Allow only, before any service exists', () => {
      const res = handle(request('OPTIONS')).final!;
      expect(res.status).to.equal(200);
      expect(res.getHeader('allow')).to.equal('OPTIONS');
      expect(res.hasHeader('allow-events')).to.equal(false);
      expect(res.hasHeader('accept')).to.equal(false);
      expect(res.hasHeader('supported')).to.equal(false);
    });

    it('lists what the services registered: Allow, Accept, Supported, Allow-Events', () => {
      core.register(service('presence', ['PUBLISH', 'SUBSCRIBE'], () => {}, { eventPackages: ['presence'], accept: ['application/pidf+xml'] }));
      core.register(service('registrar', ['REGISTER'], () => {}, { supported: ['path'] }));
      core.register(service('pager', ['MESSAGE'], () => {}, { accept: ['text/plain', 'application/pidf+xml'] }));
      const res = handle(request('OPTIONS')).final!;
      expect(res.getHeader('allow')).to.equal('OPTIONS, PUBLISH, SUBSCRIBE, REGISTER, MESSAGE');
      expect(res.getHeader('accept')).to.equal('application/pidf+xml, text/plain');
      expect(res.getHeader('supported')).to.equal('path');
      expect(res.getHeader('allow-events')).to.equal('presence');
    });

    it('a service that serves OPTIONS itself takes it over', () => {
      core.register(service('custom', ['OPTIONS'], (ctx) => void ctx.reply(202)));
      expect(handle(request('OPTIONS')).final!.status).to.equal(202);
    });
  });

  describe('Max-Forwards (RFC 3261 §16.3)', () => {
    it('answers 483 Too Many Hops to Max-Forwards 0, whatever the method', () => {
      const handled: string[] = [];
      core.register(service('all', ['REGISTER', 'SUBSCRIBE', 'MESSAGE'], (ctx) => void handled.push(ctx.request.method)));
      for (const method of ['REGISTER', 'SUBSCRIBE', 'MESSAGE', 'INVITE', 'FOO']) {
        const res = handle(request(method, [], 'sip:bob@example.com').clone().setHeader('Max-Forwards', 0) as SipRequest).final!;
        expect(res.status, method).to.equal(483);
        expect(res.reason).to.equal('Too Many Hops');
      }
      expect(handled).to.deep.equal([]);
    });

    it('answers OPTIONS with Max-Forwards 0 itself (RFC 4475 §3.3.11)', () => {
      expect(handle(request('OPTIONS').setHeader('Max-Forwards', 0) as SipRequest).final!.status).to.equal(200);
    });

    it('passes Max-Forwards 1 and a request without one', () => {
      expect(handle(request('OPTIONS').setHeader('Max-Forwards', 1) as SipRequest).final!.status).to.equal(200);
      expect(handle(request('OPTIONS').removeHeader('Max-Forwards') as SipRequest).final!.status).to.equal(200);
    });

    it('answers an unreadable Max-Forwards with 400 Bad Max-Forwards', () => {
      const res = handle(request('OPTIONS').setHeader('Max-Forwards', 'many') as SipRequest).final!;
      expect(res.status).to.equal(400);
      expect(res.reason).to.equal('Bad Max-Forwards');
    });
  });

  describe('Require (RFC 3261 §8.2.2.3)', () => {
    it('answers 420 Bad Extension with Unsupported naming only the unknown tags', () => {
      core.register(service('registrar', ['REGISTER'], () => {}, { supported: ['path'] }));
      const res = handle(request('REGISTER', ['Require: path, foo', 'Require: Bar'])).final!;
      expect(res.status).to.equal(420);
      expect(res.reason).to.equal('Bad Extension');
      expect(res.getHeader('unsupported')).to.equal('foo, Bar');
    });

    it('passes option tags a service supports, compared without case', () => {
      let handled = false;
      core.register(service('registrar', ['REGISTER'], (ctx) => {
        handled = true;
        ctx.reply(200);
      }, { supported: ['path'] }));
      expect(handle(request('REGISTER', ['Require: PATH'])).final!.status).to.equal(200);
      expect(handled).to.equal(true);
    });

    it('does not apply Require to CANCEL', () => {
      expect(handle(request('CANCEL', ['Require: foo'])).final!.status).to.equal(481);
    });
  });

  describe('CANCEL (RFC 3261 §9.2)', () => {
    it('answers 200 when the CANCEL matched a live INVITE transaction', () => {
      const res = handle(request('CANCEL'), { state: 'completed' }).final!;
      expect(res.status).to.equal(200);
      expect(res.reason).to.equal('OK');
    });

    it('answers 481 when it matched none', () => {
      const res = handle(request('CANCEL')).final!;
      expect(res.status).to.equal(481);
      expect(res.reason).to.equal('Call/Transaction Does Not Exist');
    });
  });

  describe('faults inside a service', () => {
    it('turns a header that fails to parse into 400 with its reason, synchronously or not', async () => {
      core.register(service('sync', ['PUBLISH'], (ctx) => void ctx.request.event));
      core.register(service('async', ['SUBSCRIBE'], async (ctx) => {
        await tick();
        void ctx.request.expires;
      }));
      const sync = handle(request('PUBLISH', ['Event: pres;;ence']));
      expect(sync.final!.status).to.equal(400);
      expect(sync.final!.reason).to.match(/^Bad Event/);
      const later = handle(request('SUBSCRIBE', ['Expires: soon']));
      await tick();
      await tick();
      expect(later.final!.status).to.equal(400);
      expect(later.final!.reason).to.equal('Bad Expires');
    });

    it('keeps the status a SipParseError carries (416, 505...)', () => {
      core.register(service('x', ['MESSAGE'], () => {
        throw new SipParseError('Unsupported URI Scheme', 416);
      }));
      const res = handle(request('MESSAGE')).final!;
      expect(res.status).to.equal(416);
      expect(res.reason).to.equal('Unsupported URI Scheme');
    });

    it('answers 500 to any other error, and nothing more after a final response went out', async () => {
      core.register(service('boom', ['MESSAGE'], () => {
        throw new Error('bug');
      }));
      core.register(service('late', ['PUBLISH'], async (ctx) => {
        ctx.reply(200);
        await tick();
        throw new Error('bug after the answer');
      }));
      const res = handle(request('MESSAGE')).final!;
      expect(res.status).to.equal(500);
      expect(res.reason).to.equal('Server Internal Error');
      const late = handle(request('PUBLISH'));
      await tick();
      await tick();
      expect(late.responses.map((r) => r.status)).to.deep.equal([200]);
    });
  });

  describe('authentication and draining', () => {
    it('asks the authenticator before the service; a refusal is answered as it says', async () => {
      let identity: string | undefined;
      core.register(service('pager', ['MESSAGE'], (ctx) => {
        identity = ctx.identity?.aor;
        ctx.reply(200);
      }));
      let decision: AuthDecision = { ok: false, status: 401, reason: 'Unauthorized', headers: [['WWW-Authenticate', 'Digest realm="example.com"']] };
      core.useAuthenticator({ authenticate: () => decision });
      const refused = handle(request('MESSAGE'));
      await tick();
      expect(refused.final!.status).to.equal(401);
      expect(refused.final!.getHeader('www-authenticate')).to.equal('Digest realm="example.com"');
      expect(identity).to.equal(undefined);
      decision = { ok: true, identity: { aor: 'sip:alice@example.com', username: 'alice', by: 'digest' } };
      const ok = handle(request('MESSAGE'));
      await tick();
      expect(ok.final!.status).to.equal(200);
      expect(identity).to.equal('sip:alice@example.com');
    });

    it('answers 503 with Retry-After once draining', () => {
      core.drain();
      const res = handle(request('OPTIONS')).final!;
      expect(res.status).to.equal(503);
      expect(res.getHeader('retry-after')).to.equal('5');
      expect(handle(request('ACK')).responses).to.have.length(0);
    });
  });

  describe('observers', () => {
    it('see every request and each response sent for it', () => {
      const seen: string[] = [];
      core.observe({
        requestReceived: (req) => void seen.push(`> ${req.method}`),
        responseSent: (req, res) => void seen.push(`< ${res.status} ${req.method}`),
      });
      handle(request('OPTIONS'));
      handle(request('FOO'));
      expect(seen).to.deep.equal(['> OPTIONS', '< 200 OPTIONS', '> FOO', '< 501 FOO']);
    });
  });
});
