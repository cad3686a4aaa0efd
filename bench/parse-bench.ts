/**
 * `npm run bench:parse`: messages parsed per second on a realistic mix (REGISTER, PUBLISH
 * with PIDF, SUBSCRIBE, NOTIFY, MESSAGE), ours next to sip.js's Parser.parseMessage on the
 * same messages in the same run. "Ours" includes what the server does for every request:
 * the start line, every header line, and the routing headers (Via, From, To, Call-ID,
 * CSeq, Max-Forwards, Request-URI) parsed and checked.
 */
import { Parser } from 'sip.js/lib/core/messages/parser.js';
import { parseMessage } from '../src/sip/parser.js';
import { composePresence, parsePidf, serializePidf } from '../src/presence/pidf/index.js';

const PIDF = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="t8d3f2a"><status><basic>open</basic></status><contact priority="0.8">sip:alice@192.0.2.10:5060</contact><note>Online</note></tuple>
  <dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities><dm:note>On the phone</dm:note></dm:person>
</presence>`;

function msg(startLine: string, headers: string[], body = ''): string {
  return `${startLine}\r\n${headers.join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const common = (method: string, n: number): string[] => [
  `Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK${method}${n}a7c3`,
  'Max-Forwards: 70',
  `From: "Alice Liddell" <sip:alice@example.com>;tag=9fxced76sl${n}`,
  `To: <sip:bob@example.com>${method === 'NOTIFY' ? ';tag=8321234356' : ''}`,
  `Call-ID: 3848276298220188511${n}@192.0.2.10`,
  `CSeq: ${n + 1} ${method}`,
];

export const MIX: string[] = [
  msg('REGISTER sip:example.com SIP/2.0', [
    ...common('REGISTER', 1).map((h) => h.replace('To: <sip:bob@example.com>', 'To: <sip:alice@example.com>')),
    'Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
    'User-Agent: baresip v3.10.1 (x86_64/Linux)',
    'Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER',
    'Supported: replaces,norefersub,gruu',
    'Expires: 3600',
  ]),
  msg('PUBLISH sip:alice@example.com SIP/2.0', [
    ...common('PUBLISH', 2).map((h) => h.replace('To: <sip:bob@example.com>', 'To: <sip:alice@example.com>')),
    'Event: presence',
    'Expires: 3600',
    'Content-Type: application/pidf+xml',
    'User-Agent: baresip v3.10.1 (x86_64/Linux)',
  ], PIDF),
  msg('SUBSCRIBE sip:bob@example.com SIP/2.0', [
    ...common('SUBSCRIBE', 3),
    'Contact: <sip:alice@192.0.2.10:5060>',
    'Event: presence',
    'Accept: application/pidf+xml, application/rlmi+xml, multipart/related',
    'Supported: eventlist',
    'Expires: 600',
    'User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)',
  ]),
  msg('NOTIFY sip:alice@192.0.2.10:5060 SIP/2.0', [
    ...common('NOTIFY', 4),
    'Contact: <sip:bob@198.51.100.7:5060>',
    'Event: presence',
    'Subscription-State: active;expires=599',
    'Content-Type: application/pidf+xml',
  ], PIDF.replace(/alice/g, 'bob')),
  msg('MESSAGE sip:bob@example.com SIP/2.0', [
    ...common('MESSAGE', 5),
    'Content-Type: text/plain;charset=UTF-8',
    'User-Agent: sip.js/0.21.2',
  ], 'Hello Bob, are we still on for lunch at noon? 🍜'),
];

function measure(label: string, inputs: readonly unknown[], parse: (input: never) => unknown, minMs: number): number {
  // Warm up the JIT, then run whole rounds of the mix until minMs has passed.
  for (let i = 0; i < 2000; i++) parse(inputs[i % inputs.length] as never);
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let r = 0; r < 200; r++) for (const m of inputs) {
      if (!parse(m as never)) throw new Error(`${label}: a message of the mix did not parse`);
      n++;
    }
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return (n / elapsed) * 1000;
}

const quick = process.argv.includes('--quick');
const minMs = quick ? 500 : 3000;
const buffers = MIX.map((m) => Buffer.from(m, 'utf8'));
const silent = { error() {}, warn() {}, log() {}, debug() {} };

const ours = measure('simple-presence', buffers, (b: Buffer) => {
  const r = parseMessage(b);
  return r.ok;
}, minMs);
// sip.js takes a string; decoding is part of what a server must do, so it is counted for both.
const theirs = measure('sip.js', buffers, (b: Buffer) => Parser.parseMessage(b.toString('utf8'), silent as never), minMs);

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(12);
console.log('parser                 messages/s (mix of REGISTER, PUBLISH+PIDF, SUBSCRIBE, NOTIFY+PIDF, MESSAGE)');
console.log(`simple-presence   ${fmt(ours)}`);
console.log(`sip.js 0.21       ${fmt(theirs)}`);
console.log(`ratio             ${(ours / theirs).toFixed(1).padStart(12)} x`);

// PIDF documents: parsing, composing several devices into one document, and refusing
// hostile bodies. Speed is measured here, not asserted in tests (the tests check that a bomb
// never reaches the XML tokenizer; this says how long the refusal takes).
const LAPTOP = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="laptop1"><status><basic>open</basic></status><note xml:lang="en">In a meeting</note></tuple>
  <dm:person id="p2"><rpid:activities><rpid:meeting/></rpid:activities></dm:person>
  <dm:device id="d2"><dm:deviceID>urn:uuid:5b2a0e0c-1f1e-4d8a-9d7b-000000000002</dm:deviceID></dm:device>
</presence>`;
const docs = [PIDF, LAPTOP, PIDF.replace('t8d3f2a', 'tphone').replace('p1', 'p3')].map((d) => {
  const r = parsePidf(d);
  if (!r.ok) throw new Error(r.reason);
  return r.document;
});
const publications = docs.map((document, i) => ({ document, publishedAt: i + 1 }));
const lols = ['<!ENTITY lol "lol">'];
for (let i = 1; i <= 9; i++) lols.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
// [body, the byte limit it is read under]: the nesting bomb is read under a raised limit so
// that the depth check, not the size check, refuses it.
const hostile: Record<string, [string | Buffer, number | undefined]> = {
  'billion laughs': [`<?xml version="1.0"?><!DOCTYPE presence [${lols.join('')}]><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@example.com"><note>&lol9;</note></presence>`, undefined],
  '100,000 levels of nesting': [`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@example.com">${'<x xmlns="urn:x">'.repeat(100_000)}${'</x>'.repeat(100_000)}</presence>`, 10_000_000],
  '1 MiB of spaces': [Buffer.alloc(1024 * 1024, 0x20), undefined],
};
const perSecond = (f: () => unknown): number => measure('pidf', [0], () => (f(), true), minMs / 3);
console.log('\nPIDF                                 per second     µs each');
const row = (label: string, rate: number): void => console.log(`${label.padEnd(32)}${fmt(rate)}${(1e6 / rate).toFixed(1).padStart(12)}`);
row('parse (phone document)', perSecond(() => parsePidf(PIDF)));
row('compose 3 devices + serialize', perSecond(() => serializePidf(composePresence('sip:alice@example.com', publications))));
for (const [label, [body, maxBytes]] of Object.entries(hostile)) {
  row(`refuse ${label}`, perSecond(() => parsePidf(body, maxBytes === undefined ? undefined : { maxBytes })));
}
