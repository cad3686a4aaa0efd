-- XCAP documents (RFC 4825) stored as the clients wrote them: one row a document, keyed by
-- application usage, owner (the user's SIP URI; '' for the global tree) and document path.
-- The entity-tag is kept with the bytes so a conditional request compares without hashing.
CREATE TABLE xcap_documents (
  auid        text NOT NULL,
  owner       text NOT NULL,
  path        text NOT NULL,
  content     text NOT NULL,
  etag        text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (auid, owner, path)
);
CREATE INDEX xcap_documents_owner ON xcap_documents (owner);
