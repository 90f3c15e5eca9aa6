-- Users managed end to end (SPEC §2/§3): a display name, a disabled flag (its tokens are
-- refused and it cannot log in), when its password last changed (tokens whose `iat` is
-- older are refused), and where it is managed: 'local' (here) or 'hq' (created at HQ,
-- reached this branch through the feed, read-only here). Additive: older binaries ignore
-- the columns.
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_changed_at INTEGER; -- Unix milliseconds
ALTER TABLE users ADD COLUMN origin TEXT NOT NULL DEFAULT 'local';
-- (Users replicated from HQ before this migration are marked 'hq' when the feed next sends them.)
-- Removed users' ids: their tokens stay refused (an unknown `sub` would pass as HQ's).
CREATE TABLE users_removed (
    id          TEXT PRIMARY KEY,
    removed_at  TEXT NOT NULL
) WITHOUT ROWID;
