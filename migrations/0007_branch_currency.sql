-- A branch's currency (SPEC §3: money is shown and printed in the branch's currency): an
-- ISO 4217 code whose minor-unit digits decide where the point goes (JPY 0, USD 2, KWD 3).
-- Branches from before it keep printing as they did (two decimals). Additive: older
-- binaries ignore the column.
ALTER TABLE branches ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD';
