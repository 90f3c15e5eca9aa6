#!/usr/bin/env bash
# A small side-by-side load run (about a minute): 500 clients (2 % on long-polling), 20 orders/s
# for 10 s, against branchd and then the reference Node server, with the same parameters.
# Exits non-zero when branchd holds fewer clients than asked, delivers fewer (or more) newOrder
# events than expected, delivers a client's broadcasts out of event order or twice, answers a
# client's burst of events out of order (every client runs the in-order probe of SPEC §6 on
# connect: --order-probes), fails a POST, or its fan-out p99 exceeds CHECK_P99_MS (default 1000 ms: "absurd";
# the shared 2-core machines see p99 spikes of a few hundred ms from fsync and other builds).
# Extra arguments go to branchd-loadgen (e.g. --servers branchd). Output: target/loadgen-small/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REF_SRC=${REF_SERVER_SRC:-$ROOT/../shared/reference-server}
REF_DIR=$ROOT/target/reference-server
OUT=${LOADGEN_OUT:-$ROOT/target/loadgen-small}

cargo build --release -p branchd -p branchd-loadgen

servers=branchd
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && [ -f "$REF_SRC/server.js" ]; then
  mkdir -p "$REF_DIR"
  if [ ! -d "$REF_DIR/node_modules" ] || ! cmp -s "$REF_SRC/package-lock.json" "$REF_DIR/package-lock.json"; then
    cp "$REF_SRC/package.json" "$REF_SRC/package-lock.json" "$REF_DIR/"
    (cd "$REF_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  cp "$REF_SRC/server.js" "$REF_DIR/"
  servers=branchd,reference
else
  echo "run-small: node/npm or $REF_SRC missing: running branchd only" >&2
fi

exec target/release/branchd-loadgen \
  --servers "$servers" --branchd target/release/branchd --reference-dir "$REF_DIR" \
  --clients 500 --rate 20 --duration 10 --polling-fraction 0.02 --idle-secs 2 --order-probes 1 \
  --out "$OUT" --check --check-p99-ms "${CHECK_P99_MS:-1000}" \
  --label "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$@"
