"""Linear models: the linear score equals the scikit-learn pipeline it was folded from, survives its
file format, and the discrete-time logistic hazard model and the Cox baseline find a known effect."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from churnmodel.linear import CoxBaseline, LinearScore, efron, linear_preprocessor
from churnmodel.person_period import expand_intervals
from churnmodel.survival import fit_linear_hazard


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tickets = rng.poisson(2.0, n).astype(float)
    tickets[rng.random(n) < 0.2] = np.nan
    delay = rng.normal(0, 30, n)  # negative values too: the signed log
    tier = pd.Categorical(rng.choice(["gold", "silver", None], n), categories=["gold", "silver", "bronze"])
    return pd.DataFrame({"tickets": tickets, "delay": delay, "never_seen": np.full(n, np.nan), "tier": tier})


def test_score_equals_the_pipeline_it_was_folded_from():
    fit, new = _frame(300, 0), _frame(50, 1)
    new.loc[0, "tier"] = "bronze"  # a category the fitting rows never had: weight 0, like the encoder's zeros
    prep = linear_preprocessor(fit).fit(fit)
    beta = np.random.default_rng(2).normal(size=prep.transform(fit).shape[1])
    score = LinearScore.from_fitted(prep, beta, fit)
    for X in (fit, new):
        np.testing.assert_allclose(score(X), np.asarray(prep.transform(X) @ beta).ravel(), atol=1e-10)
    parts = score.contributions(fit)
    np.testing.assert_allclose(parts.mean(axis=0), 0, atol=1e-10)  # centred on the fitting rows
    np.testing.assert_allclose(parts.sum(axis=1) + score.intercept, score(fit), atol=1e-12)
    assert score.features == ["delay", "never_seen", "tickets", "tier"]
    odd = new.assign(tickets=np.where(np.arange(len(new)) < 3, np.inf, new["tickets"]))  # infinite: counted as missing
    np.testing.assert_allclose(score(odd)[:3], score(new.assign(tickets=np.nan))[:3], atol=1e-12)
    np.testing.assert_allclose(parts[:, 1], 0, atol=1e-12)  # an all-empty column contributes nothing


def test_score_survives_its_file_format_exactly():
    fit = _frame(200, 3)
    prep = linear_preprocessor(fit).fit(fit)
    score = LinearScore.from_fitted(prep, np.linspace(-1, 1, prep.transform(fit).shape[1]), fit)
    loaded = LinearScore.from_dict(json.loads(json.dumps(score.to_dict(), sort_keys=True)))
    assert loaded == score
    np.testing.assert_array_equal(loaded(fit), score(fit))


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["numeric"]["delay"].__setitem__(1, float("nan")), "finite"),
    (lambda d: d["centre"].pop("tier"), "centre"),
    (lambda d: d["numeric"].__setitem__("delay", [0.0, 1.0]), "fill, weight, missing_weight"),
    (lambda d: d["numeric"].__setitem__("delay", "123"), "a list of numbers, got '123'"),
    (lambda d: d.__setitem__("intercept", "0.5"), "a list of numbers"),
    (lambda d: d["categorical"].__setitem__("delay", {"a": 1.0}), r"\['delay'\] both a number and a category"),
])
def test_a_damaged_score_is_refused(change, message):
    fit = _frame(100, 4)
    prep = linear_preprocessor(fit).fit(fit)
    data = LinearScore.from_fitted(prep, np.ones(prep.transform(fit).shape[1]), fit).to_dict()
    change(data)
    with pytest.raises(ValueError, match=message):
        LinearScore.from_dict(data)


def _survival_data(n: int, seed: int):
    """Monthly hazard sigmoid(-3.5 + 1.2 * risk); follow-up up to 400 days, censored at random."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"risk": rng.normal(size=n), "noise": rng.normal(size=n)})
    monthly = 1 / (1 + np.exp(-(-3.5 + 1.2 * X["risk"].to_numpy())))
    time = rng.geometric(monthly) * 30.0 - rng.uniform(0, 30, n)
    censor = rng.uniform(100, 400, n)
    return X, np.minimum(time, censor), time <= censor


def test_logistic_hazard_model_finds_the_effect():
    X, time, event = _survival_data(3000, 5)
    rows, k, y = expand_intervals(time, event, [30, 90, 180, 365])
    score = fit_linear_hazard(X, rows, k, y, intervals=4, random_state=0)
    parts = score.contributions(X)
    assert score.numeric["risk"][1] > 0 and abs(score.numeric["noise"][1]) < 0.2 * score.numeric["risk"][1]
    assert np.corrcoef(score(X), X["risk"])[0, 1] > 0.95 and parts[:, 1].std() > 5 * parts[:, 0].std()
    again = fit_linear_hazard(X, rows, k, y, intervals=4, random_state=0, max_rows=2000)  # a seeded sample
    assert again == fit_linear_hazard(X, rows, k, y, intervals=4, random_state=0, max_rows=2000) and again != score


def test_cox_baseline_ranks_by_the_effect():
    X, time, event = _survival_data(2000, 6)
    curve = CoxBaseline(max_rows=1500, random_state=0).fit(X, time, event, cut=365).curve(X, [30, 90, 180, 365])
    assert curve.shape == (2000, 4) and (np.diff(curve, axis=1) >= 0).all() and ((curve >= 0) & (curve <= 1)).all()
    assert np.corrcoef(curve[:, -1], X["risk"])[0, 1] > 0.9


def test_cox_baseline_is_lifelines_model_with_ties_and_a_category():
    """The vectorised Efron fit gives lifelines' CoxPHFitter(penalizer=0.1): same coefficients and curves,
    on whole-day durations (many tied event times), a missing value and a categorical feature."""
    from lifelines import CoxPHFitter

    X, time, event = _survival_data(1200, 7)
    time = np.ceil(time)  # days: ties
    X = X.assign(tier=pd.Categorical(np.where(X["noise"] > 0.5, "gold", "silver")))
    X.loc[3, "noise"] = np.nan
    cox = CoxBaseline(random_state=0).fit(X, time, event, cut=365)
    full = np.asarray(cox.prep.transform(X), dtype=np.float64)
    Z = full[:, cox.keep]
    # the survival stage's folds share one fitted preprocessing and its output: the same model
    shared = CoxBaseline(random_state=0).fit(X, time, event, cut=365, inputs=(linear_preprocessor(X).fit(X), full))
    np.testing.assert_array_equal(shared.beta, cox.beta)
    np.testing.assert_array_equal(shared.curve(X, [30, 365], Z=full), cox.curve(X, [30, 365]))
    data = pd.DataFrame(Z, columns=[f"x{i}" for i in range(Z.shape[1])])
    data["T"], data["E"] = np.minimum(time, 365), (event & (time <= 365)).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' own deprecation warnings from pandas
        reference = CoxPHFitter(penalizer=0.1).fit(data, "T", "E")
        curves = reference.predict_survival_function(data.drop(columns=["T", "E"]), times=[30, 90, 180, 365]).to_numpy().T
    # lifelines stops once the log-likelihood changes by < 1e-9 relative; the Newton steps here go on to
    # the optimum, so the coefficients agree to lifelines' tolerance and the objective is at least as high
    np.testing.assert_allclose(cox.beta, reference.params_.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(cox.curve(X, [30, 90, 180, 365]), 1.0 - curves, atol=1e-4)
    std = Z.std(axis=0, ddof=1)
    ours, theirs = (efron((Z - Z.mean(axis=0)) / std, data["T"].to_numpy(float), data["E"].to_numpy(bool), b * std, 0.1)
                    for b in (cox.beta, reference.params_.to_numpy()))
    assert ours[0] >= theirs[0] and np.abs(ours[1]).max() < 1e-6 < np.abs(theirs[1]).max()
