"""versioning.export: each round's ONNX file as a second DVC-tracked output,
checked with the real dvc and git, `fedtrack restore` and onnxruntime."""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import yaml

from conftest import SMALL_JOB, fedtrack
from test_versioning import env_with_tools, md5, run  # the same tools environment and helpers

def test_every_round_commits_its_onnx_file_as_a_dvc_output(tmp_path):
    env = env_with_tools()
    remote = tmp_path / "dvc-remote"
    r = fedtrack(["run", "--json", "--set", "rounds=2", "--set", "versioning.export=[onnx, onnx-int8]",
                  "--set", f"versioning.remote={remote}"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    rounds = json.loads(r.stdout.strip().splitlines()[-1])["versioning"]["rounds"]
    repo = str(tmp_path / "fedtrack-models")
    assert [x["round"] for x in rounds] == [1, 2]

    # dvc.yaml declares the model and both exports as artifacts of type model.
    artifacts = yaml.safe_load(open(os.path.join(repo, "dvc.yaml")))["artifacts"]
    assert {a["path"]: a["type"] for a in artifacts.values()} == {
        "models/global.pt": "model", "models/global.onnx": "model", "models/global.int8.onnx": "model"}

    # The real tools find nothing to do; the ONNX files are DVC's, not git's.
    assert "Data and pipelines are up to date." in run(["dvc", "status"], repo, env)
    assert "are in sync" in run(["dvc", "status", "-c"], repo, env)
    assert run(["git", "status", "--porcelain"], repo, env) == ""

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", repo, str(clone)], tmp_path, env)
    images = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    for x in rounds:
        tag = x["tag"]
        tree = run(["git", "ls-tree", "-r", "--name-only", tag], repo, env).split()
        assert "models/global.onnx.dvc" in tree and "models/global.int8.onnx.dvc" in tree
        assert "models/global.onnx" not in tree
        recorded = {o["path"]: o["md5"] for o in x["outputs"]}
        for path in ("models/global.onnx", "models/global.int8.onnx"):
            dvc_file = yaml.safe_load(run(["git", "show", f"{tag}:{path}.dvc"], repo, env))
            out = dvc_file["outs"][0]
            assert out["md5"] == recorded[path] and out["path"] == os.path.basename(path) and out["hash"] == "md5"

            # fedtrack restore gives the exact bytes back by revision ...
            restored = tmp_path / f"r{x['round']}-{os.path.basename(path)}"
            res = fedtrack(["restore", "--repo", repo, "--rev", tag, "--path", path, "--out", str(restored)],
                           tmp_path, env)
            assert res.returncode == 0, res.stderr
            assert md5(restored) == out["md5"] and os.path.getsize(restored) == out["size"]
            # ... a model onnx and onnxruntime take, carrying the round's lineage.
            model = onnx.load(str(restored))
            onnx.checker.check_model(model, full_check=True)
            meta = {p.key: p.value for p in model.metadata_props}
            assert meta["fedtrack.round"] == str(x["round"]) and meta["fedtrack.tag"] == tag
            assert meta["fedtrack.dvc_md5"] == x["md5"]
            session = ort.InferenceSession(str(restored), providers=["CPUExecutionProvider"])
            assert session.run(["logits"], {"input": images})[0].shape == (4, 10)

        # The real dvc, in a clone with only the remote, gives the same bytes.
        run(["git", "checkout", "-q", tag], clone, env)
        run(["dvc", "pull", "-q"], clone, env)
        assert md5(clone / "models" / "global.onnx") == recorded["models/global.onnx"]
        assert md5(clone / "models" / "global.int8.onnx") == recorded["models/global.int8.onnx"]
        assert md5(clone / "models" / "global.pt") == x["md5"]

    # Without versioning.export, no ONNX file is versioned.
    plain = tmp_path / "plain"
    plain.mkdir()
    r = fedtrack(["run", "--json", "--set", "rounds=1"] + SMALL_JOB, plain, env)
    assert r.returncode == 0, r.stderr
    files = run(["git", "ls-tree", "-r", "--name-only", "HEAD"], str(plain / "fedtrack-models"), env).split()
    assert not [f for f in files if ".onnx" in f], files
    assert not [f for f in os.listdir(plain / "fedtrack-models" / "models") if ".onnx" in f]
    assert "onnx" not in open(plain / "fedtrack-models" / "dvc.yaml").read()
