#!/usr/bin/env bash
# Installs, builds, and runs a federated job. With no arguments: the embedded
# defaults (10 clients, Dirichlet(0.5) Fashion-MNIST, FedAvg, an MLP).
# Arguments go to `fedtrack run`, e.g.  bash scripts/run-job.sh examples/csv-tabular/job.yaml
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
fedtrack_setup
exec "$FEDTRACK_BUILD/connectors/fedtrack" run "$@"
