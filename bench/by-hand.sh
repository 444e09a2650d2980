#!/bin/bash
# Cold/warm libuv builds by hand, with the CPU accounting the benchmark does not print:
# busy and idle core-seconds of the whole machine (/proc/stat) and the daemon's CPU per
# thread (/proc/<pid>/task). For profiling a change between two bench runs; noise is about
# ±0.5 s on a 20 s build, so compare CPU totals more than walls.
#
#   bench/by-hand.sh setup            copies libuv (needs one `npm run bench -- --quick` first)
#                                     to $WORK (default ~/.cache/vrift-by-hand: not under /tmp, whose
#                                     churn the daemon would watch as an ancestor of the sources) and configures a
#                                     plain and a vrift build directory
#   bench/by-hand.sh cold [node flags] a fresh daemon (extra node flags, e.g. --cpu-prof),
#                                     a `vrift stats` (spares made, as the benchmark does),
#                                     then a clean vrift build
#   bench/by-hand.sh warm             a clean vrift build against the running daemon
#   bench/by-hand.sh plain            a clean plain build
#   bench/by-hand.sh misses [node flags] the daemon's CPU per miss, steadier than any build: a
#                                     fresh daemon, then N (default 300) compiles of one small
#                                     file with ~100 headers, each with another -D (all miss),
#                                     one after another, so entries wait for the pause the
#                                     whole time; compare two versions by running this 3x each
# Environment passed to the daemon on `cold` reaches it (e.g. VRIFT_REMOTE=...).
set -euo pipefail
WORK=${WORK:-$HOME/.cache/vrift-by-hand}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export VRIFT_HOME=${BY_HAND_HOME:-$WORK/home}
DAEMON="$ROOT/dist/daemon/main.js"
daemon_pid() { pgrep -f "^[^ ]*node .*$DAEMON" | head -1 || true; }

build() { # dir [daemon pid]
  cd "$WORK/$1"
  make clean >/dev/null
  cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
  dcpu() { if [ -n "${1:-}" ]; then cat /proc/"$1"/task/*/stat | awk '{s+=$14+$15} END{print s}'; else echo 0; fi; }
  local a b da db s e
  a=($(cpu)); da=$(dcpu "${2:-}"); s=$(date +%s.%N)
  make -j"${J:-2}" >/dev/null 2>&1
  e=$(date +%s.%N); b=($(cpu)); db=$(dcpu "${2:-}")
  echo "$1: wall $(echo "$e - $s" | bc | cut -c1-5) s  busy $(( b[0]-a[0] )) cs  idle $(( b[1]-a[1] )) cs  daemon $(( db-da )) cs"
  if [ -n "${2:-}" ]; then
    for t in /proc/"$2"/task/*; do echo "  thread $(basename "$t") $(cat "$t"/comm): $(awk '{print $14+$15}' "$t"/stat) cs since the daemon started"; done | sort -t: -k2 -rn | head -6
  fi
}

case "${1:-}" in
  setup)
    src=$(ls -d "$HOME"/.cache/vrift/bench/libuv/parked/*/src 2>/dev/null | head -1)
    [ -n "$src" ] || { echo "no libuv under ~/.cache/vrift/bench: run npm run bench -- --quick first" >&2; exit 1; }
    rm -rf "$WORK" && mkdir -p "$WORK/plain" "$WORK/vrift" && cp -r "$src" "$WORK/src"
    common=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc -DLIBUV_BUILD_TESTS=ON)
    (cd "$WORK/plain" && cmake ../src "${common[@]}" >/dev/null)
    (cd "$WORK/vrift" && cmake ../src "${common[@]}" -DCMAKE_C_COMPILER_LAUNCHER="$ROOT/native/build/vrift-shim" -DCMAKE_C_LINKER_LAUNCHER="$ROOT/native/build/vrift-shim" >/dev/null)
    echo "ready in $WORK" ;;
  cold)
    shift
    pid=$(daemon_pid); if [ -n "$pid" ]; then kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; fi
    rm -rf "$VRIFT_HOME" && mkdir -p "$VRIFT_HOME/run"
    (cd "$VRIFT_HOME" && setsid flock -n "$VRIFT_HOME/run/vriftd.lock" "$(command -v node)" --max-semi-space-size=4 "$@" "$DAEMON" >"${DAEMON_OUT:-/dev/null}" 2>&1 &)
    sleep 1.5
    node "$ROOT/dist/shim/cli.js" stats >/dev/null # as the benchmark does before a build: spares made now
    build vrift "$(daemon_pid)" ;;
  warm) build vrift "$(daemon_pid)" ;;
  plain) build plain ;;
  misses)
    shift
    m="$WORK/misses"; mkdir -p "$m"
    printf '#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <sys/socket.h>\n#include <netinet/in.h>\n#include <pthread.h>\n#include <signal.h>\nint f(int x) { return x * V; }\n' >"$m/t.c"
    pid=$(daemon_pid); if [ -n "$pid" ]; then kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; fi
    rm -rf "$VRIFT_HOME" && mkdir -p "$VRIFT_HOME/run"
    (cd "$VRIFT_HOME" && setsid flock -n "$VRIFT_HOME/run/vriftd.lock" "$(command -v node)" --max-semi-space-size=4 "$@" "$DAEMON" >"${DAEMON_OUT:-/dev/null}" 2>&1 &)
    sleep 0.5
    node "$ROOT/dist/shim/cli.js" stats >/dev/null # as the benchmark does before a build: spares made now
    pid=$(daemon_pid); n=${N:-300}
    all() { cat /proc/"$pid"/task/*/stat | awk '{s+=$14+$15} END{print s}'; }
    main() { awk '{print $14+$15}' /proc/"$pid"/task/"$pid"/stat; }
    a=$(all); am=$(main); s=$(date +%s.%N)
    for i in $(seq 1 "$n"); do (cd "$m" && "$ROOT/native/build/vrift-shim" gcc -c -O0 -DV="$i" -MD -MT t.o -MF t.d t.c -o t.o); done
    e=$(date +%s.%N); b=$(all); bm=$(main)
    echo "per miss: wall $(echo "($e - $s) * 1000 / $n" | bc -l | cut -c1-5) ms, daemon CPU $(echo "($b - $a) * 10 / $n" | bc -l | cut -c1-5) ms (JS thread $(echo "($bm - $am) * 10 / $n" | bc -l | cut -c1-5) ms)" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
