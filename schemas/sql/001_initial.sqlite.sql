-- simple-presence initial schema, SQLite (the embedded store); the twin of 001_initial.postgres.sql.
-- Types keep PostgreSQL's names: the driver reads them to convert (src/store/sqlite-values.ts).
-- timestamptz is integer ms since the epoch, boolean 0/1, bytea a blob, jsonb and text[] JSON text.
-- STRICT is not used: it allows only SQLite's own type names.

CREATE TABLE accounts (
  domain        text NOT NULL,
  username      text NOT NULL,
  display_name  text,
  -- Hex HA1 digests (RFC 8760): H(username:realm:password), never the password itself.
  ha1_md5       text CHECK (length(ha1_md5) = 32 AND ha1_md5 NOT GLOB '*[^0-9a-f]*'),
  ha1_sha256    text CHECK (length(ha1_sha256) = 64 AND ha1_sha256 NOT GLOB '*[^0-9a-f]*'),
  created_at    timestamptz NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  PRIMARY KEY (domain, username)
) WITHOUT ROWID;

CREATE TABLE presence_rules (
  presentity  text NOT NULL,
  -- A watcher URI (sip:bob@example.com) or a domain pattern (*@example.com).
  watcher     text NOT NULL,
  action      text NOT NULL CHECK (action IN ('allow', 'block', 'polite-block', 'confirm')),
  updated_at  timestamptz NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  PRIMARY KEY (presentity, watcher)
) WITHOUT ROWID;

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
  accept                text NOT NULL,
  created_at            timestamptz NOT NULL,
  expires_at            timestamptz NOT NULL,
  last_version          integer NOT NULL DEFAULT 0,
  last_event            text NOT NULL,
  authorized            boolean NOT NULL,
  call_id               text NOT NULL,
  local_tag             text NOT NULL,
  remote_tag            text NOT NULL,
  local_uri             text NOT NULL,
  remote_uri            text NOT NULL,
  local_cseq            integer NOT NULL,
  remote_cseq           integer NOT NULL,
  route_set             text[] NOT NULL DEFAULT '[]',
  remote_target         text NOT NULL,
  secure                boolean NOT NULL DEFAULT 0,
  contact               text NOT NULL,
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
  path            text[] NOT NULL DEFAULT '[]',
  transport       text NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls', 'ws', 'wss')),
  remote_address  text NOT NULL,
  remote_port     integer NOT NULL,
  local_address   text NOT NULL,
  local_port      integer NOT NULL,
  connection_id   integer,
  reachable       boolean NOT NULL DEFAULT 1,
  user_agent      text,
  PRIMARY KEY (aor, binding_key)
);
CREATE INDEX registrations_expires_at ON registrations (expires_at);

CREATE TABLE stored_messages (
  -- Insertion order: the tie-break of "oldest first" (AUTOINCREMENT: never reused).
  id            integer PRIMARY KEY AUTOINCREMENT,
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
