"""Multi-horizon risk: a discrete-time hazard model giving each partner a survival curve.

The horizons ``label.horizons`` (days, e.g. 30, 90, 180, 365) cut the time after a snapshot into
intervals (0, 30], (30, 90], (90, 180], (180, 365]. Each (partner, snapshot) row is expanded into
one row per interval it was *at risk and observed* in, with the interval's start as a feature and
the target "churned in this interval". One LightGBM learns the conditional hazard

    h_k(x) = P(churn in interval k | active at its start, x)

and the survival curve is ``S(t_k) = prod_{j <= k} (1 - h_j(x))``, so the churn probabilities
``1 - S(t_k)`` never decrease with the horizon, by construction. Hazards are calibrated per interval
(on the validation partners), which keeps that guarantee.

Censoring: a row is observed until the data end (less the contracts' grace period, when a churn
is only confirmed then). An interval counts if the partner churned in it before that moment, or the
whole interval was observed; an interval the data end cuts through is left out, so a snapshot whose
later horizons run past the data end still contributes the intervals it saw.

Evaluation (:func:`fit_survival`): out of time on the single-horizon model's own blocks, each
block's outcomes censored where the next block starts, at the horizons the test block can show (it
never shows a year); and out of fold over partners for every horizon, against a Cox baseline.

>>> import numpy as np
>>> curve_from_hazards(np.array([[0.1, 0.2]]))
array([[0.1 , 0.28]])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnmodel.errors import DataError
from churnmodel.model import Calibrator, checked_booster

__all__ = [
    "INTERVAL_FEATURE",
    "CoxBaseline",
    "HazardModel",
    "SurvivalResult",
    "add_survival",
    "curve_from_hazards",
    "expand_intervals",
    "fit_hazard",
    "fit_survival",
    "horizon_columns",
    "horizon_points",
    "months_to_churn",
    "observed_times",
    "partner_folds",
]

#: The column the hazard model gets on top of the churn model's features: the interval's start (days).
INTERVAL_FEATURE = "interval_start_days"
_DAY_US = 86_400 * 1_000_000
DAYS_PER_MONTH = 365.25 / 12


def observed_times(frame: pd.DataFrame, *, observed_until) -> tuple[np.ndarray, np.ndarray]:
    """(time in days from the snapshot to churn or to the end of observation, churn observed) per row.

    ``observed_until``: one UTC timestamp, or one per row."""
    snap = frame["snapshot"].to_numpy("datetime64[us]").view(np.int64)
    churn = frame["churn_date"]
    churn_us = churn.to_numpy("datetime64[us]").view(np.int64)
    until = pd.to_datetime(pd.Series(observed_until), utc=True).dt.tz_localize(None).to_numpy("datetime64[us]").view(np.int64)
    until = until[0] if np.ndim(observed_until) == 0 else until
    event = churn.notna().to_numpy() & (churn_us <= until)
    time_us = np.where(event, churn_us, until) - snap
    time_us = np.maximum(time_us, 0)  # a snapshot at the end of observation has seen nothing yet
    return time_us / _DAY_US, event


def expand_intervals(time: np.ndarray, event: np.ndarray, horizons) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Person-period rows: (source row, interval index, churned in it), only intervals at risk and observed.

    >>> rows, k, y = expand_intervals(np.array([20.0, 50.0, 40.0]), np.array([True, False, False]), [30, 90])
    >>> rows.tolist(), k.tolist(), y.tolist()
    ([0, 1, 2], [0, 0, 0], [1, 0, 0])
    """
    bounds = np.asarray([0, *horizons], dtype=np.float64)
    rows, ks, ys = [], [], []
    for k in range(len(horizons)):
        a, b = bounds[k], bounds[k + 1]
        at_risk = time > a  # active at the interval's start, and still observed then
        churned_in = event & (time <= b)
        keep = at_risk & (churned_in | (time >= b))  # the churn is seen, or the whole interval is
        idx = np.flatnonzero(keep)
        rows.append(idx)
        ks.append(np.full(len(idx), k, dtype=np.int8))
        ys.append(churned_in[idx].astype(np.int8))
    return np.concatenate(rows), np.concatenate(ks), np.concatenate(ys)


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


def partner_folds(partner_ids: np.ndarray, *, folds: int, random_state: int) -> np.ndarray:
    """A fold number per row: a seeded shuffle of the partners dealt into ``folds`` (a partner's rows stay together)."""
    unique, inverse = np.unique(partner_ids.astype(str), return_inverse=True)
    fold_of = np.empty(len(unique), dtype=np.int16)
    fold_of[np.random.default_rng(random_state).permutation(len(unique))] = np.arange(len(unique)) % folds
    return fold_of[inverse]


@dataclass
class HazardModel:
    """The interval hazard booster, one calibrator per interval and the horizons (days)."""

    booster: object  # lightgbm.Booster over the churn model's features + INTERVAL_FEATURE
    horizons: tuple[int, ...]
    calibrators: tuple[Calibrator, ...]
    offsets: tuple[float, ...]  # each interval's baseline hazard (log-odds) the booster adds to

    @property
    def starts(self) -> list[int]:
        return [0, *self.horizons[:-1]]

    def expanded(self, X: pd.DataFrame, k: int) -> pd.DataFrame:
        """The model inputs of interval ``k`` for prepared feature rows ``X``."""
        column = pd.DataFrame({INTERVAL_FEATURE: np.full(len(X), float(self.starts[k]))}, index=X.index)
        return pd.concat([X, column], axis=1)  # not assign: X may be fragmented (a frame rebuilt from Arrow)

    def raw_hazards(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated hazard log-odds, (rows, intervals)."""
        if not len(X):
            return np.empty((0, len(self.horizons)))
        return np.column_stack([self.booster.predict(self.expanded(X, k), raw_score=True) + self.offsets[k]
                                for k in range(len(self.horizons))])

    def hazards(self, X: pd.DataFrame) -> np.ndarray:
        raw = self.raw_hazards(X)
        return np.column_stack([cal(raw[:, k]) for k, cal in enumerate(self.calibrators)]) if len(X) else raw

    def curve(self, X: pd.DataFrame) -> np.ndarray:
        """P(churn within each horizon), (rows, horizons), non-decreasing along each row."""
        return curve_from_hazards(self.hazards(X))

    # ------------------------------------------------------------------ files (part of the churn model's)

    def to_texts(self) -> tuple[str, dict]:
        text = self.booster.model_to_string()
        meta = {"horizons": list(self.horizons), "calibrators": [c.__dict__ for c in self.calibrators], "offsets": list(self.offsets),
                "booster_sha256": hashlib.sha256(text.encode()).hexdigest()}
        return text, meta

    @classmethod
    def from_texts(cls, text: str, meta: dict, *, source: str, features: list[str]) -> HazardModel:
        if not isinstance(meta, dict):
            raise DataError(f"{source}: model.json has no valid hazard section (got {type(meta).__name__})")
        booster = checked_booster(text, meta.get("booster_sha256"), source=source, name="hazard.txt")
        try:
            horizons = tuple(int(h) for h in meta["horizons"])
            calibrators = tuple(Calibrator.from_dict(c) for c in meta["calibrators"])
            offsets = tuple(float(o) for o in meta["offsets"])
            if not len(calibrators) == len(offsets) == len(horizons) or list(horizons) != sorted(set(horizons)) or horizons[0] <= 0:
                raise ValueError(f"horizons {horizons} with {len(calibrators)} calibrators and {len(offsets)} offsets")
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: model.json has no valid hazard section ({type(exc).__name__}: {exc})") from None
        if booster.feature_name() != [*features, INTERVAL_FEATURE]:
            raise DataError(f"{source}: hazard.txt and model.json disagree on the features")
        return cls(booster, horizons, calibrators, offsets)


def horizon_columns(horizons) -> list[str]:
    """The scored list's multi-horizon columns, in order."""
    return [f"p_churn_{h}d" for h in horizons] + ["expected_months_active", "median_months_to_churn"]


# --------------------------------------------------------------------------- fitting and the Cox baseline


@dataclass
class SurvivalResult:
    hazard: HazardModel  # fitted on every partner (a validation share held back for early stopping and calibration)
    metrics: dict[str, float]  # hazard_* and cox_* out of fold; hazard_oot_* / single_oot_* on the test block
    curves: pd.DataFrame  # every row: partner_id, snapshot, time, event, out-of-fold p_churn_{h}d and cox_{h}d


def _design(X: pd.DataFrame, rows: np.ndarray, k: np.ndarray, starts: np.ndarray) -> pd.DataFrame:
    out = X.iloc[rows].reset_index(drop=True)
    out[INTERVAL_FEATURE] = starts[k]
    return out


def fit_hazard(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, role: np.ndarray, *, horizons, params: dict,
               rounds: int, patience: int, calibration: str) -> HazardModel:
    """One LightGBM on the person-period rows of the rows with ``role == 0``, early-stopped on those with
    ``role == 1``, which also calibrate each interval's hazard (other roles are left out)."""
    from churnmodel.train import _fit_booster

    rows, k, y = expand_intervals(time, event, horizons)
    starts = np.asarray([0, *horizons[:-1]], dtype=np.float64)
    fit, val = role[rows] == 0, role[rows] == 1
    for name, sel in (("training", fit), ("validation", val)):
        if y[sel].min(initial=1) == y[sel].max(initial=0):
            raise DataError(f"the hazard model's {name} partners have no churn (or only churn) in any observed interval; "
                            "more history or more partners are needed for label.horizons")
    X_fit, X_val = _design(X, rows[fit], k[fit], starts), _design(X, rows[val], k[val], starts)
    # each interval starts from its baseline hazard (log-odds of the training rate): the trees then
    # model how partners differ from it, not the different lengths of the intervals
    rate = np.array([y[fit][k[fit] == j].mean() if (k[fit] == j).any() else np.nan for j in range(len(horizons))])
    rate = np.clip(np.where(np.isnan(rate), np.nanmean(rate), rate), 1e-4, 1 - 1e-4)
    offset = np.log(rate / (1 - rate))
    booster, _ = _fit_booster(params, X_fit, y[fit], X_val, y[val], rounds=rounds, patience=patience,
                              offsets=(offset[k[fit]], offset[k[val]]))
    raw = booster.predict(X_val, raw_score=True) + offset[k[val]]
    calibrators = []
    for j in range(len(horizons)):
        yj, rj = y[val][k[val] == j], raw[k[val] == j]
        if len(yj) == 0 or yj.min() == yj.max():
            calibrators.append(Calibrator("none"))  # nothing to calibrate against: LightGBM's own probabilities
            continue
        method = calibration if calibration != "auto" else ("isotonic" if yj.sum() >= 500 else "sigmoid")
        calibrators.append(Calibrator.fit(rj, yj, method=method))
    return HazardModel(booster, tuple(int(h) for h in horizons), tuple(calibrators), tuple(map(float, offset)))


class CoxBaseline:
    """Cox proportional hazards (lifelines) on the same features: the linear model's preprocessing
    (signed log, median imputation with indicators, scaling, one-hot), ridge-penalised."""

    def __init__(self, *, penalizer: float = 0.1, max_rows: int = 10_000, random_state: int = 0) -> None:
        self.penalizer, self.max_rows, self.random_state = penalizer, max_rows, random_state

    def fit(self, X: pd.DataFrame, time: np.ndarray, event: np.ndarray, *, cut: float) -> CoxBaseline:
        import warnings

        from lifelines import CoxPHFitter

        from churnmodel.train import linear_preprocessor

        if len(X) > self.max_rows:
            keep = np.sort(np.random.default_rng(self.random_state).choice(len(X), self.max_rows, replace=False))
            X, time, event = X.iloc[keep], time[keep], event[keep]
        self.prep = linear_preprocessor(X).fit(X)
        Z = self._dense(X)
        self.keep = Z.std(axis=0) > 1e-9
        data = pd.DataFrame(Z[:, self.keep], columns=[f"x{i}" for i in np.flatnonzero(self.keep)])
        data["T"], data["E"] = np.minimum(time, cut), (event & (time <= cut)).astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lifelines warns on collinear windows; the penalty handles them
            self.cph = CoxPHFitter(penalizer=self.penalizer).fit(data, "T", "E")
        return self

    def _dense(self, X: pd.DataFrame) -> np.ndarray:
        Z = self.prep.transform(X)
        return np.asarray(Z.todense() if hasattr(Z, "todense") else Z, dtype=np.float64)

    def curve(self, X: pd.DataFrame, horizons) -> np.ndarray:
        Z = self._dense(X)[:, self.keep]
        frame = pd.DataFrame(Z, columns=[f"x{i}" for i in np.flatnonzero(self.keep)])
        survival = self.cph.predict_survival_function(frame, times=list(horizons)).to_numpy().T
        return 1.0 - survival


def hazard_params(params: dict) -> dict:
    """The churn model's LightGBM settings with more room per tree: one booster serves every interval,
    so its trees must also model how effects differ between intervals. Measured on the simulator
    (2,000 and 6,000 partners): the 90-day AUC gains 0.005-0.01 over the churn model's own settings."""
    return {**params, "num_leaves": max(4 * params["num_leaves"], 31), "max_depth": -1}


def _time_split(frame: pd.DataFrame, split_dates: dict, end: pd.Timestamp):
    """Roles (0 train, 1 valid, 2 test, 3 unused) of the single-horizon model's blocks, with each block's
    outcomes censored where the next block starts: nothing a later block knows reaches an earlier one."""
    snap = frame["snapshot"].dt.strftime("%Y-%m-%d").to_numpy()
    role = np.full(len(frame), 3, dtype=np.int8)
    until = np.full(len(frame), pd.Timestamp(end).tz_convert("UTC").tz_localize(None).as_unit("us").to_datetime64())
    for r, block, censor in ((0, "train", split_dates["valid"][0]), (1, "valid", split_dates["test"][0]), (2, "test", None)):
        rows = np.isin(snap, split_dates[block])
        role[rows] = r
        if censor is not None:
            until[rows] = np.datetime64(censor, "us")
    return role, until


def fit_survival(frame: pd.DataFrame, model, split_dates: dict, config, *, observed_until: pd.Timestamp,
                 params: dict) -> SurvivalResult:
    """The hazard model for ``config.label.horizons`` on a training frame (all rows, censored ones too).

    Two evaluations. Out of time, like the single-horizon model: fitted on its train block (outcomes
    censored at the validation block's start), early-stopped and calibrated on the validation block
    (censored at the test block's start), scored on the test block at the horizons observed there,
    next to ``model``'s AUC on the same rows. Out of fold, for every horizon: partners are dealt into
    ``train.hazard_folds`` folds, each predicted by a hazard model and a Cox baseline fitted on the
    others, over all snapshot dates (censored at the data end). The model returned is fitted on all
    partners, a seeded fifth of them held back for early stopping and calibration."""
    from sklearn.metrics import roc_auc_score

    from churnmodel.evaluate import survival_metrics

    horizons = list(config.label.horizons)
    X = model.prepare(frame)
    lgbm = config.train.lightgbm
    settings = {"horizons": horizons, "params": hazard_params(params), "rounds": lgbm.n_estimators,
                "patience": lgbm.early_stopping_rounds, "calibration": config.train.calibration}
    metrics: dict[str, float] = {}
    # out of time
    role, until = _time_split(frame, split_dates, observed_until)
    used = np.flatnonzero(role < 3)
    t_oot, e_oot = np.zeros(len(frame)), np.zeros(len(frame), dtype=bool)
    t_oot[used], e_oot[used] = observed_times(frame.iloc[used], observed_until=until[used])
    oot_model = fit_hazard(X, t_oot, e_oot, role, **settings)
    test = np.flatnonzero(role == 2)
    oot_curve = oot_model.curve(X.iloc[test])
    p_single = model.predict_proba(frame.iloc[test])
    for j, h in enumerate(horizons):
        known = e_oot[test] | (t_oot[test] >= h)
        y = e_oot[test][known] & (t_oot[test][known] <= h)
        if known.all() and y.min() != y.max():  # every test row's status at h is known
            metrics[f"hazard_oot_auc_{h}d"] = float(roc_auc_score(y, oot_curve[known, j]))
            metrics[f"hazard_oot_brier_{h}d"] = float(np.mean((y - oot_curve[known, j]) ** 2))
            if h == config.label.horizon_days:
                metrics[f"single_oot_auc_{h}d"] = float(roc_auc_score(y, p_single[known]))
    # out of fold, every horizon
    time, event = observed_times(frame, observed_until=observed_until)
    ids = frame["partner_id"].to_numpy()
    fold = partner_folds(ids, folds=config.train.hazard_folds, random_state=config.random_state)
    val = partner_folds(ids, folds=5, random_state=config.random_state + 1) == 0  # a fifth of the fitting partners
    curve, cox_curve = np.empty((len(frame), len(horizons))), np.empty((len(frame), len(horizons)))
    for f in range(config.train.hazard_folds):
        out = np.flatnonzero(fold == f)
        hazard = fit_hazard(X, time, event, np.where(fold == f, 2, np.where(val, 1, 0)), **settings)
        curve[out] = hazard.curve(X.iloc[out])
        fitting = np.flatnonzero(fold != f)
        cox = CoxBaseline(random_state=config.random_state).fit(X.iloc[fitting], time[fitting], event[fitting], cut=horizons[-1])
        cox_curve[out] = cox.curve(X.iloc[out], horizons)
    metrics.update(survival_metrics(time, event, curve, horizons, name="hazard"))
    metrics.update(survival_metrics(time, event, cox_curve, horizons, name="cox"))
    final = fit_hazard(X, time, event, np.where(val, 1, 0), **settings)
    curves = pd.DataFrame({"partner_id": ids, "snapshot": frame["snapshot"].to_numpy(), "time": time, "event": event})
    for j, hz in enumerate(horizons):
        curves[f"p_churn_{hz}d"], curves[f"cox_{hz}d"] = curve[:, j], cox_curve[:, j]
    return SurvivalResult(final, metrics, curves)


def add_survival(result, frame: pd.DataFrame, config, *, observed_until: pd.Timestamp):
    """The training result with the hazard model attached to its churn model and the survival
    metrics added (a new result; ``result`` is not modified)."""
    import copy
    import dataclasses

    survival = fit_survival(frame, result.model, result.split.dates, config, observed_until=observed_until, params=result.params)
    model = copy.copy(result.model)
    model.hazard = survival.hazard
    model.metadata = {**model.metadata, "horizons": list(survival.hazard.horizons), "hazard_trees": survival.hazard.booster.num_trees()}
    return dataclasses.replace(result, model=model, metrics={**result.metrics, **survival.metrics}, survival=survival)


def horizon_points(model, frame: pd.DataFrame, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per feature, its share of the churn probability within ``horizon`` in probability points:
    (points (rows, features), probability, base probability).

    The hazard booster's exact TreeSHAP values of each interval up to the horizon are weighted by how
    much that interval's log-odds move the cumulative probability (the calibrated hazards' local slope
    times the survival of the other intervals), then rescaled, keeping signs and shares, so that they
    add up to ``probability - base``, where the base has every interval at its expected log-odds."""
    hazard = model.hazard
    if hazard is None:
        raise DataError("this model has no hazard model; train it with label.horizons to explain a horizon")
    if horizon not in hazard.horizons:
        raise DataError(f"--horizon {horizon}: the model's horizons are {list(hazard.horizons)} (days)")
    K = hazard.horizons.index(horizon) + 1
    X = model.prepare(frame)
    F = len(model.features)
    phis, f, base = [], [], []
    for k in range(K):
        contrib = hazard.booster.predict(hazard.expanded(X, k), pred_contrib=True)
        phis.append(contrib[:, :F])
        rest = contrib[:, F] + contrib[:, F + 1] + hazard.offsets[k]  # the interval itself and the expected value
        f.append(contrib[:, :F].sum(axis=1) + rest)
        base.append(rest)
    cal = hazard.calibrators
    h = np.column_stack([cal[k](f[k]) for k in range(K)])
    h0 = np.column_stack([cal[k](base[k]) for k in range(K)])
    p, p0 = curve_from_hazards(h)[:, -1], curve_from_hazards(h0)[:, -1]
    eps = 1e-4
    raw = np.zeros((len(X), F))
    for k in range(K):
        slope = (cal[k](f[k] + eps) - cal[k](f[k] - eps)) / (2 * eps)
        others = np.prod(np.delete(1.0 - h, k, axis=1), axis=1)
        raw += (slope * others)[:, None] * phis[k]
    total = raw.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(np.abs(total) > 1e-12, (p - p0) / np.where(np.abs(total) > 1e-12, total, 1.0), 1.0)
    return raw * scale[:, None], p, p0
