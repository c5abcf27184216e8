"""Retention uplift: how much an action changes a partner's probability of leaving within the horizon.

**Rows.** For every campaign of an action, the partners active at the snapshot that opens the
campaign's month, with their features and churn label there. The approach lands in the hours after
that snapshot, so the features never see it (history is ``t < s``). *Treated*: approached by the
action within ``window_days`` after the snapshot (a row of its type that is not a hold-out). The
comparison group of a randomised campaign is its hold-out, and its propensity is the campaign's
treated share; a targeted campaign (no hold-out) is compared with the other partners active at the
snapshot, and its propensity is modelled. Other declared actions a partner got in the same window
(co-treatments, ``also__<action>`` columns) are counted, not adjusted for: see :func:`add_uplift`.

**Estimator.** The DR-learner (Kennedy 2020). Outcome models ``mu0``, ``mu1`` and the propensity ``e``
are cross-fitted over partner folds (LightGBM). The doubly robust pseudo-outcome
``psi = mu1 - mu0 + T (y - mu1) / e - (1 - T)(y - mu0) / (1 - e)`` is regressed on the features,
which gives the effect per partner. Its mean over a campaign's rows is the AIPW estimate of the
average effect, with a standard error from the pseudo-outcomes.

**Shape.** Each partner gets one shift of the log-odds of leaving times a *weight*, 1 on average over the
campaign rows: 1 for everyone (``spread: uniform``), or their lever risk (what the churn model's features of
the action's lever add to their log-odds) over its mean (``spread: lever``). The same for everyone, the
shift is the one that reproduces the AIPW average: no shape is assumed beyond the risk scaling. Spread by
the lever, it is the likelihood's shift under that shape, with a normal prior that keeps a small campaign's
from running off (:func:`~churnmodel.effects.lever_shift`: the approached partners' churn is their churn model
probability moved by the shift times their weight). Either is fitted
on the churn model's probabilities, the ones scoring moves: learnt from every snapshot, they estimate the
churn without the action better than the campaign rows' cross-fitted ``mu0``. Why the likelihood: the AIPW
average weighs every row alike, and most rows carry no effect when the lever drives few partners' risk. On
the simulator's earlier campaigns (4,000 partners, seeds 3, 5, 11: twelve actions) the AIPW averages were
0.11-1.38 points off the truth (three on the wrong side of zero), the likelihood shift's 0.04-1.03 (none),
and the plan kept 0.3-4.7% more at 10% of the spend (``benchmarks/bench_uplift.py``, before the
quarter-over-quarter trends). Two other fits were dropped: re-solving the shift so that the weighted effects reproduce the AIPW average needs, where the
lever risk sits on few rows, shifts that remove every such partner's risk (the +-10 bound was hit on 4 of
12 simulated actions), and a least-squares fit of the shift to the pseudo-outcomes flipped signs. The
regression's variation around the base is kept as far as the data bear it out.

The effect is P(churn | action) - P(churn | none): below 0, the action retains.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnmodel.actions import ALSO, campaign_rows
from churnmodel.booster import SIDE_BY_SIDE
from churnmodel.config import Config
from churnmodel.effects import (
    ActionEffect,
    average_shift,
    cluster_meat,
    combined_effect,
    lever_share,
    lever_shift,
    mean_se,
    risk_scaled,
)
from churnmodel.errors import DataError
from churnmodel.model import ChurnModel

__all__ = ["MIN_ARM_ROWS", "ActionFit", "Uplift", "UpliftEvaluation", "add_uplift", "best_linear_projection",
           "fit_action", "fit_uplift", "lever_weight", "metric_name", "qini", "uplift_by_decile"]

#: A modelled propensity is kept inside (CLIP, 1 - CLIP): weights stay bounded.
CLIP = 0.02
_PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 8, "max_depth": 3, "min_child_samples": 40,
           "lambda_l2": 1.0, "deterministic": True, "force_col_wise": True, "verbosity": -1, "num_threads": 2}


@dataclass(frozen=True)
class Uplift:
    """A fitted DR-learner for one action: the effect regressor and the rows' cross-fitted pseudo-outcomes."""

    action: str
    features: tuple[str, ...]
    booster: lgb.Booster  # the regression of the pseudo-outcomes on the features
    pseudo: np.ndarray  # per training row
    propensity: np.ndarray
    projection: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 0.0)  # log-odds shift, slope, center, slope's SE
    shift_se: float = float("nan")  # the log-odds shift's standard error
    by_likelihood: bool = False  # the shift is the likelihood's (effects.lever_shift), not the AIPW average's
    groups: np.ndarray | None = None  # each training row's partner: standard errors are clustered by partner

    def effect(self, X: pd.DataFrame, p: np.ndarray, weight: np.ndarray | float = 1.0) -> np.ndarray:
        """The action's effect on P(churn within the horizon), per row of a prepared feature frame whose churn
        probability is ``p``: the action's log-odds shift times the row's ``weight``, scaled to each partner's risk,
        plus the regression's variation around it as far as the cross-fitted pseudo-outcomes bear it out
        (:func:`~churnmodel.effects.combined_effect`)."""
        return combined_effect(self.booster.predict(X[list(self.features)]), p, self.projection[:3], weight)

    def average(self, mask: np.ndarray | None = None) -> tuple[float, float]:
        """(AIPW average effect, its standard error, clustered by partner) over the training rows in ``mask``
        (all by default)."""
        if mask is None:
            return mean_se(self.pseudo, self.groups)
        return mean_se(self.pseudo[mask], None if self.groups is None else self.groups[mask])


def fit_uplift(rows: pd.DataFrame, X: pd.DataFrame, p: np.ndarray, *, action: str, random_state: int,
               weight: np.ndarray | float = 1.0, folds: int = 2, rounds: int = 200, threads: int = 2) -> Uplift:
    """The DR-learner on ``rows`` (:func:`~churnmodel.actions.campaign_rows`), their prepared features ``X`` and the churn
    model's probabilities ``p`` (same order), with the log-odds shift fitted on ``p``, the probabilities it moves when
    scoring; LightGBM on ``threads`` threads (the same trees whatever their number: column-wise histograms,
    ``deterministic``). ``weight``: an array spreads the shift by each row's share (the likelihood's shift,
    :func:`~churnmodel.effects.lever_shift`, even where every share is 1); a single number is one shift for everyone,
    the one that reproduces the AIPW average, or the likelihood's where no shift can (a small campaign's average
    beyond all the churn there is)."""
    y = rows["label"].to_numpy(dtype=np.float64)
    t = rows["treated"].to_numpy(dtype=bool)
    if t.all() or not t.any():
        raise DataError(f"{action}: every row is {'treated' if t.all() else 'untreated'}; an effect needs both")
    params = {**_PARAMS, "seed": random_state, "num_threads": threads}
    partners = pd.factorize(rows["partner_id"])[0]
    fold = np.random.default_rng(random_state).integers(0, folds, partners.max() + 1)[partners]
    mu0, mu1, e = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y))
    known = _design_propensity(rows)
    for k in range(folds):
        fit, out = fold != k, fold == k
        for arm, target in ((False, mu0), (True, mu1)):
            sel = fit & (t == arm)
            target[out] = _classifier(params, X[sel], y[sel], rounds).predict(X[out], num_threads=threads)
        e[out] = _classifier(params, X[fit], t[fit].astype(float), rounds).predict(X[out], num_threads=threads)
    e = np.where(np.isnan(known), np.clip(e, CLIP, 1 - CLIP), known)
    psi = mu1 - mu0 + t * (y - mu1) / e - (~t) * (y - mu0) / (1 - e)
    regression = {**params, "objective": "regression"}
    tau = np.zeros(len(y))  # the effect regression cross-fitted too: its out-of-fold predictions are judged below
    for k in range(folds):
        fit, out = fold != k, fold == k
        tau[out] = lgb.train(regression, lgb.Dataset(X[fit], psi[fit], free_raw_data=True),
                             num_boost_round=rounds // 2).predict(X[out], num_threads=threads)
    booster = lgb.train(regression, lgb.Dataset(X, psi, free_raw_data=True), num_boost_round=rounds // 2)
    # the action's effect as one shift of the log-odds of leaving (its size then scales with each
    # partner's risk), each partner's share of it, and how much of what the regression adds to that the
    # pseudo-outcomes bear out
    p = np.asarray(p, dtype=np.float64)
    shift = average_shift(p, float(psi.mean())) if not np.ndim(weight) else 0.0
    by_likelihood = bool(np.ndim(weight)) or abs(shift) >= 10  # spread by weights, or an average no shift reproduces
    if by_likelihood:
        shift, shift_se = lever_shift(y, p, t * np.asarray(weight, dtype=np.float64), partners)
    else:
        moved = p + risk_scaled(p, shift)  # the delta method: the average's slope in the shift is the mean p(1 - p) moved
        shift_se = mean_se(psi, partners)[1] / max(float(np.mean(moved * (1 - moved))), 1e-12)
    base = risk_scaled(p, shift * np.asarray(weight, dtype=np.float64))
    _, slope, center, slope_se = best_linear_projection(psi - base, tau - base, partners)
    return Uplift(action, tuple(X.columns), booster, psi, e, (shift, slope, center, slope_se), shift_se, by_likelihood, partners)


def best_linear_projection(psi: np.ndarray, tau: np.ndarray, groups: np.ndarray | None = None) -> tuple[float, float, float, float]:
    """(average, slope, center, slope's standard error): the least-squares fit ``psi ~ average + slope *
    (tau - center)`` of the pseudo-outcomes on out-of-fold predicted effects, ``center`` their mean
    (the best linear predictor of the effect, Chernozhukov, Demirer, Duflo and Fernandez-Val 2018).
    ``average`` is then the AIPW average effect; a slope near 1 means the predicted variation is real, near
    0 that it is noise. The standard error is heteroskedasticity-robust (HC0), and with ``groups`` (the rows'
    partners) clustered by them.

    >>> rng = np.random.default_rng(0)
    >>> tau = rng.normal(size=20_000)
    >>> [round(v, 1) for v in best_linear_projection(2 + 0.5 * tau + rng.normal(size=20_000), tau)[:3]]
    [2.0, 0.5, 0.0]
    """
    center = float(tau.mean())
    d = tau - center
    spread = float(d @ d)
    average = float(psi.mean())
    if spread <= 0:
        return average, 0.0, center, float("inf")
    slope = float(d @ (psi - average) / spread)
    return average, slope, center, float(np.sqrt(cluster_meat(d * (psi - average - slope * d), groups)) / spread)


def _classifier(params: dict, X, y, rounds: int) -> lgb.Booster:
    return lgb.train(params, lgb.Dataset(X, y, free_raw_data=True), num_boost_round=rounds)


def _design_propensity(rows: pd.DataFrame) -> np.ndarray:
    """A randomised campaign's treated share among its assigned partners (NaN for targeted rows: modelled)."""
    share = rows.loc[rows["randomised"]].groupby("campaign_id")["treated"].mean()
    return np.where(rows["randomised"], rows["campaign_id"].map(share).to_numpy(dtype=np.float64), np.nan)


def qini(y: np.ndarray, treated: np.ndarray, effect: np.ndarray) -> tuple[np.ndarray, float]:
    """(Qini curve, Qini coefficient) of ranking partners by the retention an action brings (-``effect``):
    churners avoided among the top k treated vs the same share of the untreated, over k; the coefficient
    is the area between the curve and the random ranking's straight line, per row."""
    order = np.argsort(effect, kind="stable")  # the most negative effect (most retained) first
    y, t = np.asarray(y, dtype=float)[order], np.asarray(treated, dtype=bool)[order]
    nt, nc = np.cumsum(t), np.cumsum(~t)
    kept_t, kept_c = np.cumsum((1 - y) * t), np.cumsum((1 - y) * ~t)
    curve = kept_t - np.divide(kept_c * nt, nc, out=np.zeros(len(y)), where=nc > 0)
    random = curve[-1] * np.arange(1, len(y) + 1) / len(y)
    return curve, float(np.mean(curve - random))


def uplift_by_decile(y: np.ndarray, treated: np.ndarray, effect: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Calibration of the predicted effect on randomised rows: per decile of it (the most retained first),
    the rows, treated and untreated, the mean predicted effect and the observed one (treated churn rate
    minus untreated), NaN where a decile lacks either group."""
    y, t, effect = np.asarray(y, dtype=float), np.asarray(treated, dtype=bool), np.asarray(effect, dtype=float)
    decile = np.minimum((pd.Series(effect).rank(method="first").to_numpy() - 1) * bins // len(effect), bins - 1).astype(int)
    rows = []
    for d in range(bins):
        at = decile == d
        on, off = at & t, at & ~t
        observed = y[on].mean() - y[off].mean() if on.any() and off.any() else np.nan
        rows.append({"decile": d + 1, "rows": int(at.sum()), "treated": int(on.sum()), "untreated": int(off.sum()),
                     "predicted": float(effect[at].mean()) if at.any() else np.nan, "observed": float(observed)})
    return pd.DataFrame(rows)


#: Above this share of an action's approached partners getting another action at the same time, training warns.
CO_TREATED_WARN = 0.5

#: Fewer approached (or not approached) partner snapshots than this: the action's effect is not learned.
MIN_ARM_ROWS = 50


@dataclass(frozen=True)
class UpliftEvaluation:
    """One action's evaluation on its held-out (latest) randomised campaigns, for plots and the report."""

    action: str
    y: np.ndarray  # churned within the horizon, per held-out randomised row
    treated: np.ndarray
    effect: np.ndarray  # predicted by the model fitted on the earlier campaigns

    def qini(self) -> tuple[np.ndarray, float]:
        return qini(self.y, self.treated, self.effect)

    def deciles(self) -> pd.DataFrame:
        return uplift_by_decile(self.y, self.treated, self.effect)


def metric_name(action: str) -> str:
    """An action's name as MLflow takes it in a metric key."""
    return re.sub(r"[^0-9A-Za-z_.-]", "_", action)


@dataclass(frozen=True)
class ActionFit:
    """One action's shipped effect model, its metrics and its held-out evaluation (None without one)."""

    model: Uplift
    metrics: dict
    evaluation: UpliftEvaluation | None


def fit_action(rows: pd.DataFrame, X: pd.DataFrame, p: np.ndarray, *, action: str, random_state: int,
               weight: np.ndarray | float = 1.0, threads: int = 2) -> ActionFit:
    """An action's effect model from its campaign rows (:func:`~churnmodel.actions.campaign_rows`), their prepared features ``X``,
    churn probabilities ``p`` and each row's share of the action's log-odds shift ``weight`` (1 on average: see the
    module's docstring), checked on its latest campaigns before it is trusted with differences between partners.

    The latest quarter of the campaign dates (at least one, when there are two or more) is held out and a
    DR-learner fitted on the earlier ones is evaluated on the held-out randomised rows: Qini, predicted against
    observed average effect, and the held-out best linear projection of the effect (Chernozhukov et al. 2018) on
    what its regression adds to the average: the randomised rows' inverse-probability pseudo-outcomes (their
    known treated share) regressed on it. The model shipped is fitted on every campaign; it keeps the
    regression's differences between partners (shrunk by their cross-fitted slope) only when the held-out
    slope is above zero at 95% and the cross-fitted one above zero (``heterogeneity`` 1), else each
    partner's effect is the action's log-odds shift, times their weight, scaled to their risk
    (``heterogeneity`` 0; so too without a held-out check). Why: on the simulator, differences the held-out campaigns did not bear
    out cost value retained against plain risk targeting (0.67x and 0.94x on two seeds of three), while the
    risk-scaled average never fell below it."""
    return _start_action(rows, X, p, action=action, random_state=random_state, weight=weight, threads=threads, submit=_now)()


def _start_action(rows: pd.DataFrame, X: pd.DataFrame, p: np.ndarray, *, action: str, random_state: int, weight: np.ndarray | float,
                  threads: int, submit: Callable[..., Future]) -> Callable[[], ActionFit]:
    """:func:`fit_action` with its two DR-learner fits started by ``submit(fn, *args, **kwargs) -> Future`` (a thread
    pool's, so that several actions' fits run side by side): returns the function that waits for them and judges."""
    t = rows["treated"].to_numpy(dtype=bool)
    dates = np.sort(rows["snapshot"].unique())
    test, early = None, None
    if len(dates) >= 2:
        held = (rows["snapshot"] >= dates[-max(1, len(dates) // 4)]).to_numpy()
        test = held & rows["randomised"].to_numpy(dtype=bool)
        if test.any() and t[test].any() and (~t[test]).any():
            early = submit(fit_uplift, rows.loc[~held], X.loc[~held], p[~held], action=action, random_state=random_state,
                           weight=_some(weight, ~held), threads=threads)
    final = submit(fit_uplift, rows, X, p, action=action, random_state=random_state, weight=weight, threads=threads)
    return lambda: _judged(rows, X, p, weight, test, early, final, action=action, threads=threads)


def _some(weight: np.ndarray | float, mask: np.ndarray) -> np.ndarray | float:
    """The weights of the rows in ``mask`` (one weight for all stays one)."""
    return weight[mask] if np.ndim(weight) else weight


def _now(fn, *args, **kwargs) -> Future:
    done: Future = Future()
    done.set_result(fn(*args, **kwargs))
    return done


def _judged(rows: pd.DataFrame, X: pd.DataFrame, p: np.ndarray, weight: np.ndarray | float, test: np.ndarray | None,
            early: Future | None, final: Future, *, action: str, threads: int) -> ActionFit:
    """:func:`fit_action`'s result from its fits: the earlier campaigns' model judged on the held-out rows ``test``
    (``threads``: the fits', also while other actions' fits run; see :data:`~churnmodel.booster.SIDE_BY_SIDE`)."""
    t = rows["treated"].to_numpy(dtype=bool)
    y = rows["label"].to_numpy(dtype=np.float64)
    fitted, evaluation, trusted = {}, None, False
    if early is not None:
        early = early.result()
        raw = early.booster.predict(X.loc[test, list(early.features)], num_threads=threads)  # the regression's, before shrinkage
        w = np.asarray(_some(weight, test), dtype=np.float64)
        evaluation = UpliftEvaluation(action, y[test], t[test], combined_effect(raw, p[test], early.projection[:3], w))
        base = risk_scaled(p[test], early.projection[0] * w)
        e = _design_propensity(rows)[test]
        psi = np.where(t[test], y[test] / e, -y[test] / (1 - e))  # unbiased for the effect where assignment was random
        _, slope, _, slope_se = best_linear_projection(psi - base, raw - base, rows["partner_id"].to_numpy()[test])
        trusted = bool(slope - 1.96 * slope_se > 0)
        fitted |= {"qini": evaluation.qini()[1], "observed_effect": y[test][t[test]].mean() - y[test][~t[test]].mean(),
                   "predicted_effect": float(evaluation.effect.mean()), "heldout_rows": float(test.sum()),
                   "heldout_slope": slope, "heldout_slope_se": slope_se}
    final = final.result()
    ate, se = final.average()
    shift, slope, center, slope_se = final.projection
    trusted = trusted and slope > 0  # a slope at or below zero keeps nothing of the differences (combined_effect)
    if not trusted:
        final = dataclasses.replace(final, projection=(shift, 0.0, center, slope_se))
    also = [c for c in rows.columns if c.startswith(ALSO)]
    co_treated = float(rows.loc[t, also].to_numpy(dtype=bool).any(axis=1).mean()) if also and t.any() else 0.0
    dose = shift * np.asarray(weight, dtype=np.float64)  # the average the shipped shift gives the campaign rows, its delta-method SE
    implied = float(risk_scaled(p, dose).mean())
    moved = p + risk_scaled(p, dose)
    slope_in_shift = float(np.mean(np.asarray(weight, dtype=np.float64) * moved * (1 - moved)))
    fitted |= {"ate": ate, "ate_se": se, "rows": float(len(rows)), "treated": float(t.sum()), "log_odds_shift": shift,
               "log_odds_shift_se": final.shift_se, "log_odds_shift_by_likelihood": float(final.by_likelihood),
               "implied_effect": implied, "implied_effect_se": abs(slope_in_shift) * final.shift_se,
               "slope": slope, "slope_se": slope_se, "heterogeneity": float(trusted), "co_treated": co_treated}
    return ActionFit(final, fitted, evaluation)


def lever_weight(model: ChurnModel, X: pd.DataFrame, lever: str) -> tuple[np.ndarray | float, float]:
    """(each row's share of an action's log-odds shift, the scale): the rows' risk from ``lever``
    (:meth:`~churnmodel.model.ChurnModel.lever_risk`) over its mean, and that mean; (1.0, 0.0), the same share for
    every row, where no feature of the lever adds to any row's risk."""
    risk = model.lever_risk(X, [lever])[:, 0]
    scale = max(float(risk.mean()), 0.0) if len(risk) else 0.0
    return lever_share(risk, scale), scale


def add_uplift(result, frame: pd.DataFrame, events: pd.DataFrame, config: Config):
    """The training result with one uplift model per action of ``data.actions.types`` that has enough
    campaign history (:data:`MIN_ARM_ROWS` approached and not approached rows) attached to its churn
    model, its metrics added and its held-out evaluations kept (``result.uplift``); a new result,
    ``result`` is not modified. Returns (result, warnings).

    Per action, :func:`fit_action`: a DR-learner fitted on the earlier campaigns is evaluated on the latest
    quarter's randomised rows (Qini coefficient, the predicted against the observed average effect, uplift by
    decile, whether its differences between partners hold there); the model shipped is refitted on every campaign.
    Metrics ``uplift_<action>_*``: ``ate`` and ``ate_se`` (AIPW over every campaign row), ``rows``, ``treated``,
    ``log_odds_shift`` and ``log_odds_shift_se``; ``log_odds_shift_by_likelihood``: 1 when that shift is the
    likelihood's (spread by lever, or an average no shift reproduces: training warns), 0 when it reproduces the
    AIPW average; ``implied_effect`` and ``implied_effect_se``: the average effect that shift gives the campaign
    rows, spread as shipped (the AIPW ``ate`` when it reproduces it); ``slope`` and ``slope_se``: how much of the
    predicted variation between partners the cross-fitted pseudo-outcomes bear out (:func:`best_linear_projection`); on the held-out rows ``qini``,
    ``observed_effect`` (approached minus hold-out churn rate), ``predicted_effect``, ``heldout_rows``,
    ``heldout_slope`` and ``heldout_slope_se``; ``heterogeneity``: 1 when the shipped effects keep the
    variation (shrunk by ``slope``), 0 when they are the average shift (times each partner's weight) scaled
    to each partner's risk; ``lever_scale``: the campaign rows' mean lever risk when the action is spread by
    its lever (``data.actions.types.<action>.spread``), 0 when the shift is the same for everyone; ``co_treated``:
    the share of approached partners who got another declared action in the same window; training warns above
    :data:`CO_TREATED_WARN`. Those co-treatments are not adjusted for. Targeted campaigns that bundle actions
    pick partners on a risk the features only partly see, and the co-treatments follow that risk, so
    comparing partners with the same co-treatments compares riskier with less risky ones. On the simulator
    (12,000 partners, seed 3) the adjustment moved the QBR offer's targeted average from -0.00 +- 0.18 to
    +1.05 +- 0.26 points (truth -0.29), and the holdback release's from -0.67 +- 0.18 to +0.25 +- 0.34 (truth -0.57)."""
    model = result.model
    effects, metrics, evaluations, warnings, inputs = [], {}, [], [], {}
    for action in config.data.actions.types:
        try:
            rows = campaign_rows(frame, events, action=action, others=[a for a in config.data.actions.types if a != action])
        except DataError as exc:
            warnings.append(f"uplift: {exc}")
            continue
        t = rows["treated"].to_numpy(dtype=bool)
        if min(t.sum(), (~t).sum()) < MIN_ARM_ROWS:
            warnings.append(f"uplift: {action!r} has {int(t.sum())} approached and {int((~t).sum())} other partner snapshots "
                            f"in its campaigns; at least {MIN_ARM_ROWS} of each are needed to learn its effect")
            continue
        X = model.prepare(rows)
        spec = config.data.actions.types[action]
        weight, scale = lever_weight(model, X, spec.lever) if spec.spread == "lever" else (1.0, 0.0)
        if spec.spread == "lever" and not scale:
            warnings.append(f"uplift: {action!r} is spread by its lever {spec.lever!r} (data.actions.types.{action}.spread), "
                            "but no feature of that lever adds to any campaign partner's risk; its effect is spread uniformly")
        inputs[action] = (rows, X, model.probabilities(X), weight, scale)
    # every action's two fits side by side, one LightGBM thread each (the same trees; on 1,200 simulated
    # partners the stage took 19.5 s with the fits in turn on two threads each)
    with ThreadPoolExecutor(max_workers=config.train.n_jobs) as pool:
        pending = {a: _start_action(*inputs[a][:3], action=a, random_state=config.random_state, weight=inputs[a][3],
                                    threads=SIDE_BY_SIDE, submit=pool.submit) for a in inputs}
        fits = {a: judge() for a, judge in pending.items()}
    for action, fit in fits.items():
        spec, scale = config.data.actions.types[action], inputs[action][4]
        if fit.metrics["co_treated"] > CO_TREATED_WARN:
            warnings.append(f"uplift: {fit.metrics['co_treated']:.0%} of the partners approached with {action!r} got another action in "
                            "the same window, so its estimated effect includes part of theirs; a randomised campaign per action tells them apart")
        if spec.spread == "uniform" and fit.metrics["log_odds_shift_by_likelihood"]:
            warnings.append(f"uplift: {action!r} changed the churn of its campaigns' partners by {fit.metrics['ate']:+.1%} on "
                            "average, beyond what any one shift of their risk gives; its effect is fitted by likelihood instead. "
                            "A campaign this small or uneven needs a look (and more partners)")
        fitted = {**fit.metrics, "lever_scale": scale}
        metrics |= {f"uplift_{metric_name(action)}_{name}": float(v) for name, v in fitted.items()}
        evaluations += [fit.evaluation] if fit.evaluation is not None else []
        effects.append(ActionEffect(action, spec.lever, spec.cost, fit.model.booster, {k: float(v) for k, v in fitted.items()},
                                    projection=fit.model.projection[:3], lever_scale=scale))
    if not effects:
        return result, warnings
    shipped = copy.copy(model)
    shipped.uplift = tuple(effects)
    return dataclasses.replace(result, model=shipped, metrics={**result.metrics, **metrics}, uplift=tuple(evaluations)), warnings
