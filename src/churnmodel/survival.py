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

Censoring and the person-period rows: :mod:`churnmodel.person_period`.

Evaluation (:func:`fit_survival`): out of time on the single-horizon model's own blocks, each
block's outcomes censored where the next block starts, at the horizons the test block can show (it
never shows a year); and out of fold over partners for every horizon, against a Cox baseline.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from churnmodel.booster import SIDE_BY_SIDE, train_booster
from churnmodel.errors import DataError
from churnmodel.evaluate import expected_calibration_error, survival_metrics
from churnmodel.hazard import COUNTDOWN_FEATURES, HazardModel, anchor_curve
from churnmodel.linear import CoxBaseline, LinearScore, linear_preprocessor
from churnmodel.person_period import (
    PersonPeriod,
    observed_times,
    partner_folds,
    strided_snapshots,
)
from churnmodel.times import utc

__all__ = [
    "LINEAR_MAX_ROWS",
    "MIN_STACK_CHURNERS",
    "LinearInputs",
    "SurvivalResult",
    "add_survival",
    "fit_hazard",
    "fit_linear_hazard",
    "fit_survival",
    "stack_weights",
]


# --------------------------------------------------------------------------- fitting


@dataclass
class SurvivalResult:
    hazard: HazardModel  # fitted on every partner (a validation share held back for early stopping and stacking)
    metrics: dict[str, float]  # hazard_* and cox_* out of fold; hazard_oot_* / single_oot_* on the test block
    curves: pd.DataFrame  # every row: partner_id, snapshot, time, event, out-of-fold p_churn_{h}d and cox_{h}d
    test: pd.DataFrame | None = None  # the test block: partner_id, snapshot, out-of-time p_churn_{h}d per horizon


@dataclass(frozen=True)
class LinearInputs:
    """The :func:`~churnmodel.linear.linear_preprocessor`, fitted once on every snapshot row of ``X``, and
    its dense output per row: the fits of one survival stage share them (the preprocessing only
    imputes, scales and one-hot encodes; it never sees an outcome)."""

    prep: object
    Z: np.ndarray

    @classmethod
    def fit(cls, X: pd.DataFrame) -> LinearInputs:
        prep = linear_preprocessor(X)
        Z = prep.fit_transform(X)  # one pass: fit, then transform, would take the signed log of every value twice
        return cls(prep, np.asarray(Z.todense() if hasattr(Z, "todense") else Z, dtype=np.float64))


#: At most this many person-period rows (a seeded sample) for the linear hazard score: see :func:`fit_linear_hazard`.
LINEAR_MAX_ROWS = 100_000


def fit_linear_hazard(X: pd.DataFrame, rows: np.ndarray, k: np.ndarray, y: np.ndarray, *, intervals: int,
                      random_state: int, max_rows: int = LINEAR_MAX_ROWS, inputs: LinearInputs | None = None,
                      weight: np.ndarray | None = None) -> LinearScore:
    """The textbook discrete-time hazard model (a logistic regression on person-period rows: one
    log-odds per interval plus a linear score shared by all, Singer & Willett 2003) on the
    :func:`~churnmodel.linear.linear_preprocessor` features (``inputs``: fitted on all of ``X`` and
    shared; else fitted on the rows used); ridge penalty 0.01 per row (the interval terms practically
    unpenalised). ``weight``: per row (a sampled row stands for several; the penalty counts what they stand
    for). At most ``max_rows`` person-period rows, a seeded sample: a model with a few hundred
    weights needs no more, and each row costs its features twice in memory."""
    return _linear_hazard(X, rows, k, y, intervals=intervals, random_state=random_state, max_rows=max_rows,
                          inputs=inputs, weight=weight)[0]


def _linear_hazard(X: pd.DataFrame, rows: np.ndarray, k: np.ndarray, y: np.ndarray, *, intervals: int, random_state: int,
                   max_rows: int, inputs: LinearInputs | None, weight: np.ndarray | None) -> tuple[LinearScore, np.ndarray]:
    """:func:`fit_linear_hazard` and its coefficients on the preprocessing's output (the score is ``Z @ beta``)."""
    weight = np.ones(len(rows)) if weight is None else np.asarray(weight, dtype=np.float64)
    if len(rows) > max_rows:
        keep = np.sort(np.random.default_rng(random_state).choice(len(rows), max_rows, replace=False))
        rows, k, y, weight = rows[keep], k[keep], y[keep], weight[keep]
    unique, inverse = np.unique(rows, return_inverse=True)
    snapshots = X.iloc[unique]  # each snapshot once: the preprocessing is fitted and applied per snapshot
    if inputs is None:
        prep, Z = (fitted := LinearInputs.fit(snapshots)).prep, fitted.Z
    else:  # fitted on every row of X
        prep, Z = inputs.prep, inputs.Z[unique]
    # single precision: each lbfgs step's two passes over the rows read half the bytes (the fit stops at a gradient
    # tolerance of 1e-4 either way; the survival metrics were the same to 4 digits on the sample and 6,000 partners)
    design = np.empty((len(rows), intervals + Z.shape[1]), dtype=np.float32)
    design[:, :intervals] = 10.0 * np.eye(intervals)[k]  # x10: the interval terms' penalty is 100 times smaller
    for start in range(0, len(rows), 4096):  # in blocks: a gather of every row at once is a temporary of twice the design's size
        design[start: start + 4096, intervals:] = Z[inverse[start: start + 4096]]
    glm = LogisticRegression(C=100.0 / weight.sum(), fit_intercept=False, max_iter=5000).fit(design, y, sample_weight=weight)
    beta = np.asarray(glm.coef_[0, intervals:], dtype=np.float64)
    return LinearScore.from_fitted(prep, beta, snapshots, Z=Z), beta


#: Fewer validation churners than this in an interval: Platt scaling of the booster alone there.
MIN_STACK_CHURNERS = 30


def stack_weights(trees: np.ndarray, linear: np.ndarray, y: np.ndarray, *,
                  weight: np.ndarray | None = None) -> tuple[float, float, float]:
    """(intercept, tree weight, linear weight): a logistic regression of one interval's outcomes on the
    two scores with the weights bounded at zero (Breiman's stacking constraint: a score counts as it
    was fitted or not at all; a negative weight is noise from two collinear scores). ``weight``: per row
    (sampled rows). Fewer than :data:`MIN_STACK_CHURNERS` churners: the booster's weight only; one class:
    the booster as it is."""
    if len(y) == 0 or y.min() == y.max():
        return (0.0, 1.0, 0.0)
    y = np.asarray(y, dtype=np.float64)
    share = np.full(len(y), 1.0 / len(y)) if weight is None else np.asarray(weight, dtype=np.float64) / np.sum(weight)
    S = np.column_stack([np.ones(len(y)), trees, linear if y.sum() >= MIN_STACK_CHURNERS else np.zeros(len(y))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = S @ w
        return float(share @ (np.logaddexp(0.0, z) - y * z)), S.T @ (share * (expit(z) - y))

    fit = minimize(loss, np.array([0.0, 1.0, 0.0]), jac=True, method="L-BFGS-B",  # from the booster as it is
                   bounds=[(None, None), (0.0, None), (0.0, None)])
    return (float(fit.x[0]), float(fit.x[1]), float(fit.x[2]))


def fit_hazard(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, role: np.ndarray, *, horizons: Sequence[int],
               params: dict, rounds: int, patience: int, countdowns: Sequence[str] = (), random_state: int = 0,
               linear_inputs: LinearInputs | None = None, person_period: PersonPeriod | None = None) -> HazardModel:
    """The hazard model from the person-period rows of the rows with ``role == 0`` (the booster and
    the linear score), early-stopped and stacked on those with ``role == 1`` (other roles are left out).
    ``linear_inputs``: the linear score's preprocessing, fitted once on all of ``X`` (see :class:`LinearInputs`);
    ``person_period``: the person-period rows of ``X`` binned once (see :class:`PersonPeriod`), of which
    ``(time, event)`` are the same or censored earlier."""
    return _hazard(X, time, event, role, horizons=horizons, params=params, rounds=rounds, patience=patience, countdowns=countdowns,
                   random_state=random_state, linear_inputs=linear_inputs, person_period=person_period)[0]


def _hazard(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, role: np.ndarray, *, horizons: Sequence[int], params: dict,
            rounds: int, patience: int, countdowns: Sequence[str], random_state: int, linear_inputs: LinearInputs | None,
            person_period: PersonPeriod | None) -> tuple[HazardModel, np.ndarray]:
    """:func:`fit_hazard` and its linear score's coefficients on ``linear_inputs``' output (see :func:`_linear_scores`)."""
    pp = person_period or PersonPeriod(X, time, event, horizons=horizons, countdowns=countdowns, params=params)
    at = pp.select(time, event)
    rows, k, y, w = pp.rows[at], pp.k[at], pp.y[at], pp.weight[at]
    fit, val = role[rows] == 0, role[rows] == 1
    for name, sel in (("training", fit), ("validation", val)):
        if y[sel].min(initial=1) == y[sel].max(initial=0):
            raise DataError(f"the hazard model's {name} partners have no churn (or only churn) in any observed interval; "
                            "more history or more partners are needed for label.horizons")
    # each interval starts from its baseline hazard (log-odds of the training rate): the trees then
    # model how partners differ from it, not the different lengths of the intervals
    rate = np.array([np.average(y[fit][k[fit] == j], weights=w[fit][k[fit] == j]) if (k[fit] == j).any() else np.nan
                     for j in range(len(horizons))])
    rate = np.clip(np.where(np.isnan(rate), np.nanmean(rate), rate), 1e-4, 1 - 1e-4)
    offset = np.log(rate / (1 - rate))
    threads = params.get("num_threads", 0)  # the same in every LightGBM call of a fit that may run beside others
    booster, _ = train_booster(params, pp.subset(at[fit], offset[k[fit]], threads=threads),
                               pp.subset(at[val], offset[k[val]], threads=threads), rounds=rounds, patience=patience)
    linear_inputs = _ready(linear_inputs)  # (a job of its own beside this booster, when shared)
    linear, beta = _linear_hazard(X, rows[fit], k[fit], y[fit], intervals=len(horizons), random_state=random_state,
                                  max_rows=LINEAR_MAX_ROWS, inputs=linear_inputs, weight=w[fit])
    model = HazardModel(booster, tuple(int(h) for h in horizons), tuple(map(float, offset)), (), linear, tuple(countdowns))
    trees = model.design_scores(pp.design.iloc[at[val]], threads=threads) + offset[k[val]]
    scores = _linear_scores(X, rows[val], linear, beta, linear_inputs)
    model.stack = tuple(stack_weights(trees[k[val] == j], scores[k[val] == j], y[val][k[val] == j], weight=w[val][k[val] == j])
                        for j in range(len(horizons)))  # once the held-back rows' scores are known
    return model, beta


def _linear_scores(X: pd.DataFrame, rows: np.ndarray, linear: LinearScore, beta: np.ndarray, inputs: LinearInputs | None) -> np.ndarray:
    """The linear score of ``X``'s rows ``rows``: ``Z @ beta`` from the shared preprocessing's output, which it
    equals (:meth:`~churnmodel.linear.LinearScore.from_fitted`) without taking the signed log of every value
    again; without shared inputs, the score itself."""
    return linear(X.iloc[rows]) if inputs is None else (inputs.Z @ beta)[rows]  # every row's: no copy of Z's rows


def _held_out_curve(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, role: np.ndarray, settings: dict) -> np.ndarray:
    """The hazard curve of the rows with ``role == 2`` (a fold, the test block), fitted on the others."""
    threads, out = settings["params"].get("num_threads", 0), np.flatnonzero(role == 2)  # threads: as in the fit (see fit_hazard)
    hazard, beta = _hazard(X, time, event, role, **settings)
    return hazard.curve(X.iloc[out], threads=threads, linear=_linear_scores(X, out, hazard.linear, beta, _ready(settings["linear_inputs"])))


def _cox_out_of_fold(X: pd.DataFrame, time: np.ndarray, event: np.ndarray, out: np.ndarray, settings: dict) -> np.ndarray:
    """One fold's Cox curve for the rows ``out``, fitted on the others."""
    fitting, scored, inputs = np.flatnonzero(~out), np.flatnonzero(out), _ready(settings["linear_inputs"])
    cox = CoxBaseline(random_state=settings["random_state"]).fit(None, time[fitting], event[fitting], cut=settings["horizons"][-1],
                                                                 inputs=(inputs.prep, inputs.Z), rows=fitting)
    return cox.curve(None, settings["horizons"], Z=inputs.Z[scored])  # the preprocessing's output is all they read


def _ready(inputs: LinearInputs | Future | None) -> LinearInputs | None:
    """The shared preprocessing, waited for when it is still being fitted (a :class:`~concurrent.futures.Future`)."""
    return inputs.result() if isinstance(inputs, Future) else inputs


def _out_of_fold(time: np.ndarray, event: np.ndarray, fold: np.ndarray, parts: list[Future], horizons, name: str):
    """(curve, :func:`~churnmodel.evaluate.survival_metrics`) of one model's fold curves, once they are fitted."""
    curve = np.empty((len(time), len(horizons)))
    for f, part in enumerate(parts):
        curve[fold == f] = part.result()
    return curve, survival_metrics(time, event, curve, horizons, name=name)


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


def _out_of_time_metrics(curve: np.ndarray, p_single: np.ndarray, time: np.ndarray, event: np.ndarray, horizons: list[int],
                         headline: int) -> dict[str, float]:
    """The test block's metrics at the horizons every test row's status is known at: the hazard curve's, the
    curve as the model shows it (anchored on the churn model's ``p_single`` at the ``headline`` horizon) and,
    at the headline horizon, the churn model's own."""
    metrics: dict[str, float] = {}
    anchored = anchor_curve(curve, p_single, horizons.index(headline))
    for j, h in enumerate(horizons):
        known = event | (time >= h)
        y = event[known] & (time[known] <= h)
        if known.all() and y.min() != y.max():  # every test row's status at h is known
            metrics[f"hazard_oot_auc_{h}d"] = float(roc_auc_score(y, curve[known, j]))
            metrics[f"hazard_oot_brier_{h}d"] = float(np.mean((y - curve[known, j]) ** 2))
            metrics[f"hazard_oot_ece_{h}d"] = expected_calibration_error(y.astype(int), curve[known, j])
            metrics[f"anchored_oot_auc_{h}d"] = float(roc_auc_score(y, anchored[known, j]))
            metrics[f"anchored_oot_ece_{h}d"] = expected_calibration_error(y.astype(int), anchored[known, j])
            if h == headline:
                metrics[f"single_oot_auc_{h}d"] = float(roc_auc_score(y, p_single[known]))
                metrics[f"single_oot_ece_{h}d"] = expected_calibration_error(y.astype(int), p_single[known])
    return metrics


def _follow(started: list[Future], *, progress, pending: list[Future]) -> None:
    """``progress(done, total)`` as each of the ``started`` fits finishes. At the first that fails, every job
    not yet running (of ``pending`` too) is cancelled and its error raised."""
    try:
        for done, future in enumerate(as_completed(started), start=1):
            future.result()
            progress(done, len(started))
    except BaseException:
        for future in [*started, *pending]:
            future.cancel()
        raise


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
    settings = {"horizons": horizons, "params": {**params, "num_threads": SIDE_BY_SIDE}, "rounds": lgbm.n_estimators,
                "patience": config.train.hazard_early_stopping_rounds, "random_state": config.random_state,
                "countdowns": [c for c in COUNTDOWN_FEATURES if c in model.features]}
    # out of time: the single-horizon model's blocks; out of fold: partner folds over every snapshot
    role, until = _time_split(frame, split_dates, observed_until)
    used = np.flatnonzero(role < 3)
    t_oot, e_oot = np.zeros(len(frame)), np.zeros(len(frame), dtype=bool)
    t_oot[used], e_oot[used] = observed_times(frame.iloc[used], observed_until=until[used])
    time, event = observed_times(frame, observed_until=observed_until)
    ids = frame["partner_id"].to_numpy()
    fold = partner_folds(ids, folds=folds, random_state=config.random_state)
    val = partner_folds(ids, folds=5, random_state=config.random_state + 1) == 0  # a fifth of the fitting partners
    learn = strided_snapshots(frame["snapshot"], stride=config.train.hazard_evaluation_stride)

    def fitting(roles: np.ndarray) -> np.ndarray:  # the rows an evaluation fit learns from (role 0): every stride-th snapshot
        return np.where((roles == 0) & ~learn, 3, roles)

    # Jobs in threads, one core each, BLAS included (LightGBM and the numpy work release the GIL). First the linear
    # preprocessing every fit shares (a fit waits for it only once its booster is trained), beside the person-period
    # design every hazard fit learns a subset of, binned once on the other cores (on 6,000 partners the stage took
    # 8.5 s instead of 9.0-9.3 s with the binning on every core first). Then the longest fits first: the final model
    # (every partner, every snapshot), the out-of-time model, each fold's hazard model and Cox baseline; last each
    # model's out-of-fold metrics, which start as their folds finish
    with threadpool_limits(1), ThreadPoolExecutor(max_workers=max(1, config.train.n_jobs)) as pool:
        settings["linear_inputs"] = pool.submit(LinearInputs.fit, X)
        settings["person_period"] = PersonPeriod(X, time, event, horizons=horizons, countdowns=settings["countdowns"],
                                                 params={**params, "num_threads": max(1, config.train.n_jobs - 1)},
                                                 negative_share=config.train.hazard_negative_share, random_state=config.random_state)
        fits = [partial(fit_hazard, X, time, event, np.where(val, 1, 0), **settings), partial(_held_out_curve, X, t_oot, e_oot, fitting(role), settings),
                *(partial(_held_out_curve, X, time, event, fitting(np.where(fold == f, 2, np.where(val, 1, 0))), settings) for f in range(folds)),
                *(partial(_cox_out_of_fold, X, time, event, fold == f, settings) for f in range(folds))]
        started = [pool.submit(fit) for fit in fits]
        out_of_fold = {name: pool.submit(_out_of_fold, time, event, fold, started[first: first + folds], horizons, name)
                       for name, first in (("hazard", 2), ("cox", 2 + folds))}
        _follow(started, progress=tick, pending=list(out_of_fold.values()))
        final, oot_curve = started[0].result(), started[1].result()  # the out-of-time curve is the test block's (role 2)
        (curve, hazard_metrics), (cox_curve, cox_metrics) = out_of_fold["hazard"].result(), out_of_fold["cox"].result()
    test = np.flatnonzero(role == 2)
    metrics = _out_of_time_metrics(oot_curve, model.probabilities(X.iloc[test]), t_oot[test], e_oot[test], horizons,
                                   config.label.horizon_days)
    test_curves = pd.DataFrame({"partner_id": frame["partner_id"].to_numpy()[test], "snapshot": frame["snapshot"].array[test],
                                **{f"p_churn_{h}d": oot_curve[:, j] for j, h in enumerate(horizons)}})
    metrics.update({**hazard_metrics, **cox_metrics})
    curves = pd.DataFrame({"partner_id": ids, "snapshot": frame["snapshot"].array, "time": time, "event": event})
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
