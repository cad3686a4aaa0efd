-- Users' resource lists (RFC 4826 §3), served by the resource list server (RFC 4662) at
-- sip:<user>+<name>@<domain> (Blink's convention: <user>+presence). Durable state: written
-- before the change is answered. The document is the list as an RFC 4826 resource-lists
-- document with one <list>, so an XCAP server can serve it as it is.
CREATE TABLE resource_lists (
  owner         text NOT NULL,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Za-z0-9._~-]*'),
  display_name  text,
  document      text NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  PRIMARY KEY (owner, name)
) WITHOUT ROWID;

-- The list of each live list subscription whose list came in its SUBSCRIBE (RFC 5367), so it
-- goes on after a restart; the subscription itself is a row of subscriptions (soft state).
CREATE TABLE list_subscriptions (
  id              text PRIMARY KEY,
  document        text NOT NULL,
  deflate         boolean NOT NULL DEFAULT false,
  bare_content_ids boolean NOT NULL DEFAULT false
);
