import type {
  PublicationRecord,
  RegistrationRecord,
  StoredMessageRecord,
  SubscriptionRecord,
} from '../../src/store/records.js';

/** Whole seconds: what timestamptz keeps exactly either way. */
export const EPOCH = Date.UTC(2030, 0, 1);

export function publication(i: number, over: Partial<PublicationRecord> = {}): PublicationRecord {
  return {
    etag: `etag-${i}`,
    presentity: `sip:user${i % 7}@example.com`,
    contentType: 'application/pidf+xml',
    body: Buffer.from(`<presence entity="sip:user${i}@example.com"><tuple id="t${i}"><status><basic>open</basic></status></tuple></presence>`),
    publishedAtMs: EPOCH + i,
    expiresAtMs: EPOCH + 3_600_000,
    version: 1,
    ...over,
  };
}

export function subscription(i: number, over: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return {
    id: `sub-${i}`,
    eventPackage: 'presence',
    resource: `sip:user${i % 100}@example.com`,
    watcher: `sip:watcher${i}@example.com`,
    watcherUri: `sip:watcher${i}@example.com`,
    status: 'active',
    view: 'full',
    contentType: 'application/pidf+xml',
    expiresAtMs: EPOCH + 3_600_000,
    createdAtMs: EPOCH + i,
    documentVersion: i % 5,
    lastEvent: 'subscribe',
    authorized: true,
    dialog: {
      callId: `call-${i}@192.0.2.1`,
      localTag: `lt${i}`,
      remoteTag: `rt${i}`,
      localUri: `<sip:user${i % 100}@example.com>`,
      remoteUri: `"Watcher ${i}" <sip:watcher${i}@example.com>`,
      localSeq: i,
      remoteSeq: 1,
      routeSet: ['<sip:proxy1.example.com;lr>', '<sip:proxy2.example.com;lr>'],
      remoteTarget: `sip:watcher${i}@192.0.2.1:5062;transport=tcp`,
      secure: false,
      localContact: 'sip:presence@198.51.100.1:5060',
      flow: { protocol: 'tcp', remoteAddress: '192.0.2.1', remotePort: 40000 + (i % 20000), localAddress: '198.51.100.1', localPort: 5060, connectionId: i },
    },
    ...over,
  };
}

export function registration(i: number, over: Partial<RegistrationRecord> = {}): RegistrationRecord {
  return {
    aor: `sip:user${i % 10}@example.com`,
    key: `uri sip:user${i}@192.0.2.${i % 250}:5062`,
    contact: `sip:user${i}@192.0.2.${i % 250}:5062`,
    params: [
      ['+sip.instance', '"<urn:uuid:00000000-0000-0000-0000-00000000000' + (i % 10) + '>"'],
      ['ob', null],
    ],
    q: 0.7,
    instanceId: `<urn:uuid:00000000-0000-0000-0000-00000000000${i % 10}>`,
    regId: 1,
    callId: `reg-${i}`,
    cseq: 3,
    expiresAt: EPOCH + 3_600_000,
    updatedAt: EPOCH,
    path: ['<sip:edge.example.com;lr>'],
    flow: { protocol: 'udp', remoteAddress: '192.0.2.9', remotePort: 5062, localAddress: '198.51.100.1', localPort: 5060 },
    reachable: true,
    userAgent: 'baresip 3.0',
    ...over,
  };
}

export function storedMessage(i: number, over: Partial<StoredMessageRecord> = {}): StoredMessageRecord {
  return {
    id: `msg-${i}`,
    recipient: 'sip:bob@example.com',
    sender: 'sip:alice@example.com',
    from: '"Alice" <sip:alice@example.com>;tag=a1',
    to: '<sip:bob@example.com>',
    callId: `m-${i}@example.com`,
    cseq: i + 1,
    contentType: 'text/plain;charset=utf-8',
    headers: [['Subject', `hello ${i}`]],
    body: Buffer.from(`message ${i} \u00e9\u0000\u00ff`, 'utf8'),
    receivedAt: EPOCH + i * 1000,
    expiresAt: EPOCH + 7 * 86_400_000,
    ...over,
  };
}
