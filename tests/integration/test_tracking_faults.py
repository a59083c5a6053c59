"""Tracking when things go wrong, against a real MLflow server: a misbehaving
gateway (chaos proxy), a job file named in Latin-1, a corrupt journal, a job
killed before its first resume point, and credentials in the tracking URI."""

import json
import os
import shutil
import sqlite3
import subprocess

from chaos_proxy import FAULTS, ChaosProxy
from conftest import ADMIN_PASSWORD, SMALL_JOB, clean_env, fedtrack, mlflow_client

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_JOB = os.path.join(SOURCE_DIR, "examples", "fashion-mnist-fedavg", "job.yaml")


def all_runs(client, experiment):
    from mlflow.entities import ViewType

    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment} missing"
    active = client.search_runs([exp.experiment_id], max_results=1000)
    every = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    return active, every


def parents_and_children(runs):
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted((r for r in runs if "mlflow.parentRunId" in r.data.tags), key=lambda r: r.info.run_name)
    return parents, children


def history_steps(client, run_id, key):
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_a_gateway_that_fails_after_forwarding_delays_and_drops_leaves_every_run_and_point_once(
        mlflow_server, tmp_path):
    # The client gives up on an answer after 2 s; the proxy holds delayed answers for 3.5 s.
    with ChaosProxy(mlflow_server.uri, seed=11, rate=0.15, delay=3.5) as proxy:
        env = clean_env(MLFLOW_TRACKING_URI=proxy.uri, MLFLOW_EXPERIMENT_NAME="chaos",
                        MLFLOW_HTTP_REQUEST_TIMEOUT="2", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0.05",
                        MLFLOW_HTTP_REQUEST_BACKOFF_JITTER="0.05")
        r = fedtrack(["run", "--json", "--set", "rounds=3", "--set", "tracking.timeout=10"] + SMALL_JOB, tmp_path,
                     env)
        assert r.returncode == 0, r.stderr
        print("chaos proxy:", sorted(proxy.stats.items()))  # shown with pytest -s
        for kind in ("runs/create", "runs/log-batch"):
            assert proxy.faults_on(kind) == set(FAULTS), (kind, proxy.stats)
    report = json.loads(r.stdout.strip().splitlines()[-1])

    # Whatever the gateway kept from the job goes straight to the server.
    synced = fedtrack(["sync"], tmp_path, clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri))
    assert synced.returncode == 0, synced.stderr
    assert fedtrack(["sync"], tmp_path, clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri)).stdout.startswith(
        "sync: nothing to send")

    client = mlflow_client(mlflow_server.uri)
    active, every = all_runs(client, "chaos")
    parents, children = parents_and_children(active)
    assert len(parents) == 1, [p.info.run_id for p in parents]
    assert [c.info.run_name for c in children] == ["round-001", "round-002", "round-003"]
    assert parents[0].data.tags["fedtrack.job_id"] == report["job_id"]
    assert [r.info.run_id for r in every if r.info.status == "RUNNING"] == []
    assert parents[0].info.status == "FINISHED" and all(c.info.status == "FINISHED" for c in children)
    parent = parents[0].info.run_id
    assert history_steps(client, parent, "eval_accuracy") == [0, 1, 2, 3]
    assert history_steps(client, parent, "train_loss") == [1, 2, 3]
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent
        step = int(child.data.tags["fedtrack.round"])
        for key in ("eval_accuracy", "eval_loss", "clients_ok", "client/client-000/train_loss",
                    "client/client-003/ok"):
            assert history_steps(client, child.info.run_id, key) == [step], (child.info.run_name, key)
    assert parents[0].data.params["train.lr"] == "0.05"


def test_a_job_file_named_in_latin1_runs_and_is_recorded(mlflow_server, tmp_path):
    name = os.fsencode(str(tmp_path)) + b"/caf\xe9.yaml"
    shutil.copyfile(EXAMPLE_JOB, name)
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="latin1")
    r = subprocess.run([os.environ["FEDTRACK_EXE"].encode(), b"run", name, b"--json", b"--set", b"rounds=1", b"--set", b"tracking.timeout=60"]
                       + [a.encode() for a in SMALL_JOB], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    stderr = r.stderr.decode(errors="replace")
    assert r.returncode == 0, stderr
    assert "internal error" not in stderr
    report = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert report["tracking"]["pending_writes"] == 0
    active, _ = all_runs(mlflow_client(mlflow_server.uri), "latin1")
    parents, children = parents_and_children(active)
    assert len(parents) == 1 and len(children) == 1
    assert parents[0].data.tags["mlflow.source.name"].endswith("/caf\ufffd.yaml")
    assert parents[0].info.status == "FINISHED"


def test_runs_and_sync_report_a_corrupt_journal_write_and_go_on(mlflow_server, tmp_path):
    r = fedtrack(["run", "--set", "rounds=2", "--set", "tracking.experiment=corrupt"] + SMALL_JOB, tmp_path,
                 clean_env())
    assert r.returncode == 0, r.stderr
    journal = tmp_path / ".fedtrack" / "journal.sqlite"
    with sqlite3.connect(journal) as db:
        batches = [seq for (seq,) in db.execute("SELECT seq FROM ops WHERE op = 'batch' ORDER BY seq")]
        bad_json, bad_shape = batches[1], batches[2]
        db.execute("UPDATE ops SET payload = '{\"metrics\": [[' WHERE seq = ?", (bad_json,))
        db.execute("UPDATE ops SET payload = '{\"metrics\": \"many\"}' WHERE seq = ?", (bad_shape,))

    for args in (["runs"], ["runs", "--json"]):
        listing = fedtrack(args, tmp_path, clean_env())
        assert listing.returncode == 5, listing.stderr
        assert f"journal .fedtrack/journal.sqlite: write {bad_json} (batch of run " in listing.stderr
        assert f"write {bad_shape} (batch of run " in listing.stderr
        assert "2 corrupt write(s) left out of the listing" in listing.stderr
    jobs = json.loads(fedtrack(["runs", "--json"], tmp_path, clean_env()).stdout)
    assert len(jobs) == 1 and [r["round"] for r in jobs[0]["rounds"]] == [1, 2]

    synced = fedtrack(["sync", "--tracking-uri", mlflow_server.uri], tmp_path, clean_env())
    assert synced.returncode == 5, synced.stderr
    assert f"write {bad_json} (batch of run " in synced.stderr and "is corrupt" in synced.stderr
    assert "2 corrupt write(s) could not be sent" in synced.stderr
    assert "0 pending" in synced.stdout
    active, _ = all_runs(mlflow_client(mlflow_server.uri), "corrupt")
    parents, children = parents_and_children(active)
    assert len(parents) == 1 and len(children) == 2
    assert parents[0].info.status == "FINISHED"


def test_a_job_killed_before_round_one_is_ended_killed_when_it_starts_again(mlflow_server, tmp_path):
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="orphan")
    job = ["run", "--json", "--set", "rounds=2", "--set", "tracking.timeout=60"] + SMALL_JOB
    killed = fedtrack(job, tmp_path, dict(env, FEDTRACK_TEST_EXIT_AFTER_ROUND="0"))  # dies after initial evaluation
    assert killed.returncode == 137, killed.stderr
    client = mlflow_client(mlflow_server.uri)
    active, _ = all_runs(client, "orphan")
    parents, made_ahead = parents_and_children(active)  # round 1's run is made with its parent
    assert [r.info.status for r in parents] == ["RUNNING"]
    assert [(r.info.run_name, r.info.status) for r in made_ahead] == [("round-001", "RUNNING")]
    orphan = parents[0].info.run_id
    assert "nothing to resume" in fedtrack(job + ["--resume"], tmp_path, env).stderr

    again = fedtrack(job, tmp_path, env)
    assert again.returncode == 0, again.stderr
    assert "was left RUNNING by a process that is gone; marked KILLED" in again.stderr
    report = json.loads(again.stdout.strip().splitlines()[-1])
    active, every = all_runs(client, "orphan")
    assert [r.info.run_id for r in every if r.info.status == "RUNNING"] == []
    old = client.get_run(orphan)
    assert old.info.status == "KILLED"
    assert client.get_run(made_ahead[0].info.run_id).info.status == "KILLED"
    assert f"Marked KILLED when job {report['job_id']} of the same name started" in old.data.tags["mlflow.note.content"]
    jobs = json.loads(fedtrack(["runs", "--json"], tmp_path, env).stdout)
    assert sorted(j["status"] for j in jobs) == ["FINISHED", "KILLED"]


def leaks_of(secret, workspace, outputs, client, experiment, skip=()):
    """Where `secret` is found: outputs, any file in the workspace (journal and
    its WAL, state file, model repository), any git object, any MLflow param
    or tag of any run (deleted ones included)."""
    found = [what for what, text in outputs.items() if secret in text]
    for path in workspace.rglob("*"):
        if path.is_file() and path not in skip and secret.encode() in path.read_bytes():
            found.append(str(path))
    objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=workspace / "fedtrack-models",
                             capture_output=True, check=True).stdout
    assert objects, "the model repository has commits"
    if secret.encode() in objects:
        found.append("git objects")
    _, every = all_runs(client, experiment)
    for run in every:
        for k, v in list(run.data.params.items()) + list(run.data.tags.items()):
            if secret in v or secret in k:
                found.append(f"run {run.info.run_name}: {k}")
    return found


def test_credentials_in_the_tracking_uri_are_used_and_never_left_anywhere(auth_mlflow_server, tmp_path):
    secret = ADMIN_PASSWORD
    port = auth_mlflow_server.uri.rsplit(":", 1)[1]
    uri = f"http://admin:{secret}@127.0.0.1:{port}"
    env = clean_env(MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME="secrets")
    r = fedtrack(["run", "--json", "--set", "rounds=2", "--set", "tracking.timeout=60"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["tracking"]["pending_writes"] == 0, r.stderr  # the credentials were used
    assert report["versioning"]["rounds"], "versioning is on"
    listing = fedtrack(["runs", "--json"], tmp_path, env)
    client = mlflow_client(auth_mlflow_server.uri, "admin", secret)
    assert leaks_of(secret, tmp_path, {"stdout": r.stdout, "stderr": r.stderr, "runs": listing.stdout + listing.stderr},
                    client, "secrets") == []
    active, _ = all_runs(client, "secrets")
    assert len(active) == 3
    parent = parents_and_children(active)[0][0]
    assert parent.data.params["tracking.uri"] == f"http://127.0.0.1:{port}"
    log = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=tmp_path / "fedtrack-models", capture_output=True,
                         text=True).stdout
    assert f"mlflow-tracking-uri: http://127.0.0.1:{port}" in log

    # A git remote with a token in its URL: the failed push is reported, the token is not.
    other = tmp_path / "push"
    (other / "fedtrack-models").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=other / "fedtrack-models", check=True)
    token = "git-token-4f2a9c"
    subprocess.run(["git", "remote", "add", "origin", f"http://bob:{token}@127.0.0.1:1/models.git"],
                   cwd=other / "fedtrack-models", check=True)
    pushed = fedtrack(["run", "--set", "rounds=1", "--set", "versioning.push=true",
                       "--set", "tracking.experiment=secrets-push"] + SMALL_JOB, other, env)
    assert pushed.returncode == 4, pushed.stderr
    assert "git push to origin (http://127.0.0.1:1/models.git)" in pushed.stderr  # named, without the token
    assert leaks_of(token, other, {"stdout": pushed.stdout, "stderr": pushed.stderr}, client, "secrets-push",
                    skip={other / "fedtrack-models" / ".git" / "config"}) == []  # the user's own git config
    assert leaks_of(secret, other, {"stdout": pushed.stdout, "stderr": pushed.stderr}, client, "secrets-push") == []
