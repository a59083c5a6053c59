#!/usr/bin/env bash
# Robustness row: 2 of 10 clients send sign-flipped, scaled updates
# (attack.scale, default -4) on Fashion-MNIST, Dirichlet alpha 0.5, MLP,
# ROUNDS rounds (default 20): final test accuracy of FedAvg and the robust
# strategies. Figures, never pass/fail.
#
#   bash bench/strategy_robustness.sh [ROUNDS] [SCALE]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
rounds="${1:-20}"
scale="${2:--4}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
# shellcheck source=accuracy_lib.sh
source "$root/bench/accuracy_lib.sh"
strategies=(
  "fedavg|"
  "fedmedian|"
  "fedtrimmedavg|"
  "krum|--set strategy.num_malicious_clients=2"
  "bulyan|--set strategy.num_malicious_clients=1"
)
printf "%-14s %12s %12s\n" strategy "no attack" "2/10 attack"
for entry in "${strategies[@]}"; do
  name="${entry%%|*}"
  extra="${entry#*|}"
  row=()
  for attackers in 0 2; do
    acc=$(final_accuracy --set rounds="$rounds" --set strategy.name="$name" $extra \
            --set attack.clients="$attackers" --set attack.scale="$scale")
    row+=("$acc")
  done
  printf "%-14s %12s %12s\n" "$name" "${row[0]}" "${row[1]}"
done
