#!/usr/bin/env bash
# The classic compressors `itera score --baselines` runs as quality baselines (issue 15):
# xz (xz-utils), zstd, bzip2 and 7-Zip's PPMd (p7zip-full). Idempotent and quiet.
set -euo pipefail
need=()
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v bzip2 >/dev/null 2>&1 || need+=(bzip2)
command -v 7z >/dev/null 2>&1 || need+=(p7zip-full)
[ ${#need[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
