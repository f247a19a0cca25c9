#!/usr/bin/env bash
# What `itera report` needs to turn its SVG charts into PNG: rsvg-convert (Debian's librsvg2-bin)
# and a font. Idempotent and quiet: does nothing when both are there. Runs as root in CI.
# Without them `itera report` still writes the SVG charts and the Markdown, and says why there is
# no PNG (or renders through /usr/bin/chromium with playwright-core when that is installed).
set -euo pipefail
need=()
command -v rsvg-convert >/dev/null 2>&1 || need+=(librsvg2-bin)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
