-- A hub cluster's count of wrong passwords per email (issue 15): kept in the shared
-- database so that every process counts every failure and honours every lockout.
-- Additive: a binary without it keeps counting in its own memory.
CREATE TABLE login_failures (
    email            TEXT PRIMARY KEY,
    failures         BIGINT NOT NULL,
    first_at_ms      BIGINT NOT NULL,
    locked_until_ms  BIGINT
);
CREATE INDEX login_failures_first_at ON login_failures(first_at_ms);
