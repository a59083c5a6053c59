#!/usr/bin/env bash
# What central differential privacy costs: final test accuracy and the
# reported epsilon of FedAvg with server-side fixed clipping on Fashion-MNIST
# (10 clients, all sampled each round, Dirichlet alpha 0.1 and 0.5, MLP, ROUNDS
# rounds, default 20), next to FedAvg without DP measured in the same run.
# Clipping norm CLIP (default 1.0), delta 1e-5. A figure table, never
# pass/fail. Tracking goes to a throw-away journal, versioning is off.
#
#   bash bench/dp_quality.sh [ROUNDS] [CLIP]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
rounds="${1:-20}"
clip="${2:-1.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# accuracy_and_epsilon ARGS...: "0.8123 12.34" (epsilon "-" without DP), or "failed -".
accuracy_and_epsilon() {
  # shellcheck disable=SC2068
  "$fedtrack" run --json --set versioning.enabled=false --set tracking.journal="$PWD/journal.sqlite" $@ 2>/dev/null |
    tail -1 | python3 -c '
import json, sys
final = json.load(sys.stdin)["final"]
eps = final.get("dp_epsilon")
print("%.4f %s" % (final["eval_accuracy"], "-" if eps is None else "%.2f" % eps))' ||
    echo "failed -"
}

dp="--set privacy.dp.mode=server_fixed --set privacy.dp.clipping_norm=$clip --set privacy.dp.delta=1e-5"
rows=(
  "fedavg (no DP)|"
  "server_fixed sigma=0.5|$dp --set privacy.dp.noise_multiplier=0.5"
  "server_fixed sigma=1.0|$dp --set privacy.dp.noise_multiplier=1.0"
)
printf "%-24s %12s %8s %12s %8s\n" "fedavg + (C=$clip)" "acc a=0.1" "eps" "acc a=0.5" "eps"
for entry in "${rows[@]}"; do
  name="${entry%%|*}"
  extra="${entry#*|}"
  row=()
  for alpha in 0.1 0.5; do
    read -r acc eps < <(accuracy_and_epsilon --set rounds="$rounds" --set strategy.name=fedavg $extra \
        --set data.partition.alpha="$alpha" --set data.partition.min_partition_size=1)
    row+=("$acc" "$eps")
  done
  printf "%-24s %12s %8s %12s %8s\n" "$name" "${row[0]}" "${row[1]}" "${row[2]}" "${row[3]}"
done
