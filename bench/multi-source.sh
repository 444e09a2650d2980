#!/bin/bash
# Commands with several sources, by hand: zstd's tests/ Makefile links each of its programs
# from all their sources in one command (`$(LINK.c) $^ -o $@`, ~45 sources for fullbench),
# which ccache and sccache pass through. ZSTD_NO_ASM=1 keeps the assembler source out (a
# command that mixes languages passes through whole).
#
# Plain and vrift builds take turns in one tree (the same path: -g puts it in the objects),
# PAIRS rounds of: a plain build, a cold vrift build (a fresh VRIFT_HOME, its daemon started
# untimed), a warm vrift build (the cache of the cold one); both compared with that round's
# plain build (plain has no cache: its cold and warm are the same). Each vrift build's
# executables are compared byte for byte with the first plain build's. Results go to
# bench/results/multi-source-<time>.md, a row as each build ends.
#
#   bench/multi-source.sh            (needs scripts/fetch-sources.sh once, and npm run build)
# Environment: PAIRS (3), JOBS (2), PROGS ("fullbench datagen poolTests"; fuzzer is as big as fullbench),
# WORK (~/.cache/vrift-multi-source: not under /tmp, whose churn the daemon would watch).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$HOME/.cache/vrift-multi-source}
PAIRS=${PAIRS:-3}
JOBS=${JOBS:-2}
read -r -a PROGS <<< "${PROGS:-fullbench datagen poolTests}"
SHIM="$ROOT/native/build/vrift-shim"
CLI=(node "$ROOT/dist/shim/cli.js")
export VRIFT_HOME="$WORK/home"
unset VRIFT_SESSION VRIFT_DISABLE VRIFT_REMOTE

src=$(ls -d "${VRIFT_SRC_CACHE:-$HOME/.cache/vrift/src}"/zstd-* 2>/dev/null | head -1)
[ -n "$src" ] || { echo "no zstd sources: run scripts/fetch-sources.sh" >&2; exit 1; }
[ -x "$SHIM" ] || { echo "no $SHIM: run npm run build" >&2; exit 1; }
rm -rf "$WORK/tree" && mkdir -p "$WORK/ref" && cp -r "$src" "$WORK/tree"
TESTS="$WORK/tree/tests"

# build <cc>: prints the wall seconds of a clean build of PROGS.
build() {
  (cd "$TESTS" && rm -f "${PROGS[@]}")
  local s e
  s=$(date +%s.%N)
  make -C "$TESTS" -j"$JOBS" ZSTD_NO_ASM=1 "CC=$1" "${PROGS[@]}" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
same() { for p in "${PROGS[@]}"; do cmp -s "$WORK/ref/$p" "$TESTS/$p" || { echo "no ($p differs)"; return; }; done; echo yes; }
stats() { "${CLI[@]}" stats --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(`${s.hits}/${s.misses}/${Object.values(s.uncacheable).reduce((a,b)=>a+b,0)}`)'; }
fresh() {
  "${CLI[@]}" daemon stop >/dev/null 2>&1 || true
  rm -rf "$VRIFT_HOME"
  "${CLI[@]}" stats >/dev/null # starts the daemon, untimed
}

stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
out="$ROOT/bench/results/multi-source-$stamp.md"
{
  echo "# Commands with several sources: zstd tests/ programs ($stamp)"
  echo
  echo "\`make -C tests -j$JOBS ZSTD_NO_ASM=1 CC=... ${PROGS[*]}\` on zstd $(basename "$src"), each program compiled and linked"
  echo "from all its sources in one command. gcc $(gcc -dumpfullversion), GNU make $(make --version | head -1 | awk '{print $3}') (no jobserver for these"
  echo "recipes: make before 4.4 hands it only to recipes marked \`+\`, so each command's compiles run one at a time;"
  echo "make's -j$JOBS runs two commands at once for plain and vrift alike). $(nproc) cores, shared with other work while"
  echo "this ran (load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)): walls are noisy. vrift column: hits/misses/uncacheable of that build."
  echo
  echo "| build | plain s | vrift s | vrift/plain | vrift h/m/u | executables identical to plain |"
  echo "|---|---|---|---|---|---|"
} > "$out"

cold_p=(); cold_v=(); warm_v=()
for i in $(seq 1 "$PAIRS"); do
  p=$(build cc)
  if [ "$i" = 1 ]; then for q in "${PROGS[@]}"; do cp "$TESTS/$q" "$WORK/ref/"; done; fi
  cold_p+=("$p")
  for kind in cold warm; do
    if [ $kind = cold ]; then fresh; fi
    "${CLI[@]}" stats --zero >/dev/null
    v=$(build "$SHIM cc")
    st=$(stats)
    ok=$(same)
    ratio=$(echo "scale=3; $v / $p" | bc)
    echo "| $i: plain, vrift $kind | $p | $v | $ratio | $st | $ok |" >> "$out"
    if [ $kind = cold ]; then cold_v+=("$v"); else warm_v+=("$v"); fi
    echo "$i $kind: plain $p s, vrift $v s ($ratio), hits/misses/uncacheable $st, identical $ok" >&2
  done
done
"${CLI[@]}" daemon stop >/dev/null 2>&1 || true

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mcp=$(median "${cold_p[@]}"); mcv=$(median "${cold_v[@]}"); mwv=$(median "${warm_v[@]}")
{
  echo
  echo "Medians: cold plain $mcp s, vrift $mcv s, **$(echo "scale=3; $mcv / $mcp" | bc)×**; warm vrift $mwv s, **$(echo "scale=3; $mwv / $mcp" | bc)×** plain."
} >> "$out"
echo "$out"
