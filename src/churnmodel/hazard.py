"""The hazard model as an artifact: a survival curve per partner from a discrete-time hazard model.

The horizons ``label.horizons`` (days, e.g. 30, 90, 180, 365) cut the time after a snapshot into
intervals (0, 30], (30, 90], (90, 180], (180, 365]. :class:`HazardModel` gives the conditional hazard
``h_k(x) = P(churn in interval k | active at its start, x)`` of each interval as

    h_k(x) = sigmoid(c_k + a_k * trees_k(x) + b_k * linear(x))

(a LightGBM over all intervals with each interval's baseline log-odds as an offset, and the
textbook discrete-time logistic hazard score, weighed per interval), and the survival curve
``S(t_k) = prod_{j <= k} (1 - h_j(x))``, so the churn probabilities ``1 - S(t_k)`` never decrease
with the horizon, by construction. How it is fitted and evaluated: :mod:`churnmodel.survival`.

>>> import numpy as np
>>> curve_from_hazards(np.array([[0.1, 0.2]]))
array([[0.1 , 0.28]])
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnmodel.booster import checked_booster
from churnmodel.errors import DataError
from churnmodel.linear import LinearScore
from churnmodel.shapley import PatternTrees

__all__ = [
    "COUNTDOWN_FEATURES",
    "DAYS_PER_MONTH",
    "INTERVAL_FEATURE",
    "HazardModel",
    "anchor_curve",
    "curve_from_hazards",
    "horizon_columns",
    "horizon_frame",
    "interval_columns",
    "months_to_churn",
]

#: The column the hazard model gets on top of the churn model's features: the interval's start (days).
INTERVAL_FEATURE = "interval_start_days"
DAYS_PER_MONTH = 365.25 / 12


def curve_from_hazards(hazards: np.ndarray) -> np.ndarray:
    """Cumulative churn probabilities ``1 - prod(1 - h)`` per horizon: non-decreasing along each row."""
    return 1.0 - np.cumprod(1.0 - np.clip(hazards, 0.0, 1.0), axis=1)


def months_to_churn(curve: np.ndarray, horizons) -> tuple[np.ndarray, np.ndarray]:
    """(expected months active within the longest horizon, median months to churn or NaN beyond it).

    The survival curve is taken as linear between horizons (S(0) = 1); the expectation is the
    restricted mean, so it is at most the longest horizon in months."""
    t = np.asarray([0, *horizons], dtype=np.float64)
    s = np.hstack([np.ones((len(curve), 1)), 1.0 - curve])
    expected = np.trapezoid(s, t, axis=1) / DAYS_PER_MONTH
    median = np.full(len(curve), np.nan)
    below = s <= 0.5
    crosses = below.any(axis=1)
    j = np.argmax(below, axis=1)  # first point at or below one half (j >= 1 since S(0) = 1)
    r = np.flatnonzero(crosses)
    s0, s1, t0, t1 = s[r, j[r] - 1], s[r, j[r]], t[j[r] - 1], t[j[r]]
    median[r] = (t0 + (s0 - 0.5) / np.where(s0 > s1, s0 - s1, 1.0) * (t1 - t0)) / DAYS_PER_MONTH
    return expected, median



#: Features counting the days to a date already fixed at the snapshot. Per interval the hazard model
#: also sees whether that date falls inside it and how far it lies from the interval's start: a
#: contract's end is when a partner with grievances does not renew, and it can be months ahead.
COUNTDOWN_FEATURES = ("contract__days_to_end",)


def _countdown_columns(name: str) -> tuple[str, str]:
    return f"{name}__in_interval", f"{name}__from_interval_start"


def interval_columns(X: pd.DataFrame, *, start: float | np.ndarray, end: float | np.ndarray,
                     countdowns: Sequence[str]) -> dict[str, np.ndarray]:
    """The columns the hazard model gets on top of the churn model's features, for an interval
    (start, end] (scalars, or one per row)."""
    cols = {INTERVAL_FEATURE: np.broadcast_to(np.asarray(start, dtype=np.float64), (len(X),)).copy()}
    for name in countdowns:
        days = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        inside, ahead = _countdown_columns(name)
        cols[inside] = np.where(np.isnan(days), np.nan, ((days > start) & (days <= end)).astype(np.float64))
        cols[ahead] = days - start
    return cols


@dataclass
class HazardModel:
    """The interval hazard booster, a linear hazard score and, per interval, how the two combine.

    The hazard of interval k is ``sigmoid(c_k + a_k * trees_k(x) + b_k * linear(x))``: the booster's
    log-odds (with the interval's baseline offset) and the linear score, weighted per interval on
    held-back partners (stacking; the weights are also the calibration)."""

    booster: object  # lightgbm.Booster over the churn model's features + design_columns
    horizons: tuple[int, ...]
    offsets: tuple[float, ...]  # each interval's baseline hazard (log-odds) the booster adds to
    stack: tuple[tuple[float, float, float], ...]  # per interval: (intercept, tree weight, linear weight)
    linear: LinearScore
    countdowns: tuple[str, ...] = ()

    @property
    def starts(self) -> list[int]:
        return [0, *self.horizons[:-1]]

    @property
    def design_columns(self) -> list[str]:
        return [INTERVAL_FEATURE, *(c for name in self.countdowns for c in _countdown_columns(name))]

    def expanded(self, X: pd.DataFrame, k: int) -> pd.DataFrame:
        """The booster's inputs of interval ``k`` for prepared feature rows ``X``."""
        cols = interval_columns(X, start=float(self.starts[k]), end=float(self.horizons[k]), countdowns=self.countdowns)
        return pd.concat([X, pd.DataFrame(cols, index=X.index)], axis=1)  # not assign: X may be fragmented

    def patterns(self) -> PatternTrees | None:
        """The booster's trees as pattern look-ups (built once per model object), or None when they are too deep."""
        cached = getattr(self, "_patterns", None)
        if cached is None or cached[0] is not self.booster:
            self._patterns = cached = (self.booster, PatternTrees.of(self.booster))
        return cached[1]

    def design_scores(self, design: pd.DataFrame, *, threads: int = 0) -> np.ndarray:
        """The booster's raw scores (without the offsets) of rows of its own inputs: features and design columns
        (``threads``: as in :meth:`tree_scores`)."""
        patterns = self.patterns()
        if patterns is None:
            return self.booster.predict(design, raw_score=True, num_threads=threads)
        return patterns.raw_scores(design)[0]

    def tree_scores(self, X: pd.DataFrame, *, threads: int = 0) -> np.ndarray:
        """The booster's hazard log-odds with each interval's offset, (rows, intervals). ``threads``: LightGBM's
        ``num_threads`` for the predictions (0: its default; see :data:`~churnmodel.booster.SIDE_BY_SIDE`) when
        the trees are too deep for :class:`~churnmodel.shapley.PatternTrees` (which score the intervals' rows in
        one pass, each tree that never splits on an interval's columns once for all of them: the same numbers)."""
        if not len(X):
            return np.empty((0, len(self.horizons)))
        patterns = self.patterns()
        if patterns is None:
            return np.column_stack([self.booster.predict(self.expanded(X, k), raw_score=True, num_threads=threads) + self.offsets[k]
                                    for k in range(len(self.horizons))])
        variants = [interval_columns(X, start=float(self.starts[k]), end=float(self.horizons[k]), countdowns=self.countdowns)
                    for k in range(len(self.horizons))]
        return (patterns.raw_scores(X, variants) + np.asarray(self.offsets)[:, None]).T

    def combine(self, trees: np.ndarray, linear: np.ndarray) -> np.ndarray:
        """Hazards from tree log-odds (rows, intervals) and linear scores (rows,)."""
        from scipy.special import expit

        c, a, b = (np.array(v) for v in zip(*self.stack, strict=True))
        return expit(c + a * trees + b * np.asarray(linear)[:, None])

    def hazards(self, X: pd.DataFrame, *, threads: int = 0, linear: np.ndarray | None = None) -> np.ndarray:
        """Each interval's hazard, (rows, intervals); ``linear``: the linear score of ``X``'s rows, when known."""
        if not len(X):
            return np.empty((0, len(self.horizons)))
        return self.combine(self.tree_scores(X, threads=threads), self.linear(X) if linear is None else linear)

    def curve(self, X: pd.DataFrame, *, threads: int = 0, linear: np.ndarray | None = None) -> np.ndarray:
        """P(churn within each horizon), (rows, horizons), non-decreasing along each row (``threads``: as in
        :meth:`tree_scores`; ``linear``: as in :meth:`hazards`)."""
        return curve_from_hazards(self.hazards(X, threads=threads, linear=linear))

    # ------------------------------------------------------------------ files (part of the churn model's)

    def to_texts(self) -> tuple[str, dict]:
        text = self.booster.model_to_string()
        meta = {"horizons": list(self.horizons), "offsets": list(self.offsets), "stack": [list(s) for s in self.stack],
                "countdowns": list(self.countdowns), "linear": self.linear.to_dict(),
                "booster_sha256": hashlib.sha256(text.encode()).hexdigest()}
        return text, meta

    @classmethod
    def from_texts(cls, text: str, meta: dict, *, source: str, features: list[str]) -> HazardModel:
        if not isinstance(meta, dict):
            raise DataError(f"{source}: model.json has no valid hazard section (got {type(meta).__name__})")
        booster = checked_booster(text, meta.get("booster_sha256"), source=source, name="hazard.txt")
        try:
            if not all(isinstance(meta[key], list) for key in ("horizons", "offsets", "stack", "countdowns")):
                raise ValueError("horizons, offsets, stack and countdowns must be lists")
            if not all(isinstance(h, int) and not isinstance(h, bool) for h in meta["horizons"]):
                raise ValueError(f"horizons must be whole numbers of days, got {meta['horizons']}")
            horizons = tuple(meta["horizons"])
            offsets = tuple(float(o) for o in meta["offsets"])
            stack = tuple(tuple(float(x) for x in s) for s in meta["stack"])
            countdowns = tuple(str(c) for c in meta["countdowns"])
            linear = LinearScore.from_dict(meta["linear"])
            if not horizons or not len(stack) == len(offsets) == len(horizons) or list(horizons) != sorted(set(horizons)) or horizons[0] <= 0:
                raise ValueError(f"horizons {list(horizons)} with {len(stack)} stacking weights and {len(offsets)} offsets")
            if any(len(s) != 3 or min(s[1:]) < 0 for s in stack) or not np.isfinite([*offsets, *(x for s in stack for x in s)]).all():
                raise ValueError("each interval needs 3 finite stacking weights (the last two non-negative) and a finite offset")
            unknown = sorted({*countdowns, *linear.features} - set(features))
            if unknown:
                raise ValueError(f"it uses features the model does not have: {unknown}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{source}: model.json has no valid hazard section ({type(exc).__name__}: {exc})") from None
        model = cls(booster, horizons, offsets, stack, linear, countdowns)
        if booster.feature_name() != [*features, *model.design_columns]:
            raise DataError(f"{source}: hazard.txt and model.json disagree on the features")
        return model


def horizon_columns(horizons) -> list[str]:
    """The scored list's multi-horizon columns, in order."""
    return [f"p_churn_{h}d" for h in horizons] + ["expected_months_active", "median_months_to_churn"]


def anchor_curve(curve: np.ndarray, p: np.ndarray, index: int) -> np.ndarray:
    """The curve rescaled in cumulative hazard so that its ``index``-th horizon equals ``p``:
    ``S'(t) = S(t) ** c`` with ``c = log(1 - p) / log(S(t_index))``. Still a survival curve (it never
    rises; churn probabilities never fall with the horizon), its shape over the horizons kept; the
    anchored horizon's value is ``p`` exactly.

    >>> anchor_curve(np.array([[0.1, 0.28]]), np.array([0.2]), 0).round(4)
    array([[0.2   , 0.5013]])"""
    survival = np.clip(1.0 - np.asarray(curve, dtype=np.float64), 1e-300, 1.0)
    log_at = np.log(survival[:, index])
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0 - 1e-15)
    c = np.where(log_at < 0, np.log1p(-p) / np.where(log_at < 0, log_at, -1.0), 1.0)
    out = 1.0 - survival ** c[:, None]
    out[:, index] = p
    return np.maximum.accumulate(out, axis=1)  # exact ties at the anchor stay ordered after rounding


def horizon_frame(hazard: HazardModel, X: pd.DataFrame, *, curve: np.ndarray | None = None) -> pd.DataFrame:
    """The :func:`horizon_columns` of prepared feature rows ``X``: churn within each horizon, then the
    expected and median months to churn (rounded to 2 decimals), on ``X``'s index. ``curve``: the
    curve to describe (default: the hazard model's own)."""
    curve = hazard.curve(X) if curve is None else curve
    expected, median = months_to_churn(curve, hazard.horizons)
    names = horizon_columns(hazard.horizons)
    return pd.DataFrame({**dict(zip(names[:-2], curve.T, strict=True)), names[-2]: np.round(expected, 2),
                         names[-1]: np.round(median, 2)}, index=X.index)
