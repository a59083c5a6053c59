"""fedtrack promote / restore by alias and stage against a real MLflow server, git and gto."""

import gzip
import hashlib
import json
import os
import subprocess
import time
import urllib.request

import numpy as np

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
