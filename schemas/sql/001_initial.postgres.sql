-- simple-presence initial schema. Runs on PostgreSQL and on PGlite alike.
-- Durable state (accounts, presence_rules, stored_messages) is written before the 2xx;
-- soft state (publications, subscriptions, registrations) is written behind in batches,
-- keyed by text primary keys so a batch is one INSERT ... ON CONFLICT per 500 rows.
-- No foreign keys between soft-state tables: a flush writes them in any order.

CREATE TABLE accounts (
  domain        text NOT NULL,
  username      text NOT NULL,
  display_name  text,
  -- Hex HA1 digests (RFC 8760): H(username:realm:password), never the password itself.
  ha1_md5       text CHECK (ha1_md5 ~ '^[0-9a-f]{32}$'),
  ha1_sha256    text CHECK (ha1_sha256 ~ '^[0-9a-f]{64}$'),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, username)
);

CREATE TABLE presence_rules (
  presentity  text NOT NULL,
  -- A watcher URI (sip:bob@example.com) or a domain pattern (*@example.com).
  watcher     text NOT NULL,
  action      text NOT NULL CHECK (action IN ('allow', 'block', 'polite-block', 'confirm')),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (presentity, watcher)
);

CREATE TABLE publications (
  etag          text PRIMARY KEY,
  presentity    text NOT NULL,
  content_type  text NOT NULL,
  body          bytea NOT NULL,
  published_at  timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  version       integer NOT NULL DEFAULT 1
);
CREATE INDEX publications_presentity ON publications (presentity);
CREATE INDEX publications_expires_at ON publications (expires_at);

CREATE TABLE subscriptions (
  id                    text PRIMARY KEY,
  event_package         text NOT NULL,
  event_id              text,
  resource              text NOT NULL,
  watcher               text NOT NULL,
  watcher_uri           text NOT NULL,
  watcher_display_name  text,
  state                 text NOT NULL CHECK (state IN ('pending', 'active')),
  view                  text NOT NULL CHECK (view IN ('full', 'polite-block')),
  -- NOTIFY body type negotiated from Accept.
  accept                text NOT NULL,
  created_at            timestamptz NOT NULL,
  expires_at            timestamptz NOT NULL,
  last_version          integer NOT NULL DEFAULT 0,
  last_event            text NOT NULL,
  authorized            boolean NOT NULL,
  -- The dialog (RFC 3261 §12.1), as its notifier.
  call_id               text NOT NULL,
  local_tag             text NOT NULL,
  remote_tag            text NOT NULL,
  local_uri             text NOT NULL,
  remote_uri            text NOT NULL,
  -- CSeq numbers are below 2**31 (RFC 3261 §8.1.1.5), so integer holds them.
  local_cseq            integer NOT NULL,
  remote_cseq           integer NOT NULL,
  route_set             text[] NOT NULL DEFAULT '{}',
  remote_target         text NOT NULL,
  secure                boolean NOT NULL DEFAULT false,
  contact               text NOT NULL,
  -- The flow it came on; connection_id names nothing after a restart.
  transport             text NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls', 'ws', 'wss')),
  remote_address        text NOT NULL,
  remote_port           integer NOT NULL,
  local_address         text NOT NULL,
  local_port            integer NOT NULL,
  connection_id         integer
);
CREATE INDEX subscriptions_resource ON subscriptions (resource, event_package);
CREATE INDEX subscriptions_watcher ON subscriptions (watcher);
CREATE INDEX subscriptions_expires_at ON subscriptions (expires_at);

CREATE TABLE registrations (
  aor             text NOT NULL,
  -- The binding's identity in its AoR: instance and reg-id, or the canonical contact URI.
  binding_key     text NOT NULL,
  contact         text NOT NULL,
  params          jsonb NOT NULL DEFAULT '[]',
  q               double precision,
  instance_id     text,
  reg_id          integer,
  call_id         text NOT NULL,
  cseq            integer NOT NULL,
  expires_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  path            text[] NOT NULL DEFAULT '{}',
  transport       text NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls', 'ws', 'wss')),
  remote_address  text NOT NULL,
  remote_port     integer NOT NULL,
  local_address   text NOT NULL,
  local_port      integer NOT NULL,
  connection_id   integer,
  reachable       boolean NOT NULL DEFAULT true,
  user_agent      text,
  PRIMARY KEY (aor, binding_key)
);
CREATE INDEX registrations_expires_at ON registrations (expires_at);

CREATE TABLE stored_messages (
  -- Insertion order: the tie-break of "oldest first".
  id            bigserial PRIMARY KEY,
  -- The messaging service's own id for the message.
  message_id    text NOT NULL UNIQUE,
  recipient     text NOT NULL,
  sender        text,
  from_header   text NOT NULL,
  to_header     text NOT NULL,
  call_id       text NOT NULL,
  cseq          integer NOT NULL,
  content_type  text,
  headers       jsonb NOT NULL DEFAULT '[]',
  body          bytea NOT NULL,
  received_at   timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL
);
CREATE INDEX stored_messages_recipient ON stored_messages (recipient, received_at, id);
CREATE INDEX stored_messages_expires_at ON stored_messages (expires_at);
