#!/usr/bin/env bash
# Final test accuracy of every strategy on Fashion-MNIST: 10 clients,
# Dirichlet alpha 0.1 and 0.5, MLP, ROUNDS rounds (default 20). A figure
# table, never pass/fail. Tracking goes to a throw-away journal, versioning is
# off.
#
#   bash bench/strategy_quality.sh [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
rounds="${1:-20}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
# shellcheck source=accuracy_lib.sh
source "$root/bench/accuracy_lib.sh"

# name, extra options
strategies=(
  "fedavg|"
  "fedprox|--set strategy.proximal_mu=0.01"
  "fedavgm|--set strategy.server_momentum=0.9"
  "fedadam|"
  "fedyogi|"
  "fedadagrad|"
  "fedmedian|"
  "fedtrimmedavg|"
  "krum|--set strategy.num_malicious_clients=2"
  "multikrum|--set strategy.num_malicious_clients=2 --set strategy.num_clients_to_keep=5"
  "bulyan|--set strategy.num_malicious_clients=1"
  "qfedavg|--set strategy.client_learning_rate=0.05"
)
printf "%-14s %12s %12s\n" strategy "alpha=0.1" "alpha=0.5"
for entry in "${strategies[@]}"; do
  name="${entry%%|*}"
  extra="${entry#*|}"
  row=()
  for alpha in 0.1 0.5; do
    acc=$(final_accuracy --set rounds="$rounds" --set strategy.name="$name" $extra \
            --set data.partition.alpha="$alpha" --set data.partition.min_partition_size=1)
    row+=("$acc")
  done
  printf "%-14s %12s %12s\n" "$name" "${row[0]}" "${row[1]}"
done
