"""Uplift models shipped with the churn model, the scored list's best action, and the budget plan
(``churnmodel plan``), on the simulator's campaigns: files, MLflow, the CLI, and the plan's guarantees."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnmodel import pipeline
from churnmodel.cli import app
from churnmodel.errors import DataError
from churnmodel.model import ChurnModel
from conftest import LEVERS

runner = CliRunner()
AS_OF = "2026-01-01"


def test_training_ships_an_uplift_model_per_action_with_its_held_out_evaluation(campaigns):
    root, _, folder, run_id = campaigns
    model = ChurnModel.load(folder)
    assert [(u.action, u.lever) for u in model.uplift] == list(LEVERS.items())
    assert sorted(p.name for p in folder.glob("uplift_*.txt")) == [f"uplift_{i}.txt" for i in range(1, 5)]
    for u in model.uplift:  # the held-out campaigns' figures travel with the model, and are plausible
        assert {"qini", "observed_effect", "predicted_effect", "ate", "ate_se", "rows", "treated"} <= set(u.metrics)
        assert 0 < u.metrics["ate_se"] < 0.05 and abs(u.metrics["ate"]) < 0.2
        assert u.lever_scale == u.metrics["lever_scale"] > 0  # spread by its lever (the default): every lever has features here
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", registry_uri=f"sqlite:///{root / 'mlflow.db'}")
    logged = client.get_run(run_id).data.metrics
    assert {f"uplift_{a}_{m}" for a in LEVERS for m in ("qini", "ate", "ate_se")} <= set(logged)
    assert "plots/uplift.png" in {a.path for a in client.list_artifacts(run_id, "plots")}


def test_a_tampered_or_missing_uplift_file_is_refused(campaigns, tmp_path):
    _, _, folder, _ = campaigns
    copy = shutil.copytree(folder, tmp_path / "m")
    (copy / "uplift_2.txt").write_text((copy / "uplift_2.txt").read_text().replace("leaf_value=", "leaf_value=1", 1))
    with pytest.raises(DataError, match=r"uplift_2\.txt does not match the SHA-256"):
        ChurnModel.load(copy)
    (copy / "uplift_2.txt").unlink()
    with pytest.raises(DataError, match=r"uplift_<n>\.txt files are not all there"):
        ChurnModel.load(copy)
    document = json.loads((folder / "model.json").read_text())
    for scale, expected in ((-1.0, r"lever_scale must be a finite number >= 0 .*got -1\.0"), (None, "KeyError: 'lever_scale'")):
        copy = shutil.copytree(folder, tmp_path / f"m{scale}")
        entry = document["uplift"][0]
        (copy / "model.json").write_text(json.dumps({**document, "uplift": [
            {k: v for k, v in entry.items() if k != "lever_scale"} | ({"lever_scale": scale} if scale is not None else {}),
            *document["uplift"][1:]]}))
        with pytest.raises(DataError, match=r"no valid uplift entry for uplift_1\.txt \(.*" + expected):
            ChurnModel.load(copy)


def test_actions_spread_by_lever_follow_the_drivers_shap_and_leave_the_drivers_as_they_are(campaigns):
    """Scoring computes every row's SHAP values once when an action is spread by its lever: the drivers are those
    of the same model without uplift models, and each action's effect is its average shift times the partner's
    lever risk (the SHAP of the lever's features, summed) over the campaign rows' mean."""
    import copy

    from churnmodel import load_config, read_inputs
    from churnmodel.effects import combined_effect, risk_scaled
    from churnmodel.explain import contributions
    from churnmodel.features import build_training_frame
    from churnmodel.score import point_columns, reason_columns, score_frame

    _, config, folder, _ = campaigns
    cfg = load_config(config)
    model = ChurnModel.load(folder)
    frame = build_training_frame(read_inputs(cfg.data), cfg)[0].iloc[-3000:].reset_index(drop=True)
    bare = copy.copy(model)
    bare.uplift = ()
    scored, plain = score_frame(model, frame, config=cfg), score_frame(bare, frame, config=cfg)
    columns = reason_columns(cfg) + point_columns(cfg) + ["churn_probability", "_explained"]
    pd.testing.assert_frame_equal(scored[columns], plain[columns])
    X = model.prepare(frame)
    info = model.plan.info().set_index("name").loc[model.features]
    phi = contributions(model, frame)[:, :-1]
    p = scored["churn_probability"].to_numpy()
    for u in model.uplift:
        lever_risk = np.maximum(phi[:, (info["lever"] == u.lever).to_numpy()].sum(axis=1), 0)
        expected = combined_effect(u.booster.predict(X[u.booster.feature_name()]), p, u.projection, lever_risk / u.lever_scale)
        if u.metrics["heterogeneity"] == 0:  # no differences of its own: the spread average alone
            np.testing.assert_allclose(expected, risk_scaled(p, u.projection[0] * lever_risk / u.lever_scale), atol=1e-12)
        np.testing.assert_allclose(u.effect(X, p, model.lever_risk(X, [u.lever])[:, 0]), expected, atol=1e-12)
        mine = (scored["best_action"] == u.action).to_numpy()
        np.testing.assert_allclose(scored.loc[mine, "expected_effect_points"], -expected[mine], atol=1e-12)
    assert scored["best_action"].nunique() >= 3


def test_the_scored_list_names_the_best_action_and_never_more_than_the_risk_it_removes(campaigns):
    _, config, folder, _ = campaigns
    run = pipeline.score(config, as_of=AS_OF, model=str(folder))
    s = run.scores
    assert set(s["best_action"]) <= {"", *LEVERS}
    none = s["best_action"] == ""
    assert (s.loc[none, "expected_gain"] == 0).all() and (s.loc[~none, "expected_gain"] > 0).all()
    assert s.loc[none, "expected_effect_points"].isna().all()
    # an action never takes a churn probability below 0: it removes at most the whole of it
    assert (s.loc[~none, "expected_effect_points"] <= s.loc[~none, "churn_probability"] + 1e-12).all()
    assert s["best_action"].nunique() >= 2  # who gets which action depends on the partner


@pytest.mark.parametrize("budget", [0.0, 3_000.0, 40_000.0])
def test_the_plan_stays_within_its_budget_and_keeps_at_least_what_ranking_keeps(campaigns, budget):
    """By the same uplift estimates, the exact allocation keeps at least what approaching the riskiest (or the
    largest revenue at risk) first with the usual action keeps at the same budget."""
    _, config, folder, _ = campaigns
    run = pipeline.plan(config, as_of=AS_OF, budget=budget, model=str(folder))
    p, s = run.plan, run.summary
    funded = p["planned_action"] != ""
    assert p.loc[funded, "action_cost"].sum() == pytest.approx(s["spent"]) and s["spent"] <= budget + 1e-9
    assert s["funded"] == funded.sum() and (p.loc[funded, "expected_gain"] > 0).all()
    assert s["value_plan"] >= s["value_risk"] - 1e-6 and s["value_plan"] >= s["value_revenue_at_risk"] - 1e-6
    assert p["plan_order"].tolist() == list(range(1, len(p) + 1)) and funded.iloc[: funded.sum()].all()
    if budget == 0:
        assert s["value_plan"] == 0 and not funded.any()


def test_an_unlimited_budget_funds_exactly_the_scored_lists_best_actions(campaigns):
    """One question, one answer: with money for everyone, the plan gives each partner the scored list's best action."""
    _, config, folder, _ = campaigns
    scores = pipeline.score(config, as_of=AS_OF, model=str(folder)).scores.set_index("partner_id")
    plan = pipeline.plan(config, as_of=AS_OF, budget=1e12, model=str(folder)).plan.set_index("partner_id")
    plan = plan.reindex(scores.index)
    assert (plan["planned_action"] == scores["best_action"]).all()
    np.testing.assert_allclose(plan["expected_gain"], scores["expected_gain"], atol=0.011)


def test_plan_from_the_command_line_in_both_languages(campaigns, tmp_path):
    _, config, folder, _ = campaigns
    result = runner.invoke(app, ["plan", "--config", str(config), "--as-of", AS_OF, "--budget", "20000", "--model", str(folder),
                                 "--out", str(tmp_path / "plan.xlsx")])
    assert result.exit_code == 0, result.output
    assert "Expected value kept, net: this plan" in result.output and "highest churn risk first" in result.output
    book = openpyxl.load_workbook(tmp_path / "plan.xlsx")
    assert book.sheetnames == ["Retention plan", "Summary"]
    header = [c.value for c in book["Retention plan"][1]]
    assert header[:3] == ["Order", "Rank", "Partner"] and "Planned action" in header and "Expected value kept, net of cost" in header
    assert all(not str(c.value).startswith("=") for row in book["Retention plan"].iter_rows() for c in row if c.value is not None)
    done = subprocess.run([sys.executable, "-m", "churnmodel", "plan", "--config", str(config), "--as-of", AS_OF, "--budget", "20000",
                           "--model", str(folder), "--lang", "ru", "--out", str(tmp_path / "plan.csv")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ru = pd.read_csv(tmp_path / "plan.csv", sep=";", decimal=",", encoding="utf-8-sig")
    assert list(ru.columns[:3]) == ["№", "Место", "Партнёр"] and "Запланированное действие" in ru.columns
    assert "этот план" in done.stdout


def test_plan_refuses_a_negative_budget_a_model_without_uplift_and_an_input_as_output(campaigns, sample_training, tmp_path):
    root, config, folder, _ = campaigns
    bad = runner.invoke(app, ["plan", "--config", str(config), "--as-of", AS_OF, "--budget", "-5", "--model", str(folder)])
    assert bad.exit_code == 2 and "--budget" in bad.output
    _, _, trained, _ = sample_training
    trained.model.save(tmp_path / "plain")
    no_uplift = runner.invoke(app, ["plan", "--config", str(config), "--as-of", AS_OF, "--budget", "100", "--model", str(tmp_path / "plain")])
    assert no_uplift.exit_code == 2 and "has no uplift models" in no_uplift.output
    before = (root / "partners.csv").read_bytes()
    clash = runner.invoke(app, ["plan", "--config", str(config), "--as-of", AS_OF, "--budget", "100", "--model", str(folder),
                                "--out", str(root / "partners.csv")])
    assert clash.exit_code == 2 and "data.partners" in clash.output
    assert (root / "partners.csv").read_bytes() == before


def test_uplift_is_skipped_with_a_warning_when_an_action_has_too_little_history(tmp_path, sample_config):
    """The sample has no campaigns: declaring an action there trains the churn model as before and says why no uplift."""
    from churnmodel.uplift import add_uplift

    events = pd.DataFrame({"partner_id": ["P1"], "timestamp": pd.to_datetime(["2024-01-03"], utc=True), "event_type": ["qbr_offer"]})
    frame = pd.DataFrame({"partner_id": ["P1", "P2"], "snapshot": pd.to_datetime(["2024-01-01"] * 2, utc=True), "censored": False,
                          "label": pd.array([0, 1], dtype="Int8")})
    cfg = sample_config.model_copy(update={"data": sample_config.data.model_copy(update={
        "actions": sample_config.data.actions.model_validate({"types": {"qbr_offer": {"lever": "communication", "cost": 10}}})})})

    class Result:  # add_uplift only reads the model and returns the result unchanged when nothing is learned
        model = None

    result, warnings = add_uplift(Result, frame, events, cfg)
    assert result is Result and len(warnings) == 1
    assert "'qbr_offer' has 1 approached and 1 other partner snapshots" in warnings[0] and "at least 50 of each" in warnings[0]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_the_report_shows_which_action_pays_and_the_value_kept_per_budget(campaigns, tmp_path, lang):
    """The score report of a model with uplift models: per best action its partners and value kept, and the
    value kept against the budget by the plan and by ranking, laid out by a real browser."""
    from browser import look

    _, config, folder, _ = campaigns
    run = pipeline.score(config, as_of=AS_OF, model=str(folder), out=tmp_path / "s.parquet", report=tmp_path / "r.html", lang=lang)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    title = "Which retention action pays, and for whom" if lang == "en" else "Какое действие по удержанию окупается и для кого"
    assert title in page
    for action in set(run.scores["best_action"]) - {""}:
        assert f">{action}<" in page
    curve = run.budgets
    assert curve["budget"].iloc[0] == 0 and curve["budget"].is_monotonic_increasing and len(curve) >= 5
    assert (curve["value_plan"] >= curve["value_risk"] - 1e-6).all() and (curve["value_plan"] >= curve["value_revenue_at_risk"] - 1e-6).all()
    assert (curve["spent"] <= curve["budget"] + 1e-6).all()
    seen = look(tmp_path / "r.html", tmp_path)
    assert seen["problems"] == [] and seen["images"] == 4, seen  # the three figures of every report and the budget chart
