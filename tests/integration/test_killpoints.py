"""Kill points: a job SIGKILLed just before a durable step, then resumed.

tests/support/killpoint.c (LD_PRELOAD) counts every rename, renameat(2),
link(at), fsync, fdatasync and open/openat with O_CREAT|O_EXCL (git's and
libgit2's lock files) and SIGKILLs the process before the Nth. For a kill
point N the job (the shipped CSV example, 3 rounds, versioning on, tracking
journal-only) is killed at N, then completed the way the README says:
`fedtrack run --resume`, or a plain `fedtrack run` when the kill came before
there was anything to resume ("nothing to resume"), or nothing when the job
had already finished ("already finished"). Then, for every point:

- the final model's sha256 equals the uninterrupted run's, and each round's
  md5 equals the uninterrupted run's;
- exactly one commit and one tag per round, each tag on its round's commit;
- `git status --porcelain` and the real `dvc status` are clean;
- no `*.lock`, `*.tmp-*`, `tmp_object_git2_*` or `_git2_*` file anywhere in
  the repository (.git included);
- the journal holds each round of the job exactly once (one create per run
  key, every round FINISHED).

The ctest entry runs a deterministic subset: the first and the last kill
point of every kind of step (call x what it touches: git lock, ref, index,
config, HEAD, object, libgit2 probe, work-tree file, DVC cache object, fsync,
SQLite's fdatasync), so every kind is killed once while the repository is
being created / in round 1 and once in the last round, where the replay and
commit-reuse logic runs. `scripts/killpoints.sh` runs every point:

    python3 tests/integration/test_killpoints.py --all [--jobs 2]

Rounds are recorded beside training (round N committed and journalled
while round N+1 trains). The recording_overlap test (its own ctest entry,
versioning.kill_points_recording_overlap) holds each round's record until
the next round has trained, so the kill lands in that window, and kills
inside round 1's record there; `--overlap --all` runs every point that way.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
FEDTRACK = os.environ.get("FEDTRACK_EXE", "")
KILLPOINT_LIB = os.environ.get("FEDTRACK_KILLPOINT_LIB", "")
VENV_BIN = os.environ.get("FEDTRACK_VENV_BIN", "")

JOB = [os.path.join(SOURCE, "examples", "csv-tabular", "job.yaml"),
       "--set", "rounds=3",
       "--set", "data.path=" + os.path.join(SOURCE, "examples", "csv-tabular", "loans.csv"),
       "--set", "versioning.enabled=true"]
ROUNDS = 3
LEFTOVER = re.compile(r"(\.lock$|\.tmp-|^tmp_object_git2_|^_git2_)")


def environment(home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "GIT_", "FEDTRACK_KILLPOINT")) and k != "LD_PRELOAD"}
    env.update(HOME=home, XDG_CONFIG_HOME=home, GIT_CONFIG_NOSYSTEM="1", DVC_NO_ANALYTICS="1")
    if VENV_BIN:
        env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def fedtrack(args, cwd, env, timeout=300):
    return subprocess.run([FEDTRACK] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def tool(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def categorize(call, path):
    """What kind of durable step a logged call is."""
    name = os.path.basename(path)
    if path == "-":
        where = "-"
    elif "/.dvc/cache/" in path:
        where = "dvc-cache"
    elif "/.git/" not in path:
        where = "git-probe" if name.startswith("_git2_") else "work-tree"
    elif name.startswith("tmp_object_git2_") or "/.git/objects/" in path:
        where = "git-object"
    elif "/refs/tags/" in path:
        where = "git-tag"
    elif "/refs/heads/" in path:
        where = "git-branch"
    elif name.endswith(".lock"):
        where = "git-lock:" + name
    elif name in ("config", "HEAD", "index"):
        where = "git-" + name
    else:
        where = "git-init-file"
    return call + " " + where


def reference(workdir, extra_env=None):
    """The uninterrupted run: its result and its kill points."""
    os.makedirs(workdir)
    env = dict(environment(workdir), **(extra_env or {}))
    env.update(LD_PRELOAD=KILLPOINT_LIB, FEDTRACK_KILLPOINT_COUNT=os.path.join(workdir, "count"),
               FEDTRACK_KILLPOINT_LOG=os.path.join(workdir, "log"))
    r = fedtrack(["run", "--json"] + JOB, workdir, env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    total = int(open(os.path.join(workdir, "count")).read().split()[-1])
    points = []
    for line in open(os.path.join(workdir, "log")):
        n, call, path = line.rstrip("\n").split(" ", 2)
        points.append((int(n), categorize(call, path)))
    assert len(points) == total
    return {"sha256": report["final"]["model_sha256"],
            "md5": [x["md5"] for x in report["versioning"]["rounds"]],
            "total": total, "points": points,
            "paths": [line.rstrip("\n").split(" ", 2)[2] for line in open(os.path.join(workdir, "log"))]}


def subset(points):
    """First and last kill point of every kind of step."""
    first, last = {}, {}
    for n, kind in points:
        first.setdefault(kind, n)
        last[kind] = n
    return sorted(set(first.values()) | set(last.values()))


def check_repository(workdir, ref):
    """Every promise about the repository after a completed job; [] when all hold."""
    problems = []
    repo = os.path.join(workdir, "fedtrack-models")
    env = environment(workdir)
    if not os.path.isdir(repo):
        return ["no model repository"]
    # Before any tool runs (dvc status makes its own .dvc/tmp/rwlock.lock).
    left = []
    for folder, _, files in os.walk(repo):
        left += [os.path.relpath(os.path.join(folder, f), repo) for f in files if LEFTOVER.search(f)]
    if left:
        problems.append(f"left behind: {sorted(left)}")
    rc, tags = tool(["git", "tag", "-l", "fedtrack/*"], repo, env)
    tags = tags.split()
    jobs = {t.split("/")[1] for t in tags}
    if rc != 0 or len(tags) != ROUNDS or len(jobs) != 1:
        problems.append(f"tags: {tags}")
    rc, count = tool(["git", "rev-list", "--count", "HEAD"], repo, env)
    if rc != 0 or count.strip() != str(ROUNDS):
        problems.append(f"{count.strip()} commits on HEAD, want {ROUNDS}")
    for i, tag in enumerate(sorted(tags)[:ROUNDS], start=1):
        rc, tagged = tool(["git", "rev-parse", tag + "^{commit}"], repo, env)
        _, nth = tool(["git", "rev-parse", f"HEAD~{ROUNDS - i}"], repo, env)
        if tagged.strip() != nth.strip():
            problems.append(f"{tag} is not on round {i}'s commit")
        _, dvc = tool(["git", "show", f"{tag}:models/global.pt.dvc"], repo, env)
        md5 = re.search(r"md5: ([0-9a-f]{32})", dvc)
        if not md5 or md5.group(1) != ref["md5"][i - 1]:
            problems.append(f"round {i} md5 {md5.group(1) if md5 else None} != {ref['md5'][i - 1]}")
    rc, status = tool(["git", "status", "--porcelain"], repo, env)
    if rc != 0 or status.strip():
        problems.append("git status: " + status.strip())
    rc, dvc_status = tool(["dvc", "status"], repo, env)
    if rc != 0 or "up to date" not in dvc_status:
        problems.append("dvc status: " + dvc_status.strip())
    # The final model: the last round's committed bytes.
    out = os.path.join(workdir, "final.pt")
    r = fedtrack(["restore", "--repo", repo, "--rev", "HEAD", "--out", out], workdir, env)
    if r.returncode != 0:
        problems.append("restore HEAD: " + r.stderr.strip())
    elif hashlib.sha256(open(out, "rb").read()).hexdigest() != ref["sha256"]:
        problems.append("final model sha256 differs from the uninterrupted run's")
    # The journal: each round of the job once.
    journal = os.path.join(workdir, ".fedtrack", "journal.sqlite")
    if len(jobs) == 1:
        job = jobs.pop()
        db = sqlite3.connect(journal)
        try:
            twice = db.execute("SELECT run_key, COUNT(*) FROM ops WHERE op = 'create' GROUP BY run_key "
                               "HAVING COUNT(*) != 1").fetchall()
            rounds = db.execute("SELECT round, status FROM runs WHERE job_id = ? AND kind = 'round' ORDER BY round",
                                (job,)).fetchall()
        finally:
            db.close()
        if twice:
            problems.append(f"journal: creates per run key {twice}")
        if rounds != [(i, "FINISHED") for i in range(1, ROUNDS + 1)]:
            problems.append(f"journal rounds of {job}: {rounds}")
    return problems


def kill_point(n, base, extra_env=None):
    """Kills the job at point n, completes it, checks it; returns (n, problems)."""
    workdir = os.path.join(base, f"point-{n:04d}")
    os.makedirs(workdir)
    env = dict(environment(workdir), **(extra_env or {}))
    killed = fedtrack(["run", "--json"] + JOB, workdir, dict(env, LD_PRELOAD=KILLPOINT_LIB, FEDTRACK_KILLPOINT=str(n)))
    problems = []
    if killed.returncode != -9:
        problems.append(f"not killed at point {n} (exit {killed.returncode}): {killed.stderr.strip()[-300:]}")
    done = fedtrack(["run", "--resume", "--json"] + JOB, workdir, env)
    how = "--resume"
    if done.returncode == 2 and "nothing to resume" in done.stderr:
        done = fedtrack(["run", "--json"] + JOB, workdir, env)
        how = "run"
    if done.returncode == 2 and "already finished" in done.stderr:
        how = "finished"
    elif done.returncode != 0:
        problems.append(f"{how} exit {done.returncode}: {done.stderr.strip()[-600:]}")
    else:
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if report["final"]["model_sha256"] != ref_cache["sha256"]:
            problems.append(f"{how}: model_sha256 {report['final']['model_sha256']} != {ref_cache['sha256']}")
    if not problems:
        problems = check_repository(workdir, ref_cache)
    if not problems:
        shutil.rmtree(workdir, ignore_errors=True)
    return n, how, problems


ref_cache = {}


def campaign(points, base, jobs=1, log=print, extra_env=None):
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for n, how, problems in pool.map(lambda p: kill_point(p, base, extra_env), points):
            results.append((n, problems))
            log(f"point {n:4d} ({dict(ref_cache['points'])[n]}; then {how}): " +
                ("ok" if not problems else "FAILED: " + "; ".join(problems)))
    return results


def prepare(base, extra_env=None):
    ref_cache.clear()
    ref_cache.update(reference(os.path.join(base, "reference"), extra_env))
    return ref_cache


def test_every_kind_of_kill_point_resumes_to_the_same_model_and_a_clean_repository(tmp_path):
    assert FEDTRACK and os.path.exists(FEDTRACK), "FEDTRACK_EXE must name the built fedtrack"
    assert KILLPOINT_LIB and os.path.exists(KILLPOINT_LIB), "FEDTRACK_KILLPOINT_LIB must name killpoint.so"
    ref = prepare(str(tmp_path))
    chosen = subset(ref["points"])
    kinds = {kind for _, kind in ref["points"]}
    assert {kind for n, kind in ref["points"] if n in chosen} == kinds
    results = campaign(chosen, str(tmp_path))
    failed = [(n, p) for n, p in results if p]
    assert not failed, f"{len(failed)} of {len(results)} kill points failed: {failed}"


# Recording runs beside training (core/src/recording_queue.h): round N is
# committed and journalled while round N+1 trains. This seam makes round N's
# record start only once round N+1 has trained, so every step of it falls in
# that window on every run.
OVERLAP = {"FEDTRACK_TEST_RECORD_AFTER_NEXT_ROUND": "1"}


def overlap_points(ref):
    """Kill points inside round 1's record, which runs after round 2 trained:
    its DVC cache object, its tag, and the journal write that follows."""
    kinds = [kind for _, kind in ref["points"]]
    paths = ref["paths"]
    cache = next(i for i, k in enumerate(kinds) if k == "rename dvc-cache")
    tag = next(i for i, k in enumerate(kinds) if k.endswith("git-tag") and i > cache)
    journal = next(i for i, k in enumerate(kinds) if k.startswith("fdatasync") and i > tag)
    assert "/.dvc/cache/" in paths[cache] and "round-001" in paths[tag], (paths[cache], paths[tag])
    return [ref["points"][i][0] for i in (cache, tag, journal)]


def test_recording_overlap_a_kill_while_round_n_records_after_round_n_plus_1_trained_resumes_exactly_once(tmp_path):
    assert FEDTRACK and os.path.exists(FEDTRACK), "FEDTRACK_EXE must name the built fedtrack"
    assert KILLPOINT_LIB and os.path.exists(KILLPOINT_LIB), "FEDTRACK_KILLPOINT_LIB must name killpoint.so"
    ref = prepare(str(tmp_path), OVERLAP)
    # Recording beside training changes no model byte: the same job without
    # versioning (the journal only) ends with the same model.
    quiet = tmp_path / "no-versioning"
    quiet.mkdir()
    r = fedtrack(["run", "--json"] + JOB + ["--set", "versioning.enabled=false"], str(quiet), environment(str(quiet)))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["final"]["model_sha256"] == ref["sha256"]
    results = campaign(overlap_points(ref), str(tmp_path), extra_env=OVERLAP)
    failed = [(n, p) for n, p in results if p]
    assert not failed, f"{len(failed)} of {len(results)} kill points failed: {failed}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="every kill point (default: the ctest subset)")
    parser.add_argument("--points", help="comma-separated kill points")
    parser.add_argument("--jobs", type=int, default=1, help="kill points run in parallel")
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    parser.add_argument("--overlap", action="store_true",
                        help="each round recorded only once the next one trained (the recording-overlap window)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="fedtrack-killpoints-")
    extra_env = OVERLAP if args.overlap else None
    ref = prepare(base, extra_env)
    if args.points:
        points = [int(p) for p in args.points.split(",")]
    else:
        points = list(range(1, ref["total"] + 1)) if args.all else subset(ref["points"])
    print(f"{ref['total']} kill points in a {ROUNDS}-round job; running {len(points)}", flush=True)
    results = campaign(points, base, args.jobs, log=lambda line: print(line, flush=True), extra_env=extra_env)
    failed = [n for n, p in results if p]
    print(f"points {len(results)} passed {len(results) - len(failed)} failed {len(failed)}"
          + (f" ({','.join(map(str, failed))}; folders kept under {base})" if failed else ""))
    if not failed and not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
