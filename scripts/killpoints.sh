#!/usr/bin/env bash
# The full kill-point campaign: the CSV example job (3 rounds, versioning on,
# tracking journal-only) SIGKILLed before each of its durable steps (every
# rename, link, fsync, fdatasync and O_CREAT|O_EXCL open, counted by the
# LD_PRELOAD interposer tests/support/killpoint.c), then resumed and checked:
# same model sha256, one commit and tag per round, git status and dvc status
# clean, no lock or temporary file left, each round once in the journal.
# Prints one line per point and "points N passed P failed F"; exit 1 if any
# failed (their folders are kept). ctest runs a subset (versioning.kill_points).
#
#   scripts/killpoints.sh [--jobs 2] [--points 14,27,95] [--keep]
#
# Environment: BUILD (default build), VENV (default .venv: the real dvc).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
VENV=${VENV:-.venv}
cmake --build "$BUILD" --target fedtrack fedtrack_killpoint >/dev/null
# A private copy: a rebuild during the (long) campaign must not change or
# break the binary under test.
bin=$(mktemp -d /tmp/fedtrack-killpoints-bin-XXXXXX)
trap 'rm -rf "$bin"' EXIT
cp "$BUILD/connectors/fedtrack" "$BUILD/tests/killpoint.so" "$bin/"
export FEDTRACK_EXE="$bin/fedtrack"
export FEDTRACK_KILLPOINT_LIB="$bin/killpoint.so"
export FEDTRACK_VENV_BIN="$(cd "$VENV/bin" && pwd)"
"$FEDTRACK_VENV_BIN/python" tests/integration/test_killpoints.py --all "$@"
