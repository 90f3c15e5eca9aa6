#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, one after the other, and prints its
# figures. Usage: fuzz/run.sh [seconds per target, default 180] [target ...]
# New inputs go to fuzz/corpus/<target> (not committed); the seeds are the committed
# tests/fuzz-corpus/<target>. A crash stops that target and leaves its input in
# fuzz/artifacts/<target>/. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on a
# stable toolchain RUSTC_BOOTSTRAP=1 lets it use the nightly-only flags it needs.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-180}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
export RUSTC_BOOTSTRAP=1
mkdir -p target/logs
# Built once: `cargo fuzz run` would build again before each target, and branchd's build
# script (the git commit it records) makes that a rebuild of branchd every time.
cargo fuzz build -s none >target/logs/build.log 2>&1 || { echo "build failed: fuzz/target/logs/build.log"; exit 1; }
bin=target/$(rustc -vV | sed -n 's/^host: //p')/release
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  dict=()
  case $t in socketio_payload|orders|availability|printers|sync_batch) dict=(-dict=dicts/json.dict) ;; esac
  "$bin/$t" "corpus/$t" "../tests/fuzz-corpus/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
    >"target/logs/$t.log" 2>&1 || { echo "$t: FAILED, see fuzz/target/logs/$t.log"; status=1; }
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "target/logs/$t.log" | grep -o '[0-9]*$')
  last=$(grep -E '^#[0-9]+' "target/logs/$t.log" | tail -1)
  echo "$t: ${runs:-?} executions in ${secs} s; last: $last"
done
exit $status
