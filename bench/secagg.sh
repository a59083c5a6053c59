#!/usr/bin/env bash
# What secure aggregation (SecAgg+) costs in `fedtrack run`: per-round time,
# protocol time and bytes, and final accuracy for 10 and 50 clients (MLP,
# Fashion-MNIST, Dirichlet 0.5, ROUNDS rounds, default 3), with
# secure_aggregation.mode secaggplus beside the same job without it in the
# same run. Bytes: secagg_bytes (all four stages, both directions) against
# the plain float32 uploads of the same clients (bytes_up). A figure table,
# never pass/fail; versioning off, tracking to a throw-away journal.
# Then the loopback row: the same 10-client job as fedtrack server + 10
# fedtrack client processes (one thread each), with and without SecAgg+;
# there secagg_bytes are the stage tasks and replies as sent on the wire.
#
#   bash bench/secagg.sh [ROUNDS]      (SECAGG_BENCH_CLIENTS="10" for the simulation rows at 10 clients only)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
rounds="${1:-3}"
# shellcheck source=bench/site_lib.sh
source "$root/bench/site_lib.sh"

# run_job NAME ARGS...: the --json report of one job in NAME.json.
run_job() {
  local name="$1"
  shift
  # shellcheck disable=SC2068
  "$fedtrack" run --json --set versioning.enabled=false --set tracking.journal="$PWD/journal.sqlite" \
    --set rounds="$rounds" --set name="$name" $@ 2>/dev/null | tail -1 > "$name.json"
}

cat > row.py <<'PY'
import json, sys
clients, plain, secure = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
def mean(report, key):
    values = [r["metrics"][key] for r in report["rounds"]]
    return sum(values) / len(values)
p_round, s_round = mean(plain, "round_seconds"), mean(secure, "round_seconds")
sa_seconds, sa_bytes, up = mean(secure, "secagg_seconds"), mean(secure, "secagg_bytes"), mean(plain, "bytes_up")
server = mean(secure, "secagg_server_seconds")
print("%-8s %9.2f %10.2f %7.2f %10.3f %10.3f %10.3f %10.2f %9.3f %8.4f %8.4f" % (
    clients, p_round, s_round, s_round / p_round, sa_seconds, server, server / p_round, sa_bytes / 1e6, sa_bytes / up,
    plain["final"]["eval_accuracy"], secure["final"]["eval_accuracy"]))
PY
printf "%-8s %9s %10s %7s %10s %10s %10s %10s %9s %8s %8s\n" clients "round s" "+secagg s" ratio \
  "secagg s" "server s" "server/rnd" "secagg MB" "MB ratio" "acc" "acc+sa"
for clients in ${SECAGG_BENCH_CLIENTS:-10 50}; do
  run_job "plain$clients" --set clients.count="$clients"
  run_job "secure$clients" --set clients.count="$clients" --set secure_aggregation.mode=secaggplus
  python3 "$work/row.py" "$clients" "plain$clients.json" "secure$clients.json"
done


# serve NAME ARGS...: the default job with 10 client processes on loopback; its --json report in NAME.json.
serve() {
  local name="$1" port
  shift
  port="$(free_port)"
  write_tokens 10
  : > default.yaml
  "$fedtrack" partition default.yaml --out shards --set clients.count=10 > /dev/null 2>&1
  # shellcheck disable=SC2068
  "$fedtrack" server default.yaml --listen "127.0.0.1:$port" --tokens tokens.txt --json \
    --set versioning.enabled=false --set tracking.journal="$work/journal.sqlite" --set rounds="$rounds" \
    --set name="$name" --set server.linger=1 $@ > "$name.out" 2> "$name.err" &
  local server=$!
  pids+=("$server")
  until grep -q "serving job" "$name.err"; do sleep 0.2; done
  for ((c = 0; c < 10; c++)); do
    "$fedtrack" client --server "http://127.0.0.1:$port" --token "$(awk -v n="site$c" '$1==n {print $2}' tokens.txt)" \
      --data "shards/$c" --threads 1 2> "$name-client$c.err" &
    pids+=($!)
  done
  wait "$server"
  tail -1 "$name.out" > "$name.json"
}
serve netplain
serve netsecure --set secure_aggregation.mode=secaggplus
python3 "$work/row.py" "10 (net)" netplain.json netsecure.json
