"""versioning.push: true against real git servers on loopback: git http-backend
behind Basic auth, and sshd with a generated key."""

import json
import os
import subprocess

import pytest

from conftest import SMALL_JOB, clean_env, fedtrack
from git_servers import GitHttpServer, Sshd, basic

USER, TOKEN = "ci-bot", "tok-3f9a1c7e55"
GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def env_for(tmp_path, **extra):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    env = clean_env(HOME=str(home), **GIT_ENV, **extra)
    for k in ("FEDTRACK_GIT_TOKEN", "FEDTRACK_GIT_USERNAME", "FEDTRACK_GIT_SSH_KEY", "SSH_AUTH_SOCK"):
        if k not in extra:
            env.pop(k, None)
    return env


def git(args, cwd, env=None, check=True):
    r = subprocess.run(["git"] + args, cwd=cwd, env=env or clean_env(**GIT_ENV), capture_output=True, text=True,
                       timeout=120)
    assert not check or r.returncode == 0, f"git {args} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout.strip()


def model_repo(tmp_path, url, name="models"):
    repo = tmp_path / name
    git(["init", "-q", "-b", "main", str(repo)], tmp_path)
    git(["remote", "add", "origin", url], repo)
    return repo


def run_job(tmp_path, repo, env, rounds=1, extra=()):
    return fedtrack(["run", "--json", "--set", f"rounds={rounds}", "--set", f"versioning.repo={repo}",
                     "--set", "versioning.push=true"] + list(extra) + SMALL_JOB, tmp_path, env)


def rounds_of(result):
    return json.loads(result.stdout.strip().splitlines()[-1])["versioning"]["rounds"]


def on_server(bare, rev):
    r = subprocess.run(["git", "-C", bare, "rev-parse", "--verify", "-q", rev + "^{commit}"], capture_output=True,
                       text=True)
    return r.stdout.strip() if r.returncode == 0 else None


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    with GitHttpServer(root, USER, TOKEN) as server:
        yield server


def test_https_token_from_the_environment_pushes_commits_and_tags(tmp_path, http_server):
    bare = http_server.bare("models")
    repo = model_repo(tmp_path, http_server.url("models"))
    r = run_job(tmp_path, repo, env_for(tmp_path, FEDTRACK_GIT_TOKEN=TOKEN, FEDTRACK_GIT_USERNAME=USER), rounds=2)
    assert r.returncode == 0, r.stderr
    rounds = rounds_of(r)
    assert len(rounds) == 2
    for x in rounds:
        assert on_server(bare, x["tag"]) == x["commit"]
    assert on_server(bare, "refs/heads/main") == rounds[-1]["commit"]
    assert TOKEN not in r.stdout + r.stderr
    assert http_server.requests and all(ok for _, _, ok in http_server.requests), \
        "the token goes with the first request: no 401 round trip (libgit2 1.5 cannot replay after a 401 body)"


def test_https_extraheader_as_actions_checkout_sets_it(tmp_path, http_server):
    bare = http_server.bare("models")
    repo = model_repo(tmp_path, http_server.url("models"))
    git(["config", f"http.http://127.0.0.1:{http_server.port}/.extraheader", "AUTHORIZATION: " + basic(USER, TOKEN)],
        repo)
    r = run_job(tmp_path, repo, env_for(tmp_path))
    assert r.returncode == 0, r.stderr
    (x,) = rounds_of(r)
    assert on_server(bare, x["tag"]) == x["commit"]
    assert all(ok for _, _, ok in http_server.requests), "the header goes with every request, no 401 round trip"


def test_refused_credentials_exit_6_keep_the_commit_and_the_next_run_pushes_it(tmp_path, http_server):
    bare = http_server.bare("models")
    url = http_server.url("models")
    repo = model_repo(tmp_path, url)
    bad = run_job(tmp_path, repo, env_for(tmp_path, FEDTRACK_GIT_TOKEN="wrong-token"))
    assert bad.returncode == 6, bad.stderr
    line = bad.stderr.strip().splitlines()[-1]
    assert f"git push to origin ({url})" in line and "refused the credentials" in line, line
    assert "FEDTRACK_GIT_TOKEN" in line and "wrong-token" not in bad.stderr + bad.stdout
    local_tags = git(["tag", "--list", "fedtrack/*"], repo).split()
    assert len(local_tags) == 1, "the round's commit and tag stay in the local repository"
    assert on_server(bare, "refs/heads/main") is None

    # The retry is the job's own: `fedtrack run --resume` replays the round, keeps its commit and tag, pushes them.
    good = run_job(tmp_path, repo, env_for(tmp_path, FEDTRACK_GIT_TOKEN=TOKEN, FEDTRACK_GIT_USERNAME=USER),
                   extra=["--resume"])
    assert good.returncode == 0, good.stderr
    (x,) = rounds_of(good)
    assert x["tag"] == local_tags[0]
    assert on_server(bare, x["tag"]) == x["commit"] == git(["rev-parse", local_tags[0] + "^{commit}"], repo)
    assert on_server(bare, "refs/heads/main") == x["commit"]


def test_a_password_in_the_remote_url_is_used_and_never_shown_or_stored(tmp_path, http_server):
    secret = "pw-Zq81xKv0"
    http_server.password = secret
    bare = http_server.bare("models")
    repo = model_repo(tmp_path, http_server.url("models", f"{USER}:{secret}"))
    env = env_for(tmp_path)
    ok = run_job(tmp_path, repo, env)
    assert ok.returncode == 0, ok.stderr
    (x,) = rounds_of(ok)
    assert on_server(bare, x["tag"]) == x["commit"]
    # Wrong password in the URL: refused, named without it.
    git(["remote", "set-url", "origin", http_server.url("models", f"{USER}:{secret}-old")], repo)
    bad = run_job(tmp_path, repo, env)
    assert bad.returncode == 6, bad.stderr
    assert f"origin ({http_server.url('models')})" in bad.stderr
    outputs = ok.stdout + ok.stderr + bad.stdout + bad.stderr
    assert secret not in outputs
    # Nothing fedtrack wrote holds it: journal, commits, tags, DVC files, refs, logs
    # (the user's own .git/config holds the URL, as git keeps it).
    leaks = []
    for folder, _, files in os.walk(tmp_path):
        if folder.startswith(str(tmp_path / "srv")):
            continue
        for name in files:
            path = os.path.join(folder, name)
            if path == str(repo / ".git" / "config"):
                continue
            with open(path, "rb") as f:
                if secret.encode() in f.read():
                    leaks.append(path)
    assert leaks == []
    assert secret not in git(["log", "--all", "--format=%B"], repo)
    journal = tmp_path / ".fedtrack" / "journal.sqlite"
    assert journal.exists()


def test_origin_moved_on_round_commit_is_rebased_unless_origin_touched_fedtracks_files(tmp_path, http_server):
    bare = http_server.bare("models")
    repo = model_repo(tmp_path, http_server.url("models"))
    env = env_for(tmp_path, FEDTRACK_GIT_TOKEN=TOKEN, FEDTRACK_GIT_USERNAME=USER)
    first = run_job(tmp_path, repo, env)
    assert first.returncode == 0, first.stderr

    # Another clone pushes a commit that touches an unrelated file.
    other = tmp_path / "other"
    auth = ["-c", f"http.extraheader=Authorization: {basic(USER, TOKEN)}"]
    git(auth + ["clone", "-q", http_server.url("models"), str(other)], tmp_path)
    (other / "NOTES.md").write_text("notes from another job\n")
    git(["add", "NOTES.md"], other)
    git(["commit", "-q", "-m", "notes"], other)
    git(auth + ["push", "-q", "origin", "main"], other)
    notes = git(["rev-parse", "HEAD"], other)

    second = run_job(tmp_path, repo, env)
    assert second.returncode == 0, second.stderr
    assert "rebased 1 round commit(s)" in second.stderr
    (x,) = rounds_of(second)
    assert on_server(bare, "refs/heads/main") == x["commit"] == git(["rev-parse", "HEAD"], repo)
    assert on_server(bare, x["tag"]) == x["commit"]
    assert git(["merge-base", "--is-ancestor", notes, x["commit"]], repo) == ""
    assert (repo / "NOTES.md").read_text() == "notes from another job\n"
    assert git(["status", "--porcelain"], repo) == ""

    # Another clone changes a file fedtrack writes: a clear error, nothing rebased.
    git(auth + ["pull", "-q", "origin", "main"], other)
    metrics = other / "dvclive" / "metrics.json"
    metrics.write_text(metrics.read_text().replace("{", '{"edited": 1, ', 1))
    git(["commit", "-q", "-am", "edit the metrics by hand"], other)
    git(auth + ["push", "-q", "origin", "main"], other)
    before = git(["rev-parse", "HEAD"], repo)
    third = run_job(tmp_path, repo, env)
    assert third.returncode == 7, third.stderr
    line = third.stderr.strip().splitlines()[-1]
    assert "also changes dvclive/metrics.json" in line and "edit the metrics by hand" in line, line
    assert git(["rev-parse", "HEAD~1"], repo) == before, "the round's commit stays, on the old head"


@pytest.fixture
def sshd(tmp_path):
    with Sshd(tmp_path / "sshd") as server:
        yield server


def test_ssh_push_with_a_key_file_and_refusals(tmp_path, sshd):
    bare = tmp_path / "srv" / "models.git"
    git(["init", "-q", "--bare", "-b", "main", str(bare)], tmp_path)
    repo = model_repo(tmp_path, sshd.url(str(bare)))
    key = sshd.user_key("ci_key")
    sshd.authorize(key)
    stranger = sshd.user_key("stranger_key")
    env = env_for(tmp_path, FEDTRACK_GIT_SSH_KEY=key)
    known_hosts = tmp_path / "home" / ".ssh" / "known_hosts"

    # Host key not in ~/.ssh/known_hosts: refused, with its fingerprint.
    unknown = run_job(tmp_path, repo, env)
    assert unknown.returncode == 6, unknown.stderr
    assert "host key of 127.0.0.1" in unknown.stderr and "SHA256:" in unknown.stderr

    known_hosts.write_text(sshd.known_hosts_line())
    wrong = run_job(tmp_path, repo, env_for(tmp_path, FEDTRACK_GIT_SSH_KEY=stranger), extra=["--resume"])
    assert wrong.returncode == 6, wrong.stderr
    assert "refused the credentials" in wrong.stderr and stranger in wrong.stderr, wrong.stderr

    good = run_job(tmp_path, repo, env, extra=["--resume"])
    assert good.returncode == 0, good.stderr
    (x,) = rounds_of(good)
    assert on_server(str(bare), x["tag"]) == x["commit"]
    assert on_server(str(bare), "refs/heads/main") == x["commit"]

    # ssh-agent when SSH_AUTH_SOCK is set and no key file is named.
    sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            subprocess.run(["sleep", "0.05"])
        subprocess.run(["ssh-add", "-q", key], env=dict(os.environ, SSH_AUTH_SOCK=sock), check=True,
                       capture_output=True)
        by_agent = run_job(tmp_path, repo, env_for(tmp_path, SSH_AUTH_SOCK=sock))
        assert by_agent.returncode == 0, by_agent.stderr
        (y,) = rounds_of(by_agent)
        assert on_server(str(bare), y["tag"]) == y["commit"] == on_server(str(bare), "refs/heads/main")
    finally:
        agent.terminate()
        agent.wait(timeout=30)
