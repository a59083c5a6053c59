"""tracking.log_models against a real MLflow 3 server, checked with MLflow's own client:
the rounds' global models as LoggedModels, exactly once through faults and an outage, and
`fedtrack promote` registering the LoggedModel instead of uploading the checkpoint again (and
uploading it, as before, for a round without one)."""

import hashlib
import json
import os

import mlflow
import mlflow.pyfunc

from chaos_proxy import ChaosProxy
from conftest import SMALL_JOB, clean_env, fedtrack, mlflow_client


def report_of(result):
    return json.loads(result.stdout.strip().splitlines()[-1])


def job_models(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    models = client.search_logged_models([exp.experiment_id])
    parents = [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [p.info.run_id for p in parents]
    return sorted(models, key=lambda m: int(m.tags["fedtrack.round"])), parents[0]


def md5_of_artifact(uri, model_id, name, tmp_path):
    mlflow.set_tracking_uri(uri)  # models:/ URIs resolve through the global tracking URI
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_id}", dst_path=str(tmp_path / model_id),
                                               tracking_uri=uri)
    with open(os.path.join(path, name), "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def check_models(client, uri, experiment, report, rounds, tmp_path):
    """The LoggedModels of `rounds` are there once each, READY, linked once at their step, with
    the committed checkpoint, the round's metrics and the lineage tags; nothing else is."""
    models, parent = job_models(client, experiment)
    assert [int(m.tags["fedtrack.round"]) for m in models] == rounds
    commits = {c["round"]: c for c in report["versioning"]["rounds"]}
    metrics = {r["round"]: r["metrics"] for r in report["rounds"]}
    links = sorted((o.model_id, o.step) for o in parent.outputs.model_outputs)
    assert links == sorted((m.model_id, int(m.tags["fedtrack.round"])) for m in models)  # one link each
    for m in models:
        n = int(m.tags["fedtrack.round"])
        assert m.status.to_int() == 2, m.status  # LOGGED_MODEL_READY
        assert m.source_run_id == parent.info.run_id
        assert m.name == f"fashion-mnist-fedavg-round-{n:03d}"
        assert m.tags["fedtrack.job_id"] == report["job_id"]
        assert m.tags["fedtrack.git.commit"] == commits[n]["commit"]
        assert m.tags["fedtrack.dvc.md5"] == commits[n]["md5"]
        assert m.params["train.lr"] == "0.05"
        assert md5_of_artifact(uri, m.model_id, "global.pt", tmp_path) == commits[n]["md5"]
        got = {x.key: x for x in m.metrics}
        assert abs(got["eval_accuracy"].value - metrics[n]["eval_accuracy"]) < 1e-9
        assert got["eval_accuracy"].step == n and got["eval_accuracy"].run_id == parent.info.run_id
        assert sum(1 for x in m.metrics if x.key == "eval_accuracy") == 1
    # The model's metrics are the job's own points: the run still has one per round.
    steps = sorted(x.step for x in client.get_metric_history(parent.info.run_id, "eval_accuracy"))
    assert steps == [0] + list(range(1, len(report["rounds"]) + 1))
    return models, parent


def test_every_round_through_a_gateway_that_fails_after_forwarding_is_logged_once(mlflow_server, tmp_path):
    # Creates and links answered with a 500 after the server did them, or dropped: each must be
    # looked up (create: by its fedtrack.model_key tag; link: in the run's outputs), never resent blindly.
    with ChaosProxy(mlflow_server.uri, seed=3, rate=0.0, forced=()) as proxy:
        proxy.schedule.forced = {"logged-models": ["error_after", "drop_after"],
                                 "runs/outputs": ["error_after", "drop_after"]}
        env = clean_env(MLFLOW_TRACKING_URI=proxy.uri, MLFLOW_EXPERIMENT_NAME="every",
                        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0.05", MLFLOW_HTTP_REQUEST_BACKOFF_JITTER="0.05")
        r = fedtrack(["run", "--json", "--set", "rounds=2", "--set", "tracking.log_models=every"] + SMALL_JOB,
                     tmp_path, env)
        assert r.returncode == 0, r.stderr
        # Each fault stops a sync pass; `fedtrack sync` through the gateway goes on from there.
        for _ in range(6):
            if not any(proxy.schedule.forced.values()):
                break
            fedtrack(["sync"], tmp_path, env)
        assert proxy.schedule.forced == {"logged-models": [], "runs/outputs": []}, proxy.stats  # every fault happened
    synced = fedtrack(["sync"], tmp_path, clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri))
    assert synced.returncode == 0, synced.stderr
    client = mlflow_client(mlflow_server.uri)
    check_models(client, mlflow_server.uri, "every", report_of(r), [1, 2], tmp_path)


def test_final_model_after_an_outage_then_sync_then_promote_registers_it(mlflow_server, tmp_path):
    # The server goes away after the first requests; the job finishes on its journal.
    with ChaosProxy(mlflow_server.uri, outage_after=12) as proxy:
        env = clean_env(MLFLOW_TRACKING_URI=proxy.uri, MLFLOW_EXPERIMENT_NAME="final",
                        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0.05", MLFLOW_HTTP_REQUEST_BACKOFF_JITTER="0.05")
        r = fedtrack(["run", "--json", "--set", "rounds=2", "--set", "tracking.timeout=1",
                      "--set", "versioning.export=[onnx]"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    report = report_of(r)
    assert report["tracking"]["pending_writes"] > 0  # the outage happened: the final model waits in the journal

    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="final")
    synced = fedtrack(["sync"], tmp_path, env)
    assert synced.returncode == 0, synced.stderr
    assert fedtrack(["sync"], tmp_path, env).stdout.startswith("sync: nothing to send")
    client = mlflow_client(mlflow_server.uri)
    (model,), parent = check_models(client, mlflow_server.uri, "final", report, [2], tmp_path)
    assert model.tags["fedtrack.log_models"] == "final"
    # The job exports ONNX: the LoggedModel is an MLflow Model too.
    files = sorted(f.path for f in client.list_logged_model_artifacts(model.model_id))
    assert files == ["MLmodel", "conda.yaml", "global.pt", "model.onnx", "python_env.yaml", "requirements.txt"]
    mlflow.set_tracking_uri(mlflow_server.uri)
    assert mlflow.pyfunc.load_model(f"models:/{model.model_id}").metadata.model_uuid

    # Promote round 2: its LoggedModel becomes the registry version; nothing is uploaded to the round's run.
    (round_run,) = [c.info.run_id for c in client.search_runs([parent.info.experiment_id],
                                                            f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
                    if c.info.run_name == "round-002"]
    p = fedtrack(["promote", "--experiment", "final", "--model-name", "fm-final", "--run", round_run, "--json"],
                 tmp_path, env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["logged_model_id"] == model.model_id
    version = client.get_model_version("fm-final", out["registry_version"])
    assert version.source == f"models:/{model.model_id}"
    # MLflow's SQL registry does not keep the model_id it is sent; the source and the model's
    # mlflow.modelVersions tag are the link it keeps.
    assert version.model_id in (None, model.model_id)
    assert json.loads(client.get_logged_model(model.model_id).tags["mlflow.modelVersions"]) == [
        {"name": "fm-final", "version": int(out["registry_version"])}]
    assert version.run_id == round_run
    assert client.list_artifacts(round_run) == []
    mlflow.set_tracking_uri(mlflow_server.uri)
    path = mlflow.artifacts.download_artifacts(f"models:/fm-final/{out['registry_version']}",
                                               dst_path=str(tmp_path / "registered"), tracking_uri=mlflow_server.uri)
    with open(os.path.join(path, "global.pt"), "rb") as f:
        assert hashlib.md5(f.read()).hexdigest() == out["md5"]
    assert os.path.exists(os.path.join(path, "MLmodel"))  # loadable by mlflow.pyfunc, as before
    assert out["mlflow_model"] == "true"

    # Round 1 has no LoggedModel (final): promoted as before, the checkpoint uploaded to its run.
    (round_1,) = [c.info.run_id for c in client.search_runs([parent.info.experiment_id],
                                                          f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
                  if c.info.run_name == "round-001"]
    p = fedtrack(["promote", "--experiment", "final", "--model-name", "fm-round-1", "--run", round_1, "--json"],
                 tmp_path, env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert "logged_model_id" not in out
    version = client.get_model_version("fm-round-1", out["registry_version"])
    assert version.source.endswith("/model") and version.run_id == round_1
    assert "model/global.pt" in [a.path for a in client.list_artifacts(round_1, "model")]
