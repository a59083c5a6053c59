#!/usr/bin/env bash
# Installs, builds, and runs the whole test suite (unit + integration) with ctest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
fedtrack_setup --tests
cd "$FEDTRACK_BUILD"
ctest --output-on-failure --timeout 900 -j "$(nproc)"
