"""Drive the CLI like a user: CliRunner for speed, a real subprocess for the installed script."""

import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnmodel.cli import app
from conftest import REPO, SAMPLE, tiny_events, write_project

runner = CliRunner()
SCRIPT = Path(sys.executable).with_name("churnmodel")


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("validate", "simulate"):
        assert command in result.stdout


def test_validate_the_sample_config():
    result = run("validate", "--config", "configs/partner_churn.yaml")
    assert result.returncode == 0, result.stderr
    assert "2,000" in result.stdout and "OK inputs match the data contract" in result.stdout


def test_validate_bad_data_exits_2_with_the_file_column_and_row(tmp_path):
    events = tiny_events()
    events.loc[2, "timestamp"] = "yesterday"
    config = write_project(tmp_path, events=events)
    result = run("validate", "--config", str(config))
    assert result.returncode == 2
    assert "events.csv: column 'timestamp': 1 unparseable date/time value(s) at row 3" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_bad_config_exits_2(tmp_path):
    config = write_project(tmp_path, extra_yaml="  evnts: x\n")
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 2
    assert "data.evnts: unknown key" in result.output


def test_set_overrides_reach_the_config(tmp_path):
    config = write_project(tmp_path)
    result = runner.invoke(app, ["validate", "--config", str(config), "--set", "data.events=missing.csv"])
    assert result.exit_code == 2
    assert "data.events: file not found" in result.output and "missing.csv" in result.output


def test_usage_errors_exit_2():
    result = runner.invoke(app, ["simulate", "--out", "x", "--partners", "0"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["simulate", "--out", "x", "--start", "2023-02-10"])
    assert result.exit_code == 2 and "YYYY-MM-01" in result.output


def test_simulate_writes_a_valid_project(tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(app, ["simulate", "--partners", "60", "--months", "8", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["contracts.csv", "events.parquet", "ground_truth", "partners.csv"]
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  partners: sim/partners.csv\n  events: sim/events.parquet\n  contracts: sim/contracts.csv\n")
    assert runner.invoke(app, ["validate", "--config", str(config)]).exit_code == 0


@pytest.mark.slow
@pytest.mark.parametrize("which", [0, 1], ids=["sample", "campaigns"])
def test_committed_sample_is_exactly_what_its_command_makes(tmp_path, which):
    """Both samples (the partner sample and the campaign sample) are what the commands in their README make;
    the campaign sample leaves out its ground-truth hazard (the README says so)."""
    readme = (SAMPLE / "README.md").read_text()
    command = [line for line in readme.splitlines() if line.startswith("churnmodel simulate")][which]
    args = shlex.split(command)[1:]
    committed_root = REPO / args[args.index("--out") + 1]
    args[args.index("--out") + 1] = str(tmp_path)
    result = run(*args)
    assert result.returncode == 0, result.stderr
    for path in sorted(tmp_path.rglob("*")):
        if not path.is_file():
            continue
        committed = committed_root / path.relative_to(tmp_path)
        if not committed.exists():
            assert which == 1 and path.relative_to(tmp_path).as_posix() == "ground_truth/hazard.parquet", path
            continue
        if path.parent.name == "ground_truth" and path.name in ("hazard.parquet", "campaigns.csv"):
            # The ground-truth hazard and the campaigns' true probabilities are transcendental functions of the
            # state (exp, tanh): numpy's SIMD kernels differ in the last bit between CPUs (seen on an AMD EPYC),
            # so these two files are compared value by value, and their decisions (who churned; who was
            # approached, in which campaign, as control) exactly. Every input file stays byte-identical.
            read = pd.read_parquet if path.suffix == ".parquet" else pd.read_csv
            made, kept = read(path), read(committed)
            pd.testing.assert_frame_equal(made, kept, check_exact=False, rtol=1e-12, atol=1e-15)
            floats = made.select_dtypes("float").columns
            assert made.drop(columns=floats).equals(kept.drop(columns=floats)), path.name
            continue
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(committed.read_bytes()).digest(), path.name
    size_mb = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file()) / 2**20
    assert size_mb < 20


def test_features_command_writes_features_labels_and_metadata(tmp_path):
    out, meta = tmp_path / "f.parquet", tmp_path / "meta.csv"
    result = run("features", "--config", "configs/partner_churn.yaml", "--out", str(out), "--metadata", str(meta))
    assert result.returncode == 0, result.stderr
    assert "186 features" in result.stdout and "censored" in result.stdout
    import pandas as pd

    frame, info = pd.read_parquet(out), pd.read_csv(meta)
    assert list(frame.columns[:5]) == ["partner_id", "snapshot", "churn_date", "censored", "label"]
    assert list(frame.columns[5:]) == info["name"].tolist()
    assert frame["segment"].dtype == "category"


def test_features_bad_inputs_exit_2_and_write_nothing(tmp_path):
    config = write_project(tmp_path, extra_yaml="features:\n  windows: [90, 30]\n")
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 2 and "features.windows: windows must be strictly increasing" in result.output
    result = runner.invoke(app, ["features", "--config", str(write_project(tmp_path)), "--out", str(tmp_path / "no" / "f.parquet")])
    assert result.exit_code == 2 and "output folder does not exist" in result.output
    result = runner.invoke(app, ["features", "--config", str(write_project(tmp_path)), "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 2 and "unsupported output type '.json'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "events.csv", "partners.csv"]


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ("train.lightgbm.num_leavs=8", r"train.lightgbm.num_leavs: unknown key"),
        ("train.calibration=platt", r"train.calibration: Input should be 'auto', 'sigmoid', 'beta', 'isotonic' or 'none'"),
        ("label.horizon_days=0", r"label.horizon_days: Input should be greater than 0"),
        ("train.top_share=2", r"train.top_share: Input should be less than 1"),
    ],
)
def test_train_bad_set_names_the_key(tmp_path, setting, match):
    import re

    result = runner.invoke(app, ["train", "--config", "configs/partner_churn.yaml", "--set", setting])
    assert result.exit_code == 2 and re.search(match, result.output), result.output


def test_train_with_a_dead_tracking_server_fails_before_any_work(tmp_path, monkeypatch):
    import socket

    from churnmodel import pipeline

    def no_work(*args, **kwargs):
        raise AssertionError("inputs were read before the tracking server was checked")

    monkeypatch.setattr(pipeline, "_training_frame", no_work)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(app, ["train", "--config", "configs/partner_churn.yaml", "--set", f"tracking.uri=http://127.0.0.1:{port}",
                                 "--summary", str(tmp_path / "s.json")])
    assert result.exit_code == 2 and f"tracking server http://127.0.0.1:{port} is not reachable" in result.output
    assert not (tmp_path / "s.json").exists()


def test_help_shows_flags_and_choices_and_the_version():
    help_text = runner.invoke(app, ["score", "--help"]).output
    assert "--strict " in help_text and "<bool>" not in help_text
    assert "--lang <en|ru>" in help_text and "--engine <local|spark>" in help_text and "--as-of YYYY-MM-DD" in help_text
    assert "--set KEY=VALUE" in help_text
    assert "--events-format <parquet|csv>" in runner.invoke(app, ["simulate", "--help"]).output
    assert "--promote " in runner.invoke(app, ["train", "--help"]).output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("churnmodel 0.")


def test_stages_print_one_line_each_with_the_time_when_not_on_a_terminal(tmp_path):
    out = tmp_path / "f.parquet"
    result = run("features", "--config", str(REPO / "configs" / "partner_churn.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.endswith(" s")]
    assert [line.split(":")[0] for line in lines] == ["reading inputs", "building features"], result.stderr


def test_the_metrics_table_leaves_out_an_interval_it_does_not_have():
    """train.bootstrap 0 gives no AUC interval: the table says nothing of one (not "CI nan-nan")."""
    from types import SimpleNamespace

    from rich.console import Console

    from churnmodel.cli import _metrics_table
    from churnmodel.config import load_config

    metrics = {"auc": 0.8, "auc_ci_low": float("nan"), "auc_ci_high": float("nan"), "pr_auc": 0.3, "log_loss": 0.1, "brier": 0.05,
               "ece": 0.01, "lift_top": 3.0, "capture_top": 0.5, "emp": 1.0, "emp_targeted_share": 0.1, "prr_observed": 90.0,
               "prr_predicted": 91.0}
    run = SimpleNamespace(metrics=metrics, config=load_config("configs/partner_churn.yaml"), tracking=None, survival=None,
                          training=SimpleNamespace(split=SimpleNamespace(dates={"test": ["2025-01-01"]})))
    console = Console(width=200, record=True)
    console.print(_metrics_table(run))
    text = console.export_text()
    assert "ROC AUC" in text and "0.800" in text and "CI" not in text and "nan" not in text
    console = Console(width=200, record=True)
    console.print(_metrics_table(SimpleNamespace(**{**vars(run), "metrics": {**metrics, "auc_ci_low": 0.75, "auc_ci_high": 0.85}})))
    assert "(95% CI 0.750-0.850)" in console.export_text()
