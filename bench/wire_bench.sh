#!/usr/bin/env bash
# Issue 18 items 2 and 3, in one run: a ~100 MB model (an MLP over a wide
# CSV) served by `fedtrack server` to K = 1 and K = 8 client processes on
# loopback (FedAvg). Prints, each beside its reference measured in the same run:
#
#  - server peak RSS (/usr/bin/time -v) at K = 1 and K = 8, against
#    base + 4 x model size, where base is the LibTorch floor of the same
#    binary (`fedtrack --help`: every library loaded, nothing else);
#  - broadcast rate (bytes_down / broadcast_seconds, best round) vs raw
#    loopback TCP pushing the same bytes to as many sockets at once
#    (bench_loopback MB 8, bench_loopback MB 1);
#  - upload rate (bytes_up / upload_seconds: the server reading the fit
#    results, one at a time in client-id order) vs raw loopback TCP moving
#    the same bytes over one socket (bench_loopback MB 1).
# Never pass/fail.
#
#   bash bench/wire_bench.sh            # FEATURES=102400 (fc1 = FEATURES x 256 floats)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
loopback="${LOOPBACK:-$root/build/bench/bench_loopback}"
features="${FEATURES:-102400}"
rounds="${ROUNDS:-3}"
# shellcheck source=bench/site_lib.sh
source "$root/bench/site_lib.sh"

python3 - "$features" <<'PY'
import random, sys
random.seed(1)
features = int(sys.argv[1])
digits = [str(d) for d in range(10)]
with open("wide.csv", "w") as f:
    f.write(",".join(f"f{i}" for i in range(features)) + ",label\n")
    for r in range(90):
        f.write(",".join(random.choices(digits, k=features)) + f",{r % 4}\n")
PY
cat > wide.yaml <<YAML
name: wide
rounds: $rounds
model: mlp
data: {dataset: csv, path: wide.csv, test_fraction: 0.1, val_fraction: 0.0, partition: {kind: iid}}
train: {epochs: 1, batch_size: 64}
evaluation: {initial: false, federated: false}
versioning: {enabled: false}
server: {linger: 1}
YAML

# serve COUNT: one server + COUNT clients; leaves report-COUNT.json and rss-COUNT.kb.
serve() {
  local count="$1" port
  port="$(free_port)"
  write_tokens "$count"
  local set=(--set clients.count="$count" --set clients.min_fit="$count" --set clients.min_available="$count"
             --set tracking.journal="$work/journal.sqlite")
  rm -rf shards ./*.state.db
  "$fedtrack" partition wide.yaml --out shards "${set[@]}" > /dev/null 2>&1
  /usr/bin/time -v -o "time-$count.txt" "$fedtrack" server wide.yaml --listen "127.0.0.1:$port" --tokens tokens.txt \
    --json "${set[@]}" > "server-$count.json" 2> "server-$count.err" &
  local server=$!
  pids+=("$server")
  until grep -q "serving job" "server-$count.err" 2>/dev/null; do
    kill -0 "$server" 2>/dev/null || { cat "server-$count.err" >&2; exit 1; }
    sleep 0.2
  done
  for ((c = 0; c < count; c++)); do
    "$fedtrack" client --server "http://127.0.0.1:$port" --token "$(awk -v n="site$c" '$1==n {print $2}' tokens.txt)" \
      --data "shards/$c" --threads 1 2> "client$count-$c.err" &
    pids+=($!)
  done
  wait "$server"
  tail -1 "server-$count.json" > "report-$count.json"
  awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "time-$count.txt" > "rss-$count.kb"
}

/usr/bin/time -v -o time-floor.txt "$fedtrack" --help > /dev/null
awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' time-floor.txt > rss-floor.kb
serve 1
serve 8
model_mb="$(python3 -c "print(round($features * 256 * 4 / 2**20))")"
"$loopback" "$model_mb" 8 3 > loopback-8.txt
"$loopback" "$model_mb" 1 5 > loopback-1.txt

python3 - "$model_mb" <<'PY'
import json, sys
model_mb = float(sys.argv[1])
kb = lambda name: int(open(f"rss-{name}.kb").read()) / 1024
floor, k1, k8 = kb("floor"), kb("1"), kb("8")
ref = lambda path: float(open(path).read().split("loopback_mb_per_s")[1])
raw8, raw1 = ref("loopback-8.txt"), ref("loopback-1.txt")
print(f"model: {model_mb:.0f} MB of float32 (MLP over the wide CSV), FedAvg")
print(f"server peak RSS: base (fedtrack --help) {floor:.0f} MB; K = 1: {k1:.0f} MB = base + {(k1 - floor) / model_mb:.2f} x model; "
      f"K = 8: {k8:.0f} MB = base + {(k8 - floor) / model_mb:.2f} x model (bound: base + 4 x model = {floor + 4 * model_mb:.0f} MB)")
for k in (1, 8):
    report = json.load(open(f"report-{k}.json"))
    down, up = [], []
    for r in report["rounds"]:
        m = r["metrics"]
        d = m["bytes_down"] / 2**20 / m["broadcast_seconds"]
        u = m["bytes_up"] / 2**20 / m["upload_seconds"]
        down.append(d); up.append(u)
        print(f"  K = {k}, round {r['round']}: broadcast {m['bytes_down'] / 2**20:.0f} MB in {m['broadcast_seconds']:.3f} s = "
              f"{d:.0f} MB/s; uploads {m['bytes_up'] / 2**20:.0f} MB read in {m['upload_seconds']:.3f} s = {u:.0f} MB/s; "
              f"round {m['round_seconds']:.2f} s")
    raw_down, socks = (raw1, "1 socket") if k == 1 else (raw8, "8 sockets")
    print(f"broadcast (K = {k}): best {max(down):.0f} MB/s vs raw loopback TCP to {socks} {raw_down:.0f} MB/s "
          f"-> ratio {max(down) / raw_down:.2f}")
    print(f"upload (K = {k}, read one at a time): best {max(up):.0f} MB/s vs raw loopback TCP over one socket {raw1:.0f} MB/s "
          f"-> ratio {max(up) / raw1:.2f}")
PY
