"""Monitoring: the score history (append, replace, its folder only), outcomes with censoring, the
confidence-based estimate, verdicts, and the monitor command's report and exit statuses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnmodel import pipeline
from churnmodel.cli import app
from churnmodel.config import MonitorConfig
from churnmodel.monitoring import estimated_auc, outcomes, run_metrics, verdicts

runner = CliRunner()
UTC = "UTC"


def test_outcomes_follow_the_label_window_and_leave_the_unknown_unknown():
    """Scored 2025-01-01 with a 90-day horizon, data observed to 2025-03-01 (the window is not over): a churn on
    2025-02-10 is known; a churn after the window is a stayer only once the window is over; no churn yet is not known."""
    as_of = pd.Timestamp("2025-01-01", tz=UTC)
    history = pd.DataFrame({"partner_id": ["a", "b", "c", "d"], "as_of": as_of, "horizon_days": 90, "model": "m",
                            "churn_probability": [0.5, 0.1, 0.2, 0.3]})
    spells = pd.DataFrame({"partner_id": ["a", "b", "c", "d"],
                           "start": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2025-02-01"], utc=True),
                           "end": pd.to_datetime(["2025-02-10", None, "2025-06-01", None], utc=True)})
    early = outcomes(history, spells, observed_until=pd.Timestamp("2025-03-01", tz=UTC))
    assert early["churned"].tolist()[:1] == [1.0] and early["churned"].iloc[1:].isna().all() and not early["matured"].any()
    late = outcomes(history, spells, observed_until=pd.Timestamp("2025-12-31", tz=UTC))
    assert late["churned"].tolist()[:3] == [1.0, 0.0, 0.0] and late["matured"].all()
    assert np.isnan(late["churned"].iloc[3])  # not active when scored (joined later): no outcome for that run
    assert history["churn_probability"].tolist() == [0.5, 0.1, 0.2, 0.3] and "churned" not in history  # input untouched


def test_the_estimated_auc_is_the_expected_auc_of_outcomes_drawn_from_calibrated_probabilities():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    p = rng.beta(0.6, 8, 4000)
    draws = [roc_auc_score(y, p) for y in (rng.random((300, len(p))) < p)]
    assert estimated_auc(p) == pytest.approx(np.mean(draws), abs=0.005)


def test_the_estimate_equals_nannymls_cbpe_roc_auc_on_a_shared_example():
    """NannyML 0.13.1's CBPE ROC AUC estimate (``nannyml.performance_estimation.confidence_based.metrics.
    estimate_roc_auc(p, p)``: probabilities already calibrated), computed once in a separate environment on these
    very draws (NannyML is not a dependency). Its full ``CBPE`` pipeline first refits an isotonic calibration on
    a reference set, which moves its figures by 0.002-0.004 on the same draws (0.7809, 0.7367, 0.8217)."""
    rng = np.random.default_rng(42)

    def draw(n: int, a: float, b: float) -> np.ndarray:
        p = rng.beta(a, b, n)
        rng.random(n)  # the outcomes NannyML's reference and analysis frames drew
        return p

    draw(20_000, 0.8, 8)  # NannyML's reference set
    nannyml = {(0.8, 8): 0.7844756444595589, (1.5, 6): 0.7404680334919032, (0.5, 12): 0.8234821857797704}
    for shape, theirs in nannyml.items():
        assert estimated_auc(draw(5_000, *shape)) == pytest.approx(theirs, abs=1e-7)  # NannyML rounds its counts to 5 decimals


def _runs(aucs_by_month: list[float], *, test_auc: float = 0.85, rng_seed: int = 0) -> pd.DataFrame:
    """Matured runs whose outcomes are drawn from the probabilities, then ranked as well as ``auc`` allows (a
    mix of the true probability and noise)."""
    rng = np.random.default_rng(rng_seed)
    frames = []
    for i, mix in enumerate(aucs_by_month):
        p = rng.beta(0.8, 8, 3000)
        y = (rng.random(len(p)) < p).astype(float)
        shown = np.clip(mix * p + (1 - mix) * rng.permutation(p), 1e-6, 1 - 1e-6)  # mix 1: the true ranking; 0: none
        frames.append(pd.DataFrame({"partner_id": np.arange(len(p)).astype(str), "as_of": pd.Timestamp("2025-01-01", tz=UTC) + pd.DateOffset(months=i),
                                    "model": "m", "horizon_days": 90, "churn_probability": shown, "churned": y, "matured": True,
                                    "revenue": 1.0, "revenue_at_risk": shown, "model_test_auc": test_auc, "model_test_auc_ci_low": test_auc - 0.02}))
    return pd.concat(frames, ignore_index=True)


def test_a_collapsing_model_turns_to_retrain_within_two_runs_and_a_stable_one_stays_fine():
    cfg = MonitorConfig(bootstrap=200)
    stable = verdicts(run_metrics(_runs([1.0] * 4), cfg=cfg, random_state=0), cfg=cfg)
    test_auc = float(stable["auc"].mean())  # what this generator's true ranking reaches: the model as trained
    stable = verdicts(run_metrics(_runs([1.0] * 4, test_auc=test_auc), cfg=cfg, random_state=0), cfg=cfg)
    assert (stable["verdict"] == "fine").all(), stable[["auc", "verdict", "reason"]]
    assert (abs(stable["auc"] - stable["estimated_auc"]) < 0.03).all()  # the estimate agrees on stable data
    broken = verdicts(run_metrics(_runs([1.0, 1.0, 0.5, 0.3], test_auc=test_auc), cfg=cfg, random_state=0), cfg=cfg)
    assert broken["verdict"].tolist()[:2] == ["fine", "fine"] and "retrain" in broken["verdict"].tolist()[2:]
    assert "below the model's test AUC" in broken["reason"].iloc[-1]


@pytest.fixture(scope="module")
def history(sample_training, sample_tables, sample_config, tmp_path_factory):
    """The sample model scored on three month starts into a score history (events before each date only); the data
end 2026-01-01 covers the 90-day windows of the first two."""
    root = tmp_path_factory.mktemp("monitor")
    cfg = sample_config.model_copy(update={"monitor": sample_config.monitor.model_copy(update={"history": root / "history"})})
    model = sample_training[2].model
    for as_of in pd.date_range("2025-09-01", "2025-11-01", freq="MS", tz=UTC):
        seen = dataclasses.replace(sample_tables, events=sample_tables.events.loc[sample_tables.events["timestamp"] < as_of])
        pipeline.score(cfg, as_of=as_of, model=model, tables=seen)
    return root, cfg, model


def test_every_scoring_run_is_kept_once_and_only_in_its_folder(history, sample_tables, tmp_path):
    root, cfg, model = history
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    dates = ["as_of=2025-09-01", "as_of=2025-10-01", "as_of=2025-11-01"]
    assert [f.split("/")[1] for f in files if "/drift/" not in f] == dates  # one run per date, and its drift report
    assert [f.split("/")[2] for f in files if "/drift/" in f] == dates
    as_of = pd.Timestamp("2025-11-01", tz=UTC)
    seen = dataclasses.replace(sample_tables, events=sample_tables.events.loc[sample_tables.events["timestamp"] < as_of])
    again = pipeline.score(cfg, as_of=as_of, model=model, tables=seen, out=tmp_path / "s.csv")  # the same date and model again
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == files  # replaced, not duplicated
    kept = pd.read_parquet(root / [f for f in files if "/drift/" not in f][-1])
    assert len(kept) == len(again.scores) and set(kept["partner_id"]) == set(again.scores["partner_id"])
    assert {"churn_probability", "risk_band", "driver_1", "model", "horizon_days", "model_test_auc"} <= set(kept.columns)
    with pytest.raises(Exception, match=r"the score history, monitor\.history"):  # no output inside the history
        pipeline.score(cfg, as_of=as_of, model=model, tables=seen, out=root / "history" / "x.csv")


def test_monitor_reports_maturing_runs_and_its_exit_statuses(history, sample_tables, tmp_path):
    root, cfg, _ = history
    run = pipeline.monitor(cfg, tables=sample_tables, out=tmp_path / "m.html")
    runs = run.runs
    assert runs["status"].tolist() == ["matured", "matured", "maturing"]  # data end 2025-12-31, 90-day horizon
    assert runs["auc"].iloc[:2].between(0.75, 0.97).all() and np.isnan(runs["auc"].iloc[2])
    assert (abs(runs["auc"].iloc[:2] - runs["estimated_auc"].iloc[:2]) < runs["estimated_high"].iloc[:2] - runs["estimated_low"].iloc[:2]).all()
    assert run.verdict == "fine"
    page = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert "How past scores turned out" in page and "maturing" in page and ">nan<" not in page
    from browser import look

    seen = look(tmp_path / "m.html", tmp_path)
    assert seen["problems"] == [] and seen["images"] == 3, seen  # AUC over time, churn over time, drift over time
    assert set(run.drift["as_of"].astype(str).str[:10]) == {"2025-09-01", "2025-10-01", "2025-11-01"} and "(score)" in set(run.drift["feature"])
    assert runs["inputs_moved"].str.contains("PSI").all() and runs["score_psi"].notna().all()  # each run's moved inputs, in words
    config = root / "c.yaml"
    config.write_text(f"data:\n  partners: {cfg.data.partners}\n  events: {cfg.data.events}\n  contracts: {cfg.data.contracts}\n"
                      f"monitor:\n  history: history\n")
    ok = runner.invoke(app, ["monitor", "--config", str(config), "--fail-on", "watch"])
    assert ok.exit_code == 0 and "2025-11-01" in ok.output and "maturing" in ok.output, ok.output
    bad = runner.invoke(app, ["monitor", "--config", str(config), "--out", str(tmp_path / "m.txt")])
    assert bad.exit_code == 2 and "expected an .html file" in bad.output
    none = tmp_path / "none.yaml"
    none.write_text(config.read_text().replace("history: history", "history: elsewhere"))
    missing = runner.invoke(app, ["monitor", "--config", str(none)])
    assert missing.exit_code == 2 and "no scoring runs kept there yet" in missing.output


def test_a_model_that_stopped_ranking_fails_the_scheduler_with_status_3(history, tmp_path):
    """The same runs with their probabilities shuffled (a model that no longer ranks): the matured runs' AUC falls
    to chance, the latest verdict is retrain and ``--fail-on retrain`` exits 3 with the reason."""
    import shutil

    root, cfg, _ = history
    copy = shutil.copytree(root / "history", tmp_path / "history")
    rng = np.random.default_rng(0)
    for path in sorted(copy.glob("as_of=*/*.parquet")):
        run = pd.read_parquet(path)
        run["churn_probability"] = rng.permutation(run["churn_probability"].to_numpy())
        run.to_parquet(path, index=False)
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  partners: {cfg.data.partners}\n  events: {cfg.data.events}\n  contracts: {cfg.data.contracts}\n"
                      "monitor:\n  history: history\n")
    result = runner.invoke(app, ["monitor", "--config", str(config), "--fail-on", "retrain"])
    assert result.exit_code == 3, result.output
    assert "retrain" in result.output and "below the model's test AUC" in result.output


def _regime_experiment(root, regime):
    """Simulated partners (1,500 x 36 months); a model trained on the data before 2025-04-01 scores each month
    from April to November 2025 (events before each date only); then the monitor judges the runs on all data."""
    from churnmodel import load_config
    from churnmodel.simulate import simulate, write_simulation

    write_simulation(simulate(1500, 36, random_state=5, regime=regime), root)
    (root / "c.yaml").write_text("data:\n  partners: partners.csv\n  events: events.parquet\n  contracts: contracts.csv\n"
                                 "label:\n  horizon_days: 90\ntrain:\n  bootstrap: 200\n  test_snapshots: 2\n  valid_snapshots: 2\n"
                                 "monitor:\n  history: history\n")
    cfg = load_config(root / "c.yaml")
    tables = pipeline.validate(cfg).tables
    cut = pd.Timestamp("2025-04-01", tz=UTC)
    p, c = tables.partners, tables.contracts
    before = dataclasses.replace(tables, events=tables.events.loc[tables.events["timestamp"] < cut],
                                 partners=p.loc[p["joined_at"] < cut].assign(churned_at=p["churned_at"].where(p["churned_at"] < cut)),
                                 contracts=c.loc[c["start_date"] < cut].assign(terminated_at=c["terminated_at"].where(c["terminated_at"] < cut)))
    model = pipeline.fit(cfg, tables=before, track=False).model
    for as_of in pd.date_range("2025-04-01", "2025-11-01", freq="MS", tz=UTC):
        seen = dataclasses.replace(tables, events=tables.events.loc[tables.events["timestamp"] < as_of])
        pipeline.score(cfg, as_of=as_of, model=model, tables=seen)
    return pipeline.monitor(cfg, tables=tables)


@pytest.mark.slow
def test_a_regime_change_turns_the_verdict_to_retrain_within_two_runs_and_a_steady_world_raises_no_alarm(tmp_path):
    """From July 2025 a driver no input shows multiplies the prospective partners' churn odds by 4 (the simulator's
    Regime). The model's probabilities fall short and its ranking suffers: the first run whose window sees the
    change is at watch, the next at retrain, and so are the later runs of the same model; the realised AUC of the
    runs after the change falls below what was estimated for them. The same world without the change stays fine
    throughout."""
    from churnmodel.simulate import Regime

    change = _regime_experiment(tmp_path / "change", Regime(from_month=30, segment=1, factor=4.0)).runs
    steady = _regime_experiment(tmp_path / "steady", None).runs
    month = change["as_of"].dt.strftime("%Y-%m")
    print("\n" + pd.DataFrame({"scored": month, "status": change["status"], "predicted": change["predicted_rate"],
                               "observed, change": change["observed_rate"], "observed, steady": steady["observed_rate"],
                               "AUC, change": change["auc"], "AUC, steady": steady["auc"], "verdict, change": change["verdict"],
                               "verdict, steady": steady["verdict"]}).round(3).to_string(index=False))
    assert (steady["verdict"] == "fine").all(), steady[["as_of", "verdict", "reason"]]
    assert (change.loc[month < "2025-06", "verdict"] == "fine").all()
    after = change.loc[month >= "2025-07", "verdict"].tolist()
    assert after[0] in ("watch", "retrain") and after[1] == "retrain" and set(after[2:]) == {"retrain"}, change[["as_of", "verdict", "reason"]]
    assert "the probabilities no longer match the outcomes" in change.loc[month == "2025-07", "reason"].iloc[0]
    late = (month >= "2025-08") & (change["status"] == "matured")
    assert (change.loc[late, "estimated_auc"] - change.loc[late, "auc"]).mean() > 0.02  # the ranking suffered
    assert change.loc[late, "auc"].mean() < change.loc[month < "2025-07", "auc"].mean() - 0.02


def test_a_registered_models_runs_are_logged_to_its_mlflow_run_over_time(campaigns, tmp_path):
    """Scored with the registered version (models:/NAME/VERSION): monitor logs each run's figures to that version's
    training run, one point per scoring date, and tags the version with its verdict; a second monitor run
    writes the same points again, not new ones."""
    import mlflow

    from churnmodel import load_config

    _, config, _, run_id = campaigns
    cfg = load_config(config, [f"monitor.history={tmp_path / 'history'}"])
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri, registry_uri=cfg.tracking.uri)
    version = client.search_model_versions(f"run_id='{run_id}'")[0]
    tables = pipeline.validate(cfg).tables
    for as_of in ("2025-09-01", "2025-10-01"):
        when = pd.Timestamp(as_of, tz=UTC)
        seen = dataclasses.replace(tables, events=tables.events.loc[tables.events["timestamp"] < when])
        pipeline.score(cfg, as_of=when, model=f"models:/{version.name}/{version.version}", tables=seen)
    for _ in range(2):
        run = pipeline.monitor(cfg, tables=tables)
    history = client.get_metric_history(run_id, "monitor_estimated_auc")
    assert sorted(m.step for m in history) == [20332, 20362]  # 2025-09-01 and 2025-10-01 in days since 1970
    assert {m.value for m in client.get_metric_history(run_id, "monitor_verdict")} <= {0.0, 1.0, 2.0}
    assert client.get_model_version(version.name, version.version).tags["monitor_verdict"] == run.runs["verdict"].iloc[-1]
