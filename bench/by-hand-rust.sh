#!/bin/bash
# Cold/warm ripgrep builds by hand, with the CPU accounting the benchmark does not print (the
# Rust counterpart of by-hand.sh): busy and idle core-seconds of the whole machine
# (/proc/stat) and the daemon's CPU during the build.
#
#   bench/by-hand-rust.sh setup   copies ripgrep 13 (needs scripts/fetch-sources.sh or one bench
#                                 run first) to $WORK (default ~/.cache/vrift-by-hand-rust), with a
#                                 CARGO_HOME pointing at Debian's crates
#   bench/by-hand-rust.sh cold    a fresh daemon and an empty store, then a clean release build
#   bench/by-hand-rust.sh warm    a clean release build against the running daemon
#   bench/by-hand-rust.sh plain   a clean release build without vrift
set -euo pipefail
WORK=${WORK:-$HOME/.cache/vrift-by-hand-rust}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_HOME=$WORK/cargo-home CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never VRIFT_HOME=$WORK/home
DAEMON="$ROOT/dist/daemon/main.js"
daemon_pid() { pgrep -f "^[^ ]*node .*$DAEMON" | head -1 || true; }
cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
dcpu() { if [ -n "${1:-}" ]; then cat /proc/"$1"/task/*/stat | awk '{s+=$14+$15} END{print s}'; else echo 0; fi; }

build() { # label [wrapper]
  cd "$WORK/src"
  cargo clean -q
  local pid a b da db s e
  pid=$(daemon_pid)
  a=($(cpu)); da=$(dcpu "$pid"); s=$(date +%s.%N)
  if [ -n "${2:-}" ]; then RUSTC_WRAPPER=$2 cargo build --release -j2 --offline -q >/dev/null 2>&1
  else cargo build --release -j2 --offline -q >/dev/null 2>&1; fi
  e=$(date +%s.%N); b=($(cpu)); db=$(dcpu "$pid")
  echo "$1: wall $(echo "$e - $s" | bc | cut -c1-5) s  busy $(( b[0]-a[0] )) cs  idle $(( b[1]-a[1] )) cs  daemon $(( db-da )) cs"
}

case "${1:-}" in
  setup)
    src=$(ls -d "$HOME"/.cache/vrift/src/rust-ripgrep-* 2>/dev/null | head -1)
    [ -n "$src" ] || { echo "no ripgrep under ~/.cache/vrift/src: run scripts/fetch-sources.sh first" >&2; exit 1; }
    rm -rf "$WORK" && mkdir -p "$CARGO_HOME" && cp -r "$src" "$WORK/src"
    printf '[source.crates-io]\nreplace-with = "debian"\n[source.debian]\ndirectory = "/usr/share/cargo/registry"\n[net]\noffline = true\n' > "$CARGO_HOME/config.toml"
    cd "$WORK/src" && { [ ! -f Cargo.lock ] || mv Cargo.lock Cargo.lock.orig; } && sed -i '/^simd-accel = /d' Cargo.toml && cargo generate-lockfile --offline -q
    echo "ready in $WORK" ;;
  cold)
    pid=$(daemon_pid); if [ -n "$pid" ]; then kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; fi
    rm -rf "$VRIFT_HOME" && mkdir -p "$VRIFT_HOME"
    "$ROOT/dist/shim/cli.js" daemon start >/dev/null
    sleep 1
    build cold "$ROOT/native/build/vrift-shim" ;;
  warm) build warm "$ROOT/native/build/vrift-shim" ;;
  plain) build plain ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
