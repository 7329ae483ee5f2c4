#!/usr/bin/env bash
# Installs the local AWS emulator (moto in server mode, pinned) into .venv. Idempotent; falls back to the
# machine's own moto when PyPI cannot be reached and that moto runs the emulator's launcher, and says on stderr
# which moto will run.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION="5.2.5"
VENV=".venv"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import moto, flask; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
  echo "moto $MOTO_VERSION ready in $VENV" >&2
  exit 0
fi
# A linked .venv (git worktrees share the main checkout's) belongs to another checkout: rebuilding it from here would
# change, or on failure delete, that checkout's environment.
if [ -L "$VENV" ]; then
  echo "error: $VENV is a link to $(readlink "$VENV") (another checkout's environment) without moto $MOTO_VERSION; not rebuilding it through the link: run this script in the checkout it belongs to, or remove the link (rm $VENV) to build this checkout's own" >&2
  exit 1
fi
# Only a venv this run made is removed when the install fails: one that was here before may hold other work.
made=1
if [ -e "$VENV" ]; then made=0; fi
if python3 -m venv "$VENV" >&2 && "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2; then
  echo "moto $MOTO_VERSION installed in $VENV" >&2
  exit 0
fi
# What the emulator's launcher imports: shared/local/moto.ts's MOTO_IMPORTS, its lines joined by "; " (a test holds
# them equal). A moto that imports but lacks them (5.2.1) cannot run it.
RUNS_EMULATOR="import sys, threading; from werkzeug.serving import run_simple; from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app"
machine="$(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || true)"
if python3 -c "$RUNS_EMULATOR" 2>/dev/null; then
  if [ "$made" = 1 ]; then
    rm -rf "$VENV"
    echo "warning: could not install moto $MOTO_VERSION into $VENV; using the machine's moto $machine" >&2
  elif [ -e "$VENV/bin/moto_server" ]; then
    # The emulator runs .venv's moto_server whenever there is one (shared/local/moto.ts).
    echo "warning: could not install moto $MOTO_VERSION into $VENV, which was here before (left as it is): its own moto runs; remove $VENV to use the machine's moto $machine" >&2
  else
    echo "warning: could not install moto $MOTO_VERSION into $VENV, which was here before (left as it is); using the machine's moto $machine" >&2
  fi
  exit 0
fi
if [ "$made" = 1 ]; then rm -rf "$VENV"; fi
if [ -n "$machine" ]; then
  echo "error: moto[server] $MOTO_VERSION could not be installed, and the machine's moto $machine cannot run the emulator; run: python3 -m venv .venv && .venv/bin/pip install 'moto[server]==$MOTO_VERSION'" >&2
  exit 1
fi
echo "error: moto[server] is not installed and could not be installed; run: python3 -m venv .venv && .venv/bin/pip install 'moto[server]==$MOTO_VERSION'" >&2
exit 1
