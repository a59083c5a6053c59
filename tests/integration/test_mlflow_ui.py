"""A job's records in MLflow's own UI, rendered by headless Chromium (Debian's
`chromium`, installed by scripts/setup.sh) against a real server: the runs
table, the parent run's page and its chart view. The UI is a JavaScript app,
so Chromium runs it with a virtual time budget before dumping the DOM; the
assertions read the rendered DOM, and the screenshots stay as test output
($FEDTRACK_TEST_OUTPUT, else the test's temporary folder) for a reviewer."""

import json
import os
import re
import shutil
import subprocess

from conftest import SMALL_JOB, clean_env, fedtrack, mlflow_client

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1400"]


def output_dir(tmp_path):
    out = os.environ.get("FEDTRACK_TEST_OUTPUT") or str(tmp_path / "png")
    os.makedirs(out, exist_ok=True)
    return out


def render(url, png, profile, budget_ms=15000):
    """The DOM of `url` once its scripts ran for `budget_ms` of virtual time,
    and a screenshot of it at `png`."""
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed: scripts/setup.sh installs Debian's chromium (apt-get install chromium)"
    r = subprocess.run([exe, *CHROMIUM_FLAGS, f"--virtual-time-budget={budget_ms}", f"--user-data-dir={profile}",
                        f"--screenshot={png}", "--dump-dom", url],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.path.getsize(png) > 0, png
    print("screenshot:", png)
    return r.stdout


def texts(dom):
    """The DOM's text nodes, in document order."""
    return [t.strip() for t in re.sub(r"<[^>]+>", "\n", dom).split("\n") if t.strip()]


def chart_sections(dom):
    """The chart view's sections in order, each (title, number of charts):
    ("client/client-000", 4), ..., ("Model metrics", 13). The headers come
    from the run's metric keys, not from the charts' data (which may still
    be loading when the DOM is dumped)."""
    lines = texts(dom)
    return [(lines[i - 1], int(line[1:-1])) for i, line in enumerate(lines) if re.fullmatch(r"\(\d+\)", line)]


def test_the_runs_table_the_parent_run_and_its_charts_show_the_job(mlflow_server, tmp_path):
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="in-the-ui")
    r = fedtrack(["run", "--json", "--set", "rounds=3", "--set", "versioning.enabled=false"] + SMALL_JOB, tmp_path, env)
    assert r.returncode == 0, r.stderr
    tracking = json.loads(r.stdout.strip().splitlines()[-1])["tracking"]
    experiment, run_id = tracking["experiment_id"], tracking["run_id"]
    run = mlflow_client(mlflow_server.uri).get_run(run_id)
    name = run.info.run_name
    [test_digest] = [d.dataset.digest for d in run.inputs.dataset_inputs if d.dataset.name == "fashion-mnist-test"]
    out = output_dir(tmp_path)
    profile = str(tmp_path / "chromium-profile")
    base = f"{mlflow_server.uri}/#/experiments/{experiment}"

    # The runs table: the parent run by its name, the test set in its Dataset column.
    table = render(f"{base}/runs", os.path.join(out, "runs-table.png"), profile)
    assert name in table, "the parent run's name is not in the runs table"
    assert "fashion-mnist-test" in table, "the Dataset column does not show the test set"

    # The parent run's page: the test set with its digest and context; the
    # UI folds the other inputs (the four clients' training data) into "+4".
    page = texts(render(f"{base}/runs/{run_id}", os.path.join(out, "parent-run.png"), profile))
    assert name in page
    shown = [i for i, t in enumerate(page) if t == f"fashion-mnist-test ({test_digest})"]
    assert shown, "the run's page does not show the test set with its digest"
    assert page[shown[0] + 1:shown[0] + 3] == ["evaluation", "+4"], page[shown[0]:shown[0] + 3]
    assert "fedtrack.version" in page

    # The chart view: every site's training loss as a curve over the rounds.
    # MLflow 3.17 groups charts by the key's prefix up to its last "/" into
    # sections in name order and puts the unprefixed keys ("Model metrics",
    # fedtrack's global metrics) last, whatever the prefix: this checks that
    # arrangement, so a UI that orders them otherwise shows up here.
    # The charts load plotly lazily: a longer budget for the screenshot's sake.
    charts = render(f"{base}/runs/{run_id}/model-metrics", os.path.join(out, "parent-charts.png"), profile, 30000)
    sections = chart_sections(charts)
    # Each site: train_loss, train_accuracy, eval_loss, eval_accuracy, one curve each.
    sites = [(f"client/client-{c:03d}", 4) for c in range(4)]
    globals_ = sorted(k for k in run.data.metrics if "/" not in k)
    assert sections == sites + [("Model metrics", len(globals_))], sections
