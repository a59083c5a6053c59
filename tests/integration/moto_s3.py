"""A real S3-compatible server for tests: moto's standalone server on a free
loopback port, with signature checking on.

moto checks SigV4 signatures only once its "no auth" allowance is used up,
and only for access keys its IAM knows. The harness therefore creates an IAM
user with an allow-all policy and an access key (and any buckets) while the
allowance is unlimited, then turns checking on (POST /moto-api/reset-auth 0):
from then on a wrong secret gets SignatureDoesNotMatch and an unknown key
InvalidAccessKeyId, as from AWS. The server runs in its own process group
and is stopped with the whole group.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from mlflow_server import free_port

REGION = "us-east-1"


class MotoS3:
    def __init__(self, workdir, port=None):
        self.workdir = workdir
        self.port = port or free_port()
        self.process = None
        self.log_path = os.path.join(workdir, f"moto-{self.port}.log")
        self.access_key_id = None
        self.secret_access_key = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def _client(self, service, key="setup", secret="setup"):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret)

    def start(self, buckets=(), timeout=60):
        os.makedirs(self.workdir, exist_ok=True)
        exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
        if not os.path.exists(exe):
            raise RuntimeError(f"no moto_server next to {sys.executable}; install tests/requirements.txt")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        log = open(self.log_path, "w")
        self.process = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {open(self.log_path).read()[-2000:]}")
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2)
                break
            except Exception:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not answer in time")
                time.sleep(0.2)
        iam = self._client("iam")
        iam.create_user(UserName="fedtrack")
        iam.put_user_policy(UserName="fedtrack", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="fedtrack")["AccessKey"]
        self.access_key_id, self.secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        for bucket in buckets:
            self._client("s3").create_bucket(Bucket=bucket)
        req = urllib.request.Request(self.endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(req, timeout=10)
        return self

    def s3(self):
        """A boto3 S3 client with the valid credentials (signature checked)."""
        return self._client("s3", self.access_key_id, self.secret_access_key)

    def stop(self):
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
