#!/usr/bin/env bash
# The abuse benchmark of issue #8 against a release branchd on 127.0.0.1 (a few minutes):
# a 20,000-login flood (memory, rate, staff still get in, a lockout holds), 40 unauthenticated
# 16 MiB bodies to a hub (memory, refused before read), and a half-sent request (closed
# within 30 s). Figures: one JSON line per run, also appended to target/abuse/results.jsonl.
# Exits non-zero when a target is missed. Needs node >= 18 (fetch).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/target/abuse
mkdir -p "$OUT"
if [ -z "${BRANCHD_BIN:-}" ]; then
  cargo build --release -p branchd
fi
BIN=${BRANCHD_BIN:-$ROOT/target/release/branchd}
export JWT_SECRET=abuse-bench-secret-0123456789 BRANCHD_CONFIG= BRANCHD_BACKUP_INTERVAL_HOURS=0 RUST_LOG=warn

start() { # start DIR ROLE -> sets PID BASE
  local dir=$1 role=$2
  "$BIN" serve --no-demo --port 0 --bind 127.0.0.1 --mdns off --role "$role" --data-dir "$dir" >"$dir/stdout" 2>"$dir/stderr" &
  PID=$!
  for _ in $(seq 1 100); do
    BASE=$(sed -n 's/^branchd listening on //p' "$dir/stdout" | head -1)
    [ -n "$BASE" ] && return 0
    sleep 0.1
  done
  echo "branchd did not start: $(cat "$dir/stderr")" >&2; exit 1
}
status=0
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$BIN" company add co --name Bench --data-dir "$DIR/branch" >/dev/null
"$BIN" branch add br --company co --name Bench --data-dir "$DIR/branch" >/dev/null
"$BIN" user add --email staff@bench.local --password staff-password-1 --role kitchen --company co --branch br --data-dir "$DIR/branch" >/dev/null 2>&1
"$BIN" user add --email owner@bench.local --password owner-password-1 --role company_owner --company co --data-dir "$DIR/branch" >/dev/null 2>&1
start "$DIR/branch" branch
node benches/abuse/abuse.mjs login "$BASE" "$PID" | tee -a "$OUT/results.jsonl" || status=1
node benches/abuse/abuse.mjs loris "$BASE" "$PID" | tee -a "$OUT/results.jsonl" || status=1
kill "$PID"; wait "$PID" 2>/dev/null || true
mkdir -p "$DIR/hub"
start "$DIR/hub" hub
node benches/abuse/abuse.mjs bodies "$BASE" "$PID" | tee -a "$OUT/results.jsonl" || status=1
exit $status
