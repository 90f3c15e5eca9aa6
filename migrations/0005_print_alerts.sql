-- Print alerts (SPEC §4): stored so that GET /api/alerts lists the open ones and /health can
-- name a stalled printer. "Open" means not yet resolved: printer_stalled until
-- printer_recovered, job_expired until its job is reprinted or moved.
CREATE TABLE print_alerts (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    id                      TEXT NOT NULL UNIQUE,
    company_id              TEXT NOT NULL,
    branch_id               TEXT NOT NULL,
    type                    TEXT NOT NULL,      -- printer_stalled | printer_recovered | job_expired | no_printer_for_station
    severity                TEXT NOT NULL,
    printer_id              TEXT,
    order_id                TEXT,
    job_id                  TEXT,
    message                 TEXT NOT NULL,
    data                    TEXT NOT NULL,      -- the printAlert payload as broadcast
    raised_at               TEXT NOT NULL,
    resolved_at             TEXT,
    acked_at                TEXT,
    acked_by                TEXT
);
CREATE INDEX print_alerts_open ON print_alerts(branch_id, resolved_at, seq);
CREATE INDEX print_alerts_printer ON print_alerts(printer_id, type, resolved_at);

-- A ticket moved off a stalled printer (by hand or to its fallback) prints a
-- "MOVED FROM <printer>" line naming where it was meant to print.
ALTER TABLE print_jobs ADD COLUMN moved_from TEXT;
-- An order's print state (`printing` on every returned order) is read by order.
CREATE INDEX print_jobs_order ON print_jobs(order_id) WHERE order_id IS NOT NULL;
-- ... and whether a failed or expired ticket was reprinted since.
CREATE INDEX print_jobs_reprint ON print_jobs(reprint_of) WHERE reprint_of IS NOT NULL;

-- A printer may name a fallback that takes its waiting tickets once it has been stalled
-- for fallback_after_seconds.
ALTER TABLE printers ADD COLUMN fallback_printer_id TEXT;
ALTER TABLE printers ADD COLUMN fallback_after_seconds INTEGER NOT NULL DEFAULT 60;

-- The hub's copy of a branch order's print state (as the branch reported it through sync).
-- NULL at a branch, which works it out from its print_jobs.
ALTER TABLE orders ADD COLUMN printing TEXT;
