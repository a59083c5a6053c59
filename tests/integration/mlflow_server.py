"""A real MLflow tracking server for tests, on a free loopback port.

SQLite backend store, artifacts served by the server (mlflow-artifacts:/),
optionally the basic-auth app. The server runs in its own process group and
is stopped with the whole group, so no worker outlives a test.

As a script it wraps a command:
    python mlflow_server.py [--auth] -- COMMAND ARGS...
starts a server, runs COMMAND with FEDTRACK_TEST_MLFLOW_URI set (and, with
--auth, FEDTRACK_TEST_MLFLOW_ADMIN_PASSWORD), stops the server, and exits
with COMMAND's status.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ADMIN_PASSWORD = "fedtrack-test-admin-pw"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_executable():
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    if not os.path.exists(exe):
        raise RuntimeError(f"no mlflow next to {sys.executable}; run scripts/test.sh to create the venv")
    return exe


class MlflowServer:
    def __init__(self, workdir, auth=False, port=None):
        self.workdir = workdir
        self.auth = auth
        self.port = port or free_port()
        self.process = None
        self.log_path = os.path.join(workdir, f"mlflow-{self.port}.log")

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=90):
        os.makedirs(self.workdir, exist_ok=True)
        cmd = [
            mlflow_executable(), "server",
            "--backend-store-uri", f"sqlite:///{self.workdir}/mlflow.db",
            "--artifacts-destination", os.path.join(self.workdir, "artifacts"),
            "--serve-artifacts",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]
        env = dict(os.environ)
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        if self.auth:
            cmd += ["--app-name", "basic-auth"]
            env["MLFLOW_AUTH_ADMIN_PASSWORD"] = ADMIN_PASSWORD
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = "fedtrack-tests"
            env["MLFLOW_AUTH_CONFIG_PATH"] = self._auth_config()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        cwd=self.workdir, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited early; see {self.log_path}:\n" + self.log_tail())
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout}s; see {self.log_path}")

    def _auth_config(self):
        path = os.path.join(self.workdir, "basic_auth.ini")
        with open(path, "w") as f:
            f.write("[mlflow]\n"
                    "default_permission = READ\n"
                    f"database_uri = sqlite:///{self.workdir}/basic_auth.db\n"
                    "admin_username = admin\n"
                    f"admin_password = {ADMIN_PASSWORD}\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
        return path

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Workers in the group that outlived the parent.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv):
    auth = "--auth" in argv[: argv.index("--")]
    command = argv[argv.index("--") + 1:]
    with tempfile.TemporaryDirectory(prefix="fedtrack-mlflow-") as workdir:
        with MlflowServer(workdir, auth=auth) as server:
            env = dict(os.environ, FEDTRACK_TEST_MLFLOW_URI=server.uri)
            if auth:
                env["FEDTRACK_TEST_MLFLOW_ADMIN_PASSWORD"] = ADMIN_PASSWORD
            return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
