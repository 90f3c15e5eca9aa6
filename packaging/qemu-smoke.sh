#!/usr/bin/env bash
# Runs the cross-built binaries under qemu-user: packaging/qemu-smoke.sh [arm64|armhf|all]
# Each must answer `version --json` with its target, print the default config, and serve
# /health for a moment on 127.0.0.1 (emulated, so slow). Build them first with
# packaging/build-deb.sh; needs `apt-get install qemu-user`.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
case "$what" in
  arm64) arches=(arm64) ;; armhf) arches=(armhf) ;; all) arches=(arm64 armhf) ;;
  *) echo "usage: $0 [arm64|armhf|all]" >&2; exit 2 ;;
esac
for arch in "${arches[@]}"; do
  case "$arch" in
    arm64) triple=aarch64-unknown-linux-gnu; qemu=qemu-aarch64; sysroot=/usr/aarch64-linux-gnu ;;
    armhf) triple=armv7-unknown-linux-gnueabihf; qemu=qemu-arm; sysroot=/usr/arm-linux-gnueabihf ;;
  esac
  bin="target/$triple/release/branchd"
  [ -x "$bin" ] || { echo "$bin is missing: packaging/build-deb.sh $arch" >&2; exit 1; }
  command -v "$qemu" >/dev/null || { echo "$qemu is missing: apt-get install qemu-user" >&2; exit 1; }
  run() { "$qemu" -L "$sysroot" "$bin" "$@"; }
  echo "== $arch: version"
  run version --json | tee /dev/stderr | grep -q "\"target\":\"$triple\""
  echo "== $arch: print-default-config"
  run print-default-config --packaged | grep -q '^data_dir = "/var/lib/branchd"'
  echo "== $arch: serve + healthcheck"
  dir=$(mktemp -d)
  BRANCHD_CONFIG= JWT_SECRET=qemu-smoke-secret-0123456 "$qemu" -L "$sysroot" "$bin" serve --no-demo --port 0 \
    --bind 127.0.0.1 --mdns off --data-dir "$dir" >"$dir/log" 2>&1 &
  pid=$!
  ok=""
  for _ in $(seq 1 120); do
    if BRANCHD_CONFIG= run healthcheck --data-dir "$dir" 2>/dev/null; then ok=1; break; fi
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -n "$ok" ] || { echo "$arch: server never became healthy"; cat "$dir/log"; exit 1; }
  rm -rf "$dir"
  echo "== $arch: ok"
done
