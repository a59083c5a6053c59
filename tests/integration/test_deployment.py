"""fedtrack server + fedtrack client as real processes on loopback.

Each test starts its own server on a free port with its own clients (each
with --threads 1, so runs are bit-comparable) and stops whatever is left.
A small Python client speaks the wire protocol itself to send the server
malformed, oversized and inconsistent messages.
"""
import http.client
import json
import re
import math
import os
import resource
import select
import signal
import socket
import sqlite3
import struct
import subprocess
import threading
import time

import pytest

from conftest import FEDTRACK, clean_env, fedtrack, mlflow_client

TOKENS = {"alpha": "tok-alpha-0001", "bravo": "tok-bravo-0002", "charlie": "tok-charlie-03", "delta": "tok-delta-0004"}

JOB = """name: deploy
seed: 7
rounds: {rounds}
data:
  limit_train: 2400
  limit_test: 500
clients:
  count: {count}
  min_fit: {min_fit}
  min_evaluate: 1
  min_available: 1
server:
  round_timeout: 60
  client_timeout: {client_timeout}
  linger: 3
  max_message_mb: {max_mb}
versioning:
  enabled: {versioning}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Site:
    """A folder with the job, the tokens file and the partition's shards."""

    def __init__(self, path, rounds=3, count=4, min_fit=2, client_timeout=30, max_mb=1024, versioning="false",
                 job=None):
        self.path = path
        self.env = clean_env()
        (path / "job.yaml").write_text(job or JOB.format(rounds=rounds, count=count, min_fit=min_fit,
                                                         client_timeout=client_timeout, max_mb=max_mb,
                                                         versioning=versioning))
        (path / "tokens.txt").write_text("# name token\n" + "".join(f"{n} {t}\n" for n, t in TOKENS.items()))
        r = fedtrack(["partition", "job.yaml", "--out", "shards"], cwd=path, env=self.env)
        assert r.returncode == 0, r.stderr
        self.port = free_port()
        self.procs = []

    def url(self, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}"

    def server(self, *extra, log="server"):
        out = open(self.path / f"{log}.out", "w")
        err = open(self.path / f"{log}.err", "w")
        p = subprocess.Popen([FEDTRACK, "server", "job.yaml", "--listen", f"127.0.0.1:{self.port}", "--tokens",
                              "tokens.txt", "--json", *extra], cwd=self.path, env=self.env, stdout=out, stderr=err,
                             start_new_session=True)
        p.log = self.path / f"{log}.err"
        p.out = self.path / f"{log}.out"
        self.procs.append(p)
        wait_for(lambda: "serving job" in p.log.read_text() or p.poll() is not None, 60, "the server to listen")
        assert p.poll() is None, p.log.read_text()
        return p

    def client(self, name, shard, *extra, token=None, scheme="http"):
        err = open(self.path / f"client-{name}.err", "w")
        p = subprocess.Popen([FEDTRACK, "client", "--server", self.url(scheme), "--token", token or TOKENS[name],
                              "--data", f"shards/{shard}", "--threads", "1", *extra], cwd=self.path, env=self.env,
                             stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        p.log = self.path / f"client-{name}.err"
        self.procs.append(p)
        return p

    def all_clients(self, *extra, scheme="http"):
        return [self.client(n, i, *extra, scheme=scheme) for i, n in enumerate(TOKENS)]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def site_factory(tmp_path):
    made = []

    def make(name="site", **kw):
        d = tmp_path / name
        d.mkdir()
        s = Site(d, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def report_of(server):
    lines = [l for l in server.out.read_text().splitlines() if l.startswith("{")]
    assert lines, server.log.read_text()
    return json.loads(lines[-1])


def test_four_clients_complete_three_rounds_and_a_wrong_token_is_refused(site_factory):
    site = site_factory()
    server = site.server()
    clients = site.all_clients()
    intruder = site.client("mallory", 0, token="not-a-real-token")
    started = time.time()
    assert intruder.wait(timeout=30) == 6
    assert time.time() - started < 15, "a refused token must not retry"
    assert "refused the token" in intruder.log.read_text()
    assert server.wait(timeout=240) == 0, server.log.read_text()
    for c in clients:
        assert c.wait(timeout=30) == 0, c.log.read_text()
        assert "is done" in c.log.read_text()
    report = report_of(server)
    assert [r["round"] for r in report["rounds"]] == [1, 2, 3]
    for r in report["rounds"]:
        assert r["metrics"]["clients_ok"] == 4 and r["metrics"]["clients_failed"] == 0
    assert report["final"]["eval_accuracy"] > report["initial"]["eval_accuracy"] + 0.2
    log = server.log.read_text()
    assert "unknown token" in log and "plain http" in log
    for name in TOKENS:
        assert f"client {name} joined" in log
    # The report names each site's data fingerprint, as `fedtrack run` lists its clients'; each
    # client logs the start of its own.
    sites = {c["name"]: c["data_fingerprint"] for c in report["clients"]}
    assert sorted(sites) == sorted(TOKENS), report["clients"]
    for name, c in zip(TOKENS, clients):
        assert re.fullmatch(r"[0-9a-f]{64}", sites[name]), sites
        assert f"fingerprint {sites[name][:16]}" in c.log.read_text()
    assert len(set(sites.values())) == len(TOKENS)  # four shards, four fingerprints


def test_a_client_killed_and_one_hung_mid_job_fail_their_rounds_and_the_job_completes(site_factory):
    site = site_factory(rounds=5, client_timeout=3)
    server = site.server()
    clients = site.all_clients()
    wait_for(lambda: "round 1/5" in server.log.read_text(), 120, "round 1")
    # Rounds of this job take milliseconds: the server is frozen while the two
    # sites fail, so they fail mid-job whatever the machine's speed (the freeze
    # lasts milliseconds, far below the 3 s that would make alpha and bravo silent).
    os.killpg(server.pid, signal.SIGSTOP)
    try:
        os.killpg(clients[3].pid, signal.SIGKILL)  # delta crashes
        os.killpg(clients[2].pid, signal.SIGSTOP)  # charlie hangs (maybe mid-transfer)
    finally:
        os.killpg(server.pid, signal.SIGCONT)
    assert server.wait(timeout=240) == 0, server.log.read_text()
    report = report_of(server)
    assert len(report["rounds"]) == 5
    ok = [r["metrics"]["clients_ok"] for r in report["rounds"]]
    assert ok[0] == 4 and ok[-1] == 2, ok
    # The lost clients were noticed by their silence (3 s), not by the 60 s round timeout.
    assert max(r["metrics"]["round_seconds"] for r in report["rounds"]) < 30, report["rounds"]
    log = server.log.read_text()
    assert "client delta left" in log and "client charlie left" in log
    for name in ("alpha", "bravo"):  # waiting or training, the others were never taken for gone
        assert f"client {name} left" not in log, log
    for c in clients[:2]:
        assert c.wait(timeout=30) == 0


LOANS = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "csv-tabular", "loans.csv")

CSV_JOB = f"""name: loans
seed: 7
rounds: 30
data:
  dataset: csv
  path: {os.path.abspath(LOANS)}
  label: decision
  partition: {{kind: dirichlet, alpha: 1.0, min_partition_size: 50}}
clients: {{count: 3, min_fit: 2, min_available: 2}}
train: {{epochs: 2, batch_size: 32, lr: 0.05, momentum: 0.9}}
versioning: {{enabled: false}}
"""


def test_a_csv_job_over_the_network_and_a_client_joining_between_rounds(site_factory):
    site = site_factory(job=CSV_JOB)
    header = (site.path / "shards" / "0" / "data.csv").read_text().splitlines()[0]
    assert header.endswith(",decision"), header
    assert not (site.path / "shards" / "3").exists()
    server = site.server()
    first = [site.client(n, i) for i, n in enumerate(list(TOKENS)[:3])]
    wait_for(lambda: "round 1/30" in server.log.read_text(), 120, "round 1")
    late = site.client("delta", 0)  # a fourth site (with a copy of shard 0) joins after round 1
    assert server.wait(timeout=240) == 0, server.log.read_text()
    for c in first + [late]:
        assert c.wait(timeout=30) == 0, c.log.read_text()
    report = report_of(server)
    sampled = [r["metrics"]["clients_sampled"] for r in report["rounds"]]
    lines = server.log.read_text().splitlines()
    joined_at = next(i for i, l in enumerate(lines) if "client delta joined" in l)
    done_before = sum(1 for l in lines[:joined_at] if l.startswith("round ") and "/30" in l)
    assert done_before + 2 <= 30, "the late client joined too late for this test to say anything"
    # Round done_before + 1 may have been sampled before the join; every round after samples all four.
    assert sampled[0] == 3 and all(n == 4 for n in sampled[done_before + 1:]), (done_before, sampled)
    assert report["final"]["eval_accuracy"] > report["initial"]["eval_accuracy"]


def test_a_result_over_the_servers_limit_is_reported_as_a_failure_not_resent(site_factory, tmp_path):
    wide = tmp_path / "wide.csv"  # an MLP over 1100 features: a 1.1 MB model, over a 1 MB limit
    rows = ["".join(f"f{i}," for i in range(1100)) + "label"]
    rows += [",".join(str((r * 7 + i) % 10) for i in range(1100)) + f",{r % 2}" for r in range(120)]
    wide.write_text("\n".join(rows) + "\n")
    site = site_factory(job=f"""name: wide
rounds: 2
data: {{dataset: csv, path: {wide}, partition: iid}}
clients: {{count: 2, min_fit: 2}}
server: {{max_message_mb: 1}}
versioning: {{enabled: false}}
""")
    server = site.server()
    clients = [site.client(n, i) for i, n in enumerate(list(TOKENS)[:2])]
    assert server.wait(timeout=120) == 4, server.log.read_text()
    log = server.log.read_text()
    assert "over the server's max_message_mb" in log and "fewer than clients.min_fit" in log, log
    for c in clients:
        assert "over the server's max_message_mb" in c.log.read_text()


def test_tls_with_a_generated_certificate(site_factory):
    site = site_factory(rounds=2)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(site.path / "key.pem"),
                    "-out", str(site.path / "cert.pem")], check=True, capture_output=True)
    server = site.server("--tls-cert", "cert.pem", "--tls-key", "key.pem")
    assert "plain http" not in server.log.read_text()
    # Idle connections and ones trickling a ClientHello (a TLS handshake record of 512 bytes, one byte a second)
    # wait in the gate, not in the HTTP workers: the sites below join through them.
    flood = Flood(site.port, idle=100, slow=200, slow_start=b"\x16\x03\x01\x02\x00\x01")
    flood.start()
    wait_for(lambda: flood.opened >= 300, 60, "300 flood connections")
    # Without the CA the certificate is not trusted: the client never gets in.
    untrusting = site.client("alpha", 0, "--give-up-after", "3", scheme="https")
    assert untrusting.wait(timeout=60) == 4, untrusting.log.read_text()
    assert "certificate" in untrusting.log.read_text().lower(), untrusting.log.read_text()
    clients = [site.client(n, i, "--tls-ca", "cert.pem", scheme="https") for i, n in enumerate(TOKENS)]
    try:
        wait_for(lambda: "round 1/2" in server.log.read_text() or server.poll() is not None, 120,
                 "the sites to join through the flood")
        assert flood.is_alive()
    finally:
        flood.stop()
    assert server.wait(timeout=240) == 0, server.log.read_text()
    for c in clients:
        assert c.wait(timeout=30) == 0, c.log.read_text()
    assert len(report_of(server)["rounds"]) == 2


# --- a hand-written client for bad input ------------------------------------------------

def encode_config(record):
    """Keys and string values may be bytes: the server must cope with any bytes."""
    out = struct.pack("<I", len(record))
    for key, v in sorted((k if isinstance(k, bytes) else k.encode(), v) for k, v in record.items()):
        out += struct.pack("<I", len(key)) + key
        if isinstance(v, bytes):
            out += struct.pack("<BI", 3, len(v)) + v
        elif isinstance(v, bool):
            out += struct.pack("<BB", 0, int(v))
        elif isinstance(v, int):
            out += struct.pack("<Bq", 1, v)
        elif isinstance(v, float):
            out += struct.pack("<Bd", 2, v)
        else:
            s = v.encode()
            out += struct.pack("<BI", 3, len(s)) + s
    return out


def decode_config(b, at):
    (n,), at = struct.unpack_from("<I", b, at), at + 4
    out = {}
    for _ in range(n):
        (klen,), at = struct.unpack_from("<I", b, at), at + 4
        key, at = b[at:at + klen].decode(), at + klen
        tag, at = b[at], at + 1
        if tag == 0:
            out[key], at = bool(b[at]), at + 1
        elif tag == 1:
            out[key], at = struct.unpack_from("<q", b, at)[0], at + 8
        elif tag == 2:
            out[key], at = struct.unpack_from("<d", b, at)[0], at + 8
        else:
            (slen,), at = struct.unpack_from("<I", b, at), at + 4
            out[key], at = b[at:at + slen].decode(), at + slen
    return out, at


def encode_message(kind, header, payload=b"", version=1):
    head = encode_config(header)
    return b"FTMS" + struct.pack("<HBI", version, kind, len(head)) + head + struct.pack("<Q", len(payload)) + payload


def decode_message(b):
    assert b[:4] == b"FTMS"
    _version, kind, hlen = struct.unpack_from("<HBI", b, 4)
    header, at = decode_config(b[11:11 + hlen], 0)
    (plen,) = struct.unpack_from("<Q", b, 11 + hlen)
    return kind, header, b[19 + hlen:19 + hlen + plen]


def decode_params(b):
    assert b[:4] == b"FTPM"
    count, buffer_begin = struct.unpack_from("<II", b, 16)
    at, tensors = 24, []
    for _ in range(count):
        (nlen,), at = struct.unpack_from("<H", b, at), at + 2
        name, at = b[at:at + nlen].decode(), at + nlen
        dtype, rank = b[at], b[at + 1]
        at += 2
        dims = list(struct.unpack_from(f"<{rank}q", b, at))
        at += 8 * rank
        (nbytes,), at = struct.unpack_from("<Q", b, at), at + 8
        tensors.append([name, dtype, dims, bytearray(b[at:at + nbytes])])
        at += nbytes
    return buffer_begin, tensors


def encode_params(buffer_begin, tensors):
    body = struct.pack("<II", len(tensors), buffer_begin)
    for name, dtype, dims, data in tensors:
        n = name if isinstance(name, bytes) else name.encode()
        body += struct.pack("<H", len(n)) + n + struct.pack("<BB", dtype, len(dims))
        body += struct.pack(f"<{len(dims)}q", *dims) + struct.pack("<Q", len(data)) + bytes(data)
    return b"FTPM" + struct.pack("<HHQ", 1, 0, len(body)) + body


class RawClient:
    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token = token
        self.session = ""

    def call(self, method, path, body=b"", headers=None):
        h = {"Authorization": f"Bearer {self.token}", "X-Fedtrack-Session": self.session}
        h.update(headers or {})
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        if r.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return r.status, data


def test_bad_input_gets_4xx_and_the_server_goes_on(site_factory):
    site = site_factory(rounds=3, count=2, min_fit=1, max_mb=1)
    server = site.server()
    raw = RawClient(site.port, TOKENS["bravo"])
    assert raw.call("POST", "/v1/join", headers={"Authorization": "Bearer wrong-token-xyz"})[0] == 401
    assert raw.call("POST", "/v1/join", headers={"Authorization": ""})[0] == 401
    status, body = raw.call("POST", "/v1/join")
    assert status == 200
    kind, joined, _ = decode_message(body)
    assert kind == 1 and joined["client"] == "bravo"
    raw.session = joined["session"]
    job_id = joined["job_id"]
    assert raw.call("GET", "/v1/nowhere")[0] == 404
    real = site.client("alpha", 0)

    def next_task():
        while True:
            status, body = raw.call("GET", "/v1/task")
            assert status == 200
            kind, header, payload = decode_message(body)
            if kind == 3:  # evaluate: this client has no data
                assert raw.call("POST", "/v1/result", encode_message(8, {"job_id": job_id, "task_id": header["task_id"],
                                                                        "round": header["round"], "error": "no data"}))[0] == 204
                continue
            if kind == 2:
                return header, payload

    header, payload = next_task()
    ids = {"job_id": job_id, "task_id": header["task_id"], "round": header["round"]}
    buffer_begin, tensors = decode_params(payload)
    good = encode_params(buffer_begin, tensors)
    result = dict(ids, num_examples=100)

    # Malformed, truncated, wrong version, oversized, inconsistent: refused, the task stays open.
    assert raw.call("POST", "/v1/result", b"garbage")[0] == 400
    full = encode_message(6, result, good)
    assert raw.call("POST", "/v1/result", full[:len(full) // 2])[0] == 400
    assert raw.call("POST", "/v1/result", encode_message(6, result, good, version=9))[0] == 400
    assert raw.call("POST", "/v1/result", encode_message(6, result, good[:-10]))[0] == 400
    # Over max_message_mb (1 MB here): refused from its Content-Length, before the body is read.
    big = http.client.HTTPConnection("127.0.0.1", site.port, timeout=60)
    big.putrequest("POST", "/v1/result")
    big.putheader("Authorization", f"Bearer {TOKENS['bravo']}")
    big.putheader("X-Fedtrack-Session", raw.session)
    big.putheader("Content-Length", str(2 << 20))
    big.endheaders(b"x" * 1000)
    response = big.getresponse()
    assert response.status == 413 and b"max_message_mb" in response.read()
    big.close()
    assert raw.call("POST", "/v1/result", encode_message(6, dict(result, job_id="another-job"), good))[0] == 409
    assert raw.call("POST", "/v1/result", encode_message(6, dict(result, round=ids["round"] + 1), good))[0] == 409
    assert raw.call("POST", "/v1/result", encode_message(6, dict(result, task_id=999999), good))[0] == 409
    assert raw.call("POST", "/v1/task", b"")[0] == 404
    stale = RawClient(site.port, TOKENS["bravo"])
    stale.session = "0" * 32
    assert stale.call("GET", "/v1/task")[0] == 409

    # A tensor of the wrong shape: 422, and this client fails the round.
    wrong = [list(t) for t in tensors]
    wrong[0][2] = [wrong[0][2][0] + 1] + wrong[0][2][1:]  # one more row, with its bytes: well-formed, wrong layout
    wrong[0][3] = wrong[0][3] + bytearray(4 * math.prod(wrong[0][2][1:]))
    status, body = raw.call("POST", "/v1/result", encode_message(6, result, encode_params(buffer_begin, wrong)))
    assert status == 422 and b"shape" in body, body
    # Round 2: a NaN in the update.
    header, payload = next_task()
    ids = {"job_id": job_id, "task_id": header["task_id"], "round": header["round"]}
    buffer_begin, tensors = decode_params(payload)
    nan = [list(t) for t in tensors]
    nan[0][3] = bytearray(struct.pack("<f", math.nan)) + nan[0][3][4:]
    status, body = raw.call("POST", "/v1/result", encode_message(6, dict(ids, num_examples=100),
                                                                 encode_params(buffer_begin, nan)))
    assert status == 422 and b"NaN" in body, body
    # Round 3: a valid update is taken.
    header, payload = next_task()
    ids = {"job_id": job_id, "task_id": header["task_id"], "round": header["round"]}
    assert raw.call("POST", "/v1/result", encode_message(6, dict(ids, num_examples=100), payload))[0] == 204
    while True:  # until the job is over
        status, body = raw.call("GET", "/v1/task")
        kind, header, _ = decode_message(body)
        if kind == 5:
            break
        if kind == 3:
            raw.call("POST", "/v1/result", encode_message(8, {"job_id": job_id, "task_id": header["task_id"],
                                                              "round": header["round"], "error": "no data"}))
    assert server.wait(timeout=120) == 0, server.log.read_text()
    assert real.wait(timeout=30) == 0
    report = report_of(server)
    ok = [(r["metrics"]["clients_ok"], r["metrics"]["clients_failed"]) for r in report["rounds"]]
    assert ok == [(1, 1), (1, 1), (2, 0)], ok
    log = server.log.read_text()
    assert "refused POST /v1/result from client bravo" in log


# --- crash and resume ---------------------------------------------------------------------

def test_server_killed_after_round_2_resumes_to_the_same_model(site_factory):
    straight = site_factory("straight", rounds=4, versioning="true")
    server = straight.server()
    clients = straight.all_clients()
    assert server.wait(timeout=300) == 0, server.log.read_text()
    expected = report_of(server)["final"]["model_sha256"]
    for c in clients:
        c.wait(timeout=30)

    site = site_factory("crashed", rounds=4, versioning="true")
    site.env["FEDTRACK_TEST_EXIT_AFTER_ROUND"] = "2"  # dies between round 2's commit and its resume point
    server = site.server(log="first")
    clients = site.all_clients("--give-up-after", "120")
    assert server.wait(timeout=300) == 137
    del site.env["FEDTRACK_TEST_EXIT_AFTER_ROUND"]
    refused = fedtrack(["server", "job.yaml", "--listen", f"127.0.0.1:{site.port}", "--tokens", "tokens.txt"],
                       cwd=site.path, env=site.env, timeout=120)
    assert refused.returncode == 2 and "--resume" in refused.stderr, refused.stderr
    resumed = site.server("--resume", log="resumed")
    assert resumed.wait(timeout=300) == 0, resumed.log.read_text()
    for c in clients:
        assert c.wait(timeout=60) == 0, c.log.read_text()
    report = report_of(resumed)
    assert report["resumed_after"] == 2
    assert [r["round"] for r in report["rounds"]] == [1, 2, 3, 4]
    assert report["final"]["model_sha256"] == expected
    assert "was committed before the stop" in resumed.log.read_text()
    # Exactly one commit + tag and one round run per round.
    tags = subprocess.run(["git", "tag", "-l"], cwd=site.path / "fedtrack-models", capture_output=True, text=True).stdout
    assert len(tags.split()) == 4, tags
    log = subprocess.run(["git", "log", "--format=%s"], cwd=site.path / "fedtrack-models", capture_output=True,
                         text=True).stdout
    assert len(log.splitlines()) == 4, log
    jobs = json.loads(fedtrack(["runs", "--json"], cwd=site.path, env=site.env).stdout)
    assert len(jobs) == 1 and jobs[0]["status"] == "FINISHED", jobs
    assert [(r["round"], r["status"]) for r in jobs[0]["rounds"]] == [(n, "FINISHED") for n in (1, 2, 3, 4)]
    with sqlite3.connect(site.path / ".fedtrack" / "journal.sqlite") as db:
        creates = db.execute("SELECT run_key, COUNT(*) FROM ops WHERE op = 'create' GROUP BY run_key").fetchall()
    assert len(creates) == 5 and all(n == 1 for _, n in creates), creates


def test_run_resume_after_a_crash_gives_the_uninterrupted_model(tmp_path):
    env = clean_env()
    job = ["--set", "data.limit_train=2000", "--set", "data.limit_test=300", "--set", "clients.count=3",
           "--set", "rounds=4", "--set", "strategy.name=fedadam", "--set", "runtime.threads_per_client=1",
           "--set", "runtime.parallelism=1", "--json"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    straight = fedtrack(["run", *job], cwd=tmp_path / "a", env=env)
    assert straight.returncode == 0, straight.stderr
    expected = json.loads(straight.stdout.splitlines()[-1])["final"]["model_sha256"]
    crashed = fedtrack(["run", *job], cwd=tmp_path / "b", env=dict(env, FEDTRACK_TEST_EXIT_AFTER_ROUND="3"))
    assert crashed.returncode == 137
    again = fedtrack(["run", *job], cwd=tmp_path / "b", env=env)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = fedtrack(["run", *job, "--resume"], cwd=tmp_path / "b", env=env)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout.splitlines()[-1])
    assert report["resumed_after"] == 3
    assert report["final"]["model_sha256"] == expected
    assert "was committed before the stop" in resumed.stderr  # round 3 replayed to versioning: its commit is kept
    tags = subprocess.run(["git", "tag", "-l"], cwd=tmp_path / "b" / "fedtrack-models", capture_output=True,
                          text=True).stdout
    assert len(tags.split()) == 4
    finished = fedtrack(["run", *job, "--resume"], cwd=tmp_path / "b", env=env)
    assert finished.returncode == 2 and "already finished" in finished.stderr


# --- an untrusted edge: crafted tensors, ill-formed text, shared tokens, floods ----------------

def next_fit_task(raw, job_id, evaluate_error="no data"):
    """Long-polls until a fit task; evaluate tasks are answered as failed with `evaluate_error`."""
    while True:
        status, body = raw.call("GET", "/v1/task")
        assert status == 200, body
        kind, header, payload = decode_message(body)
        if kind == 3:
            reply = encode_message(8, {"job_id": job_id, "task_id": header["task_id"], "round": header["round"],
                                       "error": evaluate_error})
            assert raw.call("POST", "/v1/result", reply)[0] == 204
            continue
        if kind == 5:
            return None, None
        if kind == 2:
            return header, payload


def test_crafted_tensors_and_ill_formed_text_get_4xx_and_the_tracked_job_completes(site_factory, mlflow_server):
    site = site_factory(rounds=3, count=2, min_fit=1, max_mb=8)
    site.env.update(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="untrusted-edge")
    server = site.server()
    raw = RawClient(site.port, TOKENS["bravo"])
    status, body = raw.call("POST", "/v1/join")
    assert status == 200
    _, joined, _ = decode_message(body)
    raw.session, job_id = joined["session"], joined["job_id"]
    real = site.client("alpha", 0)
    not_utf8 = b"bad \xff\xfe\xc3( bytes \x80\x80"

    def refused(body_bytes, expected):
        status, reply = raw.call("POST", "/v1/result", body_bytes)
        assert status == expected, (status, reply)
        reply.decode("utf-8")  # never raw client bytes, never a native backtrace
        assert len(reply) < 1200 and b"0x" not in reply and b"frame #" not in reply, reply
        return reply

    # Round 1.
    header, payload = next_fit_task(raw, job_id, evaluate_error=not_utf8)
    ids = {"job_id": job_id, "task_id": header["task_id"], "round": header["round"]}
    result = dict(ids, num_examples=100)
    buffer_begin, tensors = decode_params(payload)
    name0, dtype0 = tensors[0][0], tensors[0][1]
    assert dtype0 == 1  # float32: 4 bytes an element

    def with_first(name, dims, data):
        crafted = [list(t) for t in tensors]
        crafted[0] = [name, dtype0, dims, bytearray(data)]
        return encode_message(6, result, encode_params(buffer_begin, crafted))

    # Shapes: 2^62 x 4 floats is 2^66 bytes, which wraps to 0 in 64 bits; negative, huge, rank 9.
    refused(with_first(name0, [1 << 62, 4], b""), 400)
    refused(with_first(name0, [1 << 61, 1 << 3], b""), 400)
    refused(with_first(name0, [-1, 4], b""), 400)
    refused(with_first(name0, [1 << 40], b"\0" * 64), 400)
    refused(with_first(name0, [1] * 9, b"\0" * 4), 400)
    # Fields of the wrong type, ill-formed or unbounded: refused before the result is taken (never 204 and failed later).
    refused(encode_message(6, dict(result, data_fingerprint=12345), payload), 400)
    refused(encode_message(6, dict(result, data_fingerprint=not_utf8), payload), 400)
    refused(encode_message(6, dict(result, data_fingerprint="ab" * 500), payload), 400)
    refused(encode_message(6, dict(result, num_examples="100"), payload), 400)
    refused(encode_message(6, {**result, b"metric/acc" + not_utf8: 0.5}, payload), 400)
    refused(encode_message(6, dict(result, **{f"metric/m{i}": 1.0 for i in range(65)}), payload), 400)
    refused(encode_message(6, dict(result, surprise="x"), payload), 400)
    # A tensor name that is not the model's (and not UTF-8): 422, and bravo fails round 1.
    reply = refused(with_first(name0.encode() + b"\xff", tensors[0][2], tensors[0][3]), 422)
    assert b"tensor 0" in reply, reply
    # Round 2: a task failure whose error text is long and not UTF-8 is taken (and made safe).
    header, payload = next_fit_task(raw, job_id, evaluate_error=not_utf8)
    failed = {"job_id": job_id, "task_id": header["task_id"], "round": header["round"], "error": not_utf8 * 2000}
    assert raw.call("POST", "/v1/result", encode_message(8, failed))[0] == 204
    # Round 3: a valid update with a fingerprint and metrics is taken.
    header, payload = next_fit_task(raw, job_id, evaluate_error=not_utf8)
    good = {"job_id": job_id, "task_id": header["task_id"], "round": header["round"], "num_examples": 100,
            "data_fingerprint": "ab" * 32, "metric/train_loss": 0.5, "train_seconds": 0.1}
    assert raw.call("POST", "/v1/result", encode_message(6, good, payload))[0] == 204
    assert next_fit_task(raw, job_id, evaluate_error=not_utf8) == (None, None)

    assert server.wait(timeout=120) == 0, server.log.read_text(errors="replace")
    assert real.wait(timeout=30) == 0
    report = report_of(server)
    ok = [(r["metrics"]["clients_ok"], r["metrics"]["clients_failed"]) for r in report["rounds"]]
    assert ok == [(1, 1), (1, 1), (2, 0)], ok
    log = server.log.read_bytes().decode("utf-8")  # every line valid UTF-8
    assert "refused POST /v1/result from client bravo" in log and "internal error" not in log
    jobs = json.loads(fedtrack(["runs", "--json"], cwd=site.path, env=site.env).stdout)
    assert len(jobs) == 1 and jobs[0]["status"] == "FINISHED", jobs
    assert [(r["round"], r["status"]) for r in jobs[0]["rounds"]] == [(n, "FINISHED") for n in (1, 2, 3)]
    assert report["tracking"]["pending_writes"] == 0, report["tracking"]
    client = mlflow_client(mlflow_server.uri)
    experiment = client.get_experiment_by_name("untrusted-edge")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs), [r.info for r in runs]
    texts = [v for r in runs for v in list(r.data.tags.values()) + list(r.data.params.values())]
    assert any("failed on the client: bad \ufffd" in t for t in texts), texts  # recorded, made valid UTF-8


def test_two_processes_sharing_a_token_do_not_rejoin_in_a_loop(site_factory):
    site = site_factory(rounds=3, count=2, min_fit=2)
    server = site.server()
    first = site.client("alpha", 0)
    wait_for(lambda: "client alpha joined" in server.log.read_text(), 60, "alpha to join")
    twin = site.client("alpha-twin", 0, token=TOKENS["alpha"])  # a second process with alpha's token
    bravo = site.client("bravo", 1)
    assert server.wait(timeout=240) == 0, server.log.read_text()[-3000:]
    assert first.wait(timeout=30) == 0 and bravo.wait(timeout=30) == 0
    os.killpg(twin.pid, signal.SIGKILL)  # it waits for the token's session to end
    twin.wait()
    log = server.log.read_text()
    assert log.count("client alpha joined") == 1, log.count("client alpha joined")
    assert log.count("used by more than one process") == 1, log
    assert len(log) < 20_000, len(log)
    twin_log = twin.log.read_text()
    assert "already in use by a live session" in twin_log and len(twin_log) < 5_000, twin_log[:2000]
    report = report_of(server)
    assert [r["metrics"]["clients_ok"] for r in report["rounds"]] == [2, 2, 2]


class Flood(threading.Thread):
    """Holds `idle` connections that send nothing (from `idle_from`) and `slow` ones trickling a request head
    one byte a second (from 127.0.0.2-6); a connection the server closes is opened again `reopen_after` s
    later (None: never)."""

    def __init__(self, port, idle=500, slow=500, reopen_after=1.0, idle_from="127.0.0.1", slow_from=None,
                 slow_start=b"POST /v1/join HTTP/1.1\r\nHost: x\r\nX-Slow: "):
        super().__init__(daemon=True)
        self.port = port
        self.slow_start = slow_start
        self.reopen_after = reopen_after
        self.slots = [idle_from] * idle + [slow_from or f"127.0.0.{2 + i % 5}" for i in range(slow)]
        self.closed_at = [0.0] * len(self.slots)
        self.idle = idle
        self.socks = [None] * len(self.slots)
        self.opened_at = [0.0] * len(self.slots)
        self.generation = [0] * len(self.slots)
        self.first_lifetimes = []  # seconds each first-generation connection lived until the server closed it
        self.opened = 0
        self.stopping = threading.Event()

    def open(self, i):
        s = socket.socket()
        try:
            s.bind((self.slots[i], 0))
            s.settimeout(2)
            s.connect(("127.0.0.1", self.port))
            if i >= self.idle:
                s.sendall(self.slow_start)
            s.setblocking(False)
        except OSError:
            s.close()
            return
        self.socks[i] = s
        self.opened_at[i] = time.time()
        self.opened += 1

    def closed(self, i):
        self.socks[i].close()
        self.socks[i] = None
        self.closed_at[i] = time.time()
        if self.generation[i] == 0:
            self.first_lifetimes.append(time.time() - self.opened_at[i])
        self.generation[i] += 1

    def run(self):
        poller = select.poll()
        last_trickle = 0.0
        while not self.stopping.is_set():
            for i, s in enumerate(self.socks):
                if s is None and not self.stopping.is_set() and (self.generation[i] == 0 or (
                        self.reopen_after is not None and time.time() - self.closed_at[i] >= self.reopen_after)):
                    self.open(i)
            poller = select.poll()
            index = {}
            for i, s in enumerate(self.socks):
                if s is not None:
                    poller.register(s.fileno(), select.POLLIN)
                    index[s.fileno()] = i
            for fd, _ in poller.poll(200):
                i = index[fd]
                try:
                    data = self.socks[i].recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.closed(i)
            if time.time() - last_trickle >= 1:
                last_trickle = time.time()
                for i in range(self.idle, len(self.socks)):
                    if self.socks[i] is not None:
                        try:
                            self.socks[i].send(b"a")
                        except OSError:
                            self.closed(i)

    def stop(self):
        self.stopping.set()
        self.join()
        for s in self.socks:
            if s is not None:
                s.close()


def test_a_flood_of_idle_and_slow_connections_does_not_keep_sites_out(site_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    site = site_factory(rounds=4, count=3, min_fit=3, client_timeout=10)
    server = site.server()
    # Below the caps, idle and trickling connections are closed at the head deadline.
    few = Flood(site.port, idle=10, slow=10, reopen_after=None, idle_from="127.0.0.9", slow_from="127.0.0.10")
    few.start()
    try:
        wait_for(lambda: len(few.first_lifetimes) == 20, 60, "the server to close 20 connections at the deadline")
    finally:
        few.stop()
    # Not before the 5 s head deadline (counted from the accept, after our connect), not held for long after.
    assert 4.5 <= min(few.first_lifetimes) and max(few.first_lifetimes) < 60, sorted(few.first_lifetimes)

    # 500 idle + 500 trickling connections, each opened again a second after the server closes it.
    flood = Flood(site.port)
    flood.start()
    try:
        wait_for(lambda: flood.opened >= 1000, 60, "1000 flood connections")
        # The server closes every first connection of the flood itself (at the head deadline or for a newer
        # one past a cap) while it waits for its sites; the flood opens them again and goes on. (Checked
        # before the sites start, so a job that finishes quickly cannot race this check.)
        wait_for(lambda: len(flood.first_lifetimes) == 1000, 90, "the server to close the first 1000 connections")
        assert server.poll() is None and flood.is_alive() and flood.opened > 1000
        # The job needs all three sites (clients.count = 3): they join while the flood goes on.
        opened_before_sites = flood.opened
        clients = [site.client(n, i) for i, n in enumerate(list(TOKENS)[:3])]
        wait_for(lambda: "round 1/4" in server.log.read_text() or server.poll() is not None, 120,
                 "the three sites to join during the flood and round 1 to finish")
        assert flood.is_alive() and flood.opened > opened_before_sites, "the flood went on while the sites joined"
    finally:
        flood.stop()
    assert max(flood.first_lifetimes) < 60, sorted(flood.first_lifetimes)[-5:]
    assert server.wait(timeout=300) == 0, server.log.read_text()[-3000:]
    for c in clients:
        assert c.wait(timeout=30) == 0, c.log.read_text()
    log = server.log.read_text()
    assert "connection gate: closed" in log and len(log) < 100_000, len(log)
    report = report_of(server)
    assert [r["metrics"]["clients_ok"] for r in report["rounds"]] == [3, 3, 3, 3]


# --- damaged site data ----------------------------------------------------------------------

def test_a_client_whose_label_file_is_damaged_stops_with_exit_5_naming_the_record(site_factory):
    site = site_factory()
    labels = site.path / "shards" / "0" / "train-labels-idx1-ubyte"
    damaged = bytearray(labels.read_bytes())
    damaged[8 + 17] = 200  # record 17 (after the 8-byte IDX header) becomes class 200
    labels.write_bytes(bytes(damaged))
    site.server()
    client = site.client("alpha", 0)
    assert client.wait(timeout=120) == 5, client.log.read_text()
    assert ("shards/0/train-labels-idx1-ubyte: record 17 has label 200, outside the dataset's 10 classes (0..9)"
            in client.log.read_text()), client.log.read_text()
