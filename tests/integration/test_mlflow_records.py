"""A job's parent run as MLflow 3 shows it, checked with MLflow's own client
against a real server: a unique readable name, fedtrack.version and the git
source tags, MLFLOW_EXPERIMENT_ID as the Python client honours it, the
resolved job file (no secrets) as an artifact, the test set and each client's
training data as dataset inputs, each site's curve across rounds, at most five
requests per round, and every new kind of write sent exactly once after an
outage."""

import json
import os
import subprocess

import yaml

from chaos_proxy import FAULTS, ChaosProxy
from conftest import FEDTRACK, SMALL_JOB, clean_env, fedtrack, mlflow_client

PASSWORD = "pw-never-stored-5e1f"


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def parents(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    runs = client.search_runs([exp.experiment_id], order_by=["start_time ASC"], max_results=1000)
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def steps(client, run_id, key):
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def job_artifact(uri, run_id):
    import mlflow

    mlflow.set_tracking_uri(uri)
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="job.yaml")
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_each_job_is_a_named_parent_run_with_its_sources_job_file_datasets_and_site_curves(mlflow_server, tmp_path):
    # The job runs from a git checkout on a branch with an origin that has credentials in its URL.
    source = tmp_path / "src"
    source.mkdir()
    git(source, "init", "-q", "-b", "exp/federated")
    git(source, "remote", "add", "origin", f"https://alice:{PASSWORD}@git.example.com/team/fl.git")
    (source / "job.yaml").write_text("name: fashion-mnist-fedavg\nrounds: 2\n")
    git(source, "-c", "user.name=t", "-c", "user.email=t@e", "add", "job.yaml")
    git(source, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "job")
    # A password in the tracking URI: used, never stored (the server takes any
    # credentials). A proxy that only counts what reaches the server.
    reports = []
    with ChaosProxy(mlflow_server.uri, rate=0, forced=()) as counter:
        host = counter.uri.split("://", 1)[1]
        env = clean_env(MLFLOW_TRACKING_URI=f"http://bob:{PASSWORD}@{host}", MLFLOW_EXPERIMENT_NAME="records")
        for _ in range(2):
            r = fedtrack(["run", "--json", str(source / "job.yaml"), "--set", "versioning.enabled=false"] + SMALL_JOB,
                         tmp_path, env)
            assert r.returncode == 0, r.stderr
            reports.append(last_json(r.stdout))
            assert PASSWORD not in r.stdout + r.stderr
        reached = sum(counter.stats.values())
    # The budget: per round at most five requests (the round's batch and end,
    # the parent's batch, the next round's run, log-inputs when a client's
    # data is new), as counted by the client and as reached the server.
    assert sum(rep["tracking"]["requests"] for rep in reports) == reached, counter.stats
    for rep in reports:
        # Round 1 logs the four clients' training data (all new); the last round makes no run ahead.
        assert rep["tracking"]["round_requests"] == [5, 3], rep["tracking"]

    client = mlflow_client(mlflow_server.uri)
    runs = parents(client, "records")
    assert [p.info.run_id for p in runs] == [rep["tracking"]["run_id"] for rep in reports]
    names = [p.info.run_name for p in runs]
    assert names == ["fashion-mnist-fedavg-" + rep["job_id"].rsplit("-", 1)[1] for rep in reports]
    assert len(set(names)) == 2, names
    version = subprocess.run([FEDTRACK, "--version"], capture_output=True, text=True).stdout.split()[-1]
    parent = runs[0]
    assert parent.data.tags["fedtrack.version"] == version
    assert parent.data.tags["mlflow.source.git.branch"] == "exp/federated"
    assert parent.data.tags["mlflow.source.git.repoURL"] == "https://git.example.com/team/fl.git"
    assert len(parent.data.tags["mlflow.source.git.commit"]) == 40

    # The job file as it ran: the override applied, the server named without the password.
    text = job_artifact(mlflow_server.uri, parent.info.run_id)
    assert PASSWORD not in text and "bob" not in text, text
    job = yaml.safe_load(text)
    assert job["rounds"] == 2 and job["clients"]["count"] == 4 and job["versioning"]["enabled"] is False
    assert job["tracking"]["uri"] == counter.uri
    assert job["tracking"]["experiment"] == "records"

    # Datasets: the test set (evaluation) and each client's training data (training), by fingerprint.
    for run, report in zip(runs, reports):
        inputs = {d.dataset.name: d for d in client.get_run(run.info.run_id).inputs.dataset_inputs}
        expected = {"fashion-mnist-test"} | {f"client-{c['index']:03d}-train" for c in report["clients"]}
        assert set(inputs) == expected
        for c in report["clients"]:
            train = inputs[f"client-{c['index']:03d}-train"]
            assert train.dataset.digest == c["data_fingerprint"][:16]
            assert json.loads(train.dataset.profile)["fingerprint_sha256"] == c["data_fingerprint"]
            assert {t.key: t.value for t in train.tags} == {"mlflow.data.context": "training"}
        test = inputs["fashion-mnist-test"]
        assert {t.key: t.value for t in test.tags} == {"mlflow.data.context": "evaluation"}
        assert json.loads(test.dataset.profile)["num_rows"] == 500
        assert test.dataset.digest == json.loads(test.dataset.profile)["fingerprint_sha256"][:16]
        assert json.loads(test.dataset.source) == {"uri": "/usr/share/datasets/fashion-mnist"}
    # The same data, the same digests, in both jobs.
    digests = [{d.dataset.name: d.dataset.digest for d in client.get_run(r.info.run_id).inputs.dataset_inputs}
               for r in runs]
    assert digests[0] == digests[1]

    # Each site's training loss across rounds on the parent, one point per round.
    for c in range(4):
        assert steps(client, parent.info.run_id, f"client/client-{c:03d}/train_loss") == [1, 2]
    assert steps(client, parent.info.run_id, "eval_accuracy") == [0, 1, 2]


def test_mlflow_experiment_id_is_honoured_as_the_python_client_does(mlflow_server, tmp_path):
    client = mlflow_client(mlflow_server.uri)
    chosen = client.create_experiment("chosen-by-id")
    other = client.create_experiment("another")
    # Only where the runs go matters here: the smallest job that runs.
    one_round = ["run", "--json", "--set", "rounds=1", "--set", "versioning.enabled=false",
                 "--set", "data.limit_train=400", "--set", "data.limit_test=100", "--set", "clients.count=2"]

    r = fedtrack(one_round, tmp_path, clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_ID=chosen))
    assert r.returncode == 0, r.stderr
    report = last_json(r.stdout)
    assert report["tracking"]["experiment_id"] == chosen
    assert client.get_run(report["tracking"]["run_id"]).data.params["tracking.experiment"] == "chosen-by-id"

    # An id the server does not have: refused before anything runs (Python raises too).
    r = fedtrack(one_round, tmp_path, clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_ID="987654"))
    assert r.returncode == 2, r.stderr
    assert "MLFLOW_EXPERIMENT_ID=987654" in r.stderr and "no experiment with that id" in r.stderr
    assert "round 1" not in r.stderr

    # The name wins; an id that names another experiment is an error, the matching one is fine.
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="another", MLFLOW_EXPERIMENT_ID=chosen)
    r = fedtrack(one_round, tmp_path, env)
    assert r.returncode == 2, r.stderr
    assert f"MLFLOW_EXPERIMENT_ID={chosen} does not match experiment 'another' (id {other})" in r.stderr
    r = fedtrack(one_round, tmp_path, dict(env, MLFLOW_EXPERIMENT_ID=other))
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout)["tracking"]["experiment_id"] == other

    # The job file's tracking.experiment wins over both, as mlflow.set_experiment does.
    r = fedtrack(one_round + ["--set", "tracking.experiment=from-the-job"], tmp_path,
                 clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_ID="987654"))
    assert r.returncode == 0, r.stderr
    assert client.get_experiment_by_name("from-the-job").experiment_id == last_json(r.stdout)["tracking"]["experiment_id"]


def test_every_new_kind_of_write_lands_once_after_a_failing_gateway_and_an_outage(mlflow_server, tmp_path):
    # A gateway that spoils log-inputs in every way once: fails after
    # forwarding, holds the answer past the client's timeout, drops it, drops
    # the request (the client retries).
    with ChaosProxy(mlflow_server.uri, seed=5, rate=0, delay=2.5, forced=("runs/log-inputs",)) as proxy:
        env = clean_env(MLFLOW_TRACKING_URI=proxy.uri, MLFLOW_EXPERIMENT_NAME="replay",
                        MLFLOW_HTTP_REQUEST_TIMEOUT="2", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0.05",
                        MLFLOW_HTTP_REQUEST_BACKOFF_JITTER="0.05")
        r = fedtrack(["run", "--json", "--set", "rounds=3", "--set", "tracking.timeout=10",
                      "--set", "versioning.enabled=false"] + SMALL_JOB, tmp_path, env)
        assert r.returncode == 0, r.stderr
        assert proxy.faults_on("runs/log-inputs") == set(FAULTS), proxy.stats
    chaos_job = last_json(r.stdout)["job_id"]
    # A server that goes away after the parent run and its params: the test
    # set's input, job.yaml and every round wait in the journal.
    with ChaosProxy(mlflow_server.uri, outage_after=3) as away:
        env = clean_env(MLFLOW_TRACKING_URI=away.uri, MLFLOW_EXPERIMENT_NAME="outage",
                        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
        r = fedtrack(["run", "--json", "--set", "rounds=2", "--set", "tracking.timeout=1",
                      "--set", "versioning.enabled=false"] + SMALL_JOB, tmp_path, env)
        assert r.returncode == 0, r.stderr
    outage = last_json(r.stdout)
    assert outage["tracking"]["pending_writes"] > 0
    synced = fedtrack(["sync"], tmp_path, clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri))
    assert synced.returncode == 0, synced.stderr
    again = fedtrack(["sync"], tmp_path, clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri))
    assert again.stdout.startswith("sync: nothing to send"), again.stdout

    client = mlflow_client(mlflow_server.uri)
    for experiment, job_id, rounds in (("replay", chaos_job, 3), ("outage", outage["job_id"], 2)):
        [parent] = parents(client, experiment)
        assert parent.data.tags["fedtrack.job_id"] == job_id
        assert parent.info.status == "FINISHED"
        inputs = [d.dataset.name for d in client.get_run(parent.info.run_id).inputs.dataset_inputs]
        assert sorted(inputs) == ["client-000-train", "client-001-train", "client-002-train", "client-003-train",
                                  "fashion-mnist-test"], (experiment, inputs)
        assert [f.path for f in client.list_artifacts(parent.info.run_id)] == ["job.yaml"]
        assert yaml.safe_load(job_artifact(mlflow_server.uri, parent.info.run_id))["rounds"] == rounds
        for c in range(4):
            assert steps(client, parent.info.run_id, f"client/client-{c:03d}/train_loss") == list(range(1, rounds + 1))
        assert steps(client, parent.info.run_id, "eval_accuracy") == list(range(0, rounds + 1))
