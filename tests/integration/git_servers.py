"""Real git servers on loopback for the push tests.

GitHttpServer: Debian's `git http-backend` (CGI) behind a small HTTP/1.1
server that demands Basic auth for every request, as a forge does for a
private repository. Sshd: OpenSSH's sshd on a free loopback port with a
generated host key, AuthorizedKeysFile in a temp folder, no PAM, so it runs
as root (CI) or as any user.
"""

import base64
import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
SSHD = "/usr/sbin/sshd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(user, password):
    return "basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class GitHttpServer:
    """Serves the bare repositories under `root` at http://127.0.0.1:PORT/NAME.git."""

    def __init__(self, root, user, password):
        self.root = str(root)
        self.user = user
        self.password = password
        self.requests = []  # (method, path, authorized)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.handle_git()

            def do_POST(self):
                self.handle_git()

            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

            def reply(self, status, headers, payload):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def handle_git(self):
                data = self.body() if self.command == "POST" else b""
                scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
                ok = scheme.lower() == "basic" and credentials == basic(server.user, server.password).split(" ")[1]
                url = urlsplit(self.path)
                server.requests.append((self.command, url.path, ok))
                if not ok:
                    self.reply(401, [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")],
                               b"authentication required\n")
                    return
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": server.root,
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": url.path,
                    "QUERY_STRING": url.query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(data)),
                    "REMOTE_USER": server.user,
                    "REMOTE_ADDR": "127.0.0.1",
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                r = subprocess.run([HTTP_BACKEND], input=data, env=env, capture_output=True, timeout=120)
                head, _, payload = r.stdout.partition(b"\r\n\r\n")
                if not _:
                    head, _, payload = r.stdout.partition(b"\n\n")
                status, headers = 200, []
                for line in head.decode("latin-1").splitlines():
                    if ":" not in line:
                        continue
                    k, v = line.split(":", 1)
                    if k.lower() == "status":
                        status = int(v.strip().split()[0])
                    else:
                        headers.append((k.strip(), v.strip()))
                self.reply(status, headers, payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name, userinfo=""):
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/{name}.git"

    def bare(self, name):
        path = os.path.join(self.root, name + ".git")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", path], check=True)
        subprocess.run(["git", "-C", path, "config", "http.receivepack", "true"], check=True)
        return path

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class Sshd:
    """sshd on 127.0.0.1:PORT accepting the public keys written to authorized_keys."""

    def __init__(self, folder):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self.host_key = os.path.join(self.folder, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key], check=True)
        self.authorized = os.path.join(self.folder, "authorized_keys")
        open(self.authorized, "w").close()
        os.chmod(self.authorized, 0o600)
        self.port = free_port()
        self.user = getpass.getuser()
        self.config = os.path.join(self.folder, "sshd_config")
        with open(self.config, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {os.path.join(self.folder, 'sshd.pid')}
AuthorizedKeysFile {self.authorized}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers {self.user}
PrintMotd no
LogLevel ERROR
""")
        self.proc = None

    def user_key(self, name):
        """A new key pair in the folder; returns the private key's path."""
        key = os.path.join(self.folder, name)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key, "-C", name], check=True)
        return key

    def authorize(self, key):
        with open(key + ".pub") as src, open(self.authorized, "a") as dst:
            dst.write(src.read())

    def known_hosts_line(self):
        with open(self.host_key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}\n"

    def url(self, path):
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def __enter__(self):
        # sshd wants its privilege-separation folder even when it is not root.
        os.makedirs("/run/sshd", exist_ok=True) if os.geteuid() == 0 else None
        self.proc = subprocess.Popen([shutil.which("sshd") or SSHD, "-D", "-e", "-f", self.config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("sshd did not listen on port %d" % self.port)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)
