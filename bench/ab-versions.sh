#!/bin/bash
# Two checkouts of vrift (say: before and after a refactor) on the same libuv build,
# interleaved in one run, so machine noise falls on both alike:
#
#   bench/ab-versions.sh A_DIR B_DIR [ROUNDS]     (default 3 rounds)
#
# A_DIR and B_DIR are built checkouts (`npm run build` in each). One CMake build directory
# (libuv from Debian's sources, RelWithDebInfo, tests on) uses a launcher symlink (named vrift-shim: any other name is masquerade) that is
# pointed at A's or B's native shim before each build, so both versions compile the very
# same command lines in the same directory. Each version has its own VRIFT_HOME (its shim
# starts its own daemon). Per round: A cold, B cold (fresh stores), then A warm, B warm.
# It prints each build's wall time, hits and misses, the medians and B/A, and checks that
# every object B's warm build left is byte-identical to A's.
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); ROUNDS=${3:-3}
WORK=${WORK:-$HOME/.cache/vrift-ab}   # not under /tmp: the daemon watches the sources' ancestors
SRC=$(ls -d "$HOME"/.cache/vrift/src/libuv-*/ 2>/dev/null | head -1)
[ -n "$SRC" ] || { echo "no libuv sources: run scripts/fetch-sources.sh first" >&2; exit 1; }
for v in "$A" "$B"; do [ -x "$v/native/build/vrift-shim" ] || { echo "$v is not built (npm run build)" >&2; exit 1; }; done
stop() { for h in a b; do VRIFT_HOME="$WORK/home-$h" node "$1/dist/shim/cli.js" daemon stop >/dev/null 2>&1 || true; shift; done; }
stop "$A" "$B"
rm -rf "$WORK" && mkdir -p "$WORK/build" "$WORK/launcher" && cp -r "$SRC" "$WORK/src"
ln -s "$A/native/build/vrift-shim" "$WORK/launcher/vrift-shim"
(cd "$WORK/build" && cmake ../src -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc -DLIBUV_BUILD_TESTS=ON \
  -DCMAKE_C_COMPILER_LAUNCHER="$WORK/launcher/vrift-shim" -DCMAKE_C_LINKER_LAUNCHER="$WORK/launcher/vrift-shim" >/dev/null)

declare -A walls
build() { # tag dir home kind
  ln -sfn "$2/native/build/vrift-shim" "$WORK/launcher/vrift-shim"
  export VRIFT_HOME="$WORK/home-$3"
  [ "$4" = cold ] && { node "$2/dist/shim/cli.js" daemon stop >/dev/null 2>&1 || true; rm -rf "$VRIFT_HOME"; }
  node "$2/dist/shim/cli.js" stats --zero >/dev/null   # starts the daemon, makes its spares, as the benchmark does
  (cd "$WORK/build" && make clean >/dev/null)
  local s e; s=$(date +%s.%N)
  (cd "$WORK/build" && make -j"${J:-2}" >/dev/null 2>&1)
  e=$(date +%s.%N)
  local w; w=$(echo "$e - $s" | bc)
  local st; st=$(node "$2/dist/shim/cli.js" stats --json)
  walls[$1]="${walls[$1]:-} $w"
  printf '%-8s %6.2f s  hits %s  misses %s\n' "$1" "$w" "$(echo "$st" | node -pe 'JSON.parse(require("fs").readFileSync(0)).hits')" "$(echo "$st" | node -pe 'JSON.parse(require("fs").readFileSync(0)).misses')"
}
for r in $(seq 1 "$ROUNDS"); do
  build A-cold "$A" a cold; build B-cold "$B" b cold
  build A-warm "$A" a warm; (cd "$WORK/build" && find . -name '*.o' | sort | xargs sha256sum) >"$WORK/objects-a"
  build B-warm "$B" b warm; (cd "$WORK/build" && find . -name '*.o' | sort | xargs sha256sum) >"$WORK/objects-b"
  if cmp -s "$WORK/objects-a" "$WORK/objects-b"; then echo "round $r: $(wc -l <"$WORK/objects-a") objects byte-identical A/B"; else echo "round $r: OBJECTS DIFFER"; diff "$WORK/objects-a" "$WORK/objects-b" | head; fi
done
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for k in cold warm; do
  a=$(echo "${walls[A-$k]}" | med); b=$(echo "${walls[B-$k]}" | med)
  printf '%s: A median %.2f s, B median %.2f s, B/A %.3f\n' "$k" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
stop "$A" "$B"
