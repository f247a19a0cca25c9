#!/usr/bin/env bash
# Debian's PyTorch (CPU) for the training pipeline and its parity tests: /usr/bin/python3.
set -euo pipefail
if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then exit 0; fi
apt-get install -y -qq --no-install-recommends python3-torch python3-numpy >/dev/null
/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)'
