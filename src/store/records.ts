/**
 * The records the store reads and writes. Shapes follow the services' own records
 * (presence PublicationRecord and SubscriptionRecord, registrar Binding, messaging
 * StoredMessage) field for field, so a service passes its record as it is and maps
 * nothing; the store does not import them, since it sits below the services.
 * Times are wall-clock milliseconds (stored as timestamptz).
 */

export type TransportName = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
export const TRANSPORT_NAMES: readonly TransportName[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];

/** The flow a request came on: where to send back while its connection is open. */
export interface FlowRecord {
  readonly protocol: TransportName;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Connection table id of the process that wrote it; names nothing after a restart. */
  readonly connectionId?: number;
}

/** A user of one of our domains with the HA1 digests of its password (RFC 8760). */
export interface AccountRecord {
  readonly domain: string;
  readonly username: string;
  readonly displayName?: string;
  /** Hex MD5(username:realm:password), absent until a password is set. */
  readonly ha1Md5?: string;
  /** Hex SHA-256(username:realm:password). */
  readonly ha1Sha256?: string;
  readonly createdAtMs: number;
}

export type PresenceRuleAction = 'allow' | 'block' | 'polite-block' | 'confirm';
export const PRESENCE_RULE_ACTIONS: readonly PresenceRuleAction[] = ['allow', 'block', 'polite-block', 'confirm'];

/**
 * A presentity's decision about a watcher (RFC 5025 sub-handling). `watcher` is a URI
 * (`sip:bob@example.com`) or a domain pattern (`*@example.com`); presence does the matching.
 */
export interface PresenceRuleRecord {
  readonly presentity: string;
  readonly watcher: string;
  readonly action: PresenceRuleAction;
}

/** One publication (RFC 3903): a device's document for a presentity, under its entity-tag. */
export interface PublicationRecord {
  readonly etag: string;
  readonly presentity: string;
  readonly contentType: string;
  readonly body: Buffer;
  readonly publishedAtMs: number;
  readonly expiresAtMs: number;
  /** Bumped by the publisher on every modify; 1 when it keeps none. */
  readonly version?: number;
}

export type SubscriptionStatusRecord = 'pending' | 'active';
export type SubscriptionViewRecord = 'full' | 'polite-block';
/** RFC 3858 §4 watcher `event` values: what last happened to the subscription. */
export type WatcherEventRecord =
  | 'subscribe'
  | 'approved'
  | 'deactivated'
  | 'probation'
  | 'rejected'
  | 'timeout'
  | 'giveup'
  | 'noresource';
export const WATCHER_EVENTS: readonly WatcherEventRecord[] = [
  'subscribe',
  'approved',
  'deactivated',
  'probation',
  'rejected',
  'timeout',
  'giveup',
  'noresource',
];

/** RFC 3261 §12.1 dialog state of a subscription, as its notifier (UAS). */
export interface DialogRecord {
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  readonly localUri: string;
  readonly remoteUri: string;
  readonly localSeq: number;
  readonly remoteSeq: number;
  readonly routeSet: readonly string[];
  readonly remoteTarget: string;
  readonly secure: boolean;
  /** Our Contact in the dialog. */
  readonly localContact: string;
  readonly flow: FlowRecord;
}

/** A subscription (RFC 6665) with all that sending NOTIFYs after a restart needs. */
export interface SubscriptionRecord {
  readonly id: string;
  readonly eventPackage: string;
  readonly eventId?: string;
  /** The resource watched (presentity URI). */
  readonly resource: string;
  /** The watcher's address of record. */
  readonly watcher: string;
  readonly watcherUri: string;
  readonly watcherDisplayName?: string;
  readonly status: SubscriptionStatusRecord;
  readonly view: SubscriptionViewRecord;
  /** NOTIFY body type negotiated from Accept. */
  readonly contentType: string;
  readonly expiresAtMs: number;
  readonly createdAtMs: number;
  /** Last document version sent (RFC 3858 version numbers go on from here). */
  readonly documentVersion: number;
  readonly lastEvent: WatcherEventRecord;
  readonly authorized: boolean;
  readonly dialog: DialogRecord;
}

/** One binding of the location service (RFC 3261 §10.3), keyed by (aor, key). */
export interface RegistrationRecord {
  readonly aor: string;
  /** The binding's identity in its AoR: instance and reg-id, or the canonical contact URI. */
  readonly key: string;
  readonly contact: string;
  /** Contact parameters other than expires and q, in order. */
  readonly params: ReadonlyArray<readonly [string, string | null]>;
  readonly q?: number;
  readonly instanceId?: string;
  readonly regId?: number;
  readonly callId: string;
  readonly cseq: number;
  readonly expiresAt: number;
  readonly updatedAt: number;
  /** RFC 3327 Path values, in order. */
  readonly path: readonly string[];
  readonly flow: FlowRecord;
  readonly reachable: boolean;
  readonly userAgent?: string;
}

/** How a registration is named: the write-behind key and the primary key. */
export interface RegistrationKey {
  readonly aor: string;
  readonly key: string;
}

/** A MESSAGE kept for a recipient with no reachable contact (RFC 3428 store-and-forward). */
export interface StoredMessageRecord {
  /** Unique id chosen by the messaging service. */
  readonly id: string;
  /** Canonical AoR of the recipient. */
  readonly recipient: string;
  /** AoR of the sender, when known (for per-sender views and limits). */
  readonly sender?: string;
  /** From and To header values as received. */
  readonly from: string;
  readonly to: string;
  readonly callId: string;
  readonly cseq: number;
  readonly contentType?: string;
  /** Other end-to-end headers carried along, in order. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  readonly receivedAt: number;
  readonly expiresAt: number;
}

export interface StoredMessageUsage {
  readonly count: number;
  /** Sum of body sizes. */
  readonly bytes: number;
}
