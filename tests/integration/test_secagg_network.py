"""SecAgg+ in the network runtime: fedtrack server + fedtrack client as real
processes on loopback, the four protocol stages as tasks (docs/privacy.md).

A client dies for real (SIGKILL, from inside, after delivering its stage-2
reply: FEDTRACK_TEST_SECAGG_KILL_AFTER_STAGE) to test dropouts above and below
the reconstruction threshold.
"""
import os
import signal
import subprocess

import pytest

from conftest import FEDTRACK, clean_env
from test_deployment import TOKENS, RawClient, Site, decode_message, encode_message, report_of

JOB = """name: secnet
seed: 7
rounds: {rounds}
data:
  limit_train: 2400
  limit_test: 500
clients:
  count: {count}
  min_fit: 2
  min_evaluate: 1
  min_available: 1
server:
  round_timeout: 60
  client_timeout: 3
  linger: 3
{secure}"""

SECURE = """secure_aggregation:
  mode: secaggplus
  num_shares: {count}
  reconstruction_threshold: {threshold}
  timeout: 5
"""


def job(rounds, count, threshold=None):
    secure = SECURE.format(count=count, threshold=threshold) if threshold else ""
    return JOB.format(rounds=rounds, count=count, secure=secure)


@pytest.fixture
def sites(tmp_path):
    made = []

    def make(name, text):
        d = tmp_path / name
        d.mkdir()
        s = Site(d, job=text)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def start_clients(site, count, kill_after_stage=None, victim=None, skip=()):
    """`count` clients (the first `count` tokens); `victim` kills itself after `kill_after_stage`."""
    procs = []
    for i, name in enumerate(list(TOKENS)[:count]):
        if name in skip:
            continue
        env = dict(site.env)
        if name == victim:
            env["FEDTRACK_TEST_SECAGG_KILL_AFTER_STAGE"] = str(kill_after_stage)
        err = open(site.path / f"client-{name}.err", "w")
        p = subprocess.Popen([FEDTRACK, "client", "--server", site.url(), "--token", TOKENS[name], "--data",
                              f"shards/{i}", "--threads", "1"], cwd=site.path, env=env, stdout=subprocess.DEVNULL,
                             stderr=err, start_new_session=True)
        p.log = site.path / f"client-{name}.err"
        site.procs.append(p)
        procs.append(p)
    return procs


def test_a_secure_network_job_matches_plain_fedavg_within_the_quantization_bound(sites):
    plain = sites("plain", job(rounds=2, count=4))
    secure = sites("secure", job(rounds=2, count=4, threshold=3))
    reports = {}
    for site in (plain, secure):
        server = site.server()
        clients = start_clients(site, 4)
        assert server.wait(timeout=180) == 0, server.log.read_text()
        for c in clients:
            assert c.wait(timeout=30) == 0, c.log.read_text()
        reports[site] = report_of(server)
    p, s = reports[plain], reports[secure]
    assert [r["round"] for r in s["rounds"]] == [1, 2]
    for r in s["rounds"]:
        m = r["metrics"]
        assert m["secagg_dropouts"] == 0 and m["clients_ok"] == 4, m
        # Four masked vectors of the model's size (4 bytes a coordinate) went up, and more.
        assert m["secagg_bytes"] > 4 * 4 * 235_000, m
    assert "secagg_bytes" not in p["rounds"][0]["metrics"]
    # The secure mean is the weighted mean of the same trained models to within
    # one quantization step per coordinate (16 / 2^22): after round 1 (same
    # global, same training) the global models evaluate alike.
    p1, s1 = p["rounds"][0]["metrics"], s["rounds"][0]["metrics"]
    assert abs(s1["eval_loss"] - p1["eval_loss"]) <= 1e-3 * p1["eval_loss"], (p1, s1)
    assert abs(s1["eval_accuracy"] - p1["eval_accuracy"]) <= 0.01, (p1, s1)
    assert abs(s["final"]["eval_accuracy"] - p["final"]["eval_accuracy"]) <= 0.02, (p["final"], s["final"])
    assert s["final"]["eval_accuracy"] > s["initial"]["eval_accuracy"] + 0.2
    # The server never took a model from a site: every fit result was held.
    log = secure.procs[0].log.read_text()
    assert "secure aggregation: summed 4 of 4 clients" in log, log


def test_a_client_killed_after_stage_2_above_the_threshold_is_a_dropout_and_the_round_completes(sites):
    site = sites("above", job(rounds=1, count=4, threshold=3))
    server = site.server()
    clients = start_clients(site, 4, kill_after_stage=2, victim="delta")
    assert clients[3].wait(timeout=120) == -signal.SIGKILL, clients[3].log.read_text()
    assert server.wait(timeout=120) == 0, server.log.read_text()
    m = report_of(server)["rounds"][0]["metrics"]
    assert m["secagg_dropouts"] == 1, m
    log = server.log.read_text()
    assert "client delta dropped at stage 3" in log, log
    assert "secure aggregation: summed 3 of 4 clients" in log, log
    for c in clients[:3]:
        assert c.wait(timeout=30) == 0, c.log.read_text()


def test_a_client_killed_after_stage_2_below_the_threshold_fails_the_round_cleanly(sites):
    site = sites("below", job(rounds=1, count=3, threshold=3))
    server = site.server()
    clients = start_clients(site, 3, kill_after_stage=2, victim="charlie")
    assert clients[2].wait(timeout=120) == -signal.SIGKILL, clients[2].log.read_text()
    # Nothing is released: no client's result reaches the strategy, so the
    # round has 0 of clients.min_fit = 2 results and the job fails (exit 4,
    # unavailable) as any round short of results does.
    assert server.wait(timeout=120) == 4, server.log.read_text()
    log = server.log.read_text()
    assert "the round cannot complete" in log, log
    assert "0 of 3 sampled clients returned a result, fewer than clients.min_fit = 2" in log, log
    assert "secure aggregation failed" in log, log
    # The surviving clients keep looking for the server as after any failed job (the fixture stops them).


def test_bad_stage_replies_get_4xx_and_the_sender_is_a_dropout(sites):
    site = sites("bad", job(rounds=2, count=4, threshold=3))
    server = site.server()
    clients = start_clients(site, 4, skip=("delta",))
    raw = RawClient(site.port, TOKENS["delta"])
    status, body = raw.call("POST", "/v1/join")
    assert status == 200
    _, joined, _ = decode_message(body)
    assert joined["secure_aggregation"] is True
    raw.session, job_id = joined["session"], joined["job_id"]

    def next_task(kinds):
        while True:
            status, body = raw.call("GET", "/v1/task")
            assert status == 200, body
            kind, header, payload = decode_message(body)
            if kind in kinds:
                return kind, header, payload
            if kind == 3:
                raw.call("POST", "/v1/result", encode_message(8, {"job_id": job_id, "task_id": header["task_id"],
                                                                  "round": header["round"], "error": "no data"}))

    # Round 1: a fit result carrying a model (the plaintext SecAgg+ exists to hide) is refused: 422, a failure.
    _, fit, model = next_task({2})
    ids = {"job_id": job_id, "task_id": fit["task_id"], "round": fit["round"]}
    status, body = raw.call("POST", "/v1/result", encode_message(6, dict(ids, num_examples=100), model))
    assert status == 422 and b"must carry no model" in body, body
    # Round 2.
    _, fit, _ = next_task({2})
    ids = {"job_id": job_id, "task_id": fit["task_id"], "round": fit["round"]}
    # A fit result that carries no model is what SecAgg+ expects.
    held = dict(ids, num_examples=100, encoding="secagg-held")
    assert raw.call("POST", "/v1/result", encode_message(6, held))[0] == 204
    kind, task, request = next_task({9})
    assert task["stage"] == 1 and request[:4] == b"FTSG", (task, request[:8])
    ids = {"job_id": job_id, "task_id": task["task_id"], "round": task["round"]}
    # Ill-formed stage replies: 400, the task stays open.
    assert raw.call("POST", "/v1/result", encode_message(10, dict(ids, stage=7), b"x"))[0] == 400
    assert raw.call("POST", "/v1/result", encode_message(10, dict(ids, stage=1, **{"metric/x": 1.0}), b"x"))[0] == 400
    # A reply for another stage, or bytes that are no stage message: 422, and delta is dropped.
    status, body = raw.call("POST", "/v1/result", encode_message(10, dict(ids, stage=1), b"not a secagg message"))
    assert status == 422 and b"not a secure-aggregation message" in body, body
    assert next_task({5})[0] == 5  # the job ends without delta
    assert server.wait(timeout=120) == 0, server.log.read_text()
    first, second = (r["metrics"] for r in report_of(server)["rounds"])
    assert first["clients_failed"] == 1 and first["secagg_dropouts"] == 0, first  # delta never entered the protocol
    assert second["secagg_dropouts"] == 1, second
    log = server.log.read_text()
    assert "summed 3 of 3 clients" in log, log
    assert "client delta dropped at stage 1" in log and "summed 3 of 4 clients" in log, log
    for c in clients:
        assert c.wait(timeout=30) == 0, c.log.read_text()
