#!/usr/bin/env bash
# Installs what fedtrack needs on Debian 12 (idempotent), then configures and
# builds it with CMake + Ninja (+ ccache). Sourced by run-job.sh and test.sh;
# also runnable on its own:  bash scripts/setup.sh [--tests]
set -euo pipefail

FEDTRACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FEDTRACK_BUILD="${FEDTRACK_BUILD:-$FEDTRACK_ROOT/build}"
FEDTRACK_VENV="${FEDTRACK_VENV:-$FEDTRACK_ROOT/.venv}"

# Every C++ dependency comes from Debian's packages (see DESIGN.md).
DEBIAN_PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-openmp libonnx-dev
  libpoco-dev libcurl4-openssl-dev nlohmann-json3-dev libgit2-dev libssh2-1-dev libsqlite3-dev
  libyaml-cpp-dev libcli11-dev libssl-dev libsodium-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist
  python3 python3-venv openssl
)
# Only the test suite needs these: clang with its libFuzzer and sanitizer
# runtimes for the fuzz targets (tests/fuzz, scripts/fuzz.sh); sshd for the
# SSH push test (tests/integration/test_git_push.py); Go to build actionlint
# and shellcheck, the linters of the CI examples (examples/ci); chromium, the
# headless browser that renders MLflow's UI (tests/integration/test_mlflow_ui.py).
TEST_DEBIAN_PACKAGES=(clang libclang-rt-14-dev openssh-server golang-go shellcheck chromium)
ACTIONLINT_VERSION=v1.7.1  # builds with Debian 12's Go 1.19

log() { echo "[setup] $*" >&2; }

install_debian_packages() {
  local missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages: all present"
    return
  fi
  log "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The test harness's Python tools (a real MLflow server, dvc, gto) live in a
# virtual environment; nothing in fedtrack's runtime needs Python.
setup_test_venv() {
  local req="$FEDTRACK_ROOT/tests/requirements.txt"
  [ -f "$req" ] || return 0
  if ! grep -qvE '^\s*(#|$)' "$req"; then
    return 0  # the harness needs no Python packages yet
  fi
  local stamp="$FEDTRACK_VENV/.requirements.sha256"
  local want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "Python test venv: up to date ($FEDTRACK_VENV)"
    return 0
  fi
  log "creating Python test venv in $FEDTRACK_VENV"
  python3 -m venv "$FEDTRACK_VENV"
  "$FEDTRACK_VENV/bin/pip" install -q --upgrade pip
  "$FEDTRACK_VENV/bin/pip" install -q -r "$req"
  echo "$want" > "$stamp"
}

# actionlint is a Go program: built from its module (Go's module proxy) into
# the test venv's bin/ with Debian's Go, once per version.
install_actionlint() {
  local bin="$FEDTRACK_VENV/bin/actionlint"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | head -n1 | grep -qx "$ACTIONLINT_VERSION"; then
    log "actionlint $ACTIONLINT_VERSION: present"
    return 0
  fi
  log "building actionlint $ACTIONLINT_VERSION"
  GOBIN="$FEDTRACK_VENV/bin" GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}

configure_and_build() {
  log "building in $FEDTRACK_BUILD"
  # Paths relative to the checkout, so a fresh clone elsewhere still hits ccache.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$FEDTRACK_ROOT}"
  export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
  cmake -S "$FEDTRACK_ROOT" -B "$FEDTRACK_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$FEDTRACK_BUILD"
}

fedtrack_setup() {
  if [ "${1:-}" = "--tests" ]; then
    install_debian_packages "${DEBIAN_PACKAGES[@]}" "${TEST_DEBIAN_PACKAGES[@]}"
    setup_test_venv
    install_actionlint
  else
    install_debian_packages "${DEBIAN_PACKAGES[@]}"
  fi
  configure_and_build
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  fedtrack_setup "$@"
fi
