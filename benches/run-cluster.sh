#!/usr/bin/env bash
# Issue 15: the hub cluster (2 hub processes on one PostgreSQL database) beside the single
# SQLite hub, RUNS times, side by side in each run; prints the table of medians.
#
#  1. Fan-out: 2,000 Socket.IO clients (two loadgen workers: on the cluster one per process),
#     20 orders/s for 10 s POSTed to the first process; POST -> `newOrder` latency, reported
#     for all clients and for the other process's clients alone (cross-process).
#  2. Ingestion: 50 real branch appliances with 2,000 events each made while the hub is down,
#     then the hub (or both cluster processes; branch i uplinks to process i mod 2) starts and
#     all drain at once; events/s until every branch's /health shows sync.pending == 0.
#
# Needs: cargo build --release -p branchd -p branchd-loadgen; PostgreSQL's server binaries
# (Debian: apt-get install postgresql); python3. Runs PostgreSQL from a temporary directory
# (as `nobody` when run as root: initdb refuses root) on a free port, and stops it at the end.
#
#   benches/run-cluster.sh                      # 3 runs, data on /dev/shm, out in target/cluster-bench
#   RUNS=1 SCRATCH=target benches/run-cluster.sh  # one run, databases on disk
#   BRANCHD_BIN=path/to/branchd benches/run-cluster.sh   # another build of branchd
#   RUNS=1 PGSTATS=1 benches/run-cluster.sh     # + statements and transactions per event/order
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
OUT=${OUT:-target/cluster-bench}
SCRATCH=${SCRATCH:-/dev/shm}
CLIENTS=${CLIENTS:-2000}
RATE=${RATE:-20}
DURATION=${DURATION:-10}
BRANCHES=${BRANCHES:-50}
EVENTS=${EVENTS:-2000}
PARTS=${PARTS:-fanout ingest}   # which comparisons to run
PGSTATS=${PGSTATS:-0}   # 1: load pg_stat_statements and write the cluster's statement counts (costs a little; not for the figures)
BIN=${BRANCHD_BIN:-target/release/branchd}
LG=target/release/branchd-loadgen
SECRET=loadgen-secret-0123456789abcdef
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

for f in "$BIN" "$LG"; do
    [ -x "$f" ] || { echo "$f missing: cargo build --release -p branchd -p branchd-loadgen" >&2; exit 2; }
done
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL not found under /usr/lib/postgresql (apt-get install postgresql)" >&2; exit 2; }
mkdir -p "$OUT" "$SCRATCH"
BIN=$(realpath "$BIN")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }

STARTED=()   # pids of the hub processes this script started
PGDIR=$(mktemp -d "$SCRATCH/clbench-pg.XXXXXX")
cleanup() {
    for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR" "$SCRATCH"/clbench-hub.*
}
trap cleanup EXIT

# PostgreSQL: durable settings (fsync, synchronous_commit on), like SQLite's synchronous=FULL.
[ "$(id -u)" = 0 ] && chown nobody "$PGDIR"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null
PGPORT=$(free_port)
PRELOAD=""
[ "$PGSTATS" = 1 ] && PRELOAD="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -o \
    "$PRELOAD -c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$PGDIR -c max_connections=300 -c shared_buffers=128MB -c fsync=on -c synchronous_commit=on -c log_min_messages=warning" \
    start >/dev/null
PGPID=$(head -n 1 "$PGDIR/data/postmaster.pid")
psql_do() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "$1"; }
# With PGSTATS=1: the statements, transactions and rows of database $1 since stats_reset $1, into $2.
pgstats_reset() { [ "$PGSTATS" = 1 ] || return 0; psql_do "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null; psql_do "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset_shared('wal')" >/dev/null; psql_db "$1" "SELECT pg_stat_reset()" >/dev/null; }
pgstats_dump() {
    [ "$PGSTATS" = 1 ] || return 0
    {
        echo "# statements (calls) in database $1"
        psql_do "SELECT sum(s.calls) AS calls, round(sum(s.total_exec_time)::numeric, 1) AS ms FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$1'"
        psql_do "SELECT s.calls, round(s.total_exec_time::numeric, 1) AS ms, s.rows, left(regexp_replace(s.query, '\s+', ' ', 'g'), 140) AS query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$1' ORDER BY s.total_exec_time DESC LIMIT 25"
        psql_db "$1" "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched FROM pg_stat_database WHERE datname = '$1'"
    } >"$2"
}
psql_db() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$1" -c "$2"; }
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on port $PGPORT (postmaster $PGPID), data in $PGDIR" >&2

# The loadgen layout (10 branches lg-br-B in 2 companies lg-co-C, B mod 2) in a hub's store.
layout() { # $1 data dir; env BRANCHD_DATABASE_URL selects PostgreSQL
    for c in 0 1; do JWT_SECRET=$SECRET RUST_LOG=warn "$BIN" --data-dir "$1" company add "lg-co-$c" --name "Loadgen company $c" >/dev/null; done
    for b in $(seq 0 9); do
        JWT_SECRET=$SECRET RUST_LOG=warn "$BIN" --data-dir "$1" branch add "lg-br-$b" --company "lg-co-$((b % 2))" --name "Loadgen branch $b" >/dev/null
    done
}

# Starts a hub process; prints "PID PORT". $1 data dir, $2 log; env BRANCHD_DATABASE_URL.
start_hub() {
    local port pid
    port=$(free_port)
    JWT_SECRET=$SECRET BRANCHD_BACKUP_INTERVAL_HOURS=0 RUST_LOG=warn \
        "$BIN" serve --role hub --no-demo --bind 127.0.0.1 --mdns off --tls off --port "$port" --data-dir "$1" >"$2" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fs "http://127.0.0.1:$port/health" >/dev/null || { echo "hub did not start, see $2" >&2; exit 1; }
    echo "$pid $port"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
stop_pids() { # SIGTERM, then wait until each is gone (they are not this shell's children)
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do for _ in $(seq 100); do [ -e "/proc/$p" ] || break; sleep 0.1; done; done
    STARTED=()
}

fanout_sqlite() { # $1 run
    local dir pid port
    dir=$(mktemp -d "$SCRATCH/clbench-hub.XXXXXX")
    layout "$dir"
    read -r pid port < <(start_hub "$dir" "$OUT/fanout-sqlite-$1.log")
    STARTED=("$pid")
    sleep 1
    echo "{\"sqlite_hub\": $(rss_kib "$pid")}" >"$OUT/idle-rss-sqlite-$1.json"
    nice -n 5 "$LG" --cluster "127.0.0.1:$port" --cluster-pids "$pid" --cluster-name sqlite-hub \
        --clients "$CLIENTS" --rate "$RATE" --duration "$DURATION" --label "run $1" --out "$OUT/fanout-sqlite-$1" >/dev/null
    stop_pids "$pid"
    rm -rf "$dir"
}

fanout_cluster() { # $1 run
    local d0 d1 p0 p1 port0 port1
    psql_do "CREATE DATABASE fanout_$1"
    export BRANCHD_ROLE=hub BRANCHD_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/fanout_$1"
    d0=$(mktemp -d "$SCRATCH/clbench-hub.XXXXXX")
    d1=$(mktemp -d "$SCRATCH/clbench-hub.XXXXXX")
    layout "$d0"
    read -r p0 port0 < <(start_hub "$d0" "$OUT/fanout-cluster-$1-a.log")
    STARTED=("$p0")
    read -r p1 port1 < <(start_hub "$d1" "$OUT/fanout-cluster-$1-b.log")
    STARTED=("$p0" "$p1")
    unset BRANCHD_ROLE BRANCHD_DATABASE_URL
    sleep 1
    pgstats_reset "fanout_$1"
    echo "{\"pg_hub_a\": $(rss_kib "$p0"), \"pg_hub_b\": $(rss_kib "$p1")}" >"$OUT/idle-rss-cluster-$1.json"
    nice -n 5 "$LG" --cluster "127.0.0.1:$port0,127.0.0.1:$port1" --cluster-pids "$p0,$p1" --cluster-name pg-cluster \
        --db-pid "$PGPID" --clients "$CLIENTS" --rate "$RATE" --duration "$DURATION" --label "run $1" \
        --out "$OUT/fanout-cluster-$1" >/dev/null
    pgstats_dump "fanout_$1" "$OUT/pgstats-fanout-$1.txt"
    stop_pids "$p0" "$p1"
    rm -rf "$d0" "$d1"
}

ingest_sqlite() { # $1 run
    nice -n 5 "$LG" sync --branchd "$BIN" --branches "$BRANCHES" --events "$EVENTS" --orders 0 \
        --scratch "$SCRATCH" --out "$OUT/ingest-sqlite-$1" >/dev/null
}

ingest_cluster() { # $1 run
    psql_do "CREATE DATABASE ingest_$1"
    pgstats_reset "ingest_$1"
    nice -n 5 "$LG" sync --branchd "$BIN" --branches "$BRANCHES" --events "$EVENTS" --orders 0 \
        --database-url "postgres://postgres@127.0.0.1:$PGPORT/ingest_$1" --hubs 2 --db-pid "$PGPID" \
        --scratch "$SCRATCH" --out "$OUT/ingest-cluster-$1" >/dev/null
    pgstats_dump "ingest_$1" "$OUT/pgstats-ingest-$1.txt"
}

for r in $(seq 1 "$RUNS"); do
    # Alternate which goes first, so that neither always gets the quieter half of a run.
    if [ $((r % 2)) = 1 ]; then order="sqlite cluster"; else order="cluster sqlite"; fi
    for part in $PARTS; do
        for kind in $order; do
            echo "run $r: $part, $kind ..." >&2
            "${part}_$kind" "$r"
        done
    done
done

python3 - "$OUT" "$RUNS" <<'EOF'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def load(p):
    try:
        return json.load(open(p))
    except Exception:
        return None
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def f(x, d=1):
    return "-" if x is None else f"{x:,.{d}f}"
def spread(xs, d=1):
    return " · ".join(f(x, d) for x in xs)
rows = []
def row(name, s, c, d=1, ratio=True):
    ms, mc = med(s), med(c)
    r = f"{mc / ms:.2f}x" if ratio and ms and mc is not None else ""
    rr = [f"{a / b:.2f}" if a is not None and b else "-" for a, b in zip(c, s)] if ratio else []
    rows.append(f"| {name} | {f(ms, d)} | {f(mc, d)} | {r} | {spread(s, d)} | {spread(c, d)} | {' · '.join(rr)} |")
fo = {k: [load(f"{out}/fanout-{k}-{r}/result.json") for r in range(1, runs + 1)] for k in ("sqlite", "cluster")}
def o(res, key):
    try:
        return res["cases"][0]["orders"][key]
    except Exception:
        return None
def tgt(res, posted_here, key):
    try:
        return [t[key] for t in res["cases"][0]["orders"]["by_target"] if t["posted_here"] == posted_here][0]
    except Exception:
        return None
S, C = fo["sqlite"], fo["cluster"]
row("fan-out p99 ms, all clients", [o(x, "lat_p99_ms") for x in S], [o(x, "lat_p99_ms") for x in C], 2)
row("fan-out p99 ms, clients on the other process (cross-process)", [o(x, "lat_p99_ms") for x in S], [tgt(x, False, "p99_ms") for x in C], 2)
row("fan-out p99 ms, clients on the POSTed-to process", [o(x, "lat_p99_ms") for x in S], [tgt(x, True, "p99_ms") for x in C], 2)
row("fan-out p50 ms, cross-process", [o(x, "lat_p50_ms") for x in S], [tgt(x, False, "p50_ms") for x in C], 2)
row("POST p50 ms", [o(x, "post_p50_ms") for x in S], [o(x, "post_p50_ms") for x in C], 2)
row("POST p99 ms", [o(x, "post_p99_ms") for x in S], [o(x, "post_p99_ms") for x in C], 2)
row("delivered / expected (%)", [100 * o(x, "delivered") / max(1, o(x, "expected")) if o(x, "expected") is not None else None for x in S],
    [100 * o(x, "delivered") / max(1, o(x, "expected")) if o(x, "expected") is not None else None for x in C], 2, False)
row("hub CPU % during orders (sum of processes)", [o(x, "server_cpu_pct") for x in S], [o(x, "server_cpu_pct") for x in C], 0)
row("PostgreSQL CPU % during orders", [None for _ in S], [o(x, "db_cpu_pct") for x in C], 0, False)
ing = {k: [load(f"{out}/ingest-{k}-{r}/sync.json") for r in range(1, runs + 1)] for k in ("sqlite", "cluster")}
def d(res, *path):
    try:
        v = res["drain"]
        for p in path:
            v = v[p]
        return v
    except Exception:
        return None
S, C = ing["sqlite"], ing["cluster"]
row("ingestion events/s (first progress -> all pending 0)", [d(x, "events_per_s_from_first_progress") for x in S], [d(x, "events_per_s_from_first_progress") for x in C], 0)
row("ingestion events/s (hub spawn -> all pending 0)", [d(x, "events_per_s_from_hub_spawn") for x in S], [d(x, "events_per_s_from_hub_spawn") for x in C], 0)
row("hub CPU µs per event (sum of processes)", [d(x, "cpu_us_per_event", "hubs") for x in S], [d(x, "cpu_us_per_event", "hubs") for x in C], 0)
row("PostgreSQL CPU µs per event", [None for _ in S], [d(x, "cpu_us_per_event", "database") for x in C], 0, False)
row("branches' CPU µs per event (50 processes)", [d(x, "cpu_us_per_event", "branches") for x in S], [d(x, "cpu_us_per_event", "branches") for x in C], 0)
row("events acked by the hub(s) / made", [d(x, "branches_after", "acked") for x in S], [d(x, "branches_after", "acked") for x in C], 0, False)
rs = [load(f"{out}/idle-rss-sqlite-{r}.json") for r in range(1, runs + 1)]
rc = [load(f"{out}/idle-rss-cluster-{r}.json") for r in range(1, runs + 1)]
row("idle RSS MB per hub process (1 s after start)", [x["sqlite_hub"] / 1024 if x else None for x in rs],
    [x["pg_hub_a"] / 1024 if x else None for x in rc], 1)
print(f"Medians of {runs} runs; cluster = 2 hub processes on one PostgreSQL; ratio = cluster / SQLite hub (median of the values; per run after the runs).")
print()
print("| metric | SQLite hub | PG cluster | ratio | SQLite runs | cluster runs | per-run ratio |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
EOF
