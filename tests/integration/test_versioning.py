"""fedtrack's model repository checked with the real dvc CLI and git."""

import hashlib
import json
import os
import subprocess

from conftest import SMALL_JOB, clean_env, fedtrack

VENV_BIN = os.environ.get("FEDTRACK_VENV_BIN", "")


def env_with_tools(**extra):
    env = clean_env(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
                    GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com", **extra)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def run(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def test_three_round_job_is_what_dvc_and_git_expect(tmp_path):
    env = env_with_tools()
    remote = tmp_path / "dvc-remote"
    r = fedtrack(["run", "--json", "--set", "rounds=3", "--set", f"versioning.remote={remote}"] + SMALL_JOB,
                 tmp_path, env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    versioning = report["versioning"]
    repo = versioning["repo"]
    assert repo == str(tmp_path / "fedtrack-models")
    rounds = versioning["rounds"]
    assert [x["round"] for x in rounds] == [1, 2, 3]
    assert len({x["md5"] for x in rounds}) == 3

    # The real tools find nothing to do.
    assert "Data and pipelines are up to date." in run(["dvc", "status"], repo, env)
    assert "are in sync" in run(["dvc", "status", "-c"], repo, env)
    assert run(["git", "status", "--porcelain"], repo, env) == ""
    assert "eval_accuracy" in run(["dvc", "metrics", "show"], repo, env)
    assert run(["git", "rev-parse", "HEAD"], repo, env).strip() == rounds[-1]["commit"]

    # Every round comes back by tag and by sha, with the md5 of the summary.
    for x in rounds:
        for rev in (x["tag"], x["commit"]):
            out = tmp_path / f"restored-{x['round']}.pt"
            res = fedtrack(["restore", "--repo", repo, "--rev", rev, "--out", str(out)], tmp_path, env)
            assert res.returncode == 0, res.stderr
            assert md5(out) == x["md5"]
            os.remove(out)

    # A fresh clone + checkout + dvc pull gives the same bytes.
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", repo, str(clone)], tmp_path, env)
    for x in rounds:
        run(["git", "checkout", "-q", x["tag"]], clone, env)
        run(["dvc", "pull", "-q"], clone, env)
        assert md5(clone / "models" / "global.pt") == x["md5"]

    history = fedtrack(["history", "--repo", repo, "--json"], tmp_path, env)
    entries = json.loads(history.stdout)["rounds"]
    assert [(e["round"], e["tag"], e["commit"], e["md5"]) for e in entries] == \
        [(x["round"], x["tag"], x["commit"], x["md5"]) for x in rounds]
    assert abs(entries[-1]["metrics"]["eval_accuracy"] - report["final"]["eval_accuracy"]) < 1e-9


def test_outputs_made_by_dvc_add_are_restorable_and_errors_are_clear(tmp_path):
    env = env_with_tools()
    repo = tmp_path / "fedtrack-models"
    r = fedtrack(["run", "--set", "rounds=1"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr

    (repo / "data").mkdir()
    payload = os.urandom(4096)
    (repo / "data" / "extra.bin").write_bytes(payload)
    run(["dvc", "add", "-q", "data/extra.bin"], repo, env)
    run(["git", "add", "data/extra.bin.dvc", "data/.gitignore"], repo, env)
    run(["git", "commit", "-q", "-m", "data by dvc add"], repo, env)
    out = tmp_path / "extra.out"
    res = fedtrack(["restore", "--repo", str(repo), "--rev", "HEAD", "--path", "data/extra.bin", "--out", str(out)],
                   tmp_path, env)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == payload

    missing = fedtrack(["restore", "--repo", str(repo), "--rev", "v9.9.9", "--out", str(tmp_path / "x")], tmp_path, env)
    assert missing.returncode == 3
    assert "unknown revision 'v9.9.9'" in missing.stderr
    assert not (tmp_path / "x").exists()

    no_file = fedtrack(["restore", "--repo", str(repo), "--rev", "HEAD~1", "--path", "data/extra.bin",
                        "--out", str(tmp_path / "x")], tmp_path, env)
    assert no_file.returncode == 3
    assert "no data/extra.bin.dvc at revision 'HEAD~1'" in no_file.stderr

    # Corrupt the only copy of the model (no remote configured here).
    dvc_file = (repo / "models" / "global.pt.dvc").read_text()
    digest = dvc_file.split("md5: ")[1].split()[0]
    obj = repo / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"bit rot")
    corrupt = fedtrack(["restore", "--repo", str(repo), "--rev", "HEAD", "--out", str(tmp_path / "x")], tmp_path, env)
    assert corrupt.returncode == 5
    assert "is corrupt" in corrupt.stderr
    assert not (tmp_path / "x").exists()


def test_push_sends_commit_and_tag_to_origin_after_the_dvc_remote(tmp_path):
    env = env_with_tools()
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path, env)
    repo = tmp_path / "models"
    run(["git", "init", "-q", str(repo)], tmp_path, env)
    run(["git", "remote", "add", "origin", str(origin)], repo, env)
    remote = tmp_path / "dvc-remote"
    r = fedtrack(["run", "--json", "--set", "rounds=2", "--set", f"versioning.repo={repo}",
                  "--set", f"versioning.remote={remote}", "--set", "versioning.push=true"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    rounds = json.loads(r.stdout.strip().splitlines()[-1])["versioning"]["rounds"]
    for x in rounds:
        assert run(["git", "rev-parse", x["tag"] + "^{commit}"], origin, env).strip() == x["commit"]
    # What origin has is complete: a clone of it pulls every round's model from the DVC remote.
    clone = tmp_path / "from-origin"
    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path, env)
    run(["git", "checkout", "-q", rounds[0]["tag"]], clone, env)
    run(["dvc", "pull", "-q"], clone, env)
    assert md5(clone / "models" / "global.pt") == rounds[0]["md5"]


def test_legacy_dvc2_outputs_restore(tmp_path):
    env = env_with_tools()
    repo = tmp_path / "legacy"
    run(["git", "init", "-q", str(repo)], tmp_path, env)
    payload = b"a model from the DVC 2 days"
    digest = hashlib.md5(payload).hexdigest()
    obj = repo / ".dvc" / "cache" / digest[:2] / digest[2:]  # DVC 2 cache layout
    obj.parent.mkdir(parents=True)
    obj.write_bytes(payload)
    (repo / ".dvc" / "config").write_text("")
    (repo / "old.bin.dvc").write_text(f"outs:\n- md5: {digest}\n  size: {len(payload)}\n  path: old.bin\n")
    run(["git", "add", "old.bin.dvc"], repo, env)
    run(["git", "commit", "-q", "-m", "dvc 2 output"], repo, env)
    out = tmp_path / "old.out"
    r = fedtrack(["restore", "--repo", str(repo), "--rev", "HEAD", "--path", "old.bin", "--out", str(out)], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == payload


SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSV_JOB = [os.path.join(SOURCE, "examples", "csv-tabular", "job.yaml"), "--set", "rounds=3",
           "--set", "data.path=" + os.path.join(SOURCE, "examples", "csv-tabular", "loans.csv")]


def test_a_fifo_or_directory_where_a_file_should_be_is_an_error_not_a_hang(tmp_path):
    env = env_with_tools()
    r = fedtrack(["run", "--set", "rounds=1"] + CSV_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    repo = tmp_path / "fedtrack-models"
    digest = (repo / "models" / "global.pt.dvc").read_text().split("md5: ")[1].split()[0]
    obj = repo / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    out = tmp_path / "x.pt"

    os.chmod(obj, 0o644)
    os.remove(obj)
    os.mkdir(obj)
    res = fedtrack(["restore", "--repo", str(repo), "--rev", "HEAD", "--out", str(out)], tmp_path, env, timeout=60)
    assert res.returncode == 5, res.stderr
    assert f"{obj} is not a regular file (a directory)" in res.stderr
    os.rmdir(obj)
    os.mkfifo(obj)
    res = fedtrack(["restore", "--repo", str(repo), "--rev", "HEAD", "--out", str(out)], tmp_path, env, timeout=60)
    assert res.returncode == 5, res.stderr
    assert f"{obj} is not a regular file (a FIFO)" in res.stderr
    assert not out.exists()

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    res = fedtrack(["run", str(fifo)], tmp_path, env, timeout=60)  # as the job file
    assert res.returncode == 3, res.stderr
    assert "cannot read job file" in res.stderr
    res = fedtrack(["run"] + CSV_JOB + ["--set", f"data.path={fifo}"], tmp_path, env, timeout=60)  # as the data
    assert res.returncode == 2, res.stderr
    assert f"{fifo} is not a regular file (a FIFO)" in res.stderr


def test_two_jobs_committing_into_one_repository_at_once_take_turns(tmp_path):
    env = env_with_tools()
    repo = tmp_path / "shared-models"
    jobs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        jobs.append(subprocess.Popen([os.environ["FEDTRACK_EXE"], "run", "--json"] + CSV_JOB +
                                     ["--set", f"versioning.repo={repo}", "--set", f"name=loans-{name}"],
                                     cwd=tmp_path / name, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True))
    for job in jobs:
        out, err = job.communicate(timeout=300)
        assert job.returncode == 0, err
    tags = run(["git", "tag", "-l", "fedtrack/*"], repo, env).split()
    assert len(tags) == 6, tags
    assert run(["git", "rev-list", "--count", "HEAD"], repo, env).strip() == "6"
    assert run(["git", "status", "--porcelain"], repo, env) == ""
    assert "Data and pipelines are up to date." in run(["dvc", "status"], repo, env)
    assert not (repo / ".git" / "fedtrack.lock").exists()


def test_a_securely_aggregated_round_says_so_in_its_commit(tmp_path):
    env = env_with_tools()
    r = fedtrack(["run", "--json", "--set", "rounds=1", "--set", "secure_aggregation.mode=secaggplus"] + SMALL_JOB,
                 tmp_path, env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    repo = report["versioning"]["repo"]
    message = run(["git", "log", "-1", "--format=%B", report["versioning"]["rounds"][0]["commit"]], repo, env)
    assert "\nfedtrack-aggregation: secaggplus\n" in message, message
