-- Sync between branch appliances and the HQ hub (same binary, role `hub`).

-- Branch side: events of the uplink's branch get a gap-free stream sequence when they are
-- written (in the same transaction as the change); the relay pushes them in that order.
-- Events applied from the hub's feed have no stream_seq: they are never sent back.
ALTER TABLE events ADD COLUMN stream_seq INTEGER;
ALTER TABLE events ADD COLUMN event_uuid TEXT;
CREATE UNIQUE INDEX events_stream ON events(branch_id, stream_seq) WHERE stream_seq IS NOT NULL;

-- Small key/value state of the sync engine (acknowledged cursor, feed cursor, ...).
CREATE TABLE sync_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- Events the hub refused as invalid: reported, never retried, never blocking.
CREATE TABLE sync_parked (
    branch_id   TEXT NOT NULL,
    stream_seq  INTEGER NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    parked_at   TEXT NOT NULL,
    PRIMARY KEY (branch_id, stream_seq)
) WITHOUT ROWID;

-- Hub side: branch credentials (only a hash is kept) ...
CREATE TABLE uplinks (
    branch_id   TEXT PRIMARY KEY REFERENCES branches(id),
    company_id  TEXT NOT NULL REFERENCES companies(id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) WITHOUT ROWID;

-- ... and every event each branch pushed, once, under a unique key.
CREATE TABLE hub_events (
    branch_id   TEXT NOT NULL,
    stream_seq  INTEGER NOT NULL,
    event_uuid  TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    data        TEXT NOT NULL,
    status      TEXT NOT NULL,           -- applied | parked
    received_at TEXT NOT NULL,
    PRIMARY KEY (branch_id, stream_seq)
) WITHOUT ROWID;

CREATE TABLE hub_streams (
    branch_id   TEXT PRIMARY KEY,
    high_water  INTEGER NOT NULL         -- highest contiguous stream_seq stored
) WITHOUT ROWID;

-- Hub events that originate at the hub (HQ changes for a branch) carry origin 'local'; events
-- applied from a branch's push carry 'branch' and are not fed back down.
ALTER TABLE events ADD COLUMN origin TEXT NOT NULL DEFAULT 'local';
CREATE INDEX events_feed ON events(branch_id, origin, seq);
