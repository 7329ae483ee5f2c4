#!/usr/bin/env bash
# Installs Debian's Chromium for the HTML report test when it is missing (needs root, as on CI machines).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: chromium is not installed; run: sudo apt-get install -y chromium" >&2
  exit 1
fi
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
