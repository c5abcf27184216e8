"""Exact SHAP (two routes agree), additivity, reason codes with levers and actions, and agreement with
the simulator's ground truth."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from churnmodel.cli import app
from churnmodel.config import ExplainConfig
from churnmodel.explain import (
    contributions,
    explain,
    explain_partner,
    global_importance,
    probability_points,
)


@pytest.fixture(scope="module")
def rows(sample_training):
    frame, _, result, _ = sample_training
    labelled = frame.loc[~frame["censored"]].reset_index(drop=True)
    return labelled.iloc[result.split.test].head(400), result.model


def test_lightgbm_and_shap_routes_agree_and_add_up(rows):
    frame, model = rows
    a = contributions(model, frame, route="lightgbm", batch_rows=150)  # several batches
    b = contributions(model, frame, route="shap")
    assert np.abs(a - b).max() < 1e-6
    raw = model.booster.predict(model.prepare(frame), raw_score=True)
    np.testing.assert_allclose(a.sum(axis=1), raw, atol=1e-9)  # contributions + base value = log-odds
    points, p, p0 = probability_points(model, a)
    np.testing.assert_allclose(points.sum(axis=1), p - p0, atol=1e-9)  # probability points add up
    np.testing.assert_allclose(p, model.churn_probability(frame), atol=1e-12)
    moved = np.abs(p - p0) > 1e-9
    assert np.all(np.sign(points[moved]) == np.sign(a[moved, :-1]))  # rescaling keeps each sign


def test_the_table_route_equals_pred_contrib_on_the_sample_model(rows):
    """The default route for shallow trees (categorical features and missing values included)."""
    frame, model = rows
    assert model.shap_tables() is not None
    a = contributions(model, frame, route="tables", batch_rows=150)
    b = contributions(model, frame, route="lightgbm")
    assert np.abs(a - b).max() < 1e-9 and np.array_equal(contributions(model, frame), a)  # auto: the tables


_CATS = ["n", "s", "e", "w"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), depth=st.integers(1, 3), missing=st.sampled_from(["nan", "zero", "none"]),
       nan_share=st.sampled_from([0.0, 0.2]))
def test_pattern_tables_equal_pred_contrib_for_any_shallow_booster(seed, depth, missing, nan_share):
    """Numbers with NaN, zeros and ties at thresholds, a categorical column with unseen and missing
    values, LightGBM's three missing-value rules: the tables give pred_contrib's values."""
    import lightgbm as lgb

    from churnmodel.shapley import PatternShap

    rng = np.random.default_rng(seed)
    n = 400
    X = pd.DataFrame({"a": rng.normal(size=n).round(1), "b": rng.integers(0, 4, n).astype(float), "c": rng.normal(size=n),
                      "k": pd.Categorical(rng.choice(_CATS, n), categories=_CATS)})
    for col in ("a", "b", "c"):
        X.loc[rng.random(n) < nan_share, col] = np.nan
    y = ((X["a"].fillna(0) + (X["k"] == "s") + rng.normal(size=n)) > 0.5).astype(int)
    params = {"objective": "binary", "max_depth": depth, "num_leaves": 2 ** depth, "min_data_in_leaf": 5, "verbosity": -1,
              "use_missing": missing != "none", "zero_as_missing": missing == "zero", "seed": seed, "min_data_per_group": 5,
              "cat_smooth": 1}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=8)
    test = X.copy()
    test.loc[:20, "k"] = np.nan
    test.loc[20:40, "a"] = 0.0
    tables = PatternShap.of(booster)
    assert tables is not None
    np.testing.assert_allclose(tables.contributions(test), booster.predict(test, pred_contrib=True), rtol=0, atol=1e-9)


def test_deep_trees_fall_back_to_pred_contrib(rows):
    import dataclasses

    import lightgbm as lgb

    from churnmodel.errors import ConfigError

    frame, model = rows
    X = model.prepare(frame)
    deep = lgb.train({"objective": "binary", "num_leaves": 31, "min_data_in_leaf": 5, "verbosity": -1},
                     lgb.Dataset(X, np.arange(len(X)) % 3 == 0), num_boost_round=3)
    other = dataclasses.replace(model, booster=deep)
    assert other.shap_tables() is None  # 30 splits: no tables
    np.testing.assert_allclose(contributions(other, frame), deep.predict(X, pred_contrib=True), atol=1e-12)
    with pytest.raises(ConfigError, match=r"explain\.route tables needs trees of at most 8 splits"):
        contributions(other, frame, route="tables")


def test_reason_codes_have_levers_and_one_action_per_lever(rows):
    frame, model = rows
    e = explain(model, frame)
    assert list(e.columns[:4]) == ["partner_id", "snapshot", "churn_probability", "base_rate"]
    top = e.sort_values("churn_probability", ascending=False).iloc[0]
    assert top["driver_1_points"] >= top["driver_2_points"] >= top["driver_3_points"] > 0
    assert top["lever_1"] and top["action_1"] and "typical" in top["driver_1"]
    info = model.plan.info().set_index("name")["lever"]
    for _, r in e.iterrows():
        levers = [info[r[f"driver_{i}_feature"]] for i in (1, 2, 3) if r[f"driver_{i}_feature"]]
        assert "profile" not in levers  # drivers are actionable; profile facts go to context
        for i in (2, 3):
            if r[f"driver_{i}_feature"] and info[r[f"driver_{i}_feature"]] in levers[: i - 1]:
                assert r[f"action_{i}"] == ""  # several drivers on one lever give one action
    ru = explain(model, frame.head(5), lang="ru")
    assert any("Эскалировать" in a or "QBR" in a or "NPS" in a for a in ru[["action_1", "action_2"]].to_numpy().ravel())


def test_partner_table_and_custom_actions(rows):
    frame, model = rows
    cfg = ExplainConfig(actions={"responsiveness": {"en": "Call the support lead today.", "ru": "Позвонить руководителю поддержки."}})
    assert cfg.actions["conflict"].en.startswith("Run the conflict-resolution routine")  # the rest stay shipped
    worst = frame.iloc[[int(np.argmax(model.churn_probability(frame)))]]
    table = explain_partner(model, worst, config=cfg)
    assert table["kind"].tolist()[:3] == ["driver", "driver", "driver"] and table["rank"].tolist()[:3] == [1, 2, 3]
    assert table.attrs["churn_probability"] == pytest.approx(model.churn_probability(worst)[0])
    if "Responsiveness" in table["lever"].tolist():
        assert "Call the support lead today." in table["action"].tolist()


def test_global_importance_per_feature_and_lever(rows):
    frame, model = rows
    per_feature, per_lever = global_importance(model, contributions(model, frame))
    assert per_feature["mean_abs_shap"].is_monotonic_decreasing and len(per_feature) == len(model.features)
    assert per_lever.iloc[0]["lever"] == "responsiveness"


def test_explain_cli_with_a_model_folder(rows, tmp_path):
    frame, model = rows
    folder = model.save(tmp_path / "model")
    runner = CliRunner()
    pid = frame["partner_id"].iloc[0]
    result = runner.invoke(app, ["explain", "--config", "configs/partner_churn.yaml", "--model", str(folder),
                                 "--as-of", "2025-10-01", "--partner", pid], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Partner {pid}, 2025-10-01: churn probability" in result.output and "protects" in result.output
    result = runner.invoke(app, ["explain", "--config", "configs/partner_churn.yaml", "--model", str(folder),
                                 "--as-of", "2025-10-01", "--partner", "P00103"])
    assert result.exit_code == 2 and "--partner 'P00103' is not in partners.csv; similar ids:" in result.output
    result = runner.invoke(app, ["explain", "--config", "configs/partner_churn.yaml", "--model", str(tmp_path / "nope"),
                                 "--as-of", "2025-10-01", "--partner", pid])
    assert result.exit_code == 2 and "not found: not a folder and not an MLflow URI" in result.output


@pytest.mark.slow
def test_explanations_recover_the_simulators_causes(tmp_path):
    from scipy.stats import spearmanr

    from churnmodel import load_config, read_inputs
    from churnmodel.features import build_training_frame
    from churnmodel.simulate import CAUSES, simulate, write_simulation
    from churnmodel.train import train

    sim = simulate(3000, 36, random_state=21)
    write_simulation(sim, tmp_path)
    cfg = load_config("configs/partner_churn.yaml", [f"data.partners={tmp_path}/partners.csv", f"data.events={tmp_path}/events.parquet",
                                                    f"data.contracts={tmp_path}/contracts.csv", "train.bootstrap=0", "train.baseline=false"])
    frame, plan = build_training_frame(read_inputs(cfg.data), cfg)
    model = train(frame, plan, cfg).model
    rows = frame.loc[~frame["censored"]].reset_index(drop=True)
    contrib = contributions(model, rows)
    _, per_lever = global_importance(model, contrib)
    shap_rank = per_lever.loc[per_lever["lever"] != "profile"].set_index("lever")["mean_abs_shap"]
    hazard = sim.hazard.loc[sim.hazard["month"].between(rows["snapshot"].min(), rows["snapshot"].max())]
    cols = [f"contrib_{c}" for c in CAUSES]
    # SHAP measures deviation from the average prediction, so compare with centred true contributions
    truth = (hazard[cols] - hazard[cols].mean()).abs().mean().rename(lambda c: c.removeprefix("contrib_"))
    both = pd.DataFrame({"shap": shap_rank, "truth": truth}).fillna(0.0)
    assert both["shap"].idxmax() == both["truth"].idxmax() == "responsiveness"
    assert spearmanr(both["shap"], both["truth"]).statistic >= 0.7

    last = rows.loc[rows["label"] == 1].sort_values("snapshot").groupby("partner_id").tail(1)
    reasons = explain(model, last, contrib=contrib[last.index.to_numpy()])
    lever = plan.info().set_index("name")["lever"]
    truth_by_partner = sim.truth.set_index("partner_id")
    hits = [lever[f] in (truth_by_partner.loc[p, "top_cause"], truth_by_partner.loc[p, "second_cause"])
            for p, f in zip(reasons["partner_id"], reasons["driver_1_feature"], strict=True) if f]
    assert len(hits) > 300 and np.mean(hits) >= 0.6
