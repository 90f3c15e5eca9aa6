-- Directory: who exists. Branch and company ids are globally unique (UUIDs in production).
CREATE TABLE companies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE branches (
    id          TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies(id),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX branches_company ON branches(company_id);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    company_id     TEXT REFERENCES companies(id),
    branch_id      TEXT REFERENCES branches(id),
    created_at     TEXT NOT NULL
);

-- Desktop-app license keys: only a SHA-256 of the (high-entropy, random) key is stored.
CREATE TABLE licenses (
    key_hash    TEXT PRIMARY KEY,
    company_id  TEXT NOT NULL REFERENCES companies(id),
    branch_id   TEXT NOT NULL REFERENCES branches(id),
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Orders. `seq` orders rows for cursors; `request_hash` makes client-chosen ids idempotent.
CREATE TABLE orders (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    company_id     TEXT NOT NULL,
    branch_id      TEXT NOT NULL,
    number         INTEGER NOT NULL,
    business_day   TEXT NOT NULL,
    type           TEXT NOT NULL,
    status         TEXT NOT NULL,
    items          TEXT NOT NULL,
    subtotal       INTEGER NOT NULL,
    total          INTEGER NOT NULL,
    customer       TEXT,
    notes          TEXT,
    driver         TEXT,
    cancel_reason  TEXT,
    request_hash   TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX orders_branch_status ON orders(branch_id, status);
CREATE INDEX orders_company ON orders(company_id);

CREATE TABLE order_numbers (
    branch_id     TEXT NOT NULL,
    business_day  TEXT NOT NULL,
    last_number   INTEGER NOT NULL,
    PRIMARY KEY (branch_id, business_day)
) WITHOUT ROWID;

CREATE TABLE availability (
    branch_id            TEXT NOT NULL,
    item_type            TEXT NOT NULL,
    item_id              TEXT NOT NULL,
    company_id           TEXT NOT NULL,
    available            INTEGER NOT NULL,
    stock                INTEGER,
    low_stock_threshold  INTEGER,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (branch_id, item_type, item_id)
) WITHOUT ROWID;

CREATE TABLE printers (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    company_id     TEXT NOT NULL,
    branch_id      TEXT NOT NULL,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL,
    stations       TEXT NOT NULL,
    paper_width    INTEGER NOT NULL,
    connection     TEXT NOT NULL,
    profile        TEXT,
    status         TEXT NOT NULL,
    status_detail  TEXT,
    checked_at     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    -- set for `desktop` printers: the app's device id and its own name for the printer
    device_id      TEXT,
    local_id       TEXT
);
CREATE UNIQUE INDEX printers_desktop ON printers(branch_id, device_id, local_id) WHERE device_id IS NOT NULL;

-- Every broadcast, written in the same transaction as the change it announces. Serves
-- `catchUp` (kept at least 24 h) and is the outbox that sync forwards to HQ.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    company_id  TEXT NOT NULL,
    branch_id   TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX events_ns_seq ON events(namespace, seq);
CREATE INDEX events_created ON events(created_ms);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
