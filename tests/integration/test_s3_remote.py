"""S3 DVC remotes against a real S3-compatible server (moto, signatures
checked) on loopback, and the real `dvc` (dvc-s3) reading what fedtrack
pushed."""

import hashlib
import json
import os
import re
import subprocess

import pytest

from conftest import fedtrack
from mlflow_server import free_port
from moto_s3 import MotoS3
from test_versioning import CSV_JOB, env_with_tools, md5, run

BUCKET = "models"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoS3(str(tmp_path_factory.mktemp("moto")))
    server.start(buckets=[BUCKET])
    yield server
    server.stop()


def aws_env(moto, **extra):
    env = {k: v for k, v in env_with_tools().items() if not k.startswith("AWS_")}
    env["HOME"] = extra.pop("HOME", env.get("HOME", "/nonexistent"))
    env.update(AWS_ACCESS_KEY_ID=moto.access_key_id, AWS_SECRET_ACCESS_KEY=moto.secret_access_key)
    env.update(extra)
    return env


def no_aws_env(home):
    env = {k: v for k, v in env_with_tools().items() if not k.startswith("AWS_")}
    env["HOME"] = str(home)
    return env


def report_of(r):
    return json.loads(r.stdout.strip().splitlines()[-1])


def s3_objects(moto, prefix):
    listing = moto.s3().list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    return {o["Key"]: o["Size"] for o in listing.get("Contents", [])}


def puts_in_log(moto):
    return len(re.findall(r'"PUT /' + BUCKET + r'/[^ ]*/files/md5/', open(moto.log_path).read()))


def init_dvc_repo(repo, env):
    run(["git", "init", "-q", str(repo)], repo.parent, env)
    run(["dvc", "init", "-q"], repo, env)


def assert_no_secret(secret, *texts):
    for t in texts:
        assert secret not in t


def test_job_pushes_every_round_to_s3_and_a_fresh_clone_dvc_pulls_it(tmp_path, moto):
    env = aws_env(moto)
    repo = tmp_path / "models-repo"
    repo.mkdir()
    init_dvc_repo(repo, env)
    # The endpoint as a user configures it for the remote versioning.remote names.
    run(["dvc", "remote", "add", "fedtrack", f"s3://{BUCKET}/team/fl"], repo, env)
    run(["dvc", "remote", "modify", "--local", "fedtrack", "endpointurl", moto.endpoint], repo, env)
    r = fedtrack(["run", "--json", "--set", f"versioning.repo={repo}",
                  "--set", f"versioning.remote=s3://{BUCKET}/team/fl"] + CSV_JOB + ["--set", "rounds=2"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    rounds = report_of(r)["versioning"]["rounds"]
    assert len(rounds) == 2
    objects = s3_objects(moto, "team/fl")
    for x in rounds:
        key = f"team/fl/files/md5/{x['md5'][:2]}/{x['md5'][2:]}"
        assert key in objects, objects
        body = moto.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert hashlib.md5(body).hexdigest() == x["md5"]
    assert "are in sync" in run(["dvc", "status", "-c"], repo, env)
    assert run(["git", "status", "--porcelain"], repo, env) == ""
    config = (repo / ".dvc" / "config").read_text()
    assert "remote = fedtrack" in config and f"s3://{BUCKET}/team/fl" in config

    # A fresh clone gets every round's bytes with the real dvc pull.
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    run(["dvc", "remote", "modify", "--local", "fedtrack", "endpointurl", moto.endpoint], clone, env)
    for x in rounds:
        run(["git", "checkout", "-q", x["tag"]], clone, env)
        run(["dvc", "pull", "-q"], clone, env)
        assert md5(clone / "models" / "global.pt") == x["md5"]

    # Another repository pushing the same models (the job is deterministic)
    # to the same remote uploads nothing: every object is already there.
    # The endpoint from AWS_ENDPOINT_URL_S3 this time, as botocore reads it.
    before = puts_in_log(moto)
    other = tmp_path / "other-repo"
    r2 = fedtrack(["run", "--json", "--set", f"versioning.repo={other}",
                   "--set", f"versioning.remote=s3://{BUCKET}/team/fl"] + CSV_JOB + ["--set", "rounds=2"], tmp_path,
                  dict(env, AWS_ENDPOINT_URL_S3=moto.endpoint))
    assert r2.returncode == 0, r2.stderr
    assert [x["md5"] for x in report_of(r2)["versioning"]["rounds"]] == [x["md5"] for x in rounds]
    assert puts_in_log(moto) == before


def test_default_remote_from_dvc_config_credentials_in_config_local_and_restore_from_s3(tmp_path, moto):
    home = tmp_path / "home"
    home.mkdir()
    env = no_aws_env(home)  # credentials only in .dvc/config.local
    repo = tmp_path / "models-repo"
    repo.mkdir()
    init_dvc_repo(repo, env)
    run(["dvc", "remote", "add", "-d", "storage", f"s3://{BUCKET}/default-remote"], repo, env)
    run(["dvc", "remote", "modify", "storage", "endpointurl", moto.endpoint], repo, env)
    run(["dvc", "remote", "modify", "--local", "storage", "access_key_id", moto.access_key_id], repo, env)
    run(["dvc", "remote", "modify", "--local", "storage", "secret_access_key", moto.secret_access_key], repo, env)
    r = fedtrack(["run", "--json", "--set", f"versioning.repo={repo}"] + CSV_JOB + ["--set", "rounds=2"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    rounds = report_of(r)["versioning"]["rounds"]
    objects = s3_objects(moto, "default-remote")
    assert {f"default-remote/files/md5/{x['md5'][:2]}/{x['md5'][2:]}" for x in rounds} <= set(objects)
    assert "are in sync" in run(["dvc", "status", "-c"], repo, env)

    # No secret anywhere: output, git history (messages, trailers, files), journal.
    log = run(["git", "log", "--all", "-p", "--format=%B"], repo, env)
    journal = (tmp_path / ".fedtrack" / "journal.sqlite").read_bytes().decode("latin-1")
    assert_no_secret(moto.secret_access_key, r.stdout, r.stderr, log, journal,
                     (repo / ".dvc" / "config").read_text())

    # The cache gone: restore fetches from S3 and checks the md5.
    subprocess.run(["chmod", "-R", "u+w", str(repo / ".dvc" / "cache")], check=True)
    subprocess.run(["rm", "-rf", str(repo / ".dvc" / "cache")], check=True)
    out = tmp_path / "restored.pt"
    for x in rounds:
        res = fedtrack(["restore", "--repo", str(repo), "--rev", x["tag"], "--out", str(out)], tmp_path, env)
        assert res.returncode == 0, res.stderr
        assert md5(out) == x["md5"]
    # A damaged object in the bucket is refused, nothing written.
    first = rounds[0]
    moto.s3().put_object(Bucket=BUCKET, Key=f"default-remote/files/md5/{first['md5'][:2]}/{first['md5'][2:]}",
                         Body=b"bit rot")
    os.remove(out)
    res = fedtrack(["restore", "--repo", str(repo), "--rev", first["tag"], "--out", str(out)], tmp_path, env)
    assert res.returncode == 5, res.stderr
    assert "DVC remote 'storage'" in res.stderr and "is corrupt" in res.stderr
    assert not out.exists()


def test_versioned_onnx_export_goes_to_s3_and_restores_from_it(tmp_path, moto):
    env = aws_env(moto)
    repo = tmp_path / "models-repo"
    repo.mkdir()
    init_dvc_repo(repo, env)
    run(["dvc", "remote", "add", "fedtrack", f"s3://{BUCKET}/export"], repo, env)
    run(["dvc", "remote", "modify", "--local", "fedtrack", "endpointurl", moto.endpoint], repo, env)
    r = fedtrack(["run", "--json", "--set", f"versioning.repo={repo}", "--set", "versioning.export=[onnx]",
                  "--set", f"versioning.remote=s3://{BUCKET}/export"] + CSV_JOB + ["--set", "rounds=1"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    x = report_of(r)["versioning"]["rounds"][0]
    onnx_md5 = {o["path"]: o["md5"] for o in x["outputs"]}["models/global.onnx"]
    assert f"export/files/md5/{onnx_md5[:2]}/{onnx_md5[2:]}" in s3_objects(moto, "export")
    assert "are in sync" in run(["dvc", "status", "-c"], repo, env)
    subprocess.run(["chmod", "-R", "u+w", str(repo / ".dvc" / "cache")], check=True)
    subprocess.run(["rm", "-rf", str(repo / ".dvc" / "cache")], check=True)
    out = tmp_path / "restored.onnx"
    res = fedtrack(["restore", "--repo", str(repo), "--rev", x["tag"], "--path", "models/global.onnx",
                    "--out", str(out)], tmp_path, env)
    assert res.returncode == 0 and "from the remote" in res.stdout, res.stdout + res.stderr
    assert md5(out) == onnx_md5


def test_refused_credentials_missing_bucket_unreachable_endpoint(tmp_path, moto):
    def attempt(name, remote, env):
        cwd = tmp_path / name  # each failed job leaves its own state file
        cwd.mkdir()
        repo = cwd / "models-repo"
        r = fedtrack(["run", "--json", "--set", f"versioning.repo={repo}",
                      "--set", f"versioning.remote={remote}"] + CSV_JOB + ["--set", "rounds=2"], cwd,
                     dict(env, AWS_ENDPOINT_URL_S3=env.get("AWS_ENDPOINT_URL_S3", moto.endpoint)))
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("fedtrack: ")]
        assert len(lines) == 1, r.stderr
        tags = subprocess.run(["git", "tag", "-l"], cwd=repo, capture_output=True, text=True).stdout \
            if repo.exists() else ""
        assert tags == "", f"{name}: a round was committed: {tags}"
        config = repo / ".dvc" / "config"
        if remote.startswith("s3://models/bad") or "no-such-bucket" in remote:
            # refused at the start: the url is not made the default remote either
            assert not config.exists() or remote not in config.read_text()
        return r, lines[0]

    wrong_secret = "wrong-secret-" + "x" * 20
    r, line = attempt("wrong-secret", f"s3://{BUCKET}/bad", aws_env(moto, AWS_SECRET_ACCESS_KEY=wrong_secret))
    assert r.returncode == 6, r.stderr
    assert "DVC remote 'fedtrack' (s3://models/bad)" in line and "SignatureDoesNotMatch" in line
    assert "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in line
    assert_no_secret(wrong_secret, r.stdout, r.stderr)

    r, line = attempt("unknown-key", f"s3://{BUCKET}/bad", aws_env(moto, AWS_ACCESS_KEY_ID="AKIAUNKNOWN0000000000"))
    assert r.returncode == 6 and "InvalidAccessKeyId" in line, r.stderr

    r, line = attempt("no-credentials", f"s3://{BUCKET}/bad", no_aws_env(tmp_path))
    assert r.returncode == 6 and "no S3 credentials found" in line, r.stderr

    r, line = attempt("no-bucket", "s3://no-such-bucket/x", aws_env(moto))
    assert r.returncode == 3 and "bucket 'no-such-bucket' does not exist" in line, r.stderr

    dead = f"http://127.0.0.1:{free_port()}"
    r, line = attempt("unreachable", f"s3://{BUCKET}/x", aws_env(moto, AWS_ENDPOINT_URL_S3=dead))
    assert r.returncode == 4 and f"cannot reach {dead}" in line, r.stderr

    # Credentials that may read but not write: accepted at the start, the
    # first round's upload is refused; no round commit points at an object
    # the remote does not have.
    iam = moto._client("iam", moto.access_key_id, moto.secret_access_key)
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                                 "Resource": "*"}]}))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    r, line = attempt("read-only", f"s3://{BUCKET}/ro", aws_env(moto, AWS_ACCESS_KEY_ID=key["AccessKeyId"],
                                                                 AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"]))
    assert r.returncode == 6 and "AccessDenied" in line and "PUT s3://models/ro/files/md5/" in line, r.stderr
    assert_no_secret(key["SecretAccessKey"], r.stdout, r.stderr)
    assert s3_objects(moto, "ro") == {}


def test_temporary_credentials_need_their_session_token(tmp_path, moto):
    iam = moto._client("iam", moto.access_key_id, moto.secret_access_key)
    iam.create_role(RoleName="ci", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                 "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="ci", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    sts = moto._client("sts", moto.access_key_id, moto.secret_access_key)
    creds = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/ci", RoleSessionName="ci-run")["Credentials"]
    env = aws_env(moto, AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                  AWS_ENDPOINT_URL_S3=moto.endpoint)
    (tmp_path / "without").mkdir()
    r = fedtrack(["run", "--set", f"versioning.remote=s3://{BUCKET}/sts"] + CSV_JOB + ["--set", "rounds=1"],
                 tmp_path / "without", env)
    assert r.returncode == 6, r.stderr
    (tmp_path / "with").mkdir()
    r = fedtrack(["run", "--json", "--set", f"versioning.remote=s3://{BUCKET}/sts"] + CSV_JOB + ["--set", "rounds=1"],
                 tmp_path / "with", dict(env, AWS_SESSION_TOKEN=creds["SessionToken"]))
    assert r.returncode == 0, r.stderr
    digest = report_of(r)["versioning"]["rounds"][0]["md5"]
    assert f"sts/files/md5/{digest[:2]}/{digest[2:]}" in s3_objects(moto, "sts")
    assert_no_secret(creds["SessionToken"], r.stdout, r.stderr)
    assert_no_secret(creds["SecretAccessKey"], r.stdout, r.stderr)
