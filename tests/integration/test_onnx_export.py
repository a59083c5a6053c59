"""`fedtrack export --format onnx` checked with the real onnx package and onnxruntime.

The reference is LibTorch: tests/tools/torch_logits (FEDTRACK_TORCH_LOGITS)
loads the same checkpoint, scales the same raw input as the job's loader
does and prints the logits. The ONNX model gets the raw input (pixels in
[0, 1], CSV columns as stored): its scaling is inside the graph.
"""

import csv
import gzip
import json
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import SMALL_JOB, clean_env, fedtrack

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TORCH_LOGITS = os.environ.get("FEDTRACK_TORCH_LOGITS", "")
FASHION = "/usr/share/datasets/fashion-mnist"
ENV = clean_env(GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com", GIT_COMMITTER_NAME="Test",
                GIT_COMMITTER_EMAIL="test@example.com")
N = 1000


def first_test_images(n):
    with gzip.open(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        data = f.read()
    assert int.from_bytes(data[:4], "big") == 0x803
    pixels = np.frombuffer(data[16:16 + n * 784], dtype=np.uint8)
    return (pixels.astype(np.float32) / 255.0).reshape(n, 1, 28, 28)  # as the IDX loader gives them


def fashion_test_labels():
    with gzip.open(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz"), "rb") as f:
        data = f.read()
    return np.frombuffer(data[8:], dtype=np.uint8).astype(np.int64)


def first_csv_rows(path, columns, n):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))[:n]
    return np.array([[float(r[c]) for c in columns] for r in rows], dtype=np.float32)


def torch_logits(checkpoint, x, tmp_path):
    raw, out = tmp_path / "input.f32", tmp_path / "logits.f32"
    x.astype(np.float32).tofile(raw)
    r = subprocess.run([TORCH_LOGITS, str(checkpoint), str(raw), str(out)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return np.fromfile(out, dtype=np.float32).reshape(x.shape[0], -1)


def onnx_logits(path, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def check_against_libtorch(model_path, checkpoint, x, tmp_path):
    model = onnx.load(str(model_path))
    onnx.checker.check_model(model, full_check=True)
    ours = onnx_logits(model_path, x)
    reference = torch_logits(checkpoint, x, tmp_path)
    assert ours.shape == reference.shape
    assert np.max(np.abs(ours - reference)) <= 1e-4
    assert np.mean(ours.argmax(1) == reference.argmax(1)) >= 0.999
    return {p.key: p.value for p in model.metadata_props}


def run_job(tmp_path, args):
    r = fedtrack(["run", "--json"] + args, tmp_path, ENV)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_fashion_mnist_export_matches_libtorch(tmp_path, model):
    assert TORCH_LOGITS and os.path.exists(TORCH_LOGITS), "FEDTRACK_TORCH_LOGITS must name tests/tools/torch_logits"
    report = run_job(tmp_path, ["--set", "rounds=1", "--set", f"model={model}"] + SMALL_JOB)
    round1 = report["versioning"]["rounds"][0]
    repo = report["versioning"]["repo"]

    out = tmp_path / "model.onnx"
    r = fedtrack(["export", "--rev", round1["tag"], "--repo", repo, "--format", "onnx", "--out", str(out)],
                 tmp_path, ENV)
    assert r.returncode == 0, r.stderr
    assert "onnx::checker passed" in r.stdout and "pixels in [0, 1]" in r.stdout

    checkpoint = tmp_path / "round1.pt"
    r = fedtrack(["restore", "--repo", repo, "--rev", round1["tag"], "--out", str(checkpoint)], tmp_path, ENV)
    assert r.returncode == 0, r.stderr
    meta = check_against_libtorch(out, checkpoint, first_test_images(N), tmp_path)
    assert meta["fedtrack.model"] == model
    assert meta["fedtrack.job_id"] == report["job_id"]
    assert meta["fedtrack.round"] == "1"
    assert meta["fedtrack.git_commit"] == round1["commit"]
    assert meta["fedtrack.dvc_md5"] == round1["md5"]
    assert json.loads(meta["class_names"])[9] == "Ankle boot"
    # The job's own statistics (of its 3,000 training images; 0.2860 / 0.3530 on all 60,000).
    assert json.loads(meta["fedtrack.scaling_mean"])[0] == pytest.approx(0.2860, abs=0.005)
    assert json.loads(meta["fedtrack.scaling_stddev"])[0] == pytest.approx(0.3530, abs=0.005)

    # The same file from the checkpoint alone, with another opset.
    again = tmp_path / "again.onnx"
    r = fedtrack(["export", "--checkpoint", str(checkpoint), "--out", str(again), "--opset", "17"], tmp_path, ENV)
    assert r.returncode == 0, r.stderr
    check_against_libtorch(again, checkpoint, first_test_images(N), tmp_path)

    # int8 weights: a quarter of the size, the same accuracy on all 10,000 test images (onnxruntime, CPU).
    int8 = tmp_path / "int8.onnx"
    r = fedtrack(["export", "--checkpoint", str(checkpoint), "--format", "onnx-int8", "--out", str(int8)],
                 tmp_path, ENV)
    assert r.returncode == 0, r.stderr
    onnx.checker.check_model(onnx.load(str(int8)), full_check=True)
    ratio = os.path.getsize(int8) / os.path.getsize(again)
    assert ratio <= 0.3, ratio
    images, labels = first_test_images(10000), fashion_test_labels()
    fp32_acc = np.mean(onnx_logits(again, images).argmax(1) == labels)
    int8_acc = np.mean(onnx_logits(int8, images).argmax(1) == labels)
    print(f"{model}: int8/fp32 size {ratio:.3f}, accuracy fp32 {fp32_acc:.4f} int8 {int8_acc:.4f}")
    assert abs(int8_acc - fp32_acc) <= 0.01


def test_default_job_int8_keeps_its_accuracy_at_a_quarter_of_the_size(tmp_path):
    report = run_job(tmp_path, ["--set", "versioning.enabled=false", "--model-out", str(tmp_path / "default.pt")])
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    for fmt, out in (("onnx", fp32), ("onnx-int8", int8)):
        r = fedtrack(["export", "--checkpoint", str(tmp_path / "default.pt"), "--format", fmt, "--out", str(out)],
                     tmp_path, ENV)
        assert r.returncode == 0, r.stderr
    images, labels = first_test_images(10000), fashion_test_labels()
    fp32_acc = np.mean(onnx_logits(fp32, images).argmax(1) == labels)
    int8_acc = np.mean(onnx_logits(int8, images).argmax(1) == labels)
    ratio = os.path.getsize(int8) / os.path.getsize(fp32)
    print(f"default job: fedtrack {report['final']['eval_accuracy']:.4f}, onnxruntime fp32 {fp32_acc:.4f}, "
          f"int8 {int8_acc:.4f}, size int8/fp32 {ratio:.3f}")
    assert abs(fp32_acc - report["final"]["eval_accuracy"]) <= 0.001  # fedtrack's own evaluation, same test set
    assert abs(int8_acc - fp32_acc) <= 0.01
    assert ratio <= 0.3


def test_a_registered_custom_model_exports_through_the_library(tmp_path):
    checkpoint, out = tmp_path / "custom.pt", tmp_path / "custom.onnx"
    r = subprocess.run([TORCH_LOGITS, "--custom", str(checkpoint), str(out)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    meta = check_against_libtorch(out, checkpoint, first_test_images(N), tmp_path)
    assert meta["fedtrack.model"] == "test_custom"
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    for op in ("Conv", "BatchNormalization", "MaxPool", "AveragePool", "Flatten", "MatMul", "Relu"):
        assert op in ops, ops

    # The fedtrack executable has not registered it: a clear error, nothing written.
    r = fedtrack(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "cli.onnx")], tmp_path, ENV)
    assert r.returncode == 3 and "unknown model 'test_custom'" in r.stderr, r.stderr
    assert "fedtrack::export_onnx" in r.stderr
    assert not (tmp_path / "cli.onnx").exists()


def test_a_promoted_version_exports_with_its_round_lineage(tmp_path):
    report = run_job(tmp_path, ["--set", "rounds=2"] + SMALL_JOB)
    repo = report["versioning"]["repo"]
    round1 = report["versioning"]["rounds"][0]
    # A GTO version tag, as fedtrack promote writes it, on round 1 (not HEAD).
    subprocess.run(["git", "tag", "-a", "fashion@v0.0.1", "-m", "Registering artifact fashion version v0.0.1",
                    round1["commit"]], cwd=repo, env=ENV, check=True, capture_output=True)
    out = tmp_path / "promoted.onnx"
    r = fedtrack(["export", "--model-name", "fashion", "--version", "v0.0.1", "--repo", repo, "--out", str(out)],
                 tmp_path, ENV)
    assert r.returncode == 0, r.stderr
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["fedtrack.registered_model"] == "fashion"
    assert meta["fedtrack.promotion"] == "version v0.0.1"
    assert meta["fedtrack.round"] == "1" and meta["fedtrack.git_commit"] == round1["commit"]
    assert meta["fedtrack.dvc_md5"] == round1["md5"]

    r = fedtrack(["export", "--model-name", "fashion", "--version", "v9.9.9", "--repo", repo, "--out",
                  str(tmp_path / "none.onnx")], tmp_path, ENV)
    assert r.returncode == 3, r.stderr
    assert not (tmp_path / "none.onnx").exists()
    assert [p.name for p in tmp_path.iterdir() if "fedtrack-export" in p.name] == []


def test_csv_export_takes_feature_columns_and_names_the_classes(tmp_path):
    data = os.path.join(SOURCE, "examples", "csv-tabular", "loans.csv")
    job = [os.path.join(SOURCE, "examples", "csv-tabular", "job.yaml"), "--set", "rounds=1", "--set",
           f"data.path={data}", "--model-out", str(tmp_path / "loans.pt")]
    run_job(tmp_path, job)
    out = tmp_path / "loans.onnx"
    r = fedtrack(["export", "--checkpoint", str(tmp_path / "loans.pt"), "--out", str(out)], tmp_path, ENV)
    assert r.returncode == 0, r.stderr
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    columns = json.loads(meta["fedtrack.feature_names"])
    assert columns == ["age", "income", "debt_ratio", "years_employed", "late_payments"]
    assert sorted(json.loads(meta["class_names"])) == sorted({r["decision"] for r in csv.DictReader(open(data))})
    check_against_libtorch(out, tmp_path / "loans.pt", first_csv_rows(data, columns, N), tmp_path)


def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path):
    report = run_job(tmp_path, ["--set", "rounds=1"] + SMALL_JOB)
    repo = report["versioning"]["repo"]
    out = tmp_path / "model.onnx"

    r = fedtrack(["export", "--rev", "no-such-rev", "--repo", repo, "--out", str(out)], tmp_path, ENV)
    assert r.returncode == 3, r.stderr
    assert "no-such-rev" in r.stderr

    missing = tmp_path / "missing" / "model.onnx"
    r = fedtrack(["export", "--rev", "HEAD", "--repo", repo, "--out", str(missing)], tmp_path, ENV)
    assert r.returncode == 2, r.stderr
    assert "folder " + str(tmp_path / "missing") + " does not exist" in r.stderr

    r = fedtrack(["export", "--rev", "HEAD", "--repo", repo, "--format", "tflite", "--out", str(out)], tmp_path, ENV)
    assert r.returncode == 2 and "--format tflite" in r.stderr

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    r = fedtrack(["export", "--checkpoint", str(garbage), "--out", str(out)], tmp_path, ENV)
    assert r.returncode == 5, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".onnx" or "export" in p.name) == []
