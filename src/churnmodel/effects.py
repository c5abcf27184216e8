"""Retention actions' effects as an artifact: what each action does to a partner's churn probability.

An :class:`ActionEffect` is one action's uplift model as the churn model ships it: the LightGBM
regression of the DR-learner (fitted by :mod:`churnmodel.uplift`) over the churn model's features, the
action's lever and cost, how its effect (one shift of the log-odds of leaving) is spread over partners
(by their *lever risk*: what the churn model's features of the action's lever add to their log-odds of
leaving, or the same shift for everyone), and its evaluation on held-out campaigns. Its effect is
``P(churn within the horizon | approached) - P(churn | not)`` per partner: below 0, the action retains. :func:`gains`
turns the effects into what the planner and the scored list need: per partner and action, the
value kept (the probability removed times the partner's value) net of the action's cost.

>>> gains(np.array([[-0.10, 0.02], [-0.01, -0.30]]), np.array([1000.0, 100.0]), np.array([20.0, 5.0])).tolist()
[[80.0, -25.0], [-19.0, 25.0]]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from churnmodel.booster import checked_booster
from churnmodel.errors import DataError

__all__ = ["SHIFT_PRIOR_SD", "ActionEffect", "average_shift", "best_actions", "cluster_meat", "combined_effect", "gains", "lever_share", "lever_shift", "mean_se", "risk_scaled"]


@dataclass(frozen=True)
class ActionEffect:
    """One retention action's effect model (see the module's docstring)."""

    action: str  # the event type recorded when the action is taken
    lever: str
    cost: float
    booster: object  # lightgbm.Booster: the effect on P(churn) from the churn model's features
    metrics: dict = field(default_factory=dict)  # held-out campaigns: qini, average effect and its standard error, rows
    projection: tuple[float, float, float] = (0.0, 1.0, 0.0)  # shift, slope, center: see :func:`combined_effect`
    lever_scale: float = 0.0  # the mean lever risk of the campaign rows it was learnt on; 0: the same shift for everyone

    def weight(self, lever_risk: np.ndarray | None) -> np.ndarray | float:
        """Each partner's share of the action's log-odds shift: their lever risk over :attr:`lever_scale`
        (1 on average where it was learnt), or 1 for everyone when the action is not spread by its lever."""
        if self.lever_scale > 0 and lever_risk is None:
            raise ValueError(f"{self.action}: its effect is spread by the {self.lever} lever's risk; pass lever_risk")
        return lever_share(lever_risk, self.lever_scale)

    def effect(self, X: pd.DataFrame, p: np.ndarray, lever_risk: np.ndarray | None = None) -> np.ndarray:
        """The change in P(churn within the horizon) if approached, per row of prepared features ``X`` whose
        churn probability is ``p`` and whose risk from the action's lever is ``lever_risk``
        (:meth:`~churnmodel.model.ChurnModel.lever_risk`; needed when :attr:`lever_scale` is set):
        :func:`combined_effect`."""
        return combined_effect(self.booster.predict(X[self.booster.feature_name()]), p, self.projection, self.weight(lever_risk))

    def to_texts(self) -> tuple[str, dict]:
        text = self.booster.model_to_string()
        return text, {"action": self.action, "lever": self.lever, "cost": self.cost, "metrics": self.metrics,
                      "projection": list(self.projection), "lever_scale": self.lever_scale,
                      "booster_sha256": hashlib.sha256(text.encode()).hexdigest()}

    @classmethod
    def from_texts(cls, text: str, meta: dict, *, source: str, name: str, features: list[str]) -> ActionEffect:
        if not isinstance(meta, dict):
            raise DataError(f"{source}: model.json has no valid uplift entry for {name} (got {type(meta).__name__})")
        booster = checked_booster(text, meta.get("booster_sha256"), source=source, name=name)
        try:
            action, lever, cost = str(meta["action"]), str(meta["lever"]), float(meta["cost"])
            if not np.isfinite(cost) or cost < 0:
                raise ValueError(f"cost must be a finite amount >= 0, got {cost}")
            unknown = sorted(set(booster.feature_name()) - set(features))
            if unknown:
                raise ValueError(f"it uses features the model does not have: {unknown[:3]}")
            metrics = {str(k): float(v) for k, v in dict(meta.get("metrics", {})).items()}
            projection = tuple(float(v) for v in meta["projection"])
            if len(projection) != 3 or not np.isfinite(projection).all():
                raise ValueError(f"projection must be 3 finite numbers (shift, slope, center), got {meta['projection']}")
            scale = float(meta["lever_scale"])
            if not np.isfinite(scale) or scale < 0:
                raise ValueError(f"lever_scale must be a finite number >= 0 (0: not spread by the lever), got {scale}")
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: model.json has no valid uplift entry for {name} ({type(exc).__name__}: {exc})") from None
        return cls(action, lever, cost, booster, metrics, projection, scale)


def lever_share(lever_risk: np.ndarray | None, scale: float) -> np.ndarray | float:
    """Each partner's share of an action's log-odds shift: their lever risk over ``scale`` (the mean lever risk
    where the effect was learnt), or 1 for everyone when ``scale`` is 0 (not spread by the lever).

    >>> lever_share(np.array([0.0, 0.5, 1.5]), 0.5).tolist(), lever_share(None, 0.0)
    ([0.0, 1.0, 3.0], 1.0)
    """
    return np.asarray(lever_risk, dtype=np.float64) / scale if scale > 0 else 1.0


def risk_scaled(p: np.ndarray, shift: float | np.ndarray) -> np.ndarray:
    """The change in a churn probability ``p`` when its log-odds move by ``shift`` (one for all, or per row):
    an action that lowers the odds of leaving by the same factor for everyone removes more probability where
    there is more.

    >>> risk_scaled(np.array([0.5, 0.1]), np.log(0.5)).round(3).tolist()
    [-0.167, -0.047]
    """
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return 1.0 / (1.0 + (1.0 - q) / q * np.exp(-shift)) - q


def combined_effect(raw: np.ndarray, p: np.ndarray, projection: tuple[float, float, float],
                    weight: np.ndarray | float = 1.0) -> np.ndarray:
    """An action's effect per partner: the risk-scaled average (:func:`risk_scaled` of the action's
    log-odds shift, times each partner's ``weight``: their share of it, see :meth:`ActionEffect.weight`) plus
    what the effect regression (``raw``) adds to it, shrunk by the slope of its best linear projection
    (clipped to [0, 1]; ``center`` the mean addition where it was fitted); never taking the churn
    probability ``p`` below 0 or above 1."""
    shift, slope, center = projection
    p = np.asarray(p, dtype=np.float64)
    base = risk_scaled(p, shift * np.asarray(weight, dtype=np.float64))
    effect = base + min(max(slope, 0.0), 1.0) * (np.asarray(raw, dtype=np.float64) - base - center)
    return np.clip(effect, -p, 1.0 - p)


def gains(effects: np.ndarray, value: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(partners x actions): the value kept, ``-effect * value``, net of each action's ``cost``."""
    return -np.asarray(effects, dtype=np.float64) * np.asarray(value, dtype=np.float64)[:, None] - np.asarray(cost, dtype=np.float64)[None, :]


def best_actions(gain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column of the best action per row or -1, its gain or 0): the action that keeps the most value net
    of its cost, where one pays for itself; ties go to the first action.

    >>> best_actions(np.array([[5.0, 9.0], [-1.0, -2.0]]))
    (array([ 1, -1]), array([9., 0.]))
    """
    if gain.shape[1] == 0:
        return np.full(len(gain), -1), np.zeros(len(gain))
    best = np.argmax(gain, axis=1)
    top = gain[np.arange(len(gain)), best]
    return np.where(top > 0, best, -1), np.where(top > 0, top, 0.0)


def cluster_meat(scores: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """The middle of a sandwich variance: the sum of squares (outer products, for columns) of ``scores``, per
    row or, with ``groups``, of their sums per group (with the small-sample factor G / (G - 1)).

    >>> cluster_meat(np.array([1.0, -1.0, 2.0]), np.array(["a", "a", "b"])).round(6).tolist()
    8.0
    """
    scores = np.asarray(scores, dtype=np.float64)
    if groups is None:
        return scores.T @ scores
    codes = pd.factorize(np.asarray(groups))[0]
    columns = scores.reshape(len(scores), -1).T
    totals = np.column_stack([np.bincount(codes, weights=c) for c in columns])
    g = len(totals)
    meat = totals.T @ totals * g / max(g - 1, 1)
    return meat if scores.ndim > 1 else meat[0, 0]


def mean_se(values: np.ndarray, groups: np.ndarray | None = None) -> tuple[float, float]:
    """(mean, its standard error) of ``values``; with ``groups`` (one label per value: the partner) the error is
    cluster-robust, as a partner's rows at successive snapshots of a campaign share their outcome.

    >>> mean_se(np.array([1.0, 1.0, 3.0, 3.0]), np.array([0, 0, 1, 1]))
    (2.0, 1.0)
    """
    values = np.asarray(values, dtype=np.float64)
    n, mean = len(values), float(values.mean())
    if groups is None:
        return mean, float(values.std(ddof=1) / np.sqrt(n))
    return mean, float(np.sqrt(cluster_meat(values - mean, groups)) / n)


def average_shift(p: np.ndarray, effect: float) -> float:
    """The log-odds shift that changes the probabilities ``p`` by ``effect`` on average (within +-10).

    >>> round(average_shift(np.array([0.2, 0.4]), -0.1), 3)
    -0.562
    """
    def gap(shift: float) -> float:
        return float(risk_scaled(p, shift).mean()) - effect

    if gap(-10.0) >= 0:
        return -10.0
    if gap(10.0) <= 0:
        return 10.0
    return float(optimize.brentq(gap, -10.0, 10.0, xtol=1e-12))


#: The standard deviation of the normal prior on an action's log-odds shift per unit share (:func:`lever_shift`).
SHIFT_PRIOR_SD = 1.0


def lever_shift(y: np.ndarray, p: np.ndarray, dose: np.ndarray, groups: np.ndarray | None = None) -> tuple[float, float]:
    """(shift, its standard error): the ``s`` of ``P(y) = sigmoid(logit(p) + a + s * dose)``, ``p`` the rows' churn
    probability without the action, ``dose`` each row's share of the shift where it was approached (0 where not),
    by the likelihood with a normal prior on ``s`` (mean 0, sd :data:`SHIFT_PRIOR_SD`: 95% of it on odds ratios
    between 1/7 and 7 at the average share). The intercept ``a`` absorbs a miscalibration of ``p`` common to the
    campaign rows; it is not shipped: scoring moves the churn model's own probability by the odds ratio
    ``exp(s * share)``. The error is the posterior's curvature, or with ``groups`` (one label per row: the
    partner) the cluster-robust sandwich around it; 0 with an infinite error when no approached row has a share.

    Why the prior: where every approached partner with a large share stayed, a small campaign's plain
    likelihood keeps rising as ``s`` falls, to an action that removes all the lever's risk. On simulated
    campaigns without any effect (50 approached partners of 200, 5% churn, 30% with a share), the plain
    likelihood ended at -10 in 48% of 300 draws; with the prior never, its root mean squared error was 0.31
    (Firth's penalty: 0.18, but Firth pulls the fitted probabilities towards 1/2, which with 5% churn made
    a true -0.5 on 200 approached partners -0.22, its 95% interval covering the truth in 71% of the draws;
    the prior's -0.53 and 93%). With 1,000 approached partners or more the prior changes nothing that matters.

    >>> rng = np.random.default_rng(0)
    >>> p, dose = np.full(40_000, 0.2), rng.exponential(size=40_000) * (rng.random(40_000) < 0.5)
    >>> y = rng.random(40_000) < 1 / (1 + 4 * np.exp(0.6 * dose))
    >>> round(lever_shift(y, p, dose)[0], 1)
    -0.6
    """
    y, dose = np.asarray(y, dtype=np.float64), np.asarray(dose, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    for name, values in (("y", y), ("p", p), ("dose", dose)):
        if not np.isfinite(values).all():
            raise ValueError(f"lever_shift: {name} must be finite; got {int((~np.isfinite(values)).sum())} NaN or infinite value(s)")
    if not dose.any():
        return 0.0, float("inf")
    q = np.clip(p, 1e-6, 1 - 1e-6)
    offset, design = np.log(q / (1 - q)), np.column_stack([np.ones(len(dose)), dose])
    precision = np.diag([0.0, SHIFT_PRIOR_SD**-2])

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        z = offset + design @ b
        log_posterior = np.sum(y * z - np.logaddexp(0, z)) - 0.5 * b @ precision @ b
        return -float(log_posterior), -(design.T @ (y - 1 / (1 + np.exp(-z))) - precision @ b)

    b = optimize.minimize(loss, np.zeros(2), jac=True, method="L-BFGS-B", bounds=[(-20, 20), (-10, 10)]).x
    mu = 1 / (1 + np.exp(-(offset + design @ b)))
    curvature = design.T @ ((mu * (1 - mu))[:, None] * design) + precision
    if np.linalg.cond(curvature) > 1e12:  # no churn, or none kept, among the rows: the intercept is unbounded
        return float(b[1]), float("inf")
    bread = np.linalg.inv(curvature)
    if groups is None:
        return float(b[1]), float(np.sqrt(bread[1, 1]))
    return float(b[1]), float(np.sqrt((bread @ cluster_meat(design * (y - mu)[:, None], groups) @ bread)[1, 1]))
