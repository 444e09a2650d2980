#!/usr/bin/env bash
# vrift quick start: installs everything it needs (Debian packages when missing, npm
# dependencies, the TypeScript and native builds), puts vrift, vriftd and vrift-shim on
# PATH, then runs the demo (a real C project built twice through vrift).
#   bash install.sh                  install + demo
#   bash install.sh --no-demo        install only
#   bash install.sh --no-test-deps   without what only the test suite runs against
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
DEMO=1 TEST_DEPS=1
for a in "$@"; do
  case "$a" in
    --no-demo) DEMO=0;;
    --no-test-deps) TEST_DEPS=0;;
    *) echo "install.sh: unknown option $a" >&2; exit 2;;
  esac
done

# libfuse2 + fuse: the FUSE overlay (fuse-native's binding is built against libfuse2; fusermount unmounts).
PKGS=(gcc g++ clang make cmake musl-tools util-linux dpkg-dev ccache sccache hyperfine wrk libfuse2 fuse)
# The benchmark's and the demo's real projects build against these (bench/workloads.json).
mapfile -t -O ${#PKGS[@]} PKGS < <(node -p 'require("./bench/workloads.json").packages.join("\n")')
# `npm test` runs real servers, linkers and tools instead of skipping: installed here, once,
# so no test installs anything (two test files installing at once raced on dpkg's lock).
TEST_PKGS=(nginx bazel-bootstrap ceph-mon ceph-osd ceph-mgr radosgw openssl iproute2 lld librust-itoa-dev librust-cfg-if-dev)
[ "$TEST_DEPS" = 1 ] && PKGS+=("${TEST_PKGS[@]}")
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "install.sh: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi

echo "install.sh: npm dependencies"
# npm install, not npm ci: with this npm (11) ci rejects a lock file that omits other platforms' optional
# native packages, which npm install itself writes. The lock file still pins every version.
npm install --no-audit --no-fund --loglevel=error
node -e "for (const m of ['zeromq', 'zstd-napi', '@napi-rs/blake-hash', 'msgpackr']) require(m)" \
  || { echo "install.sh: a native npm module does not load (see above); zstd-napi builds with node-gyp, which needs python3, make and g++" >&2; exit 1; }
echo "install.sh: building (TypeScript + native shim)"
npm run build --silent

if [ "$(id -u)" -eq 0 ]; then BIN=/usr/local/bin; else BIN="$HOME/.local/bin"; mkdir -p "$BIN"; fi
ln -sf "$ROOT/dist/shim/cli.js" "$BIN/vrift"
ln -sf "$ROOT/dist/daemon/main.js" "$BIN/vriftd"
ln -sf "$ROOT/native/build/vrift-shim" "$BIN/vrift-shim"
ln -sf "$ROOT/dist/shim/shim.js" "$BIN/vrift-shim-js"
echo "install.sh: vrift, vriftd, vrift-shim, vrift-shim-js linked into $BIN"
case ":$PATH:" in *":$BIN:"*) ;; *) echo "install.sh: add $BIN to your PATH";; esac

if [ "$DEMO" = 1 ]; then
  "$BIN/vrift" demo
fi
