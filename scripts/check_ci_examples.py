#!/usr/bin/env python3
"""Lints the CI examples in examples/ci with the real linters, plus one GitLab rule.

  check_ci_examples.py [ROOT]       self-test, then check the examples under ROOT (default: ..)
  check_ci_examples.py --self-test  prove each check finds what it is there to find

Checks:
  - examples/ci/github-actions.yml with actionlint (expressions, contexts,
    action inputs, and every `run:` script through shellcheck when shellcheck
    is installed: scripts/setup.sh --tests installs both) and against the
    GitHub workflow JSON schema (check-jsonschema's vendored copy);
  - examples/ci/gitlab-ci.yml against GitLab's CI JSON schema (vendored in
    check-jsonschema), then the rule the schema cannot express: variables a
    job receives from another job's `artifacts:reports:dotenv` exist only
    inside job scripts, so `rules:` / `only:` / `except:` must not read them
    (fedtrack's dotenv names all start with FEDTRACK_); and every job that
    keeps artifacts keeps them `when: always` (a failed gate's outputs are
    what the reader needs);
  - examples/ci/pipeline.sh with shellcheck.

Exit 0 when everything passes; 1 with the linters' messages otherwise. The
tools are looked up next to this interpreter (the test venv) and on PATH.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

BIN = pathlib.Path(sys.executable).parent
DOTENV_VARIABLE = re.compile(r"\$\{?FEDTRACK_[A-Z0-9_]*")


def tool(name):
    local = BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        sys.exit(f"check_ci_examples: {name} is not installed (bash scripts/setup.sh --tests installs it)")
    return found


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def gitlab_rule_problems(path):
    """Problems check-jsonschema cannot see in a GitLab CI file."""
    doc = yaml.safe_load(pathlib.Path(path).read_text())
    problems = []
    for name, job in (doc or {}).items():
        if not isinstance(job, dict) or name.startswith("."):
            continue
        conditions = []
        for rule in job.get("rules", []) or []:
            if isinstance(rule, dict) and "if" in rule:
                conditions.append(str(rule["if"]))
        for key in ("only", "except"):
            block = job.get(key)
            if isinstance(block, dict):
                conditions += [str(v) for v in block.get("variables", []) or []]
        for condition in conditions:
            if DOTENV_VARIABLE.search(condition):
                problems.append(f"{path}: job '{name}': rules read {DOTENV_VARIABLE.search(condition).group(0)}, "
                                "a dotenv-report variable, which GitLab sets only inside job scripts")
        artifacts = job.get("artifacts")
        if isinstance(artifacts, dict) and artifacts.get("when") != "always":
            problems.append(f"{path}: job '{name}': artifacts are not kept 'when: always' "
                            "(a held-back or failed run loses its outputs)")
    return problems


def check(root):
    ci = pathlib.Path(root) / "examples" / "ci"
    github, gitlab, pipeline = ci / "github-actions.yml", ci / "gitlab-ci.yml", ci / "pipeline.sh"
    failures = []
    for cmd in ([tool("actionlint"), "-shellcheck", tool("shellcheck"), str(github)],
                [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(github)],
                [tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(gitlab)],
                [tool("shellcheck"), str(pipeline)]):
        code, output = run(cmd)
        if code != 0:
            failures.append(f"$ {' '.join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))}\n{output}")
    failures += gitlab_rule_problems(gitlab)
    return failures


def self_test():
    """Each check must reject a file with the defect it exists for."""
    with tempfile.TemporaryDirectory() as tmp:
        ci = pathlib.Path(tmp) / "examples" / "ci"
        ci.mkdir(parents=True)
        (ci / "pipeline.sh").write_text("#!/usr/bin/env bash\nrm -rf $DIR/*\n")  # SC2086: unquoted
        (ci / "github-actions.yml").write_text(
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - run: echo ${{ steps.nope.outputs.x }}\n")  # unknown step id
        (ci / "gitlab-ci.yml").write_text(
            "train:\n  script: [make]\n  artifacts:\n    reports: {dotenv: promote.env}\n"
            "deploy:\n  needs: [train]\n  script: [echo]\n  rules:\n    - if: $FEDTRACK_PROMOTED == \"true\"\n")
        failures = "\n".join(check(tmp))
        expected = ["SC2086", "steps.nope", "FEDTRACK_PROMOTED", "when: always"]
        missing = [e for e in expected if e not in failures]
        if missing:
            sys.exit(f"check_ci_examples self-test: the checks did not report {missing}:\n{failures}")
        (ci / "gitlab-ci.yml").write_text("train:\n  script: [make]\n  stage: nosuchkey\n  wrong_key: 1\n")
        if not any("check-jsonschema" in f for f in check(tmp)):
            sys.exit("check_ci_examples self-test: the GitLab schema check accepted an unknown job key")


def main():
    args = sys.argv[1:]
    self_test()
    if args == ["--self-test"]:
        print("check_ci_examples: self-test ok")
        return 0
    root = args[0] if args else str(pathlib.Path(__file__).resolve().parent.parent)
    failures = check(root)
    if failures:
        print("\n\n".join(failures))
        return 1
    print("check_ci_examples: examples/ci pass actionlint, shellcheck and the GitHub / GitLab schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main())
