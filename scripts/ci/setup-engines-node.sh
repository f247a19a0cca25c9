#!/usr/bin/env bash
# The Node-version tiers (docs/hosts.md): the pinned official Node 22 and 24 builds, x64 and
# arm64, from the npm registry into a cache outside git (scripts/engines/node.sh). The arm64
# builds run under the qemu-user of setup-engines-arm64.sh. Idempotent and quiet.
set -euo pipefail
QUIET=1 bash "$(dirname "$0")/../engines/node.sh" fetch all
