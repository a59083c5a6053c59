"""fedtrack run / runs / sync against a real MLflow server, checked with MLflow's own client."""

import json
import os
import signal
import subprocess

from chaos_proxy import ChaosProxy
from conftest import ADMIN_PASSWORD, FEDTRACK, SMALL_JOB, clean_env, fedtrack, mlflow_client
from mlflow_server import free_port


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
    # "<job name>-<short id>": unique per job, the job id's random tail.
    assert parent.info.run_name == "fashion-mnist-fedavg-" + report["job_id"].rsplit("-", 1)[1]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["train.lr"] == "0.05"
    assert parent.data.params["data.partition.kind"] == "dirichlet"
    assert parent.data.params["clients.count"] == "4"
    # The model card: what a checkpoint needs to be used (input shape, the job's scaling, class names).
    assert parent.data.params["model.input_shape"] == "1x28x28"
    assert abs(float(parent.data.params["model.scaling_mean"]) - 0.2860) < 0.005
    assert abs(float(parent.data.params["model.scaling_stddev"]) - 0.3530) < 0.005
    assert parent.data.params["model.class_names"].startswith("T-shirt/top,Trouser,")
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


# --- tracking.required / --require-tracking: a CI gate can tell a recorded job
# from one whose records were lost. Without it a job trains whatever MLflow
# does (its writes wait in the journal) and exits 0; with it the job fails
# before round 1 when MLflow is unreachable (exit 4) or refuses the
# credentials (exit 6), leaving nothing behind, and fails at the end (exit 4,
# after its report) when writes are still pending.

STRICT_JOB = ["--set", "rounds=1", "--set", "tracking.timeout=1"] + SMALL_JOB
WRONG_PASSWORD = "not-the-password-7f3a"


def debris(folder):
    """What a job left in its working folder."""
    return sorted(os.listdir(folder))


def test_no_tracking_uri_is_a_usage_error(tmp_path):
    r = fedtrack(["run", "--require-tracking"] + STRICT_JOB, tmp_path, clean_env())
    assert r.returncode == 2, r.stderr
    assert r.stderr == ("fedtrack: tracking.required: no tracking URI (set tracking.uri or MLFLOW_TRACKING_URI, "
                        "or drop --require-tracking)\n")
    assert debris(tmp_path) == []


def test_unreachable_server_fails_before_round_1(tmp_path):
    closed = "http://127.0.0.1:%d" % free_port()
    r = fedtrack(["run", "--set", "tracking.required=true"] + STRICT_JOB, tmp_path, clean_env(MLFLOW_TRACKING_URI=closed))
    assert r.returncode == 4, r.stderr
    assert r.stderr.startswith("fedtrack: tracking.required: MLflow at " + closed + " cannot take the job's records"), \
        r.stderr
    assert "round 1" not in r.stderr  # nothing was trained
    assert debris(tmp_path) == []  # no journal, no model repository, no state file

    relaxed = fedtrack(["run"] + STRICT_JOB, tmp_path, clean_env(MLFLOW_TRACKING_URI=closed))
    assert relaxed.returncode == 0, relaxed.stderr  # without it, today's behaviour: the journal keeps the writes


def test_refused_credentials_fail_before_round_1_and_say_what_was_sent(auth_mlflow_server, tmp_path):
    env = clean_env(MLFLOW_TRACKING_URI=auth_mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="strict",
                    MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=WRONG_PASSWORD)
    r = fedtrack(["run", "--require-tracking"] + STRICT_JOB, tmp_path, env)
    assert r.returncode == 6, r.stderr
    assert "MLflow HTTP 401" in r.stderr
    assert "sent user 'admin' with a password (MLFLOW_TRACKING_PASSWORD is set)" in r.stderr
    assert WRONG_PASSWORD not in r.stdout + r.stderr
    assert debris(tmp_path) == []

    relaxed = fedtrack(["run"] + STRICT_JOB, tmp_path, env)
    assert relaxed.returncode == 0, relaxed.stderr
    # Before: "set MLFLOW_TRACKING_USERNAME and ..." although it was set.
    assert "sent user 'admin' with a password" in relaxed.stderr
    assert WRONG_PASSWORD not in relaxed.stdout + relaxed.stderr


def test_writes_pending_at_the_end_fail_the_job_after_its_report(mlflow_server, tmp_path):
    # The proxy passes the start check (one request) and then drops everything:
    # MLflow went away after the job started.
    with ChaosProxy(mlflow_server.uri, outage_after=1) as proxy:
        env = clean_env(MLFLOW_TRACKING_URI=proxy.uri, MLFLOW_EXPERIMENT_NAME="strict-outage")
        r = fedtrack(["run", "--json", "--require-tracking"] + STRICT_JOB, tmp_path, env)
    assert r.returncode == 4, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])  # the report still says what waits where
    pending = report["tracking"]["pending_writes"]
    assert pending > 0
    assert r.stderr.strip().splitlines()[-1] == (
        "fedtrack: tracking.required: %d write(s) still pending in .fedtrack/journal.sqlite (MLflow at %s did not "
        "take them); send them with: fedtrack sync --journal .fedtrack/journal.sqlite" % (pending, proxy.uri))

    # Once the server is back, what waited goes, and a strict job that MLflow takes exits 0.
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="strict-outage")
    assert fedtrack(["sync"], tmp_path, env).returncode == 0
    ok = fedtrack(["run", "--json", "--require-tracking"] + STRICT_JOB, tmp_path, env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["tracking"]["pending_writes"] == 0
    client = mlflow_client(mlflow_server.uri)
    experiment = client.get_experiment_by_name("strict-outage")
    parents = [run for run in client.search_runs([experiment.experiment_id])
               if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 2 and all(run.info.status == "FINISHED" for run in parents)
