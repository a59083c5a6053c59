"""The model repository read as a DVCLive one by the real dvc, gto and dvc.api: learning curves, params and
metrics diffs on round tags, `dvc exp show`, and a promoted model found by name and stage."""

import hashlib
import json
import os
import subprocess

import pytest

from conftest import SMALL_JOB, clean_env, fedtrack, mlflow_client

VENV_BIN = os.environ.get("FEDTRACK_VENV_BIN", "")
PYTHON = os.path.join(VENV_BIN, "python")
SECRET = "s3cret-pw"


def tool_env(tracking_uri, experiment):
    env = clean_env(MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_EXPERIMENT_NAME=experiment, DVC_NO_ANALYTICS="1",
                    GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com", GIT_COMMITTER_NAME="Test",
                    GIT_COMMITTER_EMAIL="test@example.com")
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def run(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def job(tmp_path, env, *extra):
    small = ["--set", "data.limit_train=1200", "--set", "data.limit_test=300", "--set", "clients.count=2"]
    r = fedtrack(["run", "--json"] + SMALL_JOB + small + list(extra), tmp_path, env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def artifacts_show(repo, name, stage, env):
    code = ("import dvc.api, json, sys; "
            "print(json.dumps(dvc.api.artifacts_show(sys.argv[1], stage=sys.argv[2], repo=sys.argv[3])))")
    return json.loads(run([PYTHON, "-c", code, name, stage, str(repo)], repo, env))


@pytest.fixture(scope="module")
def two_jobs(mlflow_server, tmp_path_factory):
    """Two jobs into one repository: A (3 rounds, the job's name as artifact), B (2 rounds, another train.lr,
    versioning.artifact fashion-mlp). The tracking URI carries a password (MLflow without auth ignores it)."""
    tmp_path = tmp_path_factory.mktemp("dvclive")
    env = tool_env(mlflow_server.uri.replace("http://", f"http://alice:{SECRET}@"), "dvclive")
    a = job(tmp_path, env, "--set", "rounds=3", "--set", f"versioning.remote={tmp_path / 'dvc-remote'}")
    b = job(tmp_path, env, "--set", "rounds=2", "--set", "train.lr=0.02", "--set", "versioning.artifact=fashion-mlp")
    return tmp_path, env, a, b


def test_round_tags_read_like_dvclive_and_a_promotion_resolves_by_name(mlflow_server, two_jobs):
    tmp_path, env, a, b = two_jobs
    repo = tmp_path / "fedtrack-models"
    a_tags = [x["tag"] for x in a["versioning"]["rounds"]]
    b_tags = [x["tag"] for x in b["versioning"]["rounds"]]

    # Learning curves: a series per metric, one point per round so far, x = step (HEAD is B's last round).
    shown = json.loads(run(["dvc", "plots", "show", "--json"], repo, env))["data"]
    curves = {k: v for k, v in shown.items() if k.startswith("dvclive/plots/metrics/")}
    assert {f"dvclive/plots/metrics/{m}.tsv" for m in b["rounds"][-1]["metrics"]} <= set(curves), sorted(curves)
    for path, renders in curves.items():
        assert renders[0]["content"]["encoding"]["x"]["field"] == "step", path
        assert [int(v["step"]) for v in renders[0]["content"]["data"]["values"]] == [1, 2], path
    eval_curve = curves["dvclive/plots/metrics/eval_accuracy.tsv"][0]["content"]["data"]["values"]
    assert [float(v["eval_accuracy"]) for v in eval_curve] == \
        [pytest_approx(x["metrics"]["eval_accuracy"]) for x in b["rounds"]]
    # Each job's round tag holds that job's curve only: A's last round, its 3 rounds.
    a_curve = run(["git", "show", a_tags[-1] + ":dvclive/plots/metrics/eval_accuracy.tsv"], repo, env)
    assert [line.split("\t")[1] for line in a_curve.splitlines()] == ["step", "1", "2", "3"]

    # Params: the job config flattened, diffed between the two jobs' tags.
    params = json.loads(run(["dvc", "params", "diff", a_tags[-1], b_tags[-1], "--json"], repo, env))
    changed = params["dvclive/params.yaml"]
    assert changed["train.lr"] == {"old": 0.05, "new": 0.02, "diff": pytest_approx(-0.03)}
    assert changed["versioning.artifact"]["new"] == "fashion-mlp"
    # Metrics: the round's values and its step, diffed between round tags.
    metrics = json.loads(run(["dvc", "metrics", "diff", a_tags[0], a_tags[-1], "--json"], repo, env))
    diff = metrics["dvclive/metrics.json"]
    assert diff["step"] == {"old": 1, "new": 3, "diff": 2}
    assert diff["eval_accuracy"]["new"] == pytest_approx(a["rounds"][-1]["metrics"]["eval_accuracy"])
    exp = json.loads(run(["dvc", "exp", "show", "--json"], repo, env))
    assert "eval_accuracy" in json.dumps(exp) and "train.lr" in json.dumps(exp)

    # Secrets never persist: not in a file of the work tree, not in any commit of any ref.
    assert SECRET not in run(["git", "log", "--all", "-p"], repo, env)
    assert subprocess.run(["grep", "-r", "-l", SECRET, "--exclude-dir=.git", "."], cwd=repo).returncode == 1

    # Promotion without --model-name takes the artifact's name from dvc.yaml; dvc and gto then find it.
    p = fedtrack(["promote", "--experiment", "dvclive", "--stage", "prod", "--json"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result["promoted"] == "true" and result["job_id"] == b["job_id"]
    assert "as fashion-mlp v0.0.1" in p.stdout, p.stdout
    out = tmp_path / "prod.pt"
    run(["dvc", "artifacts", "get", str(repo), "fashion-mlp", "--stage", "prod", "-o", str(out)], tmp_path, env)
    assert md5(out) == result["md5"]
    shown = artifacts_show(repo, "fashion-mlp", "prod", env)
    assert shown["rev"] == result["commit"] and shown["path"] == "models/global.pt"
    gto = json.loads(run(["gto", "show", "--json"], repo, env))
    assert gto["fashion-mlp"]["version"] == "v0.0.1" and gto["fashion-mlp"]["stage"] == {"prod": "v0.0.1"}
    assert mlflow_client(mlflow_server.uri).get_model_version_by_alias("fashion-mlp", "champion").run_id == \
        result["run_id"]


def test_a_repository_from_before_promotes_its_global_artifact(mlflow_server, two_jobs, tmp_path):
    """A round committed before artifacts were named after the job: dvc.yaml says `global`. Its promotion
    (no --model-name) tags `global`, which is what `dvc artifacts get` resolves at that commit."""
    env = tool_env(mlflow_server.uri, "old-repo")
    repo = tmp_path / "old-models"
    (repo / "models").mkdir(parents=True)
    run(["git", "init", "-q"], repo, env)
    run(["dvc", "init", "-q"], repo, env)
    remote = tmp_path / "old-remote"
    run(["dvc", "remote", "add", "-q", "-d", "storage", str(remote)], repo, env)
    checkpoint = two_jobs[0] / "fedtrack-models" / "models" / "global.pt"  # a real one, as an old job left
    (repo / "models" / "global.pt").write_bytes(checkpoint.read_bytes())
    run(["dvc", "add", "-q", "models/global.pt"], repo, env)
    (repo / "models" / "global.metrics.json").write_text('{"round": 1, "eval_accuracy": 0.5}\n')
    (repo / "dvc.yaml").write_text("metrics:\n- models/global.metrics.json\n"
                                   "artifacts:\n  global:\n    path: models/global.pt\n    type: model\n")
    run(["dvc", "push", "-q"], repo, env)
    digest = md5(repo / "models" / "global.pt")
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", f"old round 1/1\n\nfedtrack-job: old-1\nfedtrack-round: 1\n"
         f"fedtrack-md5: {digest}\nfedtrack-path: models/global.pt"], repo, env)
    commit = run(["git", "rev-parse", "HEAD"], repo, env).strip()

    # The runs such a job left in MLflow: a finished parent, a round run with the lineage tags.
    client = mlflow_client(mlflow_server.uri)
    experiment = client.create_experiment("old-repo")
    parent = client.create_run(experiment, tags={"fedtrack.job_id": "old-1"}, run_name="old")
    child = client.create_run(experiment, run_name="round-001", tags={
        "mlflow.parentRunId": parent.info.run_id, "fedtrack.job_id": "old-1", "fedtrack.round": "1",
        "fedtrack.git.commit": commit, "fedtrack.dvc.md5": digest, "fedtrack.dvc.path": "models/global.pt",
        "fedtrack.dvc.repo": str(repo)})
    client.log_metric(child.info.run_id, "eval_accuracy", 0.5, step=1)
    client.set_terminated(child.info.run_id)
    client.set_terminated(parent.info.run_id)

    p = fedtrack(["promote", "--experiment", "old-repo", "--stage", "prod", "--json"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result["promoted"] == "true" and result["commit"] == commit
    assert run(["git", "tag", "--list", "global*"], repo, env).split() == ["global#prod#1", "global@v0.0.1"]
    out = tmp_path / "old.pt"
    run(["dvc", "artifacts", "get", str(repo), "global", "--stage", "prod", "-o", str(out)], tmp_path, env)
    assert md5(out) == digest
    assert artifacts_show(repo, "global", "prod", env)["rev"] == commit


def pytest_approx(x):
    return pytest.approx(x, rel=1e-9, abs=1e-12)
