#!/usr/bin/env bash
# The steps both CI files beside this script run: train a federated job
# (tracked in MLflow, versioned in a DVC repository), send whatever the
# tracking journal still holds, then gate and promote THAT job's best round.
#
#   MLFLOW_TRACKING_URI=http://mlflow:5000 FEDTRACK=fedtrack bash examples/ci/pipeline.sh JOB.yaml
#
# Environment: MLFLOW_TRACKING_URI (required), FEDTRACK (the executable,
# default `fedtrack`), EXPERIMENT (default fedtrack-ci), MODEL_NAME (default
# fashion-mlp), MIN_ACCURACY (default 0.80), STAGE (default prod), and any
# extra `fedtrack run` arguments in RUN_ARGS. MODEL_REPO (a git URL: the model
# repository outside the workspace, pushed after every round) and DVC_REMOTE
# (e.g. s3://bucket/prefix) are passed on as versioning.repo /
# versioning.remote when set, so fresh workspaces extend one history: the
# repository is cloned into .fedtrack/repos/ (git token: FEDTRACK_GIT_TOKEN,
# FEDTRACK_GIT_USERNAME), S3 credentials come from AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY (+ AWS_ENDPOINT_URL for an S3-compatible server), and
# promote finds the repository from the job's runs.
#
# Exit status: 0 promoted; 3 the gate held the model back (the CI files treat
# that as a neutral outcome); anything else is a failure: the job failed, its
# records could not reach MLflow (the promotion would otherwise pick another
# job), or the promotion failed.
set -euo pipefail
job="${1:-}"
fedtrack="${FEDTRACK:-fedtrack}"
experiment="${EXPERIMENT:-fedtrack-ci}"
model="${MODEL_NAME:-fashion-mlp}"

versioning=()
if [ -n "${MODEL_REPO:-}" ]; then versioning+=(--set "versioning.repo=$MODEL_REPO" --set versioning.push=true); fi
if [ -n "${DVC_REMOTE:-}" ]; then versioning+=(--set "versioning.remote=$DVC_REMOTE"); fi

# 1. Train. --json's last line is the job's report (job id, journal, rounds).
# shellcheck disable=SC2086  # RUN_ARGS is a list of arguments
MLFLOW_EXPERIMENT_NAME="$experiment" "$fedtrack" run $job ${RUN_ARGS:-} "${versioning[@]}" --json > run.json
{ read -r job_id; read -r journal; } < <(python3 -c 'import json
report = json.loads(open("run.json").read().strip().splitlines()[-1])
print(report["job_id"]); print(report["tracking"]["journal"])')

# 2. Whatever MLflow did not take during the job goes now; if it still can't,
#    stop here rather than promote some other job.
"$fedtrack" sync --journal "$journal"

# 3. Gate and promote the job just trained (not "the latest finished job").
"$fedtrack" promote --job "$job_id" \
  --experiment "$experiment" --model-name "$model" \
  --require "eval_accuracy>=${MIN_ACCURACY:-0.80}" \
  --better-than champion --alias champion --stage "${STAGE:-prod}" \
  --dotenv promote.env
