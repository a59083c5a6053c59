#!/usr/bin/env bash
# Virtual clients at scale: `fedtrack run` with K virtual clients and a few
# sampled per round, one process per K, on
#   - a synthetic table of SCALE_ROWS rows (default 2,000,000: 8 numeric
#     features, 4 classes, generated here with a seeded awk) for
#     K = 10, 1,000, 10,000, 100,000, 10 sampled per round;
#   - Fashion-MNIST (iid, and shard at the largest K) for
#     K = 10, 100, 1,000, 5,000, 10 sampled per round;
#   - the default job (10 clients, all sampled, 5 rounds) and a 100,000-client
#     table job whose sampled clients train as much as the default job's
#     (1,000 sampled per round), for the round's share spent outside client
#     training; and the default job with its evaluation cut down (federated
#     evaluation off, 1,000 test rows), which leaves the round's machinery
#     (sampling, building clients, scheduling, aggregation).
# For each run it prints peak RSS (/usr/bin/time), set-up seconds (process
# start until the job started: its parent run's start time in the journal),
# the mean round_seconds and the share of the rounds not explained by client
# training: (round_seconds - sum of the clients' fit_seconds / parallelism)
# / round_seconds, summed over the rounds (fit_seconds from the journal's
# client/<id>/fit_seconds). Then the ratio of peak RSS at the largest K to
# K = 10 for each dataset. Figures, not pass/fail.
#
#   bash bench/scale.sh                   # everything (~10 min on 2 idle cores)
#   SCALE_ONLY=default bash bench/scale.sh   # one group: default | table | fmnist
# FEDTRACK=path/to/fedtrack (default build/connectors/fedtrack).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
rows="${SCALE_ROWS:-2000000}"
only="${SCALE_ONLY:-}"
[[ -x "$fedtrack" ]] || { echo "scale.sh: no fedtrack at $fedtrack (cmake --build build --target fedtrack)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "scale.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
unset MLFLOW_TRACKING_URI MLFLOW_EXPERIMENT_NAME
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "fedtrack scale bench: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"

# table.csv: SCALE_ROWS rows, label from a linear score of the features.
make_table() {
  [[ -s table.csv ]] && return
  awk -v rows="$rows" 'BEGIN {
    srand(7); print "f0,f1,f2,f3,f4,f5,f6,f7,label"
    for (i = 0; i < rows; i++) {
      s = 0; line = ""
      for (j = 0; j < 8; j++) { x = (rand() + rand() + rand() - 1.5) * 2; s += (j < 4 ? x : -0.5 * x); line = line sprintf("%.3f,", x) }
      print line (s > 1.5 ? "d" : s > 0 ? "c" : s > -1.5 ? "b" : "a")
    }
  }' > table.csv
}

# run_case LABEL K ARGS... : one `fedtrack run` in its own folder; appends a
# line to results.tsv.
run_case() {
  local label=$1 k=$2; shift 2
  local dir="$work/run-$label-$k"
  mkdir -p "$dir"
  (
    cd "$dir"
    local start_ms
    start_ms=$(date +%s%3N)
    if ! /usr/bin/time -f %M -o rss.txt "$fedtrack" run --json --set versioning.enabled=false \
      --set clients.count="$k" "$@" > report.json 2> progress.txt; then
      echo "scale.sh: $label K=$k failed:" >&2; tail -5 progress.txt >&2; exit 1
    fi
    python3 - "$label" "$k" "$start_ms" >> "$work/results.tsv" <<'EOF'
import json, re, sqlite3, sys
label, k, start_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
report = json.loads(open("report.json").read().strip().splitlines()[-1])
rss_mb = int(open("rss.txt").read().split()[-1]) / 1024
progress = open("progress.txt").read()
parallel = int(re.search(r"(\d+) clients in parallel", progress).group(1))
db = sqlite3.connect(".fedtrack/journal.sqlite")
job = report["job_id"]
created = next(json.loads(p)["start_time"] for (p,) in db.execute(
    "select payload from ops where run_key = ? and op = 'create' order by seq limit 1", (job,)))
round_s, train_s, sampled = [], [], []
for (payload,) in db.execute("select payload from ops where run_key like ? and op = 'batch' order by seq", (job + "/round-%",)):
    metrics = {m[0]: m[1] for m in json.loads(payload)["metrics"]}
    if "round_seconds" not in metrics:
        continue
    round_s.append(metrics["round_seconds"])
    sampled.append(int(metrics["clients_sampled"]))
    fits = [v for key, v in metrics.items() if key.startswith("client/") and key.endswith("/fit_seconds")]
    train_s.append(sum(fits) / min(parallel, len(fits)))
outside = (sum(round_s) - sum(train_s)) / sum(round_s)
print("\t".join(str(x) for x in (label, k, sampled[0], len(round_s), f"{rss_mb:.0f}", f"{(created - start_ms) / 1000:.2f}",
                                  f"{sum(round_s) / len(round_s):.3f}", f"{sum(train_s) / len(train_s):.3f}",
                                  f"{100 * outside:.1f}", f"{report['final']['eval_accuracy']:.3f}")))
EOF
  )
  tail -1 "$work/results.tsv" | awk -F'\t' '{printf "  %-14s K=%-7s %4s sampled x %s rounds  peak RSS %6s MB  set-up %6s s  round %7s s  fit/parallel %7s s  outside training %5s %%  accuracy %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}'
}

: > results.tsv
if [[ -z "$only" || "$only" == default ]]; then
  echo "default job (Fashion-MNIST, 10 clients, dirichlet, all sampled, 5 rounds):"
  run_case default 10
  echo "the same without most of its evaluation (federated evaluation off, 1,000 test rows): the round's own machinery:"
  run_case default-light-eval 10 --set evaluation.federated=false --set data.limit_test=1000
fi
if [[ -z "$only" || "$only" == table ]]; then
  make_table
  echo "table: $rows rows (95% training), 8 features, 4 classes; iid; 10 sampled per round, 2 rounds:"
  for k in 10 1000 10000 100000; do
    run_case table "$k" --set name=table --set rounds=2 --set data.dataset=csv --set data.path="$work/table.csv" \
      --set data.test_fraction=0.05 --set data.limit_test=20000 --set data.partition=iid \
      --set clients.fraction_fit="$(awk -v k="$k" 'BEGIN {print 10 / k}')" \
      --set clients.fraction_evaluate="$(awk -v k="$k" 'BEGIN {print 10 / k}')" --set train.batch_size=64
  done
  echo "table, 100,000 clients, 1,000 sampled per round (about the default job's training per round), 3 rounds:"
  run_case table-1k 100000 --set name=table --set rounds=3 --set data.dataset=csv --set data.path="$work/table.csv" \
    --set data.test_fraction=0.05 --set data.limit_test=20000 --set data.partition=iid \
    --set clients.fraction_fit=0.01 --set clients.fraction_evaluate=0.0001 --set train.batch_size=8 --set train.epochs=5
fi
if [[ -z "$only" || "$only" == fmnist ]]; then
  echo "Fashion-MNIST, iid, 10 sampled per round, 2 rounds:"
  for k in 10 100 1000 5000; do
    run_case fmnist-iid "$k" --set rounds=2 --set data.partition=iid \
      --set clients.fraction_fit="$(awk -v k="$k" 'BEGIN {print 10 / k}')" \
      --set clients.fraction_evaluate="$(awk -v k="$k" 'BEGIN {print 10 / k}')"
  done
  echo "Fashion-MNIST, shard (2 classes per client), 10 sampled per round, 2 rounds:"
  run_case fmnist-shard 5000 --set rounds=2 --set data.partition=shard --set clients.fraction_fit=0.002 \
    --set clients.fraction_evaluate=0.002
fi

echo "peak RSS at the largest K / at K = 10 (same data, same sampled count):"
awk -F'\t' '
  $1 == "table" || $1 == "fmnist-iid" {
    if ($2 == 10) base[$1] = $5
    if ($2 > top[$1]) { top[$1] = $2; rss[$1] = $5 }
  }
  END { for (d in base) printf "  %-10s K=%s: %s MB / %s MB = %.3f\n", d, top[d], rss[d], base[d], rss[d] / base[d] }' results.tsv
