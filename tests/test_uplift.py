"""Retention uplift: campaign rows are point in time, the DR-learner recovers known effects, Qini by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnmodel import planning
from churnmodel.actions import campaign_rows
from churnmodel.effects import ActionEffect, lever_shift, mean_se, risk_scaled
from churnmodel.planning import allocate, allocate_with_bound
from churnmodel.uplift import fit_action, fit_uplift, qini, uplift_by_decile


def test_qini_by_hand():
    """Four treated and four untreated partners; a ranking that puts the retained treated first scores above
    the random line, the reverse below it."""
    y = np.array([0, 0, 1, 1, 1, 1, 0, 0])  # 1 = churned
    treated = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    good = np.array([-0.9, -0.8, 0.5, 0.6, 0.1, 0.2, 0.3, 0.4])  # the two retained treated first
    curve, q = qini(y, treated, good)
    assert curve[-1] == pytest.approx(2 - 2 * 4 / 4)  # retained: 2 of 4 treated vs 2 of 4 untreated
    assert q > 0 and qini(y, treated, -good)[1] < 0


def test_the_dr_learner_recovers_a_known_effect_where_assignment_follows_risk():
    """Synthetic rows where the riskier are treated more often (confounded) and the action removes 8 points
    of churn for x > 0 only: the AIPW average is within 3 SE of the truth and near the oracle AIPW (true
    propensity and outcomes), the naive difference is far off,
    and the per-row effect separates the two groups."""
    rng = np.random.default_rng(0)
    n = 12_000
    x = rng.normal(size=n)
    base = 1 / (1 + np.exp(-(-1.5 + 1.2 * x)))
    e_true = 1 / (1 + np.exp(-(x - 1)))
    t = rng.random(n) < e_true  # targeted: the riskier get the action
    tau = np.where(x > 0, -0.08, 0.0)
    y = (rng.random(n) < base + t * tau).astype(int)
    rows = pd.DataFrame({"partner_id": np.arange(n).astype(str), "label": y, "treated": t, "randomised": False,
                         "campaign_id": "c1"})
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=n)})
    up = fit_uplift(rows, X, base, action="call", random_state=1)
    est, se = up.average()
    oracle = tau + t * (y - base - tau) / e_true - (~t) * (y - base) / (1 - e_true)  # AIPW with the true models
    assert abs(est - tau.mean()) <= 3 * se and abs(est - oracle.mean()) <= se  # a 99.7% interval; near the oracle's
    naive = y[t].mean() - y[~t].mean()
    assert abs(naive - tau.mean()) > 6 * se  # confounded by risk: far off
    effect = up.effect(X, base)  # the churn probability without the action, as the churn model gives it
    assert effect[x > 0.5].mean() < effect[x < -0.5].mean() - 0.03


def test_actions_that_come_together_are_counted():
    """A targeted campaign approaches the riskiest with two actions, mostly together: B's metrics say which share
    of its approached partners also got A (``co_treated``), the partners the warning of training is about."""
    rng = np.random.default_rng(2)
    n = 8_000
    x = rng.normal(size=n)
    b = rng.random(n) < 1 / (1 + np.exp(-(2 * x - 3)))  # the riskier get B
    a = np.where(b, rng.random(n) < 0.8, rng.random(n) < 0.05)  # and, mostly, A with it
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1.5 + x)))).astype(int)
    month = pd.to_datetime("2025-01-01") + pd.to_timedelta(rng.integers(0, 4, n) * 31, unit="D")
    rows = pd.DataFrame({"partner_id": np.arange(n).astype(str), "snapshot": month.to_period("M").to_timestamp(), "label": y,
                         "treated": b, "randomised": False, "campaign_id": "c1", "also__A": a})
    fitted = fit_action(rows, pd.DataFrame({"x": x}), np.full(n, 0.2), action="B", random_state=1)
    assert fitted.metrics["co_treated"] == pytest.approx(a[b].mean()) and 0.7 < fitted.metrics["co_treated"] < 0.9
    assert fit_action(rows.drop(columns="also__A"), pd.DataFrame({"x": x}), np.full(n, 0.2), action="B", random_state=1).metrics["co_treated"] == 0


def _randomised_campaigns(tau, base, rng):
    """Eight monthly randomised campaigns (half of each approached) over the rows of ``base`` (churn probability
    without the action) with the true effects ``tau``."""
    n = len(base)
    t = rng.random(n) < 0.5
    y = (rng.random(n) < base + t * tau).astype(int)
    month = pd.to_datetime("2025-01-01") + pd.to_timedelta(rng.integers(0, 8, n) * 31, unit="D")
    snapshot = month.to_period("M").to_timestamp()
    return pd.DataFrame({"partner_id": np.arange(n).astype(str), "snapshot": snapshot, "label": y, "treated": t,
                         "randomised": True, "campaign_id": snapshot.strftime("%Y-%m")})


def test_a_small_campaign_without_an_effect_never_ships_one_that_removes_all_the_lever_risk():
    """50 approached partners of 200, 5% churn, 30% with a lever share, no effect at all: the plain likelihood
    ends at the -10 bound in about half such draws; with the prior on the shift none goes below -2 and the 95%
    interval covers 0 in at least 90% of them. Every approached partner with a share stayed: still finite."""
    rng = np.random.default_rng(1)
    shifts, covered = [], 0
    for _ in range(60):
        p = np.clip(rng.beta(1, 19, 200), 1e-3, 0.99)
        share = np.where(rng.random(200) < 0.3, rng.exponential(size=200), 0.0)
        dose = np.r_[np.ones(50), np.zeros(150)] * share / share.mean()
        s, se = lever_shift(rng.random(200) < p, p, dose)
        shifts.append(s)
        covered += abs(s) < 1.96 * se
    assert min(shifts) > -2 and covered >= 54
    y = np.where(dose > 0, 0, rng.random(200) < 0.3)  # separation: nobody with a share left
    s, se = lever_shift(y, p, dose)
    assert -3 < s < 0 and np.isfinite(se)
    assert lever_shift(y, p, np.zeros(200)) == (0.0, float("inf"))
    with pytest.raises(ValueError, match=r"lever_shift: p must be finite; got 1 NaN or infinite value\(s\)"):
        lever_shift(y, np.r_[np.nan, p[1:]], dose)


def test_standard_errors_count_partners_not_rows():
    """Each partner's row repeated at four snapshots carries no new information: the errors clustered by partner
    are those of one row per partner (the naive ones would be half as large), for the mean and for the shift."""
    rng = np.random.default_rng(4)
    n = 3_000
    p, dose = np.full(n, 0.2), (rng.random(n) < 0.5) * rng.exponential(size=n)
    y = (rng.random(n) < 1 / (1 + 4 * np.exp(0.5 * dose))).astype(float)
    four = lambda a: np.repeat(a, 4)  # noqa: E731
    partners = four(np.arange(n))
    assert mean_se(four(y), partners)[1] == pytest.approx(mean_se(y)[1], rel=0.01)
    assert mean_se(four(y))[1] == pytest.approx(mean_se(y)[1] / 2, rel=0.01)
    once, repeated = lever_shift(y, p, dose), lever_shift(four(y), four(p), four(dose), partners)
    assert repeated[0] == pytest.approx(once[0], abs=0.01) and repeated[1] == pytest.approx(once[1], rel=0.05)
    assert lever_shift(four(y), four(p), four(dose))[1] == pytest.approx(once[1] / 2, rel=0.05)


def test_an_average_effect_beyond_all_the_churn_there_is_is_fitted_by_likelihood():
    """The churn model says 2% but a quarter of the hold-out leaves and no approached partner does: the AIPW
    average (-25 points) is more than any shift of a 2% risk removes, so the uniform shift is the likelihood's
    (flagged), not the -10 bound that would remove every partner's risk."""
    rng = np.random.default_rng(3)
    n = 4_000
    base = np.full(n, 0.02)
    rows = _randomised_campaigns(np.full(n, -0.25), np.full(n, 0.25), rng)
    fitted = fit_action(rows, pd.DataFrame({"x": rng.normal(size=n)}), base, action="call", random_state=1)
    assert fitted.metrics["ate"] < -0.2 and fitted.metrics["log_odds_shift_by_likelihood"] == 1.0
    assert -10 < fitted.metrics["log_odds_shift"] < 0 and np.isfinite(fitted.metrics["log_odds_shift_se"])


def test_differences_between_partners_are_shipped_only_when_the_latest_campaigns_bear_them_out():
    """Randomised campaigns where the action helps partners with z > 0 and pushes the others out (z independent of
    risk): the held-out slope is clearly positive, the differences are kept and the shipped effects separate the
    groups. The same campaigns with one log-odds shift for everybody: the differences are dropped and each
    partner's effect is exactly the average shift scaled to their risk."""
    rng = np.random.default_rng(4)
    n = 16_000
    x, z = rng.normal(size=n), rng.normal(size=n)
    base = 1 / (1 + np.exp(-(-1.2 + 0.8 * x)))
    X = pd.DataFrame({"x": x, "z": z})
    varied = fit_action(_randomised_campaigns(np.where(z > 0, -0.15, 0.05), base, rng), X, base, action="call", random_state=1)
    assert varied.metrics["heterogeneity"] == 1.0 and varied.metrics["heldout_slope"] > 1.96 * varied.metrics["heldout_slope_se"]
    effect = varied.model.effect(X, base)
    assert effect[z > 0.5].mean() < -0.08 and effect[z < -0.5].mean() > -0.02
    shifted = risk_scaled(base, -0.5)
    same = fit_action(_randomised_campaigns(shifted, base, rng), X, base, action="call", random_state=1)
    assert same.metrics["heterogeneity"] == 0.0 and same.evaluation is not None
    np.testing.assert_allclose(same.model.effect(X, base), risk_scaled(base, same.metrics["log_odds_shift"]), atol=1e-12)


def test_an_effect_spread_by_lever_risk_goes_where_the_lever_drives_the_risk():
    """Randomised campaigns where the action's log-odds shift is proportional to a lever risk r (0 for half the
    partners, independent of the churn risk): spread by r, the fitted shift is the true one (within 3 standard
    errors; the same for everyone, it is the smaller one that reproduces the average effect), each partner gets it
    times r over its mean, partners without lever risk get no effect, and the noise-free ranking (true effect as
    the outcome) is the oracle's."""
    rng = np.random.default_rng(5)
    n = 16_000
    x, r = rng.normal(size=n), np.maximum(rng.normal(size=n), 0.0)
    base = 1 / (1 + np.exp(-(-1.2 + 0.8 * x)))
    weight = r / r.mean()
    tau = risk_scaled(base, -0.8 * weight)
    rows, X = _randomised_campaigns(tau, base, rng), pd.DataFrame({"x": x, "r": r})
    spread = fit_action(rows, X, base, action="call", random_state=1, weight=weight)
    uniform = fit_action(rows, X, base, action="call", random_state=1)
    shift, se = spread.metrics["log_odds_shift"], spread.metrics["log_odds_shift_se"]
    assert abs(shift + 0.8) < 3 * se < 0.15
    # the same for everyone, the shift that reproduces the average effect: smaller than the true one, whose effect
    # saturates where the weights are large
    assert -0.8 + 3 * uniform.metrics["log_odds_shift_se"] < uniform.metrics["log_odds_shift"] < -0.3
    # the average effect each gives the campaign rows: the spread one the true average, the uniform one the AIPW average
    assert abs(spread.metrics["implied_effect"] - tau.mean()) < 3 * spread.metrics["implied_effect_se"] < 0.01
    assert uniform.metrics["implied_effect"] == pytest.approx(uniform.metrics["ate"], abs=1e-9)

    def area(e):  # the Qini area with the true effects as outcomes: what the first k of the ranking remove, over random
        kept = -np.cumsum(tau[np.argsort(e, kind="stable")])
        return (kept - np.arange(1, n + 1) / n * kept[-1]).mean()

    assert area(spread.model.effect(X, base, weight)) > 0.99 * area(tau)
    # as shipped, without differences of its own: the average shift times the partner's lever risk over its mean
    shipped = ActionEffect("call", "communication", 10.0, spread.model.booster, projection=(shift, 0.0, 0.0), lever_scale=float(r.mean()))
    effect = shipped.effect(X, base, r)
    np.testing.assert_allclose(effect, risk_scaled(base, shift * weight), atol=1e-12)
    assert np.abs(effect[r == 0]).max() < 1e-12
    with pytest.raises(ValueError, match="spread by the communication lever's risk; pass lever_risk"):
        shipped.effect(X, base)


def test_lever_risk_is_the_drivers_shap_summed_per_lever(sample_training):
    """One answer: an action's lever risk is the churn model's exact SHAP contributions of the lever's features
    summed, as the scored list's drivers are computed (:func:`churnmodel.explain.contributions`), 0 where they lower
    the risk; a lever no feature belongs to spreads nothing (weight 1, scale 0)."""
    from churnmodel.explain import contributions
    from churnmodel.uplift import lever_weight

    frame, _, result, _ = sample_training
    model, rows = result.model, frame.iloc[:400]
    X = model.prepare(rows)
    info = model.plan.info().set_index("name").loc[model.features]
    contrib = contributions(model, rows)[:, :-1]
    levers = sorted(set(info["lever"]) - {"profile"})
    risk = model.lever_risk(X, [*levers, "nonexistent"])
    for j, lever in enumerate(levers):
        np.testing.assert_allclose(risk[:, j], np.maximum(contrib[:, (info["lever"] == lever).to_numpy()].sum(axis=1), 0), atol=1e-9)
    assert (risk[:, -1] == 0).all() and risk[:, :-1].max() > 0
    weight, scale = lever_weight(model, X, levers[0])
    assert scale == pytest.approx(risk[:, 0].mean()) and np.mean(weight) == pytest.approx(1.0)
    assert lever_weight(model, X, "nonexistent") == (1.0, 0.0)


@pytest.mark.slow
def test_campaign_rows_are_point_in_time_and_the_randomised_effects_are_recovered(tmp_path):
    """On simulated campaigns: each row is the partner's snapshot just before the approach, with the frame's
    own features (the approach is in the future of that snapshot); randomised campaigns keep their assigned
    partners, targeted ones everyone active; the DR average over the randomised rows lies within its 95% CI of
    the true average effect on the 90-day churn for every action."""
    from churnmodel import load_config, read_inputs
    from churnmodel.calibration import Calibrator
    from churnmodel.features import build_training_frame
    from churnmodel.model import ChurnModel
    from churnmodel.simulate import simulate, write_simulation
    from churnmodel.simulate.campaigns import ACTIONS

    sim = simulate(3000, 36, random_state=3, campaigns=True)
    write_simulation(sim, tmp_path)
    types = "".join(f"      {a}: {{lever: communication}}\n" for a in ACTIONS)
    (tmp_path / "c.yaml").write_text("data:\n  partners: partners.csv\n  events: events.parquet\n  contracts: contracts.csv\n"
                                     f"  actions:\n    types:\n{types}")
    cfg = load_config(tmp_path / "c.yaml")
    tables = read_inputs(cfg.data)
    frame, plan = build_training_frame(tables, cfg)
    shell = ChurnModel(booster=None, calibrator=Calibrator("none"), plan=plan)
    truth = sim.campaigns.assign(snapshot=sim.campaigns["month"].astype("datetime64[us, UTC]"))
    approached = truth.loc[~truth["control"].astype(bool)]
    for action in ACTIONS:
        others = [a for a in ACTIONS if a != action]
        rows = campaign_rows(frame, tables.events, action=action, others=others)
        for other in others:  # approached with the other action at the same snapshot, as the simulator assigned it
            theirs = approached.loc[approached["action"] == other, ["partner_id", "snapshot"]].assign(got=True)
            got = rows[["partner_id", "snapshot"]].merge(theirs, how="left")["got"].notna().to_numpy()
            assert (rows[f"also__{other}"].to_numpy() == got).all() and got.any()
        mine = truth.loc[truth["action"] == action]
        assigned = rows.loc[rows["assigned"]].merge(mine, on=["partner_id", "snapshot"], how="left", validate="one_to_one")
        assert assigned["control"].notna().all() and (assigned["treated"] == ~assigned["control"].astype(bool)).all()
        assert rows.loc[rows["randomised"], "assigned"].all() and (~rows.loc[~rows["randomised"], "assigned"]).any()
        same = frame.merge(rows[["partner_id", "snapshot"]], on=["partner_id", "snapshot"])
        pd.testing.assert_frame_equal(same[plan.columns].reset_index(drop=True), rows[plan.columns].reset_index(drop=True))
        up = fit_uplift(rows, shell.prepare(rows), np.full(len(rows), 0.1), action=action, random_state=7)
        est, se = up.average(rows["randomised"].to_numpy())
        r = mine.loc[mine["randomised"]]
        h = 1 - (1 - r["p_without"]) ** (1 / 6)  # the month's hazard; the 90-day label spans three months of it
        with_action = 1 / (1 + np.exp(-(np.log(h / (1 - h)) + r["effect_logit"])))
        true_90d = ((1 - (1 - with_action) ** 3) - (1 - (1 - h) ** 3)).mean()
        assert abs(est - true_90d) <= 1.96 * se, action


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(0, 10_000), st.data())
def test_the_plan_is_the_best_within_the_budget(n, k, seed, data):
    """Against every possible plan (at most one action per partner): the allocation never exceeds the budget
    and its total gain is the largest any plan within the budget reaches."""
    import itertools

    rng = np.random.default_rng(seed)
    gain = np.round(rng.normal(2, 4, (n, k)), 1)
    cost = np.round(rng.uniform(0, 5, k), 1)
    budget = data.draw(st.floats(0, 12, allow_nan=False))
    chosen = allocate(gain, cost, budget=budget)
    spent = sum(cost[a] for a in chosen if a >= 0)
    got = sum(gain[i, a] for i, a in enumerate(chosen) if a >= 0)
    assert spent <= budget + 1e-9
    best = max(sum(gain[i, a] for i, a in enumerate(plan) if a >= 0)
               for plan in itertools.product(range(-1, k), repeat=n) if sum(cost[a] for a in plan if a >= 0) <= budget + 1e-9)
    assert got == pytest.approx(best, abs=1e-6)


def test_uplift_by_decile_lines_predicted_up_with_observed_on_a_randomised_campaign():
    """Randomised assignment, an effect that grows with x: the model's deciles run from the most retained to
    the least, and the observed effect per decile follows the predicted one."""
    rng = np.random.default_rng(5)
    n = 20_000
    x = rng.normal(size=n)
    tau = -0.12 * (x > 0) - 0.06 * (x > 1)
    t = rng.random(n) < 0.5
    y = (rng.random(n) < 0.3 + t * tau).astype(int)
    rows = pd.DataFrame({"partner_id": np.arange(n).astype(str), "label": y, "treated": t, "randomised": True, "campaign_id": "c1"})
    X = pd.DataFrame({"x": x})
    effect = fit_uplift(rows, X, np.full(n, 0.3), action="call", random_state=2).effect(X, np.full(n, 0.3))
    table = uplift_by_decile(y, t, effect)
    assert table["rows"].sum() == n and (table["treated"] + table["untreated"] == table["rows"]).all()
    assert table["predicted"].is_monotonic_increasing
    assert np.corrcoef(table["predicted"], table["observed"])[0, 1] > 0.8
    assert table["observed"].iloc[:3].mean() < -0.08 and abs(table["observed"].iloc[-4:].mean()) < 0.03


@pytest.mark.parametrize("seed", range(6))
def test_the_large_list_allocation_is_within_its_proven_gap_of_the_exact_optimum(seed, monkeypatch):
    """Without the exact MILP (as for lists above MILP_MAX_OPTIONS), the Lagrangian plan stays within the budget,
    its bound is above the exact optimum, and it falls short of the optimum by at most the gap it reports."""
    rng = np.random.default_rng(seed)
    n, k = 400, 3
    gain = np.round(rng.normal(50, 120, (n, k)), 2)
    cost = rng.choice([100.0, 250.0, 400.0], k, replace=False)
    budget = float(rng.uniform(0.02, 0.5) * n * cost.mean())
    exact, _ = allocate_with_bound(gain, cost, budget=budget)
    best = gain[np.flatnonzero(exact >= 0), exact[exact >= 0]].sum()
    monkeypatch.setattr(planning, "MILP_MAX_OPTIONS", 0)
    quick, bound = allocate_with_bound(gain, cost, budget=budget)
    got = gain[np.flatnonzero(quick >= 0), quick[quick >= 0]].sum()
    assert cost[quick[quick >= 0]].sum() <= budget + 1e-9
    assert bound >= best - 1e-6 and got <= best + 1e-6
    assert best - got <= bound - got + 1e-6 and bound - got <= gain.max()  # the gap reported covers the shortfall


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(-2, 2)), min_size=1, max_size=20), st.floats(-3, 3), st.floats(-1, 2), st.floats(-1, 1))
def test_an_effect_never_takes_a_probability_out_of_0_1_and_without_slope_is_the_risk_scaled_average(pairs, shift, slope, center):
    from churnmodel.effects import combined_effect, risk_scaled

    p = np.array([a for a, _ in pairs])
    raw = np.array([b for _, b in pairs])
    effect = combined_effect(raw, p, (shift, slope, center))
    assert (p + effect >= -1e-12).all() and (p + effect <= 1 + 1e-12).all()
    if slope <= 0:  # nothing of the regression is borne out: every partner gets the same odds shift
        np.testing.assert_allclose(effect, np.clip(risk_scaled(p, shift), -p, 1 - p), atol=1e-12)
    if abs(shift) > 1e-6:  # a lower odds of leaving lowers every probability strictly inside (0, 1), and a higher raises it
        assert (np.sign(risk_scaled(p[(p > 0.01) & (p < 0.99)], shift)) == np.sign(shift)).all()


@pytest.mark.slow
def test_fits_side_by_side_pin_lightgbms_thread_count(tmp_path, monkeypatch):
    """LightGBM keeps its thread count in one process-wide variable that every call with parameters sets: while
    the survival stage and the uplift stage run fits in threads, every such call (binning, subsets, training,
    prediction) passes the same ``num_threads``, else one thread's call can make another's parallel loop outgrow
    its buffers (a general protection fault in lib_lightgbm.so, seen once in notebook 04's training). Every call
    LightGBM's C library receives in those stages is recorded, with its parameters and its stage."""
    import ctypes
    from concurrent.futures import ThreadPoolExecutor

    import lightgbm.basic

    from churnmodel import pipeline, survival, uplift
    from churnmodel.booster import SIDE_BY_SIDE
    from churnmodel.simulate.campaigns import ACTIONS

    real, stage, seen = lightgbm.basic._LIB, [None], []
    sets_threads = ("LGBM_BoosterPredictFor", "LGBM_BoosterPredictSparseOutput", "LGBM_DatasetCreateFrom",
                    "LGBM_DatasetGetSubset", "LGBM_BoosterCreate", "LGBM_BoosterResetParameter")  # LightGBM 4.7's C API

    class Recorder:
        def __getattr__(self, name):
            fn = getattr(real, name)
            if not name.startswith(sets_threads) or name == "LGBM_BoosterCreateFromModelfile":
                return fn

            def call(*args):
                if stage[0] is not None:
                    seen.append((stage[0], name, [a.value.decode() for a in args if isinstance(a, ctypes.c_char_p) and a.value is not None]))
                return fn(*args)
            return call

    def pool(name: str, alone=()):  # a stage: from the first job submitted that is not alone with LightGBM until every one is done
        class Pool(ThreadPoolExecutor):
            def submit(self, fn, *args, **kwargs):
                if fn not in alone:
                    stage[0] = name
                return super().submit(fn, *args, **kwargs)

            def shutdown(self, *args, **kwargs):
                super().shutdown(*args, **kwargs)
                stage[0] = None
        return Pool

    pipeline.simulate(partners=250, months=30, random_state=5, out=tmp_path, campaigns=True)
    types = "".join(f"      {a}: {{lever: communication}}\n" for a in ACTIONS)
    (tmp_path / "c.yaml").write_text("data:\n  partners: partners.csv\n  events: events.parquet\n  contracts: contracts.csv\n"
                                     f"  actions:\n    types:\n{types}label:\n  horizons: [90, 365]\n"
                                     "train:\n  bootstrap: 0\n  baseline: false\n  hazard_folds: 2\n")
    monkeypatch.setattr(lightgbm.basic, "_LIB", Recorder())
    # the survival stage's linear preprocessing never calls LightGBM: the binning beside it has LightGBM to itself
    monkeypatch.setattr(survival, "ThreadPoolExecutor", pool("survival", alone=(survival.LinearInputs.fit,)))
    monkeypatch.setattr(uplift, "ThreadPoolExecutor", pool("uplift"))
    fitted = pipeline.fit(tmp_path / "c.yaml", track=False)
    assert fitted.model.hazard is not None and len(fitted.model.uplift) >= 2  # both stages ran their fits side by side
    kinds = {(where, name) for where, name, _ in seen}
    assert {("survival", "LGBM_BoosterCreate"), ("survival", "LGBM_DatasetGetSubset"),  # (its predictions: pattern look-ups)
            ("uplift", "LGBM_DatasetCreateFromMat"), ("uplift", "LGBM_BoosterCreate"), ("uplift", "LGBM_BoosterPredictForMat")} <= kinds, kinds
    loose = [call for call in seen if not any(f"num_threads={SIDE_BY_SIDE}" in t.split() for t in call[2])]
    assert not loose, loose[:5]
