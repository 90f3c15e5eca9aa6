#!/usr/bin/env bash
# Builds the branchd Debian packages: packaging/build-deb.sh [amd64|arm64|armhf|all]
#
# amd64 is built natively; arm64 and armhf are cross-built on x86-64 with Debian's cross
# compilers (SQLite and libusb are compiled from source for the target, so no target
# libraries are needed). Packages land in target/packages/ (not target/debian/, which every
# cargo-deb run clears of same-architecture packages). Needs:
#   cargo install cargo-deb --version 3.8.0 --locked
#   apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf     (for arm64 / armhf)
#   rustup target add aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
# Set BRANCHD_RELEASE_PUBLIC_KEY to build in your release key (see `branchd release keygen`).
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-amd64}"
case "$what" in
  amd64|arm64|armhf) arches=("$what") ;;
  all) arches=(amd64 arm64 armhf) ;;
  -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
  *) echo "usage: $0 [amd64|arm64|armhf|all]" >&2; exit 2 ;;
esac

started=$(date +%s)
step() { printf '\n==> [%s +%ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - started ))" "$*"; }
die() { echo "build-deb: $*" >&2; exit 1; }

command -v cargo-deb >/dev/null 2>&1 || die "cargo-deb is missing: cargo install cargo-deb --version 3.8.0 --locked"

step "checking packaging/debian/config.toml against print-default-config --packaged"
if [ -x target/debug/branchd ] || [ -x target/release/branchd ]; then
  bin=target/release/branchd; [ -x "$bin" ] || bin=target/debug/branchd
  if ! "$bin" print-default-config --packaged | cmp -s - packaging/debian/config.toml; then
    "$bin" print-default-config --packaged > packaging/debian/config.toml
    echo "regenerated packaging/debian/config.toml from $bin"
  else
    echo "up to date"
  fi
else
  echo "no host build yet: keeping the committed file (tests/it/packaging.rs checks it)"
fi

summary=()
for arch in "${arches[@]}"; do
  target_args=()
  case "$arch" in
    amd64) triple=x86_64-unknown-linux-gnu; prefix="" ;;
    arm64) triple=aarch64-unknown-linux-gnu; prefix=aarch64-linux-gnu- ;;
    armhf) triple=armv7-unknown-linux-gnueabihf; prefix=arm-linux-gnueabihf- ;;
  esac
  if [ -n "$prefix" ]; then
    command -v "${prefix}gcc" >/dev/null 2>&1 \
      || die "${prefix}gcc is missing: apt-get install gcc-${prefix%-}"
    if ! rustup target list --installed | grep -qx "$triple"; then
      step "$arch: rustup target add $triple"
      rustup target add "$triple"
    fi
    up=$(echo "$triple" | tr 'a-z-' 'A-Z_')
    low=$(echo "$triple" | tr '-' '_')
    export "CARGO_TARGET_${up}_LINKER=${prefix}gcc"
    export "CC_${low}=${prefix}gcc" "AR_${low}=${prefix}ar"
    target_args=(--target "$triple")
    bin="target/$triple/release/branchd"
  else
    bin="target/release/branchd"
  fi
  step "$arch: cargo deb ${target_args[*]} (release build: fat LTO, this takes a while)"
  cargo deb --locked --no-strip "${target_args[@]}" -o target/packages/ -- --quiet
  deb=$(ls -t target/packages/branchd_*_"$arch".deb | head -1)
  glibc=$("${prefix}objdump" -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)
  declared=$(sed -n 's/^depends = .*libc6 (>= \([0-9.]*\)).*/\1/p' Cargo.toml)
  if [ "$(printf '%s\n%s\n' "${glibc#GLIBC_}" "$declared" | sort -V | tail -1)" != "$declared" ]; then
    die "$bin needs $glibc but Cargo.toml declares libc6 (>= $declared): raise it in [package.metadata.deb] depends"
  fi
  step "$arch: done"
  echo "package:   $deb ($(du -k "$deb" | cut -f1) KiB)"
  echo "binary:    $bin ($(du -k "$bin" | cut -f1) KiB, needs $glibc or newer)"
  dpkg-deb -f "$deb" Package Version Architecture Depends
  summary+=("$arch  $(du -k "$deb" | cut -f1) KiB .deb  $(du -k "$bin" | cut -f1) KiB binary  $glibc  $deb")
done

step "summary"
printf '%s\n' "${summary[@]}"
