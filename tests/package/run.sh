#!/usr/bin/env bash
# The package a downstream project links: installs the build tree into a
# temporary prefix (cmake --install), then configures, builds and runs the
# consumer project in tests/package once per component, each in its own build
# tree, and once with find_package(fedtrack) without components. The
# torch-free components must neither find LibTorch nor link it; tracking must
# not find or link Poco Net either.
#
#   tests/package/run.sh <fedtrack build dir>
set -euo pipefail

build=$(cd "${1:?usage: run.sh <fedtrack build dir>}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedtrack-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$tmp" CCACHE_NOHASHDIR=1
fi

echo "== cmake --install $build --prefix $tmp/prefix"
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install"; }
for private in wire.h byte_codec.h server_state.h idx.h csv.h robust_aggregate.h dp_clipping.h thread_pool.h; do
  [[ ! -e "$tmp/prefix/include/fedtrack/core/$private" ]] || fail "private header $private is installed"
done
[[ ! -e "$tmp/prefix/include/fedtrack/versioning/dvc_format.h" ]] || fail "private header dvc_format.h is installed"

# consume <name> <component or empty> <program>
consume() {
  local name=$1 component=$2 program=$3 dir="$tmp/build-$1" work="$tmp/work-$1"
  echo "== consumer: $name"
  cmake -S "$here" -B "$dir" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" -DFEDTRACK_COMPONENT="$component" >"$dir.log" 2>&1 \
    || { cat "$dir.log"; fail "$name: configure"; }
  cmake --build "$dir" >>"$dir.log" 2>&1 || { cat "$dir.log"; fail "$name: build"; }
  mkdir -p "$work"
  "$dir/$program" "$work" || fail "$name: $program exited $?"
}

# not_found <name> <cache variable>: the consumer's configure did not find it.
not_found() {
  local value
  value=$(sed -n "s/^$2:[A-Z]*=//p" "$tmp/build-$1/CMakeCache.txt")
  [[ -z "$value" || "$value" == *NOTFOUND ]] || fail "$1: the consumer found $2=$value"
}

# not_linked <name> <program> <regex>: nothing on the link line (the linker
# may drop an unused library from NEEDED) and no NEEDED entry matches.
not_linked() {
  local needed dir="$tmp/build-$1"
  if grep -hE "(^|[/ ])$3" "$dir/build.ninja" "$dir"/CMakeFiles/*.dir/link.txt 2>/dev/null; then
    fail "$1: $2 is linked with the above"
  fi
  needed=$(readelf -d "$tmp/build-$1/$2" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  [[ -n "$needed" ]] || fail "$1: readelf found no NEEDED entries in $2"
  if grep -E "$3" <<<"$needed"; then fail "$1: $2 links the above"; fi
}

for component in core_base tracking versioning; do
  consume "$component" "$component" "use_$component"
  not_found "$component" Torch_DIR
  not_linked "$component" "use_$component" 'lib(torch|c10)'
done
not_found tracking PocoNet_DIR
not_found tracking PocoNetSSL_DIR
not_linked tracking use_tracking 'libPocoNet'

# configure_fails <name> <expected message> <cmake arguments>...: the
# consumer's configure stops with a message that says what to do.
configure_fails() {
  local name=$1 expected=$2 dir="$tmp/build-$1"
  shift 2
  echo "== consumer: $name (must fail)"
  if cmake -S "$here" -B "$dir" "${generator[@]}" -DCMAKE_PREFIX_PATH="$tmp/prefix" "$@" >"$dir.log" 2>&1; then
    fail "$name: configured"
  fi
  grep -qF "$expected" "$dir.log" || { cat "$dir.log"; fail "$name: no \"$expected\" in the error"; }
}
configure_fails no-curl "apt-get install libcurl4-openssl-dev" \
  -DFEDTRACK_COMPONENT=tracking -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON
configure_fails unknown-component "fedtrack has no component 'trakcing'" \
  -DFEDTRACK_COMPONENT=trakcing

consume core core use_core
consume connectors connectors use_connectors
consume all "" use_all
echo "package: every consumer built and ran"
