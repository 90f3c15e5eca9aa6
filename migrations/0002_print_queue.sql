-- The durable print queue. A job is stored before it is acknowledged, printed per printer in
-- FIFO order, and counts as printed only when the printer confirmed it after the job.
CREATE TABLE print_jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    company_id       TEXT NOT NULL,
    branch_id        TEXT NOT NULL,
    printer_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,            -- receipt | kitchen | raw | test
    order_id         TEXT,
    station          TEXT,
    data             BLOB,                     -- raw jobs: the bytes to send
    status           TEXT NOT NULL,            -- queued | printing | printed | failed | expired | cancelled
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- a previous attempt broke mid-job: the next copy carries a POSSIBLE DUPLICATE banner
    uncertain        INTEGER NOT NULL DEFAULT 0,
    reprint_of       TEXT,
    last_error       TEXT,
    next_attempt_ms  INTEGER NOT NULL DEFAULT 0,
    expires_at_ms    INTEGER,                  -- kitchen tickets: not printed late without a warning
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    printed_at       TEXT
);
CREATE INDEX print_jobs_printer_status ON print_jobs(printer_id, status, seq);
CREATE INDEX print_jobs_status ON print_jobs(status, seq);
