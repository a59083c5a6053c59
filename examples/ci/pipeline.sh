#!/usr/bin/env bash
# The steps both CI files below run: train a federated job (tracked in MLflow,
# versioned in a DVC repository), gate its best round, promote it.
#
#   MLFLOW_TRACKING_URI=http://mlflow:5000 FEDTRACK=fedtrack bash examples/ci/pipeline.sh JOB.yaml
#
# Environment: MLFLOW_TRACKING_URI (required), FEDTRACK (the executable,
# default `fedtrack`), EXPERIMENT (default fedtrack-ci), MODEL_NAME (default
# fashion-mlp), MIN_ACCURACY (default 0.80), STAGE (default prod), and any
# extra `fedtrack run` arguments in RUN_ARGS. Exit status is promote's: 0
# promoted, 3 a gate held it back.
set -euo pipefail
job="${1:-}"
fedtrack="${FEDTRACK:-fedtrack}"
experiment="${EXPERIMENT:-fedtrack-ci}"
model="${MODEL_NAME:-fashion-mlp}"

# shellcheck disable=SC2086
MLFLOW_EXPERIMENT_NAME="$experiment" "$fedtrack" run $job ${RUN_ARGS:-} --json > run.json

"$fedtrack" promote \
  --experiment "$experiment" --model-name "$model" \
  --require "eval_accuracy>=${MIN_ACCURACY:-0.80}" \
  --better-than champion --alias champion --stage "${STAGE:-prod}" \
  --dotenv promote.env
