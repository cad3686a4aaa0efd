-- Chat rooms (issue 22): a room is a SIP URI of our domain with an owner, a topic,
-- members, bans and the last messages (history) a member who joins is given.
CREATE TABLE rooms (
  -- Canonical room URI, sip:<name>@<domain>.
  uri           text PRIMARY KEY,
  owner         text NOT NULL,
  topic         text NOT NULL DEFAULT '',
  -- IRC's life cycle unless set: the room goes when its last member leaves.
  persistent    boolean NOT NULL DEFAULT false,
  -- Only members may send to the room (IRC's +n).
  members_only  boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL
);

CREATE TABLE room_members (
  room       text NOT NULL REFERENCES rooms (uri) ON DELETE CASCADE,
  member     text NOT NULL,
  -- The member takes message/cpim (RFC 3862), so copies name their sender in a wrapper.
  cpim       boolean NOT NULL DEFAULT false,
  joined_at  timestamptz NOT NULL,
  PRIMARY KEY (room, member)
);
CREATE INDEX room_members_member ON room_members (member);

CREATE TABLE room_bans (
  room       text NOT NULL REFERENCES rooms (uri) ON DELETE CASCADE,
  member     text NOT NULL,
  banned_by  text NOT NULL,
  banned_at  timestamptz NOT NULL,
  PRIMARY KEY (room, member)
);

CREATE TABLE room_history (
  -- Insertion order: history is replayed oldest first.
  id            bigserial PRIMARY KEY,
  room          text NOT NULL REFERENCES rooms (uri) ON DELETE CASCADE,
  sender        text NOT NULL,
  content_type  text NOT NULL,
  body          bytea NOT NULL,
  received_at   timestamptz NOT NULL
);
CREATE INDEX room_history_room ON room_history (room, id);
