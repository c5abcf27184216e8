"""Multi-horizon risk: a discrete-time hazard model giving each partner a survival curve.

The horizons ``label.horizons`` (days, e.g. 30, 90, 180, 365) cut the time after a snapshot into
intervals (0, 30], (30, 90], (90, 180], (180, 365]. Each (partner, snapshot) row is expanded into
one row per interval it was *at risk and observed* in, with the target "churned in this interval".
Two models learn the conditional hazard ``h_k(x) = P(churn in interval k | active at its start, x)``:
one LightGBM over all intervals (the interval's start as a feature, its baseline log-odds as a
fixed offset; a contract end falling inside the interval as two more columns) and the textbook
discrete-time logistic hazard model (one linear score shared by the intervals). Per interval, a
logistic regression on held-back partners weighs the two (stacking):

    h_k(x) = sigmoid(c_k + a_k * trees_k(x) + b_k * linear(x))

which is also the per-interval calibration. Why both: the booster ranks the near intervals best,
the linear score generalises better over a year, where fewer snapshots are observed (measured on
the simulator: the stack beat the trees alone at every horizon). The survival curve is
``S(t_k) = prod_{j <= k} (1 - h_j(x))``, so the churn probabilities ``1 - S(t_k)`` never decrease
with the horizon, by construction.

Censoring: a row is observed until the data end (less the contracts' grace period, when a churn
is only confirmed then). An interval counts if the partner churned in it before that moment, or the
whole interval was observed; an interval the data end cuts through is left out, so a snapshot whose
later horizons run past the data end still contributes the intervals it saw.

Evaluation (:func:`fit_survival`): out of time on the single-horizon model's own blocks, each
block's outcomes censored where the next block starts, at the horizons the test block can show (it
never shows a year); and out of fold over partners for every horizon, against a Cox baseline.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from churnmodel.booster import train_booster
from churnmodel.errors import DataError
from churnmodel.evaluate import expected_calibration_error, survival_metrics
from churnmodel.hazard import COUNTDOWN_FEATURES, HazardModel, anchor_curve, interval_columns
from churnmodel.linear import CoxBaseline, LinearScore, linear_preprocessor
from churnmodel.times import DAY, utc, utc_series

__all__ = [
    "MIN_STACK_CHURNERS",
    "LinearInputs",
    "PersonPeriod",
    "SurvivalResult",
    "add_survival",
    "expand_intervals",
    "fit_hazard",
    "fit_linear_hazard",
    "fit_survival",
    "observed_times",
    "partner_folds",
    "stack_weights",
    "strided_snapshots",
]

_DAY_US = DAY * 1_000_000


def observed_times(frame: pd.DataFrame, *, observed_until) -> tuple[np.ndarray, np.ndarray]:
    """(time in days from the snapshot to churn or to the end of observation, churn observed) per row.

    ``observed_until``: one UTC timestamp, or one per row."""
    snap = frame["snapshot"].to_numpy("datetime64[us]").view(np.int64)
    churn = frame["churn_date"]
    churn_us = churn.to_numpy("datetime64[us]").view(np.int64)
    until = utc_series(observed_until).dt.tz_localize(None).to_numpy("datetime64[us]").view(np.int64)
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


def partner_folds(partner_ids: np.ndarray, *, folds: int, random_state: int) -> np.ndarray:
    """A fold number per row: a seeded shuffle of the partners dealt into ``folds`` (a partner's rows stay together)."""
    unique, inverse = np.unique(partner_ids.astype(str), return_inverse=True)
    fold_of = np.empty(len(unique), dtype=np.int16)
    fold_of[np.random.default_rng(random_state).permutation(len(unique))] = np.arange(len(unique)) % folds
    return fold_of[inverse]


def strided_snapshots(snapshot: pd.Series, *, stride: int) -> np.ndarray:
    """Per row, whether its snapshot date is one of every ``stride``-th date counted back from the latest.

    A partner's consecutive monthly snapshots share most of their feature windows and all but a month of
    their outcomes; learning from every third loses little (measured in ``train.hazard_evaluation_stride``).

    >>> dates = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-04-01"]))
    >>> strided_snapshots(dates, stride=3).tolist()
    [True, False, False, True, True]
    """
    dates, inverse = np.unique(snapshot.to_numpy(), return_inverse=True)
    return ((len(dates) - 1 - inverse) % stride) == 0


# --------------------------------------------------------------------------- fitting


@dataclass
class SurvivalResult:
    hazard: HazardModel  # fitted on every partner (a validation share held back for early stopping and stacking)
    metrics: dict[str, float]  # hazard_* and cox_* out of fold; hazard_oot_* / single_oot_* on the test block
    curves: pd.DataFrame  # every row: partner_id, snapshot, time, event, out-of-fold p_churn_{h}d and cox_{h}d
    test: pd.DataFrame | None = None  # the test block: partner_id, snapshot, out-of-time p_churn_{h}d per horizon


def _design(X: pd.DataFrame, rows: np.ndarray, k: np.ndarray, horizons: Sequence[int], countdowns: Sequence[str]) -> pd.DataFrame:
    out = X.iloc[rows].reset_index(drop=True)
    bounds = np.asarray([0, *horizons], dtype=np.float64)
    return pd.concat([out, pd.DataFrame(interval_columns(out, start=bounds[k], end=bounds[k + 1], countdowns=countdowns))], axis=1)


@dataclass(frozen=True)
class LinearInputs:
    """The :func:`~churnmodel.linear.linear_preprocessor`, fitted once on every snapshot row of ``X``, and
    its dense output per row: the fits of one survival stage share them (the preprocessing only
    imputes, scales and one-hot encodes; it never sees an outcome)."""

    prep: object
    Z: np.ndarray

    @classmethod
    def fit(cls, X: pd.DataFrame) -> LinearInputs:
        prep = linear_preprocessor(X).fit(X)
        Z = prep.transform(X)
        return cls(prep, np.asarray(Z.todense() if hasattr(Z, "todense") else Z, dtype=np.float64))


def fit_linear_hazard(X: pd.DataFrame, rows: np.ndarray, k: np.ndarray, y: np.ndarray, *, intervals: int,
                      random_state: int, max_rows: int = 100_000, inputs: LinearInputs | None = None) -> LinearScore:
    """The textbook discrete-time hazard model (a logistic regression on person-period rows: one
    log-odds per interval plus a linear score shared by all, Singer & Willett 2003) on the
    :func:`~churnmodel.linear.linear_preprocessor` features (``inputs``: fitted on all of ``X`` and
    shared; else fitted on the rows used); ridge penalty 0.01 per row (the interval terms practically
    unpenalised). At most ``max_rows`` person-period rows, a seeded sample: a model with a few hundred
    weights needs no more, and each row costs its features twice in memory."""
    if len(rows) > max_rows:
        keep = np.sort(np.random.default_rng(random_state).choice(len(rows), max_rows, replace=False))
        rows, k, y = rows[keep], k[keep], y[keep]
    unique, inverse = np.unique(rows, return_inverse=True)
    snapshots = X.iloc[unique]  # each snapshot once: the preprocessing is fitted and applied per snapshot
    if inputs is None:
        prep, Z = (fitted := LinearInputs.fit(snapshots)).prep, fitted.Z
    else:  # fitted on every row of X
        prep, Z = inputs.prep, inputs.Z[unique]
    design = np.empty((len(rows), intervals + Z.shape[1]))
    design[:, :intervals] = 10.0 * np.eye(intervals)[k]  # x10: the interval terms' penalty is 100 times smaller
    design[:, intervals:] = Z[inverse]
    del Z
    glm = LogisticRegression(C=100.0 / len(rows), fit_intercept=False, max_iter=5000).fit(design, y)
    return LinearScore.from_fitted(prep, glm.coef_[0, intervals:], snapshots)


#: Fewer validation churners than this in an interval: Platt scaling of the booster alone there.
MIN_STACK_CHURNERS = 30


def stack_weights(trees: np.ndarray, linear: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(intercept, tree weight, linear weight): a logistic regression of one interval's outcomes on the
    two scores with the weights bounded at zero (Breiman's stacking constraint: a score counts as it
    was fitted or not at all; a negative weight is noise from two collinear scores). Fewer than
    :data:`MIN_STACK_CHURNERS` churners: the booster's weight only; one class: the booster as it is."""
    if len(y) == 0 or y.min() == y.max():
        return (0.0, 1.0, 0.0)
    y = np.asarray(y, dtype=np.float64)
    S = np.column_stack([np.ones(len(y)), trees, linear if y.sum() >= MIN_STACK_CHURNERS else np.zeros(len(y))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = S @ w
        return float(np.mean(np.logaddexp(0.0, z) - y * z)), S.T @ (expit(z) - y) / len(y)

    fit = minimize(loss, np.array([0.0, 1.0, 0.0]), jac=True, method="L-BFGS-B",  # from the booster as it is
                   bounds=[(None, None), (0.0, None), (0.0, None)])
    return (float(fit.x[0]), float(fit.x[1]), float(fit.x[2]))


class PersonPeriod:
    """Every snapshot row's person-period rows at the data end (:func:`expand_intervals` of ``time``,
    ``event``), their design (the churn model's features and the interval's columns) and one LightGBM
    dataset binned from it (features only, never an outcome). The fits of a survival stage learn from
    subsets of it (:meth:`lightgbm.Dataset.subset`): a fit on other partners takes fewer rows, and one
    whose outcomes are censored earlier (the out-of-time blocks) takes a subset with the same outcomes,
    since a row cut off earlier can only lose intervals. So the design is built and binned once.

    >>> X = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    >>> pp = PersonPeriod(X, np.array([20.0, 100.0, 40.0]), np.array([True, False, False]), horizons=[30, 90],
    ...                   countdowns=(), params={"verbosity": -1})
    >>> pp.rows.tolist(), pp.k.tolist(), pp.y.tolist()
    ([0, 1, 2, 1], [0, 0, 0, 1], [1, 0, 0, 0])
    >>> pp.select(np.array([20.0, 40.0, 0.0]), np.array([True, False, False])).tolist()  # censored at day 40
    [0, 1]
    """

    def __init__(self, X: pd.DataFrame, time: np.ndarray, event: np.ndarray, *, horizons: Sequence[int],
                 countdowns: Sequence[str], params: dict) -> None:
        self.X, self.horizons, self.countdowns = X, tuple(int(h) for h in horizons), tuple(countdowns)
        self.rows, self.k, self.y = expand_intervals(time, event, self.horizons)
        self.design = _design(X, self.rows, self.k, self.horizons, self.countdowns)
        self.dataset = (lgb.Dataset(self.design, self.y, categorical_feature="auto", params=params).construct()
                        if len(self.rows) else None)  # no row at risk: no fit (fit_hazard says why)
        self._position = np.full((len(self.horizons), len(X)), -1, dtype=np.int64)
        self._position[self.k, self.rows] = np.arange(len(self.rows))

    def select(self, time: np.ndarray, event: np.ndarray) -> np.ndarray:
        """The positions of :func:`expand_intervals` ``(time, event)``'s rows among these person-period rows."""
        rows, k, y = expand_intervals(time, event, self.horizons)
        at = self._position[k, rows]
        if (at < 0).any() or (self.y[at] != y).any():
            raise ValueError("these outcomes are not the person-period rows' own, censored earlier")
        return at

    def subset(self, at: np.ndarray, offset: np.ndarray) -> lgb.Dataset:
        """The binned rows ``at``, each starting from the log-odds ``offset`` (one per row)."""
        part = self.dataset.subset(at).construct()
        part.set_init_score(offset)
        return part


def fit_hazard(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, role: np.ndarray, *, horizons: Sequence[int],
               params: dict, rounds: int, patience: int, countdowns: Sequence[str] = (), random_state: int = 0,
               linear_inputs: LinearInputs | None = None, person_period: PersonPeriod | None = None) -> HazardModel:
    """The hazard model from the person-period rows of the rows with ``role == 0`` (the booster and
    the linear score), early-stopped and stacked on those with ``role == 1`` (other roles are left out).
    ``linear_inputs``: the linear score's preprocessing, fitted once on all of ``X`` (see :class:`LinearInputs`);
    ``person_period``: the person-period rows of ``X`` binned once (see :class:`PersonPeriod`), of which
    ``(time, event)`` are the same or censored earlier."""
    pp = person_period or PersonPeriod(X, time, event, horizons=horizons, countdowns=countdowns, params=params)
    at = pp.select(time, event)
    rows, k, y = pp.rows[at], pp.k[at], pp.y[at]
    fit, val = role[rows] == 0, role[rows] == 1
    for name, sel in (("training", fit), ("validation", val)):
        if y[sel].min(initial=1) == y[sel].max(initial=0):
            raise DataError(f"the hazard model's {name} partners have no churn (or only churn) in any observed interval; "
                            "more history or more partners are needed for label.horizons")
    # each interval starts from its baseline hazard (log-odds of the training rate): the trees then
    # model how partners differ from it, not the different lengths of the intervals
    rate = np.array([y[fit][k[fit] == j].mean() if (k[fit] == j).any() else np.nan for j in range(len(horizons))])
    rate = np.clip(np.where(np.isnan(rate), np.nanmean(rate), rate), 1e-4, 1 - 1e-4)
    offset = np.log(rate / (1 - rate))
    booster, _ = train_booster(params, pp.subset(at[fit], offset[k[fit]]), pp.subset(at[val], offset[k[val]]),
                               rounds=rounds, patience=patience)
    linear = fit_linear_hazard(X, rows[fit], k[fit], y[fit], intervals=len(horizons), random_state=random_state, inputs=linear_inputs)
    trees = booster.predict(pp.design.iloc[at[val]], raw_score=True) + offset[k[val]]
    scores = linear(X.iloc[rows[val]])
    stack = tuple(stack_weights(trees[k[val] == j], scores[k[val] == j], y[val][k[val] == j]) for j in range(len(horizons)))
    return HazardModel(booster, tuple(int(h) for h in horizons), tuple(map(float, offset)), stack, linear, tuple(countdowns))


def _hazard_out_of_fold(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, role: np.ndarray, settings: dict) -> np.ndarray:
    """One fold's hazard curve for the rows with ``role == 2``, fitted on the others."""
    return fit_hazard(X, time, event, role, **settings).curve(X.iloc[np.flatnonzero(role == 2)])


def _cox_out_of_fold(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, out: np.ndarray, settings: dict) -> np.ndarray:
    """One fold's Cox curve for the rows ``out``, fitted on the others."""
    fitting = np.flatnonzero(~out)
    cox = CoxBaseline(random_state=settings["random_state"]).fit(X.iloc[fitting], time[fitting], event[fitting], cut=settings["horizons"][-1])
    return cox.curve(X.iloc[np.flatnonzero(out)], settings["horizons"])


def _time_split(frame: pd.DataFrame, split_dates: dict, end: pd.Timestamp):
    """Roles (0 train, 1 valid, 2 test, 3 unused) of the single-horizon model's blocks, with each block's
    outcomes censored where the next block starts: nothing a later block knows reaches an earlier one."""
    snap = frame["snapshot"].dt.strftime("%Y-%m-%d").to_numpy()
    role = np.full(len(frame), 3, dtype=np.int8)
    until = np.full(len(frame), utc(end).tz_localize(None).as_unit("us").to_datetime64())
    for r, block, censor in ((0, "train", split_dates["valid"][0]), (1, "valid", split_dates["test"][0]), (2, "test", None)):
        rows = np.isin(snap, split_dates[block])
        role[rows] = r
        if censor is not None:
            until[rows] = np.datetime64(censor, "us")
    return role, until


def _run(jobs: list, *, n_jobs: int, progress) -> list:
    """The jobs' results in order, ``n_jobs`` threads side by side (they share the binned person-period
    rows; LightGBM and numpy release the GIL), ``progress(done, total)`` as each finishes."""
    fitted = []
    with threadpool_limits(1):  # one core per fit: BLAS must not start threads of its own in each
        for done, result in enumerate(Parallel(n_jobs=min(n_jobs, len(jobs)), backend="threading",
                                               return_as="generator")(jobs), start=1):
            fitted.append(result)
            progress(done, len(jobs))
    return fitted


def fit_survival(frame: pd.DataFrame, model, split_dates: dict, config, *, observed_until: pd.Timestamp,
                 params: dict, progress=None) -> SurvivalResult:
    """The hazard model for ``config.label.horizons`` on a training frame (all rows, censored ones too).

    Two evaluations. Out of time, like the single-horizon model: fitted on its train block (outcomes
    censored at the validation block's start), early-stopped and stacked on the validation block
    (censored at the test block's start), scored on the test block at the horizons observed there,
    next to ``model``'s AUC on the same rows. Out of fold, for every horizon: partners are dealt into
    ``train.hazard_folds`` folds, each predicted by a hazard model and a Cox baseline fitted on the
    others, over all snapshot dates (censored at the data end). The model returned is fitted on all
    partners, a seeded fifth of them held back for early stopping and stacking (which also calibrates).
    The evaluation's hazard fits learn from every ``train.hazard_evaluation_stride``-th snapshot date of
    their fitting partners (their held-back partners and the rows they predict keep every snapshot); the
    final model learns from every snapshot.
    ``progress(done, total)`` is called as each fit (final, out of time, each fold's hazard model and Cox baseline) finishes."""

    horizons = list(config.label.horizons)
    folds = config.train.hazard_folds
    tick = progress or (lambda done, total: None)
    X = model.prepare(frame)
    lgbm = config.train.lightgbm
    # the churn model's own tree settings: with the stack and the contract-end columns, the 4x larger
    # trees used before cost 0.004-0.005 concordance on 1,800-2,000 partners and gained nothing on 6,000.
    # One thread per fit, the fits side by side: LightGBM's column-wise histograms give the same trees
    # whatever the thread count, and Cox and the linear score run in Python, one core each
    settings = {"horizons": horizons, "params": {**params, "num_threads": 1}, "rounds": lgbm.n_estimators,
                "patience": config.train.hazard_early_stopping_rounds, "random_state": config.random_state,
                "countdowns": [c for c in COUNTDOWN_FEATURES if c in model.features], "linear_inputs": LinearInputs.fit(X)}
    # out of time: the single-horizon model's blocks; out of fold: partner folds over every snapshot
    role, until = _time_split(frame, split_dates, observed_until)
    used = np.flatnonzero(role < 3)
    t_oot, e_oot = np.zeros(len(frame)), np.zeros(len(frame), dtype=bool)
    t_oot[used], e_oot[used] = observed_times(frame.iloc[used], observed_until=until[used])
    time, event = observed_times(frame, observed_until=observed_until)
    # every hazard fit learns from a subset of one person-period design, binned once (in all threads);
    # the fits share it, so they run in threads (LightGBM and the numpy work release the GIL)
    settings["person_period"] = PersonPeriod(X, time, event, horizons=horizons, countdowns=settings["countdowns"],
                                             params={**params, "num_threads": config.train.n_jobs})
    ids = frame["partner_id"].to_numpy()
    fold = partner_folds(ids, folds=folds, random_state=config.random_state)
    val = partner_folds(ids, folds=5, random_state=config.random_state + 1) == 0  # a fifth of the fitting partners
    learn = strided_snapshots(frame["snapshot"], stride=config.train.hazard_evaluation_stride)

    def fitting(roles: np.ndarray) -> np.ndarray:  # the rows an evaluation fit learns from (role 0): every stride-th snapshot
        return np.where((roles == 0) & ~learn, 3, roles)

    # the longest fits first, so that two workers finish together: the final model (every partner, every
    # snapshot), the out-of-time model, each fold's hazard model, then each fold's Cox baseline
    jobs = [delayed(fit_hazard)(X, time, event, np.where(val, 1, 0), **settings),
            delayed(fit_hazard)(X, t_oot, e_oot, fitting(role), **settings),
            *(delayed(_hazard_out_of_fold)(X, time, event, fitting(np.where(fold == f, 2, np.where(val, 1, 0))), settings)
              for f in range(folds)),
            *(delayed(_cox_out_of_fold)(X, time, event, fold == f, settings) for f in range(folds))]
    fitted = _run(jobs, n_jobs=config.train.n_jobs, progress=tick)
    final, oot_model = fitted[0], fitted[1]
    metrics: dict[str, float] = {}
    test = np.flatnonzero(role == 2)
    oot_curve = oot_model.curve(X.iloc[test])
    p_single = model.probabilities(X.iloc[test])
    # the curve as the model shows it: anchored on the churn model at the headline horizon (one of the horizons)
    anchored = anchor_curve(oot_curve, p_single, horizons.index(config.label.horizon_days))
    for j, h in enumerate(horizons):
        known = e_oot[test] | (t_oot[test] >= h)
        y = e_oot[test][known] & (t_oot[test][known] <= h)
        if known.all() and y.min() != y.max():  # every test row's status at h is known
            metrics[f"hazard_oot_auc_{h}d"] = float(roc_auc_score(y, oot_curve[known, j]))
            metrics[f"hazard_oot_brier_{h}d"] = float(np.mean((y - oot_curve[known, j]) ** 2))
            metrics[f"hazard_oot_ece_{h}d"] = expected_calibration_error(y.astype(int), oot_curve[known, j])
            metrics[f"anchored_oot_auc_{h}d"] = float(roc_auc_score(y, anchored[known, j]))
            metrics[f"anchored_oot_ece_{h}d"] = expected_calibration_error(y.astype(int), anchored[known, j])
            if h == config.label.horizon_days:
                metrics[f"single_oot_auc_{h}d"] = float(roc_auc_score(y, p_single[known]))
                metrics[f"single_oot_ece_{h}d"] = expected_calibration_error(y.astype(int), p_single[known])
    test_curves = pd.DataFrame({"partner_id": frame["partner_id"].to_numpy()[test], "snapshot": frame["snapshot"].to_numpy()[test],
                                **{f"p_churn_{h}d": oot_curve[:, j] for j, h in enumerate(horizons)}})
    curve, cox_curve = np.empty((len(frame), len(horizons))), np.empty((len(frame), len(horizons)))
    for f in range(folds):
        curve[fold == f], cox_curve[fold == f] = fitted[2 + f], fitted[2 + folds + f]
    metrics.update(survival_metrics(time, event, curve, horizons, name="hazard"))
    metrics.update(survival_metrics(time, event, cox_curve, horizons, name="cox"))
    curves = pd.DataFrame({"partner_id": ids, "snapshot": frame["snapshot"].to_numpy(), "time": time, "event": event})
    for j, hz in enumerate(horizons):
        curves[f"p_churn_{hz}d"], curves[f"cox_{hz}d"] = curve[:, j], cox_curve[:, j]
    return SurvivalResult(final, metrics, curves, test_curves)


def add_survival(result, frame: pd.DataFrame, config, *, observed_until: pd.Timestamp, progress=None):
    """The training result with the hazard model attached to its churn model and the survival metrics
    added (a new result; ``result`` is not modified). The model's curve is then anchored on its
    churn probability at ``label.horizon_days`` (:meth:`~churnmodel.model.ChurnModel.curve`), so the
    headline and its test metrics stay the churn model's; ``anchored_oot_*`` measure the anchored
    curve out of time at the other horizons the test block shows."""
    survival = fit_survival(frame, result.model, result.split.dates, config, observed_until=observed_until, params=result.params,
                            progress=progress)
    model = copy.copy(result.model)
    model.hazard = survival.hazard
    model.metadata = {**model.metadata, "horizons": list(survival.hazard.horizons), "hazard_trees": survival.hazard.booster.num_trees()}
    return dataclasses.replace(result, model=model, metrics={**result.metrics, **survival.metrics}, survival=survival)
