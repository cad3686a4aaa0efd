-- Chat rooms (issue 22), SQLite; the twin of 003_rooms.postgres.sql (types keep
-- PostgreSQL's names, see 001_initial.sqlite.sql). Rows of a room are deleted with it by
-- the repository, so nothing depends on PRAGMA foreign_keys.
CREATE TABLE rooms (
  uri           text PRIMARY KEY,
  owner         text NOT NULL,
  topic         text NOT NULL DEFAULT '',
  persistent    boolean NOT NULL DEFAULT 0,
  members_only  boolean NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL
) WITHOUT ROWID;

CREATE TABLE room_members (
  room       text NOT NULL,
  member     text NOT NULL,
  cpim       boolean NOT NULL DEFAULT 0,
  joined_at  timestamptz NOT NULL,
  PRIMARY KEY (room, member)
) WITHOUT ROWID;
CREATE INDEX room_members_member ON room_members (member);

CREATE TABLE room_bans (
  room       text NOT NULL,
  member     text NOT NULL,
  banned_by  text NOT NULL,
  banned_at  timestamptz NOT NULL,
  PRIMARY KEY (room, member)
) WITHOUT ROWID;

CREATE TABLE room_history (
  id            integer PRIMARY KEY AUTOINCREMENT,
  room          text NOT NULL,
  sender        text NOT NULL,
  content_type  text NOT NULL,
  body          bytea NOT NULL,
  received_at   timestamptz NOT NULL
);
CREATE INDEX room_history_room ON room_history (room, id);
