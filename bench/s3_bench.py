"""Push and pull of a checkpoint to an S3 remote (moto on loopback, started
here): fedtrack's S3 code (bench_s3) beside `dvc push` / `dvc pull` (dvc-s3)
of the same bytes in the same run, each to its own prefix so neither skips
an object that is already there. A figure, never pass/fail.

    .venv/bin/python bench/s3_bench.py build/bench/bench_s3 [MB]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from moto_s3 import MotoS3  # noqa: E402


def timed(cmd, cwd, env):
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{cmd} failed:\n{r.stdout}\n{r.stderr}")
    return time.monotonic() - t, r.stdout


def main():
    exe = os.path.abspath(sys.argv[1])
    mb = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    work = tempfile.mkdtemp(prefix="fedtrack-s3-bench-")
    moto = MotoS3(os.path.join(work, "moto"))
    try:
        moto.start(buckets=["bench"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=moto.access_key_id, AWS_SECRET_ACCESS_KEY=moto.secret_access_key,
                   DVC_NO_ANALYTICS="1", PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
        repo = os.path.join(work, "repo")
        os.makedirs(repo)
        for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"],
                    ["dvc", "remote", "add", "-d", "s3", "s3://bench/dvc"],
                    ["dvc", "remote", "modify", "s3", "endpointurl", moto.endpoint]):
            timed(cmd, repo, env)
        model = os.path.join(repo, "model.pt")
        with open(model, "wb") as f:
            f.write(os.urandom(mb * 1024 * 1024))
        timed(["dvc", "add", "-q", "model.pt"], repo, env)

        _, out = timed([exe, model, "s3://bench/fedtrack", moto.endpoint], repo, env)
        ours = json.loads(out)
        dvc_push, _ = timed(["dvc", "push", "-q"], repo, env)
        shutil.rmtree(os.path.join(repo, ".dvc", "cache"))
        os.remove(model)
        dvc_pull, _ = timed(["dvc", "pull", "-q"], repo, env)
        print(f"{mb} MB checkpoint, moto S3 on loopback")
        print(f"push: fedtrack {ours['push_s']:.2f} s, dvc push {dvc_push:.2f} s, ratio {ours['push_s'] / dvc_push:.2f}")
        print(f"pull: fedtrack {ours['fetch_s']:.2f} s, dvc pull {dvc_pull:.2f} s, ratio {ours['fetch_s'] / dvc_pull:.2f}")
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
