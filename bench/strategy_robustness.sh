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
    # shellcheck disable=SC2086
    acc=$("$fedtrack" run --json --set rounds="$rounds" --set strategy.name="$name" $extra \
            --set attack.clients="$attackers" --set attack.scale="$scale" \
            --set versioning.enabled=false --set tracking.journal="$work/journal.sqlite" 2>/dev/null |
          tail -1 | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["final"]["eval_accuracy"])' ||
          echo "failed")
    row+=("$acc")
  done
  printf "%-14s %12s %12s\n" "$name" "${row[0]}" "${row[1]}"
done
