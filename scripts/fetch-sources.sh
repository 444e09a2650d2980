#!/usr/bin/env bash
# Fetch the pinned Debian source packages that bench/ and the end-to-end tests build,
# and install what building them needs. Idempotent and non-interactive: a second run
# with everything in place touches neither apt nor the network.
#
#   scripts/fetch-sources.sh [DEST]      DEST defaults to ${VRIFT_SRC_CACHE:-$HOME/.cache/vrift/src}
#
# Result: DEST/<dir>/ for every entry of bench/workloads.json, unpacked by dpkg-source
# (Debian patches applied) and never built in: callers copy the tree before building.
# Downloads stay in DEST/.dl so an unpack can be redone offline.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
manifest="$root/bench/workloads.json"
dest=${1:-${VRIFT_SRC_CACHE:-$HOME/.cache/vrift/src}}
export DEBIAN_FRONTEND=noninteractive

log() { printf 'fetch-sources: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo -n "$@"
  else die "need root for: $*"; fi
}

# First line: the packages; then one line per source: name source version dsc sha256 dir.
manifest_lines=$(node -e '
  const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(m.packages.join(" "));
  for (const s of m.sources) console.log([s.name, s.source, s.version, s.dsc, s.dscSha256, s.dir].join("\t"));
' "$manifest")
packages=$(head -n1 <<<"$manifest_lines")
sources=$(tail -n +2 <<<"$manifest_lines")

missing_packages() {
  local p installed
  # shellcheck disable=SC2086
  installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $packages 2>/dev/null | awk '/^ii/ {print $2}')
  for p in $packages; do
    grep -qxF "$p" <<<"$installed" || printf '%s ' "$p"
  done
}

missing_trees() {
  local name src ver dsc sha dir
  while IFS=$'\t' read -r name src ver dsc sha dir; do
    [ -d "$dest/$dir" ] || printf '%s\n' "$name"
  done <<<"$sources"
}

# Fast path: nothing to do, no lock, no apt.
todo_pkgs=$(missing_packages)
todo_trees=$(missing_trees)
if [ -z "$todo_pkgs" ] && [ -z "$todo_trees" ]; then
  exit 0
fi

mkdir -p "$dest/.dl"
# Tests may call this concurrently; the second caller waits, then finds the work done.
exec 9>"$dest/.lock"
flock 9

updated=0
apt_update() {
  [ "$updated" = 1 ] && return 0
  log "apt-get update"
  as_root apt-get update -qq
  updated=1
}

ensure_deb_src() {
  if grep -rqsE '^(Types:.*\bdeb-src\b|deb-src[[:space:]])' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  local main=/etc/apt/sources.list.d/debian.sources
  [ -f "$main" ] || die "no deb-src entry and no $main to copy one from"
  log "adding /etc/apt/sources.list.d/debian-src.sources"
  # The first stanza is the main archive (bookworm bookworm-updates main).
  sed -n '1,/^$/p' "$main" | sed 's/^Types: deb$/Types: deb-src/' \
    | as_root tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
  updated=0
  apt_update
}

todo_pkgs=$(missing_packages)
if [ -n "$todo_pkgs" ]; then
  log "installing: $todo_pkgs"
  # shellcheck disable=SC2086
  if ! as_root apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $todo_pkgs >/dev/null; then
    apt_update
    # shellcheck disable=SC2086
    as_root apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $todo_pkgs >/dev/null
  fi
fi

have_source_version() { # source version
  apt-cache showsrc --only-source "$1" 2>/dev/null | grep -qxF "Version: $2"
}

sha_ok() { # file sha256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

while IFS=$'\t' read -r name src ver dsc sha dir; do
  [ -d "$dest/$dir" ] && continue
  if ! sha_ok "$dest/.dl/$dsc" "$sha"; then
    ensure_deb_src
    if ! have_source_version "$src" "$ver"; then
      apt_update
      have_source_version "$src" "$ver" || die "$src $ver is no longer offered by apt (Debian point release?); fetch $dsc from snapshot.debian.org into $dest/.dl or update bench/workloads.json"
    fi
    log "downloading $src $ver"
    (cd "$dest/.dl" && apt-get source -qq --download-only -o APT::Sandbox::User=root "$src=$ver" >/dev/null)
    sha_ok "$dest/.dl/$dsc" "$sha" || die "$dsc: sha256 differs from bench/workloads.json"
  fi
  log "unpacking $dir"
  tmp="$dest/.tmp-$dir"
  rm -rf "$tmp"
  # dpkg-source checks every tarball against the sha256 listed in the (pinned) .dsc;
  # gpgv's "no public key" chatter is only shown if the unpack fails.
  if ! out=$(cd "$dest/.dl" && dpkg-source -q --no-copy -x "$dsc" "$tmp" 2>&1); then
    printf '%s\n' "$out" >&2
    die "dpkg-source failed for $dsc"
  fi
  mv "$tmp" "$dest/$dir"
done <<<"$sources"

log "sources ready in $dest"
