#!/usr/bin/env bash
# Installs the local AWS emulator (moto in server mode, pinned) into .venv. Idempotent; falls back to the
# machine's own moto when PyPI cannot be reached. Prints the python interpreter that runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION="5.2.5"
VENV=".venv"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import moto, flask; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
  echo "moto $MOTO_VERSION ready in $VENV" >&2
  exit 0
fi
if python3 -m venv "$VENV" >&2 && "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2; then
  echo "moto $MOTO_VERSION installed in $VENV" >&2
  exit 0
fi
if python3 -c "import moto, flask" 2>/dev/null; then
  echo "warning: could not install moto $MOTO_VERSION into $VENV; using the machine's moto $(python3 -c 'import moto; print(moto.__version__)')" >&2
  rm -rf "$VENV"
  exit 0
fi
echo "error: moto[server] is not installed and could not be installed; run: python3 -m venv .venv && .venv/bin/pip install 'moto[server]==$MOTO_VERSION'" >&2
exit 1
