"""fedtrack run / runs / sync against a real MLflow server, checked with MLflow's own client."""

import json
import os
import signal
import subprocess

from conftest import ADMIN_PASSWORD, FEDTRACK, SMALL_JOB, clean_env, fedtrack, mlflow_client


def experiment_runs(client, name):
    exp = client.get_experiment_by_name(name)
    assert exp is not None, f"experiment {name} missing"
    runs = client.search_runs([exp.experiment_id], order_by=["start_time ASC"], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted((r for r in runs if "mlflow.parentRunId" in r.data.tags), key=lambda r: r.info.run_name)
    return exp, parents, children


def history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_three_round_job_is_one_parent_and_three_children(mlflow_server, tmp_path):
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="three-rounds")
    r = fedtrack(["run", "--json", "--set", "rounds=3"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    tracking = report["tracking"]
    assert tracking["pending_writes"] == 0
    assert "tracking: MLflow run " + tracking["run_id"] in r.stderr

    client = mlflow_client(mlflow_server.uri)
    exp, parents, children = experiment_runs(client, "three-rounds")
    assert tracking["experiment_id"] == exp.experiment_id
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.run_id == tracking["run_id"]
    assert parent.info.run_name == "fashion-mnist-fedavg"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["train.lr"] == "0.05"
    assert parent.data.params["data.partition.kind"] == "dirichlet"
    assert parent.data.params["clients.count"] == "4"
    assert parent.data.tags["fedtrack.job_id"] == report["job_id"]
    assert parent.data.tags["mlflow.user"]
    assert parent.data.tags["mlflow.source.name"] == "fedtrack run"

    assert [c.info.run_name for c in children] == ["round-001", "round-002", "round-003"]
    # Lineage both ways: each round's run names its commit, each commit names its run.
    for child, commit in zip(children, report["versioning"]["rounds"]):
        assert child.data.tags["fedtrack.git.commit"] == commit["commit"]
        assert child.data.tags["fedtrack.git.tag"] == commit["tag"]
        assert child.data.tags["fedtrack.dvc.md5"] == commit["md5"]
        assert child.data.tags["fedtrack.dvc.path"] == "models/global.pt"
        message = subprocess.run(["git", "log", "-1", "--format=%B", commit["commit"]], cwd=tmp_path / "fedtrack-models",
                                 capture_output=True, text=True, check=True).stdout
        assert "mlflow-run-id: " + child.info.run_id in message
        assert "mlflow-parent-run-id: " + parent.info.run_id in message
    assert [c.info.run_id for c in children] == tracking["round_run_ids"]
    for child, expected in zip(children, report["rounds"]):
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["fedtrack.round"] == str(expected["round"])
        assert len(child.data.tags["fedtrack.model_sha256"]) == 64
        for key in ("eval_accuracy", "eval_loss", "train_loss", "clients_sampled", "clients_ok",
                    "clients_failed", "bytes_down", "bytes_up", "round_seconds"):
            assert abs(child.data.metrics[key] - expected["metrics"][key]) < 1e-9, key
        assert child.data.params["lr"] == "0.05"
        assert child.data.params["round"] == str(expected["round"])
        assert "client/client-000/train_loss" in child.data.metrics
        assert child.data.metrics["client/client-003/ok"] == 1.0
        assert len(child.data.tags["client/client-000/data_fingerprint"]) == 64

    # Learning curves on the parent: the initial model at step 0, rounds at 1..3, each once.
    curve = history(client, parent.info.run_id, "eval_accuracy")
    assert [s for s, _ in curve] == [0, 1, 2, 3]
    assert abs(curve[0][1] - report["initial"]["eval_accuracy"]) < 1e-9
    for (step, value), expected in zip(curve[1:], report["rounds"]):
        assert step == expected["round"] and abs(value - expected["metrics"]["eval_accuracy"]) < 1e-9
    # The initial evaluation is on the parent only.
    for child in children:
        assert [s for s, _ in history(client, child.info.run_id, "eval_accuracy")] == [int(child.data.tags["fedtrack.round"])]


def test_server_away_after_round_one_then_sync_lands_everything_once(fresh_mlflow_server, tmp_path):
    server = fresh_mlflow_server
    env = clean_env(MLFLOW_TRACKING_URI=server.uri, MLFLOW_EXPERIMENT_NAME="outage")
    proc = subprocess.Popen([FEDTRACK, "run", "--json", "--set", "rounds=3", "--set", "tracking.timeout=2"] + SMALL_JOB,
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines = []
    for line in proc.stderr:
        err_lines.append(line)
        if line.startswith("round 1/3"):
            break
    # Round 1 is journalled and sent before its progress line appears. Freeze the
    # job, stop the server, and let the job finish without it.
    os.kill(proc.pid, signal.SIGSTOP)
    server.stop()
    os.kill(proc.pid, signal.SIGCONT)
    out, rest = proc.communicate(timeout=300)
    stderr = "".join(err_lines) + rest
    assert proc.returncode == 0, stderr
    assert "write(s) pending in .fedtrack/journal.sqlite" in stderr
    assert "fedtrack sync --journal .fedtrack/journal.sqlite" in stderr
    report = json.loads(out.strip().splitlines()[-1])
    assert report["tracking"]["pending_writes"] > 0
    assert len(report["rounds"]) == 3

    listing = fedtrack(["runs"], tmp_path, env)
    assert listing.returncode == 0
    assert "write(s) pending" in listing.stdout

    server.start()
    synced = fedtrack(["sync", "--journal", ".fedtrack/journal.sqlite"], tmp_path, env)
    assert synced.returncode == 0, synced.stderr
    assert "0 pending" in synced.stdout

    client = mlflow_client(server.uri)
    _, parents, children = experiment_runs(client, "outage")
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert [s for s, _ in history(client, parent.info.run_id, "eval_accuracy")] == [0, 1, 2, 3]
    for child in children:
        assert child.info.status == "FINISHED"
        assert len(history(client, child.info.run_id, "eval_accuracy")) == 1
        assert len(history(client, child.info.run_id, "client/client-001/train_loss")) == 1

    # A second sync has nothing to do and changes nothing.
    again = fedtrack(["sync", "--journal", ".fedtrack/journal.sqlite"], tmp_path, env)
    assert again.returncode == 0
    assert "nothing to send" in again.stdout
    _, parents2, children2 = experiment_runs(client, "outage")
    assert len(parents2) == 1 and len(children2) == 3
    assert [s for s, _ in history(client, parent.info.run_id, "eval_accuracy")] == [0, 1, 2, 3]


def test_journal_only_by_default_then_sync_uploads(mlflow_server, tmp_path):
    env = clean_env()
    r = fedtrack(["run", "--json", "--set", "rounds=2", "--set", "tracking.experiment=offline"] + SMALL_JOB,
                 tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert "tracking: journal only (no tracking URI)" in r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["tracking"]["run_id"] is None
    assert report["tracking"]["round_run_ids"] == [None, None]

    listing = fedtrack(["runs", "--json"], tmp_path, env)
    jobs = json.loads(listing.stdout)
    assert [j["job_id"] for j in jobs] == [report["job_id"]]
    assert [r["round"] for r in jobs[0]["rounds"]] == [1, 2]
    assert abs(jobs[0]["rounds"][1]["metrics"]["eval_accuracy"] - report["final"]["eval_accuracy"]) < 1e-9

    missing = fedtrack(["sync"], tmp_path, env)
    assert missing.returncode == 2
    assert "no tracking URI" in missing.stderr

    synced = fedtrack(["sync", "--tracking-uri", mlflow_server.uri], tmp_path, env)
    assert synced.returncode == 0, synced.stderr
    client = mlflow_client(mlflow_server.uri)
    _, parents, children = experiment_runs(client, "offline")
    assert len(parents) == 1 and len(children) == 2
    assert parents[0].data.tags["fedtrack.job_id"] == report["job_id"]


def test_server_that_requires_auth_gives_a_clear_error(auth_mlflow_server, tmp_path):
    uri = auth_mlflow_server.uri
    env = clean_env(MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME="auth")
    r = fedtrack(["run", "--set", "rounds=1"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr  # training never waits on tracking
    assert "MLflow HTTP 401" in r.stderr
    assert "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN" in r.stderr

    denied = fedtrack(["sync"], tmp_path, env)
    assert denied.returncode == 6
    assert "MLflow HTTP 401" in denied.stderr

    authed = dict(env, MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD)
    ok = fedtrack(["sync"], tmp_path, authed)
    assert ok.returncode == 0, ok.stderr
    client = mlflow_client(uri, "admin", ADMIN_PASSWORD)
    _, parents, children = experiment_runs(client, "auth")
    assert len(parents) == 1 and len(children) == 1
