"""fedtrack's SecAgg+ quantization against Flower's (issue 16, item 5).

The same float32 vectors go through Flower's client path (scale by the
quantized weight, clip, stochastic quantize, prepend the weight) and server
path (dequantize the sum, remove the offset, divide by the total weight), and
through fedtrack's (tests/tools/secagg_quantize). The stochastic rounding's
uniform draws are the ones numpy hands Flower, replayed to fedtrack, so the
quantized words must be identical and the means agree to 1e-6.
"""

import json
import os
import subprocess

import numpy as np
import pytest

from flwr.common.secure_aggregation.ndarrays_arithmetic import (factor_combine, factor_extract,
                                                                parameters_multiply)
from flwr.common.secure_aggregation.quantization import dequantize, quantize

TOOL = os.environ.get("FEDTRACK_SECAGG_QUANTIZE", "")


def flower_client(values, num_examples, clipping_range, target_range, max_weight, seed):
    """The client mod's steps (flwr/client/mod/secure_aggregation/secaggplus_mod.py)."""
    ratio = num_examples / max_weight
    q_ratio = round(ratio * target_range)
    dq_ratio = q_ratio / target_range
    params = parameters_multiply([values], dq_ratio)
    np.random.seed(seed)
    quantized = quantize(params, clipping_range, target_range)
    np.random.seed(seed)
    uniforms = np.random.rand(values.size)  # what _stochastic_round drew
    return factor_combine(q_ratio, quantized), uniforms


def flower_server(vectors, clipping_range, target_range, mod_range):
    """The workflow's unmask tail (secaggplus_workflow.py), without masks."""
    summed = [sum(v[i].astype(np.int64) for v in vectors) % mod_range for i in range(2)]
    q_total, recon = factor_extract(summed)
    inv = target_range / q_total
    out = dequantize(recon, clipping_range, target_range)
    offset = -(len(vectors) - 1) * clipping_range
    for vec in out:
        vec += offset
        vec *= inv
    return out[0]


@pytest.mark.parametrize("clipping_range,target_range,max_weight", [
    (8.0, 2**22, 1000.0),
    (1.0, 2**16, 50.0),
    (3.5, 1000, 7.0),
])
def test_quantization_matches_flower(clipping_range, target_range, max_weight):
    assert TOOL, "FEDTRACK_SECAGG_QUANTIZE is not set (run through ctest)"
    rng = np.random.default_rng(int(target_range))
    mod_range = 2**32
    clients, expected_words = [], []
    for c in range(5):
        values = (rng.normal(0.0, clipping_range, 2000)).astype(np.float32)
        values[:6] = np.array([0.0, clipping_range, -clipping_range, 2 * clipping_range, -1e9, 1e-7],
                              dtype=np.float32)
        num_examples = float(rng.integers(1, int(max_weight) + 1))
        words, uniforms = flower_client(values, num_examples, clipping_range, target_range, max_weight, 100 + c)
        expected_words.append(words)
        clients.append({"values": values.tolist(), "num_examples": num_examples, "uniforms": uniforms.tolist()})
    request = {"clipping_range": clipping_range, "quantization_range": target_range,
               "modulus_range": mod_range, "max_weight": max_weight, "clients": clients}
    out = json.loads(subprocess.run([TOOL], input=json.dumps(request), capture_output=True, text=True,
                                    check=True).stdout)
    for mine, theirs in zip(out["words"], expected_words):
        assert mine[0] == int(theirs[0][0])
        np.testing.assert_array_equal(np.array(mine[1:], dtype=np.int64), theirs[1].astype(np.int64))
    mean = flower_server(expected_words, clipping_range, target_range, mod_range)
    np.testing.assert_allclose(np.array(out["mean"]), mean, rtol=0, atol=1e-6)
