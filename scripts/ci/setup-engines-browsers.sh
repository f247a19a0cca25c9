#!/usr/bin/env bash
# The browser engines of the device tiers (docs/hosts.md):
#   Android WebView's engine: Chromium (driven by playwright-core, a dev dependency);
#   iOS WKWebView's engine: WebKitGTK's MiniBrowser through WebKitWebDriver under Xvfb, and the
#   JavaScriptCore `jsc` shell.
# Idempotent and quiet: does nothing when every binary is already there. Runs as root in CI.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v WebKitWebDriver >/dev/null 2>&1 || need+=(webkit2gtk-driver)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v jsc >/dev/null 2>&1 || [ -x /usr/lib/x86_64-linux-gnu/webkit2gtk-4.0/jsc ] || need+=(libjavascriptcoregtk-4.0-bin)
[ ${#need[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
