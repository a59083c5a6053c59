#!/usr/bin/env bash
# What update compression costs and saves: the default job (10 clients,
# Dirichlet alpha 0.5 on Fashion-MNIST, MLP, FedAvg) for ROUNDS rounds
# (default 20) in every compression mode, next to the uncompressed job
# measured in the same run. Prints final test accuracy, total bytes up and
# down (the encoded sizes the job reports) and the ratio of each to the
# uncompressed job's. A figure table, never pass/fail. Tracking goes to a
# throw-away journal, versioning is off.
#
#   bash bench/compression.sh [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
rounds="${1:-20}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# measure ARGS...: "accuracy bytes_up bytes_down seconds", or "failed - - -".
measure() {
  local start end
  start=$(date +%s.%N)
  # shellcheck disable=SC2068
  "$fedtrack" run --json --set versioning.enabled=false --set tracking.journal="$PWD/journal.sqlite" \
      --set server.state="$PWD/state.db" --set rounds="$rounds" $@ 2>/dev/null | tail -1 >report.json ||
    { echo "failed - - -"; return; }
  end=$(date +%s.%N)
  python3 - "$start" "$end" <<'PY'
import json, sys
r = json.load(open("report.json"))
up = sum(x["metrics"]["bytes_up"] for x in r["rounds"])
down = sum(x["metrics"]["bytes_down"] for x in r["rounds"])
print("%.4f %d %d %.0f" % (r["final"]["eval_accuracy"], up, down, float(sys.argv[2]) - float(sys.argv[1])))
PY
  rm -f state.db
}

rows=(
  "none|"
  "fp16 up + down|--set compression.uplink=fp16 --set compression.downlink=fp16"
  "int8 up + down|--set compression.uplink=int8 --set compression.downlink=int8"
  "int8 up, no EF|--set compression.uplink=int8 --set compression.error_feedback=false"
  "topk 1% + EF|--set compression.uplink=topk --set compression.topk_fraction=0.01"
  "topk 1%, no EF|--set compression.uplink=topk --set compression.topk_fraction=0.01 --set compression.error_feedback=false"
  "topk 1% + EF, int8 down|--set compression.uplink=topk --set compression.topk_fraction=0.01 --set compression.downlink=int8"
)
echo "default job, $rounds rounds (10 clients, Dirichlet 0.5, MLP, FedAvg); ratios: uncompressed bytes / these bytes"
printf "| %-24s | %8s | %8s | %14s | %14s | %8s | %8s | %10s | %6s |\n" mode accuracy "Δ points" "bytes up" \
  "bytes down" "× up" "× down" "× up+down" "s"
printf "|%s|\n" "---|---:|---:|---:|---:|---:|---:|---:|---:"
base_acc="" base_up="" base_down=""
for entry in "${rows[@]}"; do
  name="${entry%%|*}"
  extra="${entry#*|}"
  read -r acc up down secs < <(measure $extra)
  if [ -z "$base_acc" ]; then base_acc="$acc" base_up="$up" base_down="$down"; fi
  python3 - "$name" "$acc" "$up" "$down" "$secs" "$base_acc" "$base_up" "$base_down" <<'PY'
import sys
name, acc, up, down, secs, bacc, bup, bdown = sys.argv[1:]
if acc == "failed":
    print("| %-24s | failed |" % name)
    sys.exit()
acc, up, down, bacc, bup, bdown = float(acc), int(up), int(down), float(bacc), int(bup), int(bdown)
print("| %-24s | %8.4f | %+8.2f | %14d | %14d | %8.2f | %8.2f | %10.2f | %6s |" % (
    name, acc, 100 * (acc - bacc), up, down, bup / up, bdown / down, (bup + bdown) / (up + down), secs))
PY
done
