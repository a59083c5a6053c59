"""fedtrack's differential-privacy epsilon against Google's dp_accounting.

The accountant (core/rdp_accountant.h, through tests/tools/dp_epsilon) must
give, for every (q, sigma, rounds, delta) in a grid, the epsilon that
dp_accounting's RdpAccountant gives for `rounds` compositions of
PoissonSampledDpEvent(q, GaussianDpEvent(sigma)) — within 1% relative. And a
real DP job must report a dp_epsilon that grows round over round and equals
the accountant's value for the rounds run.
"""

import itertools
import json
import math
import os
import subprocess

import dp_accounting
import pytest
from dp_accounting.rdp import RdpAccountant

from conftest import SMALL_JOB, clean_env, fedtrack

DP_EPSILON = os.environ.get("FEDTRACK_DP_EPSILON", "")

QS = [0.01, 0.1, 0.5, 1.0]
SIGMAS = [0.5, 1.0, 2.0, 5.0]
ROUNDS = [1, 10, 100, 1000]
DELTAS = [1e-5, 1e-6]
GRID = list(itertools.product(QS, SIGMAS, ROUNDS, DELTAS))


def reference_epsilon(q, sigma, rounds, delta):
    accountant = RdpAccountant()
    accountant.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), rounds)
    return accountant.get_epsilon(delta)


def fedtrack_epsilons(cases):
    assert DP_EPSILON and os.path.exists(DP_EPSILON), "FEDTRACK_DP_EPSILON must name the dp_epsilon tool"
    text = "".join(f"{q!r} {s!r} {n} {d!r}\n" for q, s, n, d in cases)
    r = subprocess.run([DP_EPSILON], input=text, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")[: len(cases)]
    assert len(lines) == len(cases), r.stdout
    return [float(line.split()[0]) for line in lines]


def test_epsilon_matches_dp_accounting_over_the_grid():
    ours = fedtrack_epsilons(GRID)
    worst = (0.0, None)
    for case, eps in zip(GRID, ours):
        expected = reference_epsilon(*case)
        assert math.isfinite(expected) and expected > 0, (case, expected)
        rel = abs(eps - expected) / expected
        assert rel <= 0.01, f"q={case[0]} sigma={case[1]} rounds={case[2]} delta={case[3]}: fedtrack {eps}, dp_accounting {expected}"
        worst = max(worst, (rel, case), key=lambda w: w[0])
    print(f"worst relative difference {worst[0]:.2e} at {worst[1]}")


def test_epsilon_grows_with_rounds_and_shrinks_with_noise():
    cases = [(0.1, 1.0, n, 1e-5) for n in (1, 2, 5, 20)] + [(0.1, s, 10, 1e-5) for s in (0.7, 1.0, 2.0, 4.0)]
    eps = fedtrack_epsilons(cases)
    assert eps[:4] == sorted(eps[:4]) and len(set(eps[:4])) == 4
    assert eps[4:] == sorted(eps[4:], reverse=True) and len(set(eps[4:])) == 4


def test_server_fixed_job_reports_growing_epsilon(tmp_path):
    env = clean_env()
    r = fedtrack(["run", "--json", "--set", "rounds=3", "--set", "versioning.enabled=false",
                  "--set", "privacy.dp.mode=server_fixed", "--set", "privacy.dp.noise_multiplier=1.0",
                  "--set", "privacy.dp.clipping_norm=0.01", "--set", "privacy.dp.delta=1e-5",
                  "--set", "clients.fraction_fit=0.5"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    # Noise of 1.0 * 0.01 / 2 per weight keeps a 4-client MLP trainable; a
    # round with a failed client would release nothing and cost nothing.
    assert all(round_["metrics"]["clients_failed"] == 0 for round_ in report["rounds"])
    eps = [round_["metrics"]["dp_epsilon"] for round_ in report["rounds"]]
    assert len(eps) == 3
    assert all(b > a for a, b in zip(eps, eps[1:])), eps
    # 4 clients, fraction_fit 0.5 but clients.min_fit 2: q = 2/4.
    for n, e in enumerate(eps, start=1):
        assert e == pytest.approx(reference_epsilon(0.5, 1.0, n, 1e-5), rel=0.01)
    assert report["final"]["dp_epsilon"] == eps[-1]
    assert all(round_["metrics"]["dp_clipping_norm"] == 0.01 for round_ in report["rounds"])
    assert "epsilon=" in r.stderr  # the progress line shows it


def test_bad_privacy_config_exits_two_naming_the_key(tmp_path):
    env = clean_env()
    r = fedtrack(["run", "--set", "privacy.dp.mode=server_fixed", "--set", "privacy.dp.delta=1"] + SMALL_JOB,
                 tmp_path, env)
    assert r.returncode == 2
    assert "privacy.dp.delta" in r.stderr
