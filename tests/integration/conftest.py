import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from mlflow_server import ADMIN_PASSWORD, MlflowServer  # noqa: E402

FEDTRACK = os.environ.get("FEDTRACK_EXE", "")

# A small real job: a slice of Fashion-MNIST, 4 clients; a few seconds at most.
SMALL_JOB = ["--set", "data.limit_train=3000", "--set", "data.limit_test=500", "--set", "clients.count=4"]


@pytest.fixture(scope="session", autouse=True)
def fedtrack_exe():
    if not FEDTRACK or not os.path.exists(FEDTRACK):
        pytest.exit(f"FEDTRACK_EXE must name the built fedtrack executable (got {FEDTRACK!r})", returncode=2)
    return FEDTRACK


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    with MlflowServer(str(tmp_path_factory.mktemp("mlflow"))) as server:
        yield server


@pytest.fixture
def fresh_mlflow_server(tmp_path_factory):
    server = MlflowServer(str(tmp_path_factory.mktemp("mlflow-fresh")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth_mlflow_server(tmp_path_factory):
    with MlflowServer(str(tmp_path_factory.mktemp("mlflow-auth")), auth=True) as server:
        yield server


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(extra)
    return env


def fedtrack(args, cwd, env, timeout=300):
    return subprocess.run([FEDTRACK] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def mlflow_client(uri, username=None, password=None):
    import mlflow

    if username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    else:
        os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
        os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)
    return mlflow.MlflowClient(tracking_uri=uri)


__all__ = ["ADMIN_PASSWORD", "SMALL_JOB", "clean_env", "fedtrack", "mlflow_client"]
