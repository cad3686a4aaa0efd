/**
 * The names a cluster uses in NATS: key-value buckets (JetStream) and subjects. A key or
 * subject token is a presentity's or AoR's URI in base64url, which has none of the
 * characters NATS gives a meaning (`.`, `*`, `>`, spaces).
 */
export const BUCKETS = {
  /** Publications, one entry a presentity (RFC 3903 state, with each publication's expiry). */
  publications: 'sp_publications',
  /** Registrations, one entry an address-of-record, each binding with the node that holds its flow. */
  bindings: 'sp_bindings',
  /** Live nodes: each node's heartbeat and load. */
  nodes: 'sp_nodes',
  /** What every node must agree on (the digest nonce secret). */
  cluster: 'sp_cluster',
} as const;

/** JetStream streams. */
export const STREAMS = {
  /** Room messages, one subject a room (ROOM_MESSAGES.<room>): the one order of each room's messages. */
  rooms: 'sp_rooms',
} as const;

/** Subject prefix of room messages in the rooms stream. */
export const ROOM_MESSAGES = 'sp.room';

/** Subject prefix every committed change of a publication entry is republished under (JetStream RePublish). */
export const PUBLICATION_NEWS = 'sp.pub';

export const SUBJECTS = {
  /** Committed changes of one presentity's publications: nodes with watchers of it listen. */
  publication: (key: string): string => `${PUBLICATION_NEWS}.${key}`,
  /** A MESSAGE branch for a binding whose flow the node holds (request/reply). */
  relay: (node: string): string => `sp.relay.${token(node)}`,
  /** Watcher events of one presentity's presence subscriptions: nodes with its winfo subscribers listen. */
  watcherNews: (key: string): string => `sp.winfo.${key}`,
  /** "Which of a presentity's watchers do you hold?": every node answers (scatter-gather). */
  watcherQuery: 'sp.watchers',
  /** A node joined: the others read the list of nodes again. */
  hello: 'sp.hello',
  /** Accounts and rules changed in PostgreSQL: caches forget them. */
  caches: 'sp.caches',
  /** A room changed in PostgreSQL: nodes read it again (request/reply, every node answers). */
  roomNews: 'sp.rooms',
} as const;

/** A key (or subject token) for a URI or a node name. */
export function token(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** The text a key stands for. */
export function fromToken(key: string): string {
  return Buffer.from(key, 'base64url').toString('utf8');
}
