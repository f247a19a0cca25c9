#!/usr/bin/env bash
# curl, which the server test uses as a client beside the openai npm client. Idempotent and quiet.
set -euo pipefail
command -v curl >/dev/null 2>&1 && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
echo "installed: curl"
