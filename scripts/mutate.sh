#!/usr/bin/env bash
# Mutation testing of the money domain (Stryker, stryker.config.json): `npm run mutate [-- --mutate FILE,...]`.
# Slow (minutes per file), so not part of npm test; niced because it keeps every core it is given busy.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH" # Node 24, as npm scripts and CI use
mkdir -p .mutation
nice -n 10 stryker run "$@" | tee .mutation/clear-text.txt
