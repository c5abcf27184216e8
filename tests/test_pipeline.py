"""The application layer: notebooks (Python) and the command line run one pipeline and get one answer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnmodel import pipeline
from churnmodel.cli import app
from churnmodel.errors import ConfigError, DataError

runner = CliRunner()
AS_OF = "2025-07-01"


@pytest.fixture(scope="module")
def small_project(tmp_path_factory, fresh_store):
    """A small simulated network with a config that also fits the hazard model (two horizons)."""
    root = tmp_path_factory.mktemp("project")
    fresh_store(root / "mlflow.db")  # where the config's default store is: the project folder
    pipeline.simulate(partners=250, months=30, random_state=5, start="2023-01-01", out=root / "data")
    config = root / "configs" / "churn.yaml"
    config.parent.mkdir()
    config.write_text("data:\n  partners: ../data/partners.csv\n  events: ../data/events.parquet\n  contracts: ../data/contracts.csv\n"
                      "random_state: 3\nlabel:\n  horizons: [90, 180]\ntrain:\n  bootstrap: 0\n  hazard_folds: 2\n")
    return config


@pytest.mark.slow
def test_python_and_command_line_give_identical_models_and_scored_lists(small_project, tmp_path):
    from churnmodel.registry import load_churn_model

    fitted = pipeline.fit(small_project)  # what a notebook calls
    assert fitted.tracking.registered_version == "1" and fitted.tracking.promoted and fitted.survival is not None
    summary = tmp_path / "summary.json"
    cli = subprocess.run([sys.executable, "-m", "churnmodel", "train", "--config", str(small_project), "--summary", str(summary)],
                         capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr
    # an identical retrain is not strictly better than the champion: it stays candidate
    assert "ROC AUC" in cli.stdout and "models:/partner-churn/2 (candidate)" in cli.stdout and "survival, out of fold" in cli.stdout
    info = json.loads(summary.read_text())
    assert set(info) == {"run_id", "experiment_id", "model_uri", "registered_name", "registered_version", "promoted",
                         "champion_version", "metrics"}
    assert info["model_uri"] == "models:/partner-churn/2" and not info["promoted"] and info["champion_version"] == "1"
    assert {"test_auc", "baseline_auc", "hazard_c_index", "cox_c_index", "hazard_ibs"} <= set(info["metrics"])
    assert {"survival.png", "hazard.txt", "churn.yaml"} <= {p.name for p in small_project.parent.parent.rglob("*") if p.is_file()}
    np.testing.assert_equal({k: fitted.tracking.metrics[k] for k in info["metrics"]}, info["metrics"])  # the same run, twice
    cli_model = load_churn_model("models:/partner-churn/2", tracking_uri=fitted.config.tracking.uri)
    assert cli_model.to_texts() == fitted.model.to_texts()  # the same files: booster, hazard model, model.json
    _the_run_reads_well_in_mlflow(fitted, cli.stderr)

    out = tmp_path / "scores.parquet"
    result = runner.invoke(app, ["score", "--config", str(small_project), "--as-of", AS_OF, "--out", str(out)])  # the champion
    assert result.exit_code == 0, result.output
    run = pipeline.score(small_project, as_of=AS_OF)
    from_cli = pd.read_parquet(out)
    assert {"p_churn_90d", "p_churn_180d", "expected_months_active", "median_months_to_churn", "driver_1"} <= set(from_cli.columns)
    assert set(from_cli["model_version"]) == {"1"} and run.model_label == "partner-churn 1"  # the version, not the alias
    pd.testing.assert_frame_equal(from_cli, run.scores)
    # the model in memory scores the same list (only the model's label differs)
    in_memory = pipeline.score(small_project, as_of=AS_OF, model=fitted.model).scores
    pd.testing.assert_frame_equal(in_memory.drop(columns=["model_name", "model_version"]),
                                  run.scores.drop(columns=["model_name", "model_version"]))


def _the_run_reads_well_in_mlflow(fitted, console: str) -> None:
    """A readable name, a duration that covers the whole training, the experiment opening on training runs,
    the inputs as datasets, no machine paths in the params, a described and tagged model version, no MLflow chatter."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=fitted.config.tracking.uri, registry_uri=fitted.config.tracking.uri)
    run = client.get_run(fitted.tracking.run_id)
    assert run.info.run_name.startswith("churn, data to 20"), run.info.run_name
    seconds = {k: v for k, v in run.data.metrics.items() if k.startswith("seconds_")}
    assert {"seconds_inputs_and_features", "seconds_training", "seconds_survival"} <= set(seconds)
    assert (run.info.end_time - run.info.start_time) / 1000 >= sum(seconds.values())  # the run spans the whole training
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"partners (partners.csv)", "events (events.parquet)",
                                                                     "contracts (contracts.csv)"}
    home = str(fitted.config.source.parent)
    assert not [k for k, v in run.data.params.items() if home in v or v.startswith("/")], run.data.params
    assert run.data.params["data.events"] == "../data/events.parquet"
    version = client.get_model_version("partner-churn", fitted.tracking.registered_version)
    assert version.description.startswith("Churn within 90 days") and "Test AUC 0." in version.description
    assert run.data.tags["mlflow.note.content"] == version.description  # the run page says the same
    assert {"test_auc", "horizon_days", "snapshots_from", "snapshots_to", "run_name"} <= set(version.tags)
    assert "Registered model" not in console and "Created version" not in console and "View run" not in console


def test_model_follows_scikit_learn_classifier_conventions(sample_training):
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import roc_auc_score

    _, _, result, _ = sample_training
    model, X, y = result.model, result.test_features, result.predictions["label"].to_numpy()
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba[:, 1], result.predictions["probability"].to_numpy())
    assert list(model.classes_) == [0, 1] and model.n_features_in_ == len(model.input_columns)
    assert list(model.feature_names_in_) == model.input_columns  # what predict_proba reads: the features the model
    assert set(model.features) - set(model.input_columns) == set(model.filled)  # does not fill itself, and what it fills them from
    assert roc_auc_score(y, model.predict_proba(X)[:, 1]) == pytest.approx(result.metrics["auc"])
    display = CalibrationDisplay.from_estimator(model, X, y, n_bins=5)
    assert len(display.prob_pred) > 0 and display.estimator_name == "ChurnModel"
    assert set(np.unique(model.predict(X))) <= {0, 1}
    import matplotlib.pyplot as plt

    plt.close("all")


def test_config_is_a_config_or_a_path(tmp_path):
    from churnmodel import load_config
    from conftest import write_project

    config = write_project(tmp_path)
    with pytest.raises(ConfigError, match="overrides apply to a config file"):
        pipeline.fit(load_config(config), ["train.bootstrap=0"])
    with pytest.raises(TypeError, match="config must be a Config or the path"):
        pipeline.validate(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag", ["--out", "--report"])
def test_an_output_path_that_is_an_input_is_refused(tmp_path, flag):
    from conftest import write_project

    config = write_project(tmp_path)
    before = (tmp_path / "events.csv").read_bytes()
    target = tmp_path / "events.csv"
    args = ["score", "--config", str(config), "--as-of", "2024-04-01", "--model", str(tmp_path / "no-model")]
    args += ["--out", str(target)] if flag == "--out" else ["--out", str(tmp_path / "s.csv"), "--report", str(config)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "is an input" in result.output and "nothing was written" in result.output
    assert (tmp_path / "events.csv").read_bytes() == before and not (tmp_path / "s.csv").exists()


def test_the_same_path_for_two_outputs_is_refused(tmp_path):
    from conftest import write_project

    config = write_project(tmp_path)
    result = runner.invoke(app, ["features", "--config", str(config), "--out", str(tmp_path / "f.csv"),
                                 "--metadata", str(tmp_path / "f.csv")])
    assert result.exit_code == 2 and "two outputs" in result.output
    assert not (tmp_path / "f.csv").exists()


def test_one_cross_validation_fold_is_a_config_error(tmp_path):
    from conftest import write_project

    config = write_project(tmp_path, extra_yaml="train:\n  group_cv_folds: 1\n")
    with pytest.raises(ConfigError, match=r"train.group_cv_folds: 1 fold is not cross-validation"):
        pipeline.validate(config)


def test_features_and_validate_return_what_the_commands_print(tmp_path):
    from conftest import write_project

    config = write_project(tmp_path)
    checked = pipeline.validate(config)
    assert checked.facts["partners"] == 3 and checked.facts["events"] == 5
    with pytest.raises(DataError, match="history"):  # three tiny partners: too little history for year-long windows
        pipeline.features(config, ["features.windows=[30,90,365]"], tables=checked.tables)
    built = pipeline.features(config, tables=checked.tables)  # auto: look-backs within a third of the half year
    assert built.plan.windows == (7, 14, 30) and len(built.frame) > 0


def test_the_public_api_is_the_application_layer():
    import importlib.util

    import churnmodel

    assert churnmodel.fit is pipeline.fit and churnmodel.validate is pipeline.validate
    assert churnmodel.pipeline is pipeline
    for name in churnmodel.__all__:
        getattr(churnmodel, name)  # every public name resolves
        # and none hides a module: `import churnmodel.explain` is always the module
        assert name == "pipeline" or importlib.util.find_spec(f"churnmodel.{name}") is None, name
    for module in ("features", "explain", "score", "simulate"):
        assert importlib.import_module(f"churnmodel.{module}").__name__ == f"churnmodel.{module}"


def test_the_command_line_starts_without_the_heavy_libraries():
    code = "import sys, churnmodel.cli; print(sorted(m for m in ('lightgbm', 'sklearn', 'mlflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_five_months_of_a_going_network_train_with_auto_look_backs(tmp_path):
    """A five-month extract of a network that was running before it (partners joined earlier, the
    log starts with the extract), weekly snapshots and a 30-day label: the default ``auto`` look-backs
    fit the history (7/14/30-day windows, 7 vs 21 days trend, 30 days of revenue), and it trains."""
    sim = pipeline.simulate(partners=800, months=24, random_state=1, start="2023-01-01").result
    start = pd.Timestamp("2024-08-01", tz="UTC")
    partners = sim.partners.loc[~(sim.partners["churned_at"] < start)]
    keep = sim.events["partner_id"].isin(partners["partner_id"]) & (sim.events["timestamp"] >= start)
    root = tmp_path / "data"
    root.mkdir()
    sim.events.loc[keep].to_parquet(root / "events.parquet")
    partners.to_csv(root / "partners.csv", index=False)
    sim.contracts.loc[sim.contracts["partner_id"].isin(partners["partner_id"])].to_csv(root / "contracts.csv", index=False)
    config = tmp_path / "churn.yaml"
    config.write_text("data:\n  partners: data/partners.csv\n  events: data/events.parquet\n  contracts: data/contracts.csv\n"
                      "random_state: 3\nlabel:\n  horizon_days: 30\nsnapshots:\n  freq: W-MON\n"
                      "train:\n  test_snapshots: 2\n  valid_snapshots: 2\n  bootstrap: 0\n")
    with pytest.raises(DataError, match=r"not enough labelled snapshot dates .* e\.g\. train\.test_snapshots: 2, train\.valid_snapshots: 2"):
        pipeline.fit(config, ["train.test_snapshots=3", "train.valid_snapshots=3"], track=False)
    with pytest.raises(DataError, match=r"Too long for this history: features\.segments\.revenue_window_days \(365 days\)\. .*"
                                        r"features\.segments\.revenue_window_days: auto \(here 30\)"):
        pipeline.fit(config, ["features.segments.revenue_window_days=365"], track=False)
    fitted = pipeline.fit(config, track=False)
    plan = fitted.model.plan
    assert plan.windows == (7, 14, 30) and plan.trends == ((7, 21),) and plan.segments.revenue_window_days == 30
    assert fitted.metrics["auc"] > 0.75 and len(fitted.training.predictions) > 1000
