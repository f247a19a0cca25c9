#!/usr/bin/env bash
# The emulated Raspberry Pi tier (docs/hosts.md): qemu-user-static from Debian, then the arm64
# Node builds and their C libraries, unpacked into a cache outside git (scripts/engines/arm64.sh).
# Idempotent and quiet: a second run finds everything cached and does nothing.
set -euo pipefail
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
  echo "installed: qemu-user-static"
fi
bash "$(dirname "$0")/../engines/arm64.sh" fetch
