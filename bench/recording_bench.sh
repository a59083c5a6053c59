#!/usr/bin/env bash
# Recording off the critical path: the wall time of a simulation job with a
# ~100 MB model (an MLP over 102,400 CSV features: 26.3 M parameters) with
# recording on (every round committed to a DVC repository and journalled)
# beside the same job with versioning off (the tracking journal stays on:
# the CLI always journals), measured alternately in the same run, best of
# RUNS each. Also checks that both end with the same model bytes. Never
# pass/fail.
#
#   bash bench/recording_bench.sh [RUNS]        (default 3)
#
# FEDTRACK names the binary (default build/connectors/fedtrack).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedtrack="${FEDTRACK:-$root/build/connectors/fedtrack}"
runs="${1:-3}"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

python3 - <<'PY'
import random
random.seed(7)
features = 102400
with open("wide.csv", "w") as f:
    f.write(",".join(f"f{i}" for i in range(features)) + ",label\n")
    for r in range(48):
        f.write(",".join(str(random.randint(0, 9)) for _ in range(features)) + f",{r % 4}\n")
PY
cat > wide.yaml <<YAML
name: wide
rounds: 4
model: mlp
data: {dataset: csv, path: $work/wide.csv, test_fraction: 0.25, val_fraction: 0.0, partition: {kind: iid}}
clients: {count: 2, min_fit: 2}
train: {epochs: 1, batch_size: 16}
evaluation: {initial: false, federated: false}
YAML

# run NAME ARGS...: one job in a fresh folder; prints "<wall seconds> <model sha256> <CPU seconds>".
run() {
  local name="$1"
  shift
  rm -rf "$name" && mkdir "$name"
  (cd "$name" && python3 - "$fedtrack" "$@" <<'PY'
import json, resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run([sys.argv[1], "run", "--json", "../wide.yaml"] + sys.argv[2:], capture_output=True, text=True)
seconds = time.monotonic() - t
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
if r.returncode != 0:
    sys.exit(r.stderr)
report = json.loads(r.stdout.strip().splitlines()[-1])
print(f"{seconds:.3f} {report['final']['model_sha256']} {cpu:.2f}")
PY
  )
}

best_on=1e9 best_off=1e9 cpu_on=1e9 cpu_off=1e9 sha_on="" sha_off=""
for ((i = 1; i <= runs; i++)); do
  read -r s sha_off c < <(run off --set versioning.enabled=false)
  best_off=$(python3 -c "print(min($best_off, $s))") cpu_off=$(python3 -c "print(min($cpu_off, $c))")
  echo "run $i: recording off (versioning.enabled=false) $s s wall, $c s CPU"
  read -r s sha_on c < <(run on --set versioning.enabled=true --set versioning.repo=models)
  best_on=$(python3 -c "print(min($best_on, $s))") cpu_on=$(python3 -c "print(min($cpu_on, $c))")
  echo "run $i: recording on  (versioning + journal)     $s s wall, $c s CPU"
done
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "same final model with recording on and off: $([ "$sha_on" = "$sha_off" ] && echo yes || echo "NO ($sha_on vs $sha_off)")"
python3 -c "print(f'CPU seconds, best of $runs: recording on {$cpu_on:.2f}, off {$cpu_off:.2f} -> ratio {$cpu_on / $cpu_off:.3f} (what recording itself costs)')"
python3 -c "print(f'job wall time, best of $runs: recording on {$best_on:.2f} s, off {$best_off:.2f} s -> ratio {$best_on / $best_off:.3f}')"
