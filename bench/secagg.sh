#!/usr/bin/env bash
# What secure aggregation (SecAgg+) costs in `fedtrack run`: per-round time,
# protocol time and bytes, and final accuracy for 10 and 50 clients (MLP,
# Fashion-MNIST, Dirichlet 0.5, ROUNDS rounds, default 3), with
# secure_aggregation.mode secaggplus beside the same job without it in the
# same run. Bytes: secagg_bytes (all four stages, both directions) against
# the plain float32 uploads of the same clients (bytes_up). A figure table,
# never pass/fail; versioning off, tracking to a throw-away journal.
# The network runtime does not carry SecAgg+ yet (docs/privacy.md).
#
#   bash bench/secagg.sh [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
rounds="${1:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# run_job NAME ARGS...: the --json report of one job in NAME.json.
run_job() {
  local name="$1"
  shift
  # shellcheck disable=SC2068
  "$fedtrack" run --json --set versioning.enabled=false --set tracking.journal="$PWD/journal.sqlite" \
    --set rounds="$rounds" --set name="$name" $@ 2>/dev/null | tail -1 > "$name.json"
}

printf "%-8s %9s %10s %7s %10s %10s %10s %10s %9s %8s %8s\n" clients "round s" "+secagg s" ratio \
  "secagg s" "server s" "server/rnd" "secagg MB" "MB ratio" "acc" "acc+sa"
for clients in 10 50; do
  run_job "plain$clients" --set clients.count="$clients"
  run_job "secure$clients" --set clients.count="$clients" --set secure_aggregation.mode=secaggplus
  python3 - "$clients" "plain$clients.json" "secure$clients.json" <<'PY'
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
done
