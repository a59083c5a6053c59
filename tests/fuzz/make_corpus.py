#!/usr/bin/env python3
"""Regenerates the seed corpus in tests/fuzz/corpus/ from real encoders and
real files (see corpus/README.md for what each seed is).

  python3 tests/fuzz/make_corpus.py --fedtrack build/connectors/fedtrack \
      --seeds build-fuzz/tests/fuzz/fuzz_seeds --venv-bin .venv/bin [--out tests/fuzz/corpus]

Steps: fuzz_seeds writes the FTPM / FTMS / FTST seeds made by the real
encoders; a real 2-round `fedtrack run` of examples/csv-tabular (journal only,
versioning on, a DVC remote) gives the state file's round summary, metrics and
sampler RNG, the journal's payloads, the .dvc file, .dvc/config and
.gitignore; the real `dvc` CLI gives a .dvc file and a config written by DVC
itself; the job seeds are the example job files, the README's listing of all
keys, and the same job as JSON.
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def put(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    print(f"{target}/{name} ({len(data)} bytes)")


def run(cmd, cwd, env=None):
    subprocess.run(cmd, cwd=cwd, check=True, env=env, stdout=subprocess.DEVNULL)


def real_job(fedtrack, work, out):
    shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(work, "examples"))
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    run([fedtrack, "run", "examples/csv-tabular/job.yaml", "--set", "rounds=2", "--set", "strategy.name=fedadam",
         "--set", "versioning.remote=" + os.path.join(work, "remote")], work, env)

    db = sqlite3.connect(os.path.join(work, "loans-fedavg.state.db"))
    state = {k: bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode()
             for k, v in db.execute("SELECT key, value FROM state")}
    put(out, "state", "round-summary.ftst", state["last_summary"])
    put(out, "state", "initial-metrics.ftst", state["initial"])
    put(out, "state", "round-metrics.ftst", state["round/000001"])
    put(out, "state", "sampler-rng.txt", state["sampler_state"])

    journal = sqlite3.connect(os.path.join(work, ".fedtrack", "journal.sqlite"))
    seen = set()
    for seq, op, payload in journal.execute("SELECT seq, op, payload FROM ops ORDER BY seq"):
        kind = op
        if op == "batch":
            p = json.loads(payload)
            kind = "batch-params" if p["params"] and not p["metrics"] else \
                   "batch-round" if p["tags"] else "batch-metrics"
        if kind in seen:
            continue
        seen.add(kind)
        put(out, "journal_payload", kind + ".json", payload)
    # Non-finite metrics as MLflow takes them (a diverged round writes these).
    put(out, "journal_payload", "batch-non-finite.json",
        '{"metrics":[["eval_loss","NaN",1796087353140,3],["train_loss","Infinity",1796087353140,3],'
        '["grad_min","-Infinity",1796087353140,3]],"params":[],"tags":[]}')

    repo = os.path.join(work, "fedtrack-models")
    with open(os.path.join(repo, "models", "global.pt.dvc"), "rb") as f:
        put(out, "dvc_file", "fedtrack-global.pt.dvc", f.read())
    with open(os.path.join(repo, ".dvc", "config"), "rb") as f:
        put(out, "dvc_config", "fedtrack-config", f.read())
    with open(os.path.join(repo, "models", ".gitignore"), "rb") as f:
        put(out, "dvc_config", "fedtrack-models.gitignore", f.read())


def real_dvc(venv_bin, work, out):
    repo = os.path.join(work, "dvc-repo")
    os.makedirs(os.path.join(repo, "data"))
    env = dict(os.environ, PATH=venv_bin + os.pathsep + os.environ["PATH"], DVC_NO_ANALYTICS="1")
    run(["git", "init", "-q"], repo, env)
    run(["dvc", "init", "-q"], repo, env)
    with open(os.path.join(repo, "data", "weights v2.bin"), "wb") as f:
        f.write(bytes(range(256)) * 4)
    run(["dvc", "add", "-q", "data/weights v2.bin"], repo, env)
    run(["dvc", "remote", "add", "-d", "storage", "/srv/dvc-remote"], repo, env)
    run(["dvc", "remote", "modify", "storage", "jobs", "4"], repo, env)
    run(["dvc", "config", "core.autostage", "true"], repo, env)
    with open(os.path.join(repo, "data", "weights v2.bin.dvc"), "rb") as f:
        put(out, "dvc_file", "dvc-add.dvc", f.read())
    with open(os.path.join(repo, ".dvc", "config"), "rb") as f:
        put(out, "dvc_config", "dvc-remote-add-config", f.read())
    # DVC 2 wrote no `hash:` line (a legacy output), as older repositories hold.
    put(out, "dvc_file", "dvc2-legacy.dvc",
        "outs:\n- md5: 7a5b8c6de2f04b1a9c3d2e1f0a9b8c7d\n  size: 1024\n  path: model.pt\n")


def job_files(out):
    for example in ("csv-tabular", "fashion-mnist-fedavg"):
        with open(os.path.join(ROOT, "examples", example, "job.yaml"), "rb") as f:
            put(out, "job_config", example + ".yaml", f.read())
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    listing = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "versioning:" in b)
    put(out, "job_config", "readme-all-keys.yaml", listing)
    put(out, "job_config", "dp-job.json", json.dumps({
        "name": "dp-loans", "rounds": 3, "model": "mlp",
        "data": {"dataset": "csv", "path": "loans.csv", "label": "decision",
                 "partition": {"kind": "iid"}},
        "clients": {"count": 4, "min_fit": 4},
        "strategy": {"name": "fedadam", "eta": 0.01, "tau": 0.001},
        "privacy": {"dp": {"mode": "server_adaptive", "noise_multiplier": 0.5, "clipping_norm": 1.0, "target_clipped_quantile": 0.5}}}, indent=1))
    put(out, "job_config", "set-override.txt", "train.lr=0.01")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fedtrack", required=True)
    ap.add_argument("--seeds", required=True, help="build-fuzz/tests/fuzz/fuzz_seeds")
    ap.add_argument("--venv-bin", required=True, help="bin/ of a venv with dvc")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fuzz", "corpus"))
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    subprocess.run([os.path.abspath(a.seeds), out], check=True)
    with tempfile.TemporaryDirectory(prefix="fedtrack-corpus-") as work:
        real_job(os.path.abspath(a.fedtrack), work, out)
        real_dvc(os.path.abspath(a.venv_bin), work, out)
    job_files(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
