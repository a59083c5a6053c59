#!/usr/bin/env bash
# Figures for the network runtime (fedtrack server + fedtrack client as real
# processes on loopback), each beside a reference measured in the same run.
# Never pass/fail.
#
#  1. Broadcast: a 40 MB model (an MLP over 40,840 CSV features) to 8
#     clients. broadcast_seconds = from posting a round's fit tasks until the
#     last client's task was written; MB/s = the round's bytes_down / that.
#     Reference: bench_loopback, raw TCP pushing the same bytes to 8 sockets.
#  2. Per-round framework overhead = round_seconds - slowest client's own
#     training time, for the default job (10 clients, Fashion-MNIST), as 10
#     client processes against the server, beside the same job in simulation.
#
#   bash bench/deployment_bench.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
loopback="${LOOPBACK:-$root/build/bench/bench_loopback}"
# shellcheck source=bench/site_lib.sh
source "$root/bench/site_lib.sh"

# serve JOB COUNT [extra server args...]: one server + COUNT clients, prints the server's --json report.
serve() {
  local job="$1" count="$2"
  shift 2
  local port
  port="$(free_port)"
  write_tokens "$count"
  "$fedtrack" partition "$job" --out shards "$@" > /dev/null 2>&1
  rm -f ./*.state.db
  "$fedtrack" server "$job" --listen "127.0.0.1:$port" --tokens tokens.txt --json "$@" > server.json 2> server.err &
  local server=$!
  pids+=("$server")
  until grep -q "serving job" server.err; do sleep 0.2; done
  for ((c = 0; c < count; c++)); do
    "$fedtrack" client --server "http://127.0.0.1:$port" --token "$(awk -v n="site$c" '$1==n {print $2}' tokens.txt)" \
      --data "shards/$c" --threads 1 2> "client$c.err" &
    pids+=($!)
  done
  wait "$server"
  tail -1 server.json
}

echo "== 1. broadcast of a 40 MB model to 8 clients over loopback"
python3 - <<'PY'
import random
random.seed(1)
features = 40840
with open("wide.csv", "w") as f:
    f.write(",".join(f"f{i}" for i in range(features)) + ",label\n")
    for r in range(200):
        f.write(",".join(str(random.randint(0, 9)) for _ in range(features)) + f",{r % 4}\n")
PY
cat > wide.yaml <<'YAML'
name: wide
rounds: 3
model: mlp
data: {dataset: csv, path: wide.csv, test_fraction: 0.1, val_fraction: 0.0, partition: {kind: iid}}
clients: {count: 8, min_fit: 8}
train: {epochs: 1, batch_size: 64}
evaluation: {initial: false, federated: false}
versioning: {enabled: false}
server: {linger: 1}
YAML
serve wide.yaml 8 --set tracking.journal="$work/journal.sqlite" > wide.json
python3 - "$loopback" <<'PY'
import json, subprocess, sys
report = json.load(open("wide.json"))
rates = []
for r in report["rounds"]:
    m = r["metrics"]
    rates.append(m["bytes_down"] / 2**20 / m["broadcast_seconds"])
    print(f"round {r['round']}: {m['bytes_down'] / 2**20:.0f} MB down in {m['broadcast_seconds']:.3f} s = "
          f"{rates[-1]:.0f} MB/s (round {m['round_seconds']:.2f} s)")
out = subprocess.run([sys.argv[1], "40", "8", "3"], capture_output=True, text=True, check=True).stdout
print(out.strip())
ref = float(out.split("loopback_mb_per_s")[1])
best = max(rates)
print(f"broadcast: best {best:.0f} MB/s vs raw loopback TCP {ref:.0f} MB/s -> ratio {best / ref:.2f}")
PY

echo "== 2. per-round overhead, default job: network (10 client processes) vs simulation"
"$fedtrack" run --json --set versioning.enabled=false --set tracking.journal="$work/journal.sqlite" 2> /dev/null |
  tail -1 > sim.json
# The same with all 10 clients training at once on one thread each, as the 10 client processes do.
"$fedtrack" run --json --set versioning.enabled=false --set tracking.journal="$work/journal.sqlite" \
  --set runtime.parallelism=10 --set runtime.threads_per_client=1 2> /dev/null | tail -1 > sim10.json
: > default.yaml
serve default.yaml 10 --set versioning.enabled=false --set tracking.journal="$work/journal.sqlite" \
  --set server.linger=1 > net.json
python3 - <<'PY'
import json
def overheads(path):
    rep = json.load(open(path))
    rows = [(r["metrics"]["round_seconds"], r["metrics"]["slowest_train_seconds"]) for r in rep["rounds"]]
    return rep, rows
for name, path in (("simulation (default: 2 clients at a time)", "sim.json"),
                   ("simulation (10 clients at once, 1 thread each)", "sim10.json"),
                   ("network (10 client processes, 1 thread each)", "net.json")):
    rep, rows = overheads(path)
    mean = sum(a - b for a, b in rows) / len(rows)
    steady = sum(a - b for a, b in rows[1:]) / max(1, len(rows) - 1)
    print(f"{name}: rounds " + ", ".join(f"{a:.2f}-{b:.2f}" for a, b in rows) +
          f" s (round - slowest training); mean overhead {mean:.2f} s/round, {steady:.2f} after round 1; "
          f"mean round {sum(a for a, _ in rows) / len(rows):.2f} s; final accuracy {rep['final']['eval_accuracy']:.4f}")
PY
