#!/usr/bin/env bash
# Soak run (issue #8): a release branchd with 2,000 Socket.IO clients churning (20 reconnects
# and join/leave per second) and 5 orders/s, for SOAK_SECONDS (default 3600; CI: 60).
# Output: target/soak/soak.csv, soak.svg and a summary line; non-zero exit when memory or open
# files climb, a POST fails or clients are lost.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ -z "${BRANCHD_BIN:-}" ]; then cargo build --release -p branchd; fi
BIN=${BRANCHD_BIN:-$ROOT/target/release/branchd}
(cd benches/soak && [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error)
SECRET=soak-secret-0123456789abcdef
export JWT_SECRET=$SECRET BRANCHD_CONFIG= BRANCHD_BACKUP_INTERVAL_HOURS=0 RUST_LOG=warn
DIR=$(mktemp -d)
ulimit -n 20000 2>/dev/null || true
"$BIN" company add co-1 --name Soak --data-dir "$DIR" >/dev/null
for b in br-1 br-2 br-3 br-4; do "$BIN" branch add $b --company co-1 --name "$b" --data-dir "$DIR" >/dev/null; done
"$BIN" serve --no-demo --port 0 --bind 127.0.0.1 --mdns off --data-dir "$DIR" >"$DIR/stdout" 2>"$DIR/stderr" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do BASE=$(sed -n 's/^branchd listening on //p' "$DIR/stdout" | head -1); [ -n "$BASE" ] && break; sleep 0.1; done
node benches/soak/soak.mjs "$BASE" "$PID" "$SECRET" "$ROOT/target/soak"
