#!/usr/bin/env bash
# Peak resident memory of `fedtrack server` for the default job (Fashion-MNIST,
# 10 client processes on loopback), measured with /usr/bin/time -v, for the
# build under test and, when FEDTRACK_BEFORE names another fedtrack binary,
# for that one in the same run (the ratio is printed). Never pass/fail.
#
#   FEDTRACK_BEFORE=/path/to/old/fedtrack bash bench/server_rss.sh
# ROUNDS (default 5, the default job's): the first round peaks a few MB
# below the later ones (every later round receives the ten updates at about
# the same moment).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
after="${FEDTRACK:-$root/build/connectors/fedtrack}"
before="${FEDTRACK_BEFORE:-}"
rounds="${ROUNDS:-5}"
# shellcheck source=bench/site_lib.sh
source "$root/bench/site_lib.sh"
: > default.yaml  # the embedded defaults

# peak_kb FEDTRACK: runs the default job with it, prints the server's peak RSS in kB.
peak_kb() {
  local fedtrack="$1" port count=10
  port="$(free_port)"
  write_tokens "$count"
  local set=(--set rounds="$rounds" ${EXTRA_SET:-} --set versioning.enabled=false --set tracking.journal="$work/journal.sqlite")
  "$fedtrack" partition default.yaml --out shards "${set[@]}" > /dev/null 2>&1
  rm -f ./*.state.db
  /usr/bin/time -v -o time.txt "$fedtrack" server default.yaml --listen "127.0.0.1:$port" --tokens tokens.txt \
    "${set[@]}" > server.out 2> server.err &
  local server=$!
  pids+=("$server")
  until grep -q "serving job" server.err 2>/dev/null; do
    kill -0 "$server" 2>/dev/null || { cat server.err >&2; exit 1; }
    sleep 0.2
  done
  for ((c = 0; c < count; c++)); do
    "$fedtrack" client --server "http://127.0.0.1:$port" --token "$(awk -v n="site$c" '$1==n {print $2}' tokens.txt)" \
      --data "shards/$c" --threads 1 2> "client$c.err" &
    pids+=($!)
  done
  wait "$server"
  awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' time.txt
}

after_kb="$(peak_kb "$after")"
echo "server peak RSS, default job ($rounds round(s), 10 clients): $((after_kb / 1024)) MB  ($after)"
if [[ -n "$before" ]]; then
  before_kb="$(peak_kb "$before")"
  echo "server peak RSS, default job, before:                   $((before_kb / 1024)) MB  ($before)"
  python3 -c "print(f'ratio before/after: {$before_kb / $after_kb:.2f}x')"
fi
