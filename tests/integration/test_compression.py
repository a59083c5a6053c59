"""Update compression over the network: fedtrack server + fedtrack client on loopback.

Each mode's job completes, and the bytes a byte-counting proxy sees on the
sockets between the clients and the server match what the server reports:
the bodies of the task answers and result posts are exactly bytes_down /
bytes_up; the rest of the traffic is HTTP framing and the protocol's other
messages (join, wait, heartbeats). A hand-written client sends malformed
compressed updates: each gets 400 and the job goes on.
"""
import socket
import struct
import threading

import pytest

from test_deployment import (TOKENS, RawClient, Site, decode_message, decode_params, encode_message, free_port,
                             report_of)

JOB = """name: compressed
seed: 7
rounds: {rounds}
data:
  limit_train: 1200
  limit_test: 300
clients:
  count: 2
  min_fit: {min_fit}
  min_evaluate: 1
  min_available: 1
server:
  round_timeout: 60
  client_timeout: 30
  linger: 3
compression:
  uplink: {uplink}
  downlink: {downlink}
"""


class _Direction:
    """One direction of one connection: forwards bytes and splits them into HTTP/1.1 messages
    (Content-Length bodies; none without one) to know which bytes are bodies."""

    def __init__(self, log):
        self.log = log  # list of (start line, header bytes, body bytes, first 8 body bytes)
        self.buf = b""
        self.body_left = 0
        self.current = None
        self.total = 0

    def feed(self, data):
        self.total += len(data)
        self.buf += data
        while self.buf:
            if self.current is not None:
                take = min(self.body_left, len(self.buf))
                if len(self.current[3]) < 8:
                    self.current[3] += self.buf[:8 - len(self.current[3])]
                self.buf = self.buf[take:]
                self.body_left -= take
                self.current[2] += take
                if self.body_left == 0:
                    self.log.append(tuple(self.current))
                    self.current = None
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end + 4], self.buf[end + 4:]
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
                assert name.strip().lower() != "transfer-encoding", line
            self.current = [lines[0], len(head), 0, b""]
            self.body_left = length
            if length == 0:
                self.log.append(tuple(self.current))
                self.current = None


class CountingProxy:
    """A TCP proxy on loopback in front of the server that counts every byte each way."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.port = free_port()
        self.requests, self.responses = [], []
        self.up, self.down = [], []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            up, down = _Direction(self.requests), _Direction(self.responses)
            with self.lock:
                self.up.append(up)
                self.down.append(down)
            threading.Thread(target=self._pump, args=(client, server, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, down), daemon=True).start()

    def _pump(self, src, dst, direction):
        try:
            while True:
                data = src.recv(1 << 20)
                if not data:
                    break
                with self.lock:
                    direction.feed(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def totals(self):
        with self.lock:
            return sum(d.total for d in self.up), sum(d.total for d in self.down)

    def close(self):
        self.sock.close()


@pytest.fixture
def compressed_site(tmp_path):
    made = []

    def make(uplink, downlink, rounds=1, min_fit=2):
        d = tmp_path / f"{uplink}-{downlink}"
        d.mkdir()
        s = Site(d, job=JOB.format(rounds=rounds, min_fit=min_fit, uplink=uplink, downlink=downlink))
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


# The uncompressed path is test_deployment.py's; the ratios below are against the FTPM sizes the server computes.
MODES = [("fp16", "fp16"), ("int8", "int8"), ("topk", "none")]


def run_through_proxy(site):
    server = site.server()
    proxy = CountingProxy(site.port)
    clients = []
    for i, name in enumerate(list(TOKENS)[:2]):
        site_port, site.port = site.port, proxy.port  # the clients dial the proxy
        clients.append(site.client(name, i))
        site.port = site_port
    assert server.wait(timeout=240) == 0, server.log.read_text()
    for c in clients:
        assert c.wait(timeout=60) == 0, c.log.read_text()
    proxy.close()
    return report_of(server), proxy


def test_every_mode_completes_and_the_bytes_on_the_wire_are_the_reported_ones(compressed_site):
    sent = {}
    for uplink, downlink in MODES:
        report, proxy = run_through_proxy(compressed_site(uplink, downlink))
        rounds = report["rounds"]
        assert [r["metrics"]["clients_ok"] for r in rounds] == [2], rounds
        reported_up = sum(r["metrics"]["bytes_up"] for r in rounds)
        reported_down = sum(r["metrics"]["bytes_down"] for r in rounds)
        # Bodies on the wire: every result posted, every fit / evaluate task answered (FTMS kind 2, 3).
        results = [m for m in proxy.requests if m[0].startswith("POST /v1/result ")]
        tasks = [m for m in proxy.responses if m[3][:4] == b"FTMS" and m[3][6] in (2, 3)]
        assert len(results) == len(tasks) >= 3, (proxy.requests, proxy.responses)
        assert sum(m[2] for m in results) == reported_up
        assert sum(m[2] for m in tasks) == reported_down
        # Everything else is HTTP framing and the protocol's small messages.
        total_up, total_down = proxy.totals()
        framing_up = sum(m[1] for m in proxy.requests) + sum(m[2] for m in proxy.requests if m not in results)
        framing_down = sum(m[1] for m in proxy.responses) + sum(m[2] for m in proxy.responses if m not in tasks)
        assert total_up == reported_up + framing_up
        assert total_down == reported_down + framing_down
        assert framing_up <= 1000 * len(proxy.requests) and framing_down <= 1000 * len(proxy.responses)
        metrics = rounds[-1]["metrics"]
        if uplink == "topk":  # one round of 1 % of the update: it learns, slowly
            assert report["final"]["eval_loss"] < report["initial"]["eval_loss"], report
        else:
            assert report["final"]["eval_accuracy"] > report["initial"]["eval_accuracy"] + 0.1, report
        sent[uplink] = (metrics["compression_ratio_up"], metrics["compression_ratio_down"])
    # Fit results dominate the uplink; evaluate results are a few hundred bytes each.
    assert sent["fp16"][0] > 1.9 and sent["fp16"][1] > 1.9, sent
    assert sent["int8"][0] > 3.8 and sent["int8"][1] > 3.8, sent
    assert sent["topk"][0] > 40 and sent["topk"][1] == 1.0, sent


# --- malformed compressed updates ----------------------------------------------------------

def ftcu(codec, tensors):
    """tensors: list of (numel, body bytes)."""
    out = b"FTCU" + struct.pack("<HBBI", 1, codec, 0, len(tensors))
    for numel, body in tensors:
        out += struct.pack("<Q", numel) + body
    return out


def topk_body(indices, values):
    return struct.pack("<Q", len(indices)) + struct.pack(f"<{len(indices)}I", *indices) + struct.pack(
        f"<{len(values)}f", *values)


def test_malformed_compressed_updates_get_400_and_the_job_goes_on(compressed_site):
    site = compressed_site("topk", "none", rounds=2, min_fit=1)
    server = site.server()
    raw = RawClient(site.port, TOKENS["bravo"])
    status, body = raw.call("POST", "/v1/join")
    assert status == 200
    kind, joined, _ = decode_message(body)
    assert joined["compression_uplink"] == "topk" and joined["compression_downlink"] == "none"
    raw.session, job_id = joined["session"], joined["job_id"]
    real = site.client("alpha", 0)

    def next_fit():
        while True:
            status, body = raw.call("GET", "/v1/task")
            assert status == 200
            kind, header, payload = decode_message(body)
            if kind == 3:
                raw.call("POST", "/v1/result", encode_message(8, {"job_id": job_id, "task_id": header["task_id"],
                                                                  "round": header["round"], "error": "no data"}))
            elif kind == 2:
                return header, payload
            elif kind == 5:
                return None, None

    for round_ in (1, 2):
        header, payload = next_fit()
        assert header is not None and "encoding" not in header  # downlink none: an FTPM model
        numels = []
        for _name, _dtype, dims, _data in decode_params(payload)[1]:
            n = 1
            for d in dims:
                n *= d
            numels.append(n)
        fields = {"job_id": job_id, "task_id": header["task_id"], "round": header["round"], "num_examples": 100,
                  "encoding": "ftcu-update"}

        def post(update):
            return raw.call("POST", "/v1/result", encode_message(6, fields, update))

        def zeros_except(first):
            return ftcu(3, [first] + [(n, topk_body([0], [0.0])) for n in numels[1:]])

        n0 = numels[0]
        bad = {
            "index out of range": zeros_except((n0, topk_body([1, n0], [0.1, 0.2]))),
            "duplicate index": zeros_except((n0, topk_body([5, 5], [0.1, 0.2]))),
            "unsorted indices": zeros_except((n0, topk_body([9, 5], [0.1, 0.2]))),
            "count above the tensor": zeros_except((n0, struct.pack("<Q", n0 + 1))),
            "NaN value": zeros_except((n0, topk_body([1], [float("nan")]))),
            "wrong element count": zeros_except((n0 + 1, topk_body([1], [0.1]))),
            "wrong tensor count": ftcu(3, [(n, topk_body([0], [0.0])) for n in numels[:-1]]),
            "NaN int8 scale": ftcu(2, [(n, struct.pack("<I", 256) + struct.pack("<f", float("nan")) * (
                (n + 255) // 256) + b"\0" * n) for n in numels]),
            "truncated": zeros_except((n0, topk_body([1], [0.1])))[:-3],
            "unknown version": b"FTCU" + struct.pack("<H", 7) + zeros_except((n0, topk_body([1], [0.1])))[6:],
        }
        for what, update in bad.items():
            status, body = post(update)
            assert status == 400, (what, status, body)
        status, body = raw.call("POST", "/v1/result", encode_message(6, dict(fields, encoding="ftcu-sparse"), b""))
        assert status == 400 and b"encoding" in body, body
        # A well-formed sparse update is taken.
        assert post(zeros_except((n0, topk_body([3, 7], [0.01, -0.02]))))[0] == 204
    assert next_fit() == (None, None)
    assert server.wait(timeout=120) == 0, server.log.read_text()
    assert real.wait(timeout=30) == 0
    report = report_of(server)
    assert [(r["metrics"]["clients_ok"], r["metrics"]["clients_failed"]) for r in report["rounds"]] == [(2, 0), (2, 0)]
    assert "refused POST /v1/result from client bravo" in server.log.read_text()
