#!/bin/sh
# branchd under heaptrack's preload library, for `branchd-loadgen --branchd benches/heaptrack-branchd.sh`:
# `exec` keeps the PID the load generator measures and stops; the raw trace of each branchd
# process (the loadgen also runs admin commands with it) goes to $HEAPTRACK_DIR/raw-PID.txt.
# Afterwards, for the biggest file (the server):
#   /usr/lib/heaptrack/libexec/heaptrack_interpret < RAW | gzip > server.gz
#   heaptrack_print -f server.gz --print-peaks 1 --peak-limit 30
# Build branchd with symbols first: CARGO_PROFILE_RELEASE_STRIP=false cargo build --release -p branchd
# (docs/BENCHMARKS.md, "What a connection holds").
dir=${HEAPTRACK_DIR:-/tmp/branchd-heaptrack}
mkdir -p "$dir"
bin=${BRANCHD_REAL:-$(dirname "$0")/../target/release/branchd}
LD_PRELOAD=/usr/lib/heaptrack/libheaptrack_preload.so DUMP_HEAPTRACK_OUTPUT="$dir/raw-$$.txt" exec "$bin" "$@"
