"""fedtrack promote / restore by alias and stage against a real MLflow server, git and gto."""

import gzip
import hashlib
import json
import os
import subprocess
import time
import urllib.request

import numpy as np
import pytest

from conftest import SMALL_JOB, clean_env, fedtrack, mlflow_client
from mlflow_server import free_port

VENV_BIN = os.environ.get("FEDTRACK_VENV_BIN", "")
TORCH_LOGITS = os.environ.get("FEDTRACK_TORCH_LOGITS", "")
FASHION = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tool_env(server, experiment, **extra):
    env = clean_env(MLFLOW_TRACKING_URI=server.uri, MLFLOW_EXPERIMENT_NAME=experiment, **extra)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def git(args, cwd):
    return subprocess.run(["git"] + args, cwd=cwd, capture_output=True, text=True, check=True).stdout


def outputs(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def first_test_images(n):
    with gzip.open(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        data = f.read()
    pixels = np.frombuffer(data[16:16 + n * 784], dtype=np.uint8)
    return (pixels.astype(np.float32) / 255.0).reshape(n, 1, 28, 28)  # raw, as the IDX loader gives them


def libtorch_argmax(checkpoint, x, tmp_path):
    """fedtrack's own forward pass (LibTorch, tests/tools/torch_logits) on the restored checkpoint."""
    assert TORCH_LOGITS and os.path.exists(TORCH_LOGITS), "FEDTRACK_TORCH_LOGITS must name tests/tools/torch_logits"
    raw, out = tmp_path / "input.f32", tmp_path / "logits.f32"
    x.tofile(raw)
    r = subprocess.run([TORCH_LOGITS, str(checkpoint), str(raw), str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return np.fromfile(out, dtype=np.float32).reshape(x.shape[0], -1).argmax(axis=1)


def served_predictions(uri, env, x, tmp_path):
    """`mlflow models serve` of the champion on a free loopback port, asked once; stopped after."""
    port = free_port()
    log = open(tmp_path / "serve.log", "w+")
    serve = subprocess.Popen([os.path.join(VENV_BIN, "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
                              "-p", str(port), "-h", "127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # a bound on start-up, not a timing assertion
        while True:
            assert serve.poll() is None, "mlflow models serve exited: " + (tmp_path / "serve.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve never answered /ping"
            time.sleep(0.5)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", method="POST",
                                         data=json.dumps({"inputs": x.tolist()}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.loads(r.read())
    finally:
        os.killpg(serve.pid, 15)
        serve.wait(timeout=30)
        log.close()


def check_mlflow_model(server, env, name, version, checkpoint, tmp_path):
    """The registry version is an MLflow Model: pyfunc, the onnx flavor, the signature, mlflow models serve."""
    import mlflow
    import mlflow.onnx
    import mlflow.pyfunc

    mlflow.set_tracking_uri(server.uri)
    uri = f"models:/{name}@champion"
    x = first_test_images(200)
    expected = libtorch_argmax(checkpoint, x, tmp_path)

    predicted = mlflow.pyfunc.load_model(uri).predict(x)
    assert set(predicted) == {"logits"} and predicted["logits"].shape == (200, 10)
    assert (predicted["logits"].argmax(axis=1) == expected).all()

    proto = mlflow.onnx.load_model(uri)
    assert json.loads({p.key: p.value for p in proto.metadata_props}["class_names"]) == FASHION_CLASSES

    info = mlflow.models.get_model_info(uri)
    assert info.flavors["python_function"]["loader_module"] == "mlflow.onnx"
    assert info.signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 1, 28, 28)}, "name": "input"}]
    assert info.signature.outputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 10)}, "name": "logits"}]
    assert info.metadata["class_names"] == FASHION_CLASSES
    # What the registry UI reads to show the signature: the version's MLmodel.
    with urllib.request.urlopen(f"{server.uri}/model-versions/get-artifact?path=MLmodel&name={name}&version={version}",
                                timeout=30) as r:
        assert "signature:" in r.read().decode()

    served = served_predictions(uri, env, x[:20], tmp_path)
    assert (np.array(served["predictions"]["logits"]).argmax(axis=1) == expected[:20]).all()


def test_gate_promote_and_restore(mlflow_server, tmp_path):
    gh_out = tmp_path / "github_output"
    env = tool_env(mlflow_server, "promote", GITHUB_OUTPUT=str(gh_out), GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    r = fedtrack(["run", "--json", "--set", "rounds=3"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    repo = tmp_path / "fedtrack-models"
    client = mlflow_client(mlflow_server.uri)

    # An impossible gate: exit 3, nothing changes anywhere.
    tags_before = git(["tag"], repo)
    denied = fedtrack(["promote", "--experiment", "promote", "--model-name", "fashion-mlp",
                       "--require", "eval_accuracy>=0.999", "--stage", "prod"], tmp_path, env)
    assert denied.returncode == 3, denied.stderr
    assert "gate failed: eval_accuracy>=0.999: eval_accuracy is" in denied.stderr
    assert git(["tag"], repo) == tags_before
    assert outputs(gh_out)["promoted"] == "false"
    assert client.search_registered_models(filter_string="name='fashion-mlp'") == []

    # An easy gate: promoted.
    gh_out.unlink()
    ok = fedtrack(["promote", "--experiment", "promote", "--model-name", "fashion-mlp",
                   "--require", "eval_accuracy>=0.2", "--stage", "prod", "--json"], tmp_path, env)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout.strip().splitlines()[-1])
    assert result["promoted"] == "true" and result["version"] == "v0.0.1"
    best = max(report["rounds"], key=lambda x: x["metrics"]["eval_accuracy"])
    assert result["round"] == str(best["round"])
    assert result["commit"] == report["versioning"]["rounds"][best["round"] - 1]["commit"]
    assert result["md5"] == report["versioning"]["rounds"][best["round"] - 1]["md5"]
    assert outputs(gh_out) == {k: v for k, v in result.items() if k != "gates_failed"}
    assert "fedtrack promote fashion-mlp: promoted" in (tmp_path / "summary.md").read_text()

    version = client.get_model_version_by_alias("fashion-mlp", "champion")
    assert version.run_id == result["run_id"]
    assert version.run_id in report["tracking"]["round_run_ids"]
    assert version.tags["fedtrack.dvc.md5"] == result["md5"]
    for tag in ("fashion-mlp@v0.0.1", "fashion-mlp#prod#1"):
        assert git(["cat-file", "-t", tag], repo).strip() == "tag"  # annotated
        assert git(["rev-parse", tag + "^{commit}"], repo).strip() == result["commit"]
    shown = subprocess.run([os.path.join(VENV_BIN, "gto"), "show", "--json"], cwd=repo, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "prod" in shown and "v0.0.1" in shown

    # Restore by alias and by stage: the same bytes, the promoted md5.
    by_alias, by_stage = tmp_path / "alias.pt", tmp_path / "stage.pt"
    a = fedtrack(["restore", "--model-name", "fashion-mlp", "--alias", "champion", "--out", str(by_alias)], tmp_path, env)
    s = fedtrack(["restore", "--model-name", "fashion-mlp", "--stage", "prod", "--out", str(by_stage)], tmp_path, env)
    assert a.returncode == 0 and s.returncode == 0, a.stderr + s.stderr
    assert by_alias.read_bytes() == by_stage.read_bytes()
    assert md5(by_alias) == result["md5"]
    check_mlflow_model(mlflow_server, env, "fashion-mlp", version.version, by_alias, tmp_path)
    assert version.source.endswith("/model") and result["mlflow_model"] == "true"

    # Promoting the same round again reuses its MLflow model (MLmodel is not rewritten under version 1).
    import mlflow
    uuid = mlflow.models.get_model_info("models:/fashion-mlp@champion").model_uuid
    again = fedtrack(["promote", "--experiment", "promote", "--model-name", "fashion-mlp", "--run", result["run_id"],
                      "--alias", "staging"], tmp_path, env)
    assert again.returncode == 0, again.stderr
    staging = client.get_model_version_by_alias("fashion-mlp", "staging")
    assert staging.version != version.version and staging.source == version.source
    assert mlflow.models.get_model_info("models:/fashion-mlp@champion").model_uuid == uuid

    # A weaker (or equal) candidate does not beat the champion: exit 3, nothing changes.
    weaker = fedtrack(["run", "--set", "rounds=1"] + SMALL_JOB, tmp_path, env)
    assert weaker.returncode == 0, weaker.stderr
    tags_before = git(["tag"], repo)
    beaten = fedtrack(["promote", "--experiment", "promote", "--model-name", "fashion-mlp",
                       "--better-than", "champion"], tmp_path, env)
    assert beaten.returncode == 3, beaten.stderr
    assert "does not beat champion" in beaten.stderr
    assert git(["tag"], repo) == tags_before
    assert client.get_model_version_by_alias("fashion-mlp", "champion").version == version.version


def test_a_csv_promotion_is_an_mlflow_model_with_feature_columns_and_class_names(mlflow_server, tmp_path):
    import csv

    import mlflow
    import mlflow.pyfunc

    data = os.path.join(SOURCE_DIR, "examples", "csv-tabular", "loans.csv")
    env = tool_env(mlflow_server, "promote-csv")
    r = fedtrack(["run", os.path.join(SOURCE_DIR, "examples", "csv-tabular", "job.yaml"), "--set", "rounds=1",
                  "--set", f"data.path={data}"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    p = fedtrack(["promote", "--experiment", "promote-csv", "--model-name", "loans"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    mlflow.set_tracking_uri(mlflow_server.uri)
    model = mlflow.pyfunc.load_model("models:/loans@champion")
    meta = model.metadata.metadata
    columns = ["age", "income", "debt_ratio", "years_employed", "late_payments"]
    assert meta["feature_names"] == columns
    with open(data, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(meta["class_names"]) == sorted({row["decision"] for row in rows})
    assert model.metadata.get_input_schema().to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 5)}, "name": "input"}]
    x = np.array([[float(row[c]) for c in columns] for row in rows[:100]], dtype=np.float32)
    restored = tmp_path / "loans.pt"
    rr = fedtrack(["restore", "--model-name", "loans", "--alias", "champion", "--out", str(restored)], tmp_path, env)
    assert rr.returncode == 0, rr.stderr
    assert (model.predict(x)["logits"].argmax(axis=1) == libtorch_argmax(restored, x, tmp_path)).all()


def test_unknown_experiment_is_not_found_like_an_unknown_revision(mlflow_server, tmp_path):
    # README's exit table: 3 for a name that does not exist, whichever command meets it.
    gh_out = tmp_path / "github_output"
    env = tool_env(mlflow_server, "Default", GITHUB_OUTPUT=str(gh_out))
    r = fedtrack(["promote", "--experiment", "no-such-experiment", "--model-name", "fashion-mlp"], tmp_path, env)
    assert r.returncode == 3, r.stderr
    assert r.stderr == "fedtrack: no MLflow experiment 'no-such-experiment'\n", r.stderr
    assert outputs(gh_out)["promoted"] == "false"  # CI outputs are written whatever the outcome


def test_ci_pipeline_script(mlflow_server, tmp_path):
    env = tool_env(mlflow_server, "ci", FEDTRACK=os.environ["FEDTRACK_EXE"], EXPERIMENT="ci", MODEL_NAME="ci-model",
                   MIN_ACCURACY="0.2", RUN_ARGS=" ".join(["--set", "rounds=2"] + SMALL_JOB))
    r = subprocess.run(["bash", os.path.join(SOURCE_DIR, "examples", "ci", "pipeline.sh")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    dotenv = outputs(tmp_path / "promote.env")
    assert dotenv["FEDTRACK_PROMOTED"] == "true"
    assert dotenv["FEDTRACK_VERSION"] == "v0.0.1"
    assert json.loads((tmp_path / "run.json").read_text().strip().splitlines()[-1])["tracking"]["pending_writes"] == 0


def test_ci_pipeline_promotes_the_job_it_trained_even_when_its_tracking_lagged(mlflow_server, tmp_path):
    # An earlier job is in the experiment; the pipeline's own job cannot reach
    # MLflow while it trains (its tracking.uri is a closed port), so its records
    # wait in the journal. The pipeline must send them and promote ITS job, not
    # "the latest finished job" MLflow knows (the earlier one).
    env = tool_env(mlflow_server, "ci-lag")
    (tmp_path / "earlier").mkdir()
    earlier = fedtrack(["run", "--json", "--set", "rounds=1"] + SMALL_JOB, tmp_path / "earlier", env)
    assert earlier.returncode == 0, earlier.stderr
    earlier_job = json.loads(earlier.stdout.strip().splitlines()[-1])["job_id"]
    work = tmp_path / "ci"
    work.mkdir()
    closed = "http://127.0.0.1:%d" % free_port()
    env = tool_env(mlflow_server, "ci-lag", FEDTRACK=os.environ["FEDTRACK_EXE"], EXPERIMENT="ci-lag",
                   MODEL_NAME="ci-lag-model", MIN_ACCURACY="0.2",
                   RUN_ARGS=" ".join(["--set", "rounds=2", "--set", "tracking.uri=" + closed,
                                      "--set", "tracking.timeout=1"] + SMALL_JOB))
    r = subprocess.run(["bash", os.path.join(SOURCE_DIR, "examples", "ci", "pipeline.sh")], cwd=work, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((work / "run.json").read_text().strip().splitlines()[-1])
    assert report["tracking"]["pending_writes"] > 0  # the job really could not record while it ran
    assert report["job_id"] != earlier_job
    dotenv = outputs(work / "promote.env")
    assert dotenv["FEDTRACK_PROMOTED"] == "true"
    assert dotenv["FEDTRACK_JOB_ID"] == report["job_id"]


# --- the DVCLive shape of the model repository (tests/integration/test_promote.py shares its MLflow server) ---

DVCLIVE_SECRET = "s3cret-pw"


def _dvclive_env(tracking_uri, experiment):
    env = clean_env(MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_EXPERIMENT_NAME=experiment, DVC_NO_ANALYTICS="1",
                    GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com", GIT_COMMITTER_NAME="Test",
                    GIT_COMMITTER_EMAIL="test@example.com")
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def _tool_run(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _dvclive_job(tmp_path, env, *extra):
    small = ["--set", "data.limit_train=1200", "--set", "data.limit_test=300", "--set", "clients.count=2"]
    r = fedtrack(["run", "--json"] + SMALL_JOB + small + list(extra), tmp_path, env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_dvclive_shaped_repository_and_promotion_by_its_artifact_name(mlflow_server, tmp_path):
    """The model repository read as a DVCLive one by the real dvc, gto and dvc.api: learning curves, params and
    metrics diffs on round tags, `dvc exp show`; a promotion without --model-name is found by name and stage,
    and so is one of a round committed before artifacts were named after the job (`global`)."""
    # Two jobs into one repository: A (3 rounds, the job's name as artifact), B (2 rounds, another train.lr,
    # versioning.artifact). The tracking URI carries a password (MLflow without auth ignores it).
    env = _dvclive_env(mlflow_server.uri.replace("http://", f"http://alice:{DVCLIVE_SECRET}@"), "dvclive")
    a = _dvclive_job(tmp_path, env, "--set", "rounds=3", "--set", f"versioning.remote={tmp_path / 'dvc-remote'}")
    b = _dvclive_job(tmp_path, env, "--set", "rounds=2", "--set", "train.lr=0.02",
                     "--set", "versioning.artifact=dvclive-mlp")
    repo = tmp_path / "fedtrack-models"
    a_tags = [x["tag"] for x in a["versioning"]["rounds"]]
    b_tags = [x["tag"] for x in b["versioning"]["rounds"]]

    # Learning curves: a series per metric, one point per round so far, x = step (HEAD is B's last round).
    shown = json.loads(_tool_run(["dvc", "plots", "show", "--json"], repo, env))["data"]
    curves = {k: v for k, v in shown.items() if k.startswith("dvclive/plots/metrics/")}
    assert {f"dvclive/plots/metrics/{m}.tsv" for m in b["rounds"][-1]["metrics"]} <= set(curves), sorted(curves)
    for path, renders in curves.items():
        assert renders[0]["content"]["encoding"]["x"]["field"] == "step", path
        assert [int(v["step"]) for v in renders[0]["content"]["data"]["values"]] == [1, 2], path
    eval_curve = curves["dvclive/plots/metrics/eval_accuracy.tsv"][0]["content"]["data"]["values"]
    assert [float(v["eval_accuracy"]) for v in eval_curve] == \
        [pytest.approx(x["metrics"]["eval_accuracy"]) for x in b["rounds"]]
    # Each job's round tag holds that job's curve only: A's last round, its 3 rounds.
    a_curve = _tool_run(["git", "show", a_tags[-1] + ":dvclive/plots/metrics/eval_accuracy.tsv"], repo, env)
    assert [line.split("\t")[1] for line in a_curve.splitlines()] == ["step", "1", "2", "3"]

    # Params: the job config flattened, diffed between the two jobs' tags.
    params = json.loads(_tool_run(["dvc", "params", "diff", a_tags[-1], b_tags[-1], "--json"], repo, env))
    changed = params["dvclive/params.yaml"]
    assert changed["train.lr"] == {"old": 0.05, "new": 0.02, "diff": pytest.approx(-0.03)}
    assert changed["versioning.artifact"]["new"] == "dvclive-mlp"
    # Metrics: the round's values and its step, diffed between round tags.
    metrics = json.loads(_tool_run(["dvc", "metrics", "diff", a_tags[0], a_tags[-1], "--json"], repo, env))
    diff = metrics["dvclive/metrics.json"]
    assert diff["step"] == {"old": 1, "new": 3, "diff": 2}
    assert diff["eval_accuracy"]["new"] == pytest.approx(a["rounds"][-1]["metrics"]["eval_accuracy"])
    exp = json.loads(_tool_run(["dvc", "exp", "show", "--json"], repo, env))
    assert "eval_accuracy" in json.dumps(exp) and "train.lr" in json.dumps(exp)

    # Secrets never persist: not in a file of the work tree, not in any commit of any ref.
    assert DVCLIVE_SECRET not in _tool_run(["git", "log", "--all", "-p"], repo, env)
    assert subprocess.run(["grep", "-r", "-l", DVCLIVE_SECRET, "--exclude-dir=.git", "."], cwd=repo).returncode == 1

    # Promotion without --model-name takes the artifact's name from dvc.yaml; dvc and gto then find it.
    p = fedtrack(["promote", "--experiment", "dvclive", "--stage", "prod", "--json"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result["promoted"] == "true" and result["job_id"] == b["job_id"]
    assert "as dvclive-mlp v0.0.1" in p.stdout, p.stdout
    out = tmp_path / "prod.pt"
    _tool_run(["dvc", "artifacts", "get", str(repo), "dvclive-mlp", "--stage", "prod", "-o", str(out)], tmp_path, env)
    assert md5(out) == result["md5"]
    assert mlflow_client(mlflow_server.uri).get_model_version_by_alias("dvclive-mlp", "champion").run_id == \
        result["run_id"]

    # A round committed before artifacts were named after the job: its dvc.yaml says `global` (and its metrics
    # sit beside the model). Made here as such a job left it: on top of the repository, with the MLflow runs
    # and lineage tags it recorded. Its promotion (no --model-name) tags `global`, what dvc resolves there.
    digest = a["versioning"]["rounds"][-1]["md5"]
    _tool_run(["git", "rm", "-q", "-r", "dvclive"], repo, env)
    (repo / "models" / "global.pt.dvc").write_text(
        _tool_run(["git", "show", a_tags[-1] + ":models/global.pt.dvc"], repo, env))
    (repo / "models" / "global.metrics.json").write_text('{"round": 3, "eval_accuracy": 0.5}\n')
    (repo / "dvc.yaml").write_text("metrics:\n- models/global.metrics.json\n"
                                   "artifacts:\n  global:\n    path: models/global.pt\n    type: model\n")
    _tool_run(["git", "add", "-A"], repo, env)
    _tool_run(["git", "commit", "-q", "-m", f"old round 3/3\n\nfedtrack-job: old-1\nfedtrack-round: 3\n"
               f"fedtrack-md5: {digest}\nfedtrack-path: models/global.pt"], repo, env)
    old_commit = _tool_run(["git", "rev-parse", "HEAD"], repo, env).strip()
    client = mlflow_client(mlflow_server.uri)
    experiment = client.get_experiment_by_name("dvclive").experiment_id
    parent = client.create_run(experiment, tags={"fedtrack.job_id": "old-1"}, run_name="old")
    child = client.create_run(experiment, run_name="round-003", tags={
        "mlflow.parentRunId": parent.info.run_id, "fedtrack.job_id": "old-1", "fedtrack.round": "3",
        "fedtrack.git.commit": old_commit, "fedtrack.dvc.md5": digest, "fedtrack.dvc.path": "models/global.pt",
        "fedtrack.dvc.repo": str(repo)})
    client.log_metric(child.info.run_id, "eval_accuracy", 0.5, step=3)
    for r in (child, parent):
        client.set_terminated(r.info.run_id)
    old = fedtrack(["promote", "--experiment", "dvclive", "--run", parent.info.run_id, "--stage", "prod", "--json"],
                   tmp_path, env)
    assert old.returncode == 0, old.stderr
    assert "as global v0.0.1" in old.stdout, old.stdout
    assert _tool_run(["git", "tag", "--list", "global*"], repo, env).split() == ["global#prod#1", "global@v0.0.1"]
    out = tmp_path / "old.pt"
    _tool_run(["dvc", "artifacts", "get", str(repo), "global", "--stage", "prod", "-o", str(out)], tmp_path, env)
    assert md5(out) == digest

    # dvc.api and gto find both, by name and stage.
    code = ("import dvc.api, json, sys; print(json.dumps([dvc.api.artifacts_show(n, stage='prod', repo=sys.argv[1]) "
            "for n in ('dvclive-mlp', 'global')]))")
    shown = json.loads(_tool_run([os.path.join(VENV_BIN, "python"), "-c", code, str(repo)], repo, env))
    assert shown == [{"rev": result["commit"], "path": "models/global.pt"},
                     {"rev": old_commit, "path": "models/global.pt"}]
    gto = json.loads(_tool_run(["gto", "show", "--json"], repo, env))
    assert gto["dvclive-mlp"]["stage"] == {"prod": "v0.0.1"} and gto["global"]["stage"] == {"prod": "v0.0.1"}
