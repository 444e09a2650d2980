#!/bin/bash
# Commands with several sources, by hand: zstd's tests/ Makefile links each of its programs
# from all their sources in one command (`$(LINK.c) $^ -o $@`, ~45 sources each for
# fullbench and fuzzer), which ccache and sccache pass through. ZSTD_NO_ASM=1 keeps the
# assembler source out (a command that mixes languages passes through whole).
#
# Plain and vrift builds take turns in one tree (the same path: -g puts it in the objects):
# PAIRS cold pairs (vrift: a fresh VRIFT_HOME, its daemon started untimed), then PAIRS warm
# pairs (vrift: the cache of the cold builds). Each vrift build's executables are compared
# byte for byte with the first plain build's. Results go to bench/results/multi-source-<time>.md.
#
#   bench/multi-source.sh            (needs scripts/fetch-sources.sh once, and npm run build)
# Environment: PAIRS (3), JOBS (2), PROGS ("fullbench fuzzer datagen poolTests"),
# WORK (~/.cache/vrift-multi-source: not under /tmp, whose churn the daemon would watch).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$HOME/.cache/vrift-multi-source}
PAIRS=${PAIRS:-3}
JOBS=${JOBS:-2}
read -r -a PROGS <<< "${PROGS:-fullbench fuzzer datagen poolTests}"
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

rows=()
cold_p=(); cold_v=(); warm_p=(); warm_v=()
plain_first=1
for kind in cold warm; do
  for i in $(seq 1 "$PAIRS"); do
    p=$(build cc)
    if [ $plain_first = 1 ]; then for q in "${PROGS[@]}"; do cp "$TESTS/$q" "$WORK/ref/"; done; plain_first=0; fi
    if [ $kind = cold ]; then fresh; fi
    "${CLI[@]}" stats --zero >/dev/null
    v=$(build "$SHIM cc")
    st=$(stats)
    ok=$(same)
    ratio=$(echo "scale=3; $v / $p" | bc)
    rows+=("| $kind $i | $p | $v | $ratio | $st | $ok |")
    if [ $kind = cold ]; then cold_p+=("$p"); cold_v+=("$v"); else warm_p+=("$p"); warm_v+=("$v"); fi
    echo "$kind $i: plain $p s, vrift $v s ($ratio), hits/misses/uncacheable $st, identical $ok" >&2
  done
done
"${CLI[@]}" daemon stop >/dev/null 2>&1 || true

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mcp=$(median "${cold_p[@]}"); mcv=$(median "${cold_v[@]}"); mwp=$(median "${warm_p[@]}"); mwv=$(median "${warm_v[@]}")
stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
out="$ROOT/bench/results/multi-source-$stamp.md"
{
  echo "# Commands with several sources: zstd tests/ programs ($stamp)"
  echo
  echo "\`make -C tests -j$JOBS ZSTD_NO_ASM=1 CC=... ${PROGS[*]}\` on zstd $(basename "$src"), each program compiled and linked"
  echo "from all its sources in one command. gcc $(gcc -dumpfullversion), GNU make $(make --version | head -1 | awk '{print $3}') (no jobserver for these"
  echo "recipes: make before 4.4 hands it only to recipes marked \`+\`, so each command's compiles run one at a time;"
  echo "make's -j$JOBS runs two commands at once for plain and vrift alike). $(nproc) cores, shared with other work while"
  echo "this ran: walls are noisy. vrift column: hits/misses/uncacheable of that build."
  echo
  echo "| build | plain s | vrift s | vrift/plain | vrift h/m/u | executables identical to plain |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Medians: cold plain $mcp s, vrift $mcv s, **$(echo "scale=3; $mcv / $mcp" | bc)×**; warm plain $mwp s, vrift $mwv s, **$(echo "scale=3; $mwv / $mwp" | bc)×**."
} > "$out"
echo "$out"
