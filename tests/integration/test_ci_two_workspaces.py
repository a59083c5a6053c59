"""examples/ci/pipeline.sh as CI runs it: two runs in two fresh workspaces
that share nothing but the servers — MLflow, a git server (git http-backend
behind Basic auth; the token in FEDTRACK_GIT_TOKEN) holding the model
repository (MODEL_REPO, a URL) and an S3 bucket (moto; DVC_REMOTE, the
endpoint in AWS_ENDPOINT_URL as a CI user sets it). The second run extends
the first's history, GTO versions count v0.0.1 then v0.0.2 and name the
commits the registry versions name, and a third fresh workspace restores the
champion from the URL alone. promote refuses a candidate whose commit or
model cannot be fetched, --dry-run included."""

import hashlib
import json
import os
import subprocess

import pytest

from conftest import SMALL_JOB, clean_env, fedtrack, mlflow_client
from git_servers import GitHttpServer
from moto_s3 import MotoS3

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.environ.get("FEDTRACK_VENV_BIN", "")
USER, TOKEN = "ci-bot", "tok-9c41e0d2aa"
BUCKET, PREFIX = "models", "ci/dvc"
MODEL = "ci-two"
EXPERIMENT = "ci-two-workspaces"


def outputs(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def bare_git(bare, *args):
    r = subprocess.run(["git", "--git-dir", bare] + list(args), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, mlflow_server):
    root = tmp_path_factory.mktemp("git-srv")
    moto = MotoS3(str(tmp_path_factory.mktemp("moto")))
    moto.start(buckets=[BUCKET])
    try:
        with GitHttpServer(root, USER, TOKEN) as git_server:
            bare = git_server.bare("team-models")
            yield {"mlflow": mlflow_server, "git": git_server, "bare": bare, "url": git_server.url("team-models"),
                   "moto": moto}
    finally:
        moto.stop()


def ci_env(servers, workspace, **extra):
    """What a CI job's environment holds: secrets and endpoints, nothing on disk."""
    moto = servers["moto"]
    env = {k: v for k, v in clean_env().items() if not k.startswith(("AWS_", "FEDTRACK_GIT"))}
    env.update(HOME=str(workspace / "home"), MLFLOW_TRACKING_URI=servers["mlflow"].uri,
               FEDTRACK=os.environ["FEDTRACK_EXE"], EXPERIMENT=EXPERIMENT, MODEL_NAME=MODEL,
               MODEL_REPO=servers["url"], DVC_REMOTE=f"s3://{BUCKET}/{PREFIX}",
               FEDTRACK_GIT_TOKEN=TOKEN, FEDTRACK_GIT_USERNAME=USER,
               AWS_ACCESS_KEY_ID=moto.access_key_id, AWS_SECRET_ACCESS_KEY=moto.secret_access_key,
               AWS_ENDPOINT_URL=moto.endpoint, AWS_REGION="us-east-1",
               GIT_AUTHOR_NAME="CI", GIT_AUTHOR_EMAIL="ci@example.com",
               GIT_COMMITTER_NAME="CI", GIT_COMMITTER_EMAIL="ci@example.com")
    if VENV_BIN:
        env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env.update(extra)
    (workspace / "home").mkdir(parents=True, exist_ok=True)
    return env


def pipeline(servers, workspace, rounds):
    workspace.mkdir()
    env = ci_env(servers, workspace, MIN_ACCURACY="0.2",
                 RUN_ARGS=" ".join(["--set", f"rounds={rounds}"] + SMALL_JOB))
    r = subprocess.run(["bash", os.path.join(SOURCE_DIR, "examples", "ci", "pipeline.sh")], cwd=workspace, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert TOKEN not in r.stdout + r.stderr
    return outputs(workspace / "promote.env")


@pytest.fixture(scope="module")
def two_runs(servers, tmp_path_factory):
    base = tmp_path_factory.mktemp("ci")
    # The second job trains one round more from the same seed: its best round
    # beats the first job's, so `--better-than champion` lets it through.
    first = pipeline(servers, base / "ws1", rounds=1)
    second = pipeline(servers, base / "ws2", rounds=2)
    return base, first, second


def test_second_workspace_extends_the_history_and_versions_count_up(servers, two_runs):
    _, first, second = two_runs
    bare = servers["bare"]
    assert first["FEDTRACK_PROMOTED"] == "true" and second["FEDTRACK_PROMOTED"] == "true"
    assert (first["FEDTRACK_VERSION"], second["FEDTRACK_VERSION"]) == ("v0.0.1", "v0.0.2")
    assert (first["FEDTRACK_REGISTRY_VERSION"], second["FEDTRACK_REGISTRY_VERSION"]) == ("1", "2")

    # One history on the server: 1 + 2 round commits, the first run's below the second's.
    history = bare_git(bare, "rev-list", "main").splitlines()
    assert len(history) == 3, history
    assert first["FEDTRACK_COMMIT"] in history and second["FEDTRACK_COMMIT"] in history
    assert subprocess.run(["git", "--git-dir", bare, "merge-base", "--is-ancestor", first["FEDTRACK_COMMIT"],
                           second["FEDTRACK_COMMIT"]]).returncode == 0

    # GTO tags and registry versions name the same commits.
    client = mlflow_client(servers["mlflow"].uri)
    for dotenv, version, registry in ((first, "v0.0.1", "1"), (second, "v0.0.2", "2")):
        tagged = bare_git(bare, "rev-parse", f"{MODEL}@{version}^{{commit}}")
        assert tagged == dotenv["FEDTRACK_COMMIT"]
        mv = client.get_model_version(MODEL, registry)
        assert mv.tags["fedtrack.git.commit"] == tagged
        run = client.get_run(mv.run_id)
        assert run.data.tags["fedtrack.dvc.repo"] == servers["url"]  # the URL, not a workspace path
    assert bare_git(bare, "rev-parse", f"{MODEL}#prod#2^{{commit}}") == second["FEDTRACK_COMMIT"]
    assert client.get_model_version_by_alias(MODEL, "champion").version == "2"

    # The objects are in the bucket, in DVC's layout.
    for dotenv in (first, second):
        m = dotenv["FEDTRACK_MD5"]
        servers["moto"].s3().head_object(Bucket=BUCKET, Key=f"{PREFIX}/files/md5/{m[:2]}/{m[2:]}")


def test_third_workspace_restores_the_champion_from_the_url(servers, two_runs):
    base, first, second = two_runs
    ws = base / "ws3"
    ws.mkdir()
    env = ci_env(servers, ws)
    r = fedtrack(["restore", "--model-name", MODEL, "--alias", "champion", "--repo", servers["url"],
                  "--out", "champion.pt"], ws, env)
    assert r.returncode == 0, r.stderr
    assert "from the remote" in r.stdout  # the fresh cache had no object: it came from S3
    assert md5(ws / "champion.pt") == second["FEDTRACK_MD5"]
    # Without --repo: the repository the promoted run records.
    r = fedtrack(["restore", "--model-name", MODEL, "--alias", "champion", "--out", "again.pt"], ws, env)
    assert r.returncode == 0, r.stderr
    assert md5(ws / "again.pt") == second["FEDTRACK_MD5"]
    # Any revision by URL: the first run's version tag, fetched with the branch.
    r = fedtrack(["restore", "--repo", servers["url"], "--rev", f"{MODEL}@v0.0.1", "--out", "v1.pt"], ws, env)
    assert r.returncode == 0, r.stderr
    assert md5(ws / "v1.pt") == first["FEDTRACK_MD5"]
    r = fedtrack(["history", "--repo", servers["url"], "--json"], ws, env)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["rounds"]) == 3


def test_promote_refuses_a_candidate_it_cannot_fetch(servers, two_runs):
    base, _, second = two_runs
    ws = base / "ws4"
    ws.mkdir()
    env = ci_env(servers, ws)
    job = ["promote", "--job", second["FEDTRACK_JOB_ID"], "--experiment", EXPERIMENT, "--model-name", MODEL,
           "--require", "eval_accuracy>=0.2", "--dry-run"]

    # The run's recorded repository (the URL) has it: the dry run passes.
    ok = fedtrack(job, ws, env)
    assert ok.returncode == 0, ok.stderr
    assert "passes every gate" in ok.stdout

    # Another repository without the commit: an error, never "passes".
    other = ws / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    r = fedtrack(job + ["--repo", str(other)], ws, env)
    assert r.returncode == 7, r.stdout + r.stderr
    assert "is not in the model repository" in r.stderr and "passes" not in r.stdout

    # The object gone from the DVC remote (and not in this workspace's cache).
    m = second["FEDTRACK_MD5"]
    servers["moto"].s3().delete_object(Bucket=BUCKET, Key=f"{PREFIX}/files/md5/{m[:2]}/{m[2:]}")
    r = fedtrack(job, ws, env)
    assert r.returncode == 7, r.stdout + r.stderr
    assert "cannot be fetched" in r.stderr and f"s3://{BUCKET}/{PREFIX}/files/md5/{m[:2]}/{m[2:]}" in r.stderr
    assert "passes" not in r.stdout
    r = fedtrack([a for a in job if a != "--dry-run"], ws, env)
    assert r.returncode == 7, r.stdout + r.stderr
    assert len(mlflow_client(servers["mlflow"].uri).search_model_versions(f"name='{MODEL}'")) == 2


def test_a_refused_token_is_exit_6_naming_the_repository(servers, tmp_path):
    env = ci_env(servers, tmp_path, FEDTRACK_GIT_TOKEN="wrong-token-5b1e")
    r = fedtrack(["history", "--repo", servers["url"]], tmp_path, env)
    assert r.returncode == 6, r.stdout + r.stderr
    assert "git fetch from origin (" + servers["url"] + ")" in r.stderr and "refused the credentials" in r.stderr
    assert "wrong-token-5b1e" not in r.stdout + r.stderr
    # A password in the URL is refused before anything is stored.
    with_password = servers["url"].replace("http://", f"http://{USER}:{TOKEN}@")
    r = fedtrack(["history", "--repo", with_password], tmp_path, env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert TOKEN not in r.stdout + r.stderr and "FEDTRACK_GIT_TOKEN" in r.stderr
    for f in (tmp_path / ".fedtrack").rglob("*"):
        assert f.is_dir() or TOKEN.encode() not in f.read_bytes(), f
