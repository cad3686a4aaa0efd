-- XCAP documents (RFC 4825); the twin of 005_xcap.postgres.sql (timestamptz is integer ms).
CREATE TABLE xcap_documents (
  auid        text NOT NULL,
  owner       text NOT NULL,
  path        text NOT NULL,
  content     text NOT NULL,
  etag        text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  PRIMARY KEY (auid, owner, path)
) WITHOUT ROWID;
CREATE INDEX xcap_documents_owner ON xcap_documents (owner);
