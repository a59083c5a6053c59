"""fedtrack's strategies against Flower's, fed the same client updates.

Random updates of several shapes with uneven num_examples and a few outliers
go through both implementations for a short sequence of rounds (so the
stateful strategies' moments and momentum are compared too); every round's
model must agree to 1e-5 relative.
"""

import json
import os
import subprocess
import zlib

import numpy as np
import pytest

from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import (Bulyan, FedAdagrad, FedAdam, FedAvg, FedAvgM, FedMedian, FedProx, FedTrimmedAvg,
                                  FedYogi, Krum, QFedAvg)

REPLAY = os.environ.get("FEDTRACK_STRATEGY_REPLAY", "")
# q-FedAvg: Flower weighs every client by the server's evaluation loss; fedtrack
# by each client's train_loss. With every client reporting that same loss the
# two must agree.
QFFL_LOSS = 0.7
SHAPES = [(4, 3), (5,), (2, 2, 3)]
CLIENTS = 7
ROUNDS = 4


def make_rounds(seed):
    rng = np.random.default_rng(seed)
    initial = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    rounds = []
    current = initial
    for _ in range(ROUNDS):
        updates = []
        for c in range(CLIENTS):
            arrays = [(w + rng.normal(scale=0.1, size=w.shape)).astype(np.float32) for w in current]
            if c in (2, 5):  # outliers: scaled, sign-flipped updates
                arrays = [(-8.0 * a).astype(np.float32) for a in arrays]
            updates.append((arrays, int(rng.integers(5, 200))))
        rounds.append(updates)
        current = [np.mean([u[0][i] for u in updates], axis=0).astype(np.float32) for i in range(len(SHAPES))]
    return initial, rounds


CASES = [
    ("fedavg", {}, lambda init: FedAvg()),
    ("fedprox", {"proximal_mu": 0.1}, lambda init: FedProx(proximal_mu=0.1)),
    ("fedavgm", {"server_learning_rate": 0.7, "server_momentum": 0.9},
     lambda init: FedAvgM(initial_parameters=init, server_learning_rate=0.7, server_momentum=0.9)),
    ("fedadam", {}, lambda init: FedAdam(initial_parameters=init)),
    ("fedadam", {"eta": 0.05, "beta_1": 0.8, "beta_2": 0.95, "tau": 1e-3},
     lambda init: FedAdam(initial_parameters=init, eta=0.05, beta_1=0.8, beta_2=0.95, tau=1e-3)),
    ("fedyogi", {}, lambda init: FedYogi(initial_parameters=init)),
    ("fedadagrad", {"eta": 0.2, "tau": 1e-2}, lambda init: FedAdagrad(initial_parameters=init, eta=0.2, tau=1e-2)),
    ("fedmedian", {}, lambda init: FedMedian()),
    ("fedtrimmedavg", {"beta": 0.3}, lambda init: FedTrimmedAvg(beta=0.3)),
    ("krum", {"num_malicious_clients": 2}, lambda init: Krum(num_malicious_clients=2)),
    ("multikrum", {"num_malicious_clients": 2, "num_clients_to_keep": 3},
     lambda init: Krum(num_malicious_clients=2, num_clients_to_keep=3)),
    ("bulyan", {"num_malicious_clients": 1}, lambda init: Bulyan(num_malicious_clients=1, to_keep=0)),
    ("qfedavg", {"q": 0.5, "client_learning_rate": 0.05},
     lambda init: QFedAvg(q_param=0.5, qffl_learning_rate=0.05, evaluate_fn=lambda rnd, w, cfg: (QFFL_LOSS, {}))),
]


def tensor_json(arrays):
    return [{"shape": list(a.shape), "data": a.ravel().tolist()} for a in arrays]


@pytest.mark.parametrize("name,options,flower", CASES, ids=[f"{c[0]}{'-' + str(i) if c[1] else ''}" for i, c in enumerate(CASES)])
def test_strategy_matches_flower(name, options, flower):
    assert REPLAY and os.path.exists(REPLAY), "FEDTRACK_STRATEGY_REPLAY must name the strategy_replay tool"
    initial, rounds = make_rounds(seed=zlib.crc32(name.encode()) % 1000 + len(options))  # stable across processes
    strategy = flower(ndarrays_to_parameters(initial))
    expected = []
    current = initial
    for rnd, updates in enumerate(rounds, start=1):
        if name == "qfedavg":
            strategy.pre_weights = current  # what Flower's configure_fit records
        results = [(None, FitRes(status=Status(code=Code.OK, message=""), parameters=ndarrays_to_parameters(a),
                                 num_examples=n, metrics={})) for a, n in updates]
        params, _ = strategy.aggregate_fit(rnd, results, [])
        expected.append(parameters_to_ndarrays(params))
        current = expected[-1]

    payload = {"strategy": dict(options, name=name), "initial": tensor_json(initial),
               "rounds": [[{"num_examples": n, "train_loss": QFFL_LOSS, "tensors": tensor_json(a)} for a, n in updates]
                          for updates in rounds]}
    r = subprocess.run([REPLAY], input=json.dumps(payload), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["rounds"]
    assert len(got) == ROUNDS
    for rnd, (ours, theirs) in enumerate(zip(got, expected), start=1):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            b = np.asarray(b, dtype=np.float64).ravel()
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} round {rnd} tensor {i}")
