"""An HTTP proxy that misbehaves in front of a real MLflow server, on a seeded schedule.

It forwards every request to the upstream server and, by its schedule,
spoils the answer the way a failing gateway or network does:

    error_after   forward, let the server do the work, then answer 5xx
    delay_after   forward, then hold the answer past the client's timeout
    drop_after    forward, then close the connection without an answer
    drop_before   close the connection without forwarding anything

The first requests of each kind named in `forced` (runs/create, log-batch,
runs/update by default) get each fault once, in the order above, so a run
always meets every fault where exactly-once matters; after that, each
request is spoiled with probability `rate`, the fault drawn from a
random.Random(seed). Only /api/ paths are spoiled. Stats are kept per path
and fault for the test to check that the faults happened. With
`outage_after=N` the first N /api/ requests pass untouched and every later
one is dropped before forwarding: a server that goes away mid-job.

As a script, for a long campaign by hand:
    python chaos_proxy.py --upstream http://127.0.0.1:5000 --seed 7 --rate 0.3 --delay 3
prints the proxy's address and runs until interrupted.
"""

import argparse
import collections
import http.client
import http.server
import random
import socket
import threading
import time
import urllib.parse

FAULTS = ("error_after", "delay_after", "drop_after", "drop_before")
FORCED_PATHS = ("runs/create", "runs/log-batch", "runs/update")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection", "te",
              "trailer", "upgrade"}


class _Schedule:
    def __init__(self, seed, rate, forced, outage_after=None):
        self.outage_after = outage_after
        self.api_requests = 0
        self.rng = random.Random(seed)
        self.rate = rate
        self.forced = {path: list(FAULTS) for path in forced}
        self.lock = threading.Lock()
        self.stats = collections.Counter()  # (path kind, fault) -> count

    def next_fault(self, path):
        if "/api/" not in path:
            return None
        kind = path.split("/api/2.0/mlflow/", 1)[-1].split("?", 1)[0]
        with self.lock:
            self.api_requests += 1
            queue = self.forced.get(kind)
            if self.outage_after is not None:
                fault = "drop_before" if self.api_requests > self.outage_after else None
            elif queue:
                fault = queue.pop(0)
            elif self.rng.random() < self.rate:
                fault = self.rng.choice(FAULTS)
            else:
                fault = None
            self.stats[(kind, fault or "none")] += 1
            return fault


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _forward(self, body):
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        result = (response.status, [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP], data)
        conn.close()
        return result

    def _answer(self, status, headers, data):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        proxy = self.server.proxy
        fault = proxy.schedule.next_fault(self.path)
        if fault == "drop_before":
            return self._drop()
        try:
            status, headers, data = self._forward(body)
        except OSError as e:
            return self._answer(502, [("Content-Type", "text/plain")], f"upstream: {e}".encode())
        if fault == "error_after":
            code = proxy.schedule.rng.choice((500, 502, 503, 504))
            return self._answer(code, [("Content-Type", "application/json")],
                                b'{"error_code": "INTERNAL_ERROR", "message": "chaos proxy: failed after forwarding"}')
        if fault == "drop_after":
            return self._drop()
        if fault == "delay_after":
            time.sleep(proxy.delay)
        try:
            self._answer(status, headers, data)
        except OSError:  # the client gave up waiting
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class ChaosProxy:
    def __init__(self, upstream, seed=1, rate=0.2, delay=2.5, forced=FORCED_PATHS, outage_after=None):
        self.upstream = urllib.parse.urlparse(upstream)
        self.delay = delay
        self.schedule = _Schedule(seed, rate, forced, outage_after)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.proxy = self
        self.thread = None

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def stats(self):
        with self.schedule.lock:
            return dict(self.schedule.stats)

    def faults_on(self, kind):
        return {fault for (k, fault), n in self.stats.items() if k == kind and fault != "none" and n > 0}

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--delay", type=float, default=2.5)
    args = parser.parse_args()
    with ChaosProxy(args.upstream, args.seed, args.rate, args.delay) as proxy:
        print(proxy.uri, flush=True)
        try:
            while True:
                time.sleep(5)
        except KeyboardInterrupt:
            pass
        for (kind, fault), n in sorted(proxy.stats.items()):
            print(f"{kind:40} {fault:12} {n}")


if __name__ == "__main__":
    main()
