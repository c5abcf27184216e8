"""Training: out-of-time split with purge gaps, LightGBM with early stopping, calibration, baseline.

Time order is never shuffled. The latest labelled snapshot dates are the test block; the block
before it is validation (early stopping, calibration, campaign threshold); everything before that
is training. Between blocks lies a purge gap of one label horizon, so no label window of an earlier
block reaches into the next one. Class imbalance is left to the loss (no reweighting, which would
distort probabilities); calibration on the validation block maps scores to honest probabilities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline

from churnmodel.booster import fit_booster, lgb_params
from churnmodel.calibration import Calibrator
from churnmodel.config import BandsConfig, Config
from churnmodel.errors import DataError
from churnmodel.evaluate import (
    binary_metrics,
    campaign_threshold,
    population_stability,
    segment_metrics,
)
from churnmodel.features import FeaturePlan, fit_btyd
from churnmodel.linear import linear_preprocessor
from churnmodel.model import ChurnModel, numeric_reference, reference_statistics

__all__ = ["SHIFT_PSI", "Split", "TrainingResult", "capped_threshold", "fit_baseline", "fixed_bands", "population_shift", "split_by_time", "train"]

log = logging.getLogger("churnmodel")


@dataclass(frozen=True)
class Split:
    """Row positions of each block (into the labelled frame) and the snapshot dates they cover."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    dates: dict[str, list[str]]


@dataclass
class TrainingResult:
    model: ChurnModel
    split: Split
    predictions: pd.DataFrame  # test rows: ids, segment, label, probability (model and baseline)
    metrics: dict[str, float]
    segments: pd.DataFrame
    params: dict
    baseline: object | None = None
    cv: dict[str, float] = field(default_factory=dict)
    test_features: pd.DataFrame | None = None  # the test block's model inputs (for plots and the signature)
    survival: object | None = None  # churnmodel.survival.SurvivalResult when label.horizons is set
    uplift: tuple = ()  # churnmodel.uplift.UpliftEvaluation per action evaluated on held-out campaigns
    warnings: tuple[str, ...] = ()  # what the user should know about the training data (population shift)


#: PSI above which the training block's partners count as sharply unlike the latest snapshot's (on the
#: simulators: 0.11 on the sample, 0.37 on a steady consumer log whose early snapshots cap tenure at the
#: log's start, 8.3 on a single cohort, where the training block holds only brand-new customers).
SHIFT_PSI = 1.0


def population_shift(frame: pd.DataFrame, plan: FeaturePlan, train_rows: pd.DataFrame) -> list[str]:
    """A warning when the training block's partners look sharply unlike those at the latest snapshot date
    of ``frame`` (whom the model will score): tenure, and events in the longest window, by PSI."""
    latest = frame.loc[frame["snapshot"] == frame["snapshot"].max()]
    w = max(plan.windows)
    counts = [f.name for f in plan.features if f.kind == "count" and f.name.endswith(f"__count_{w}d")]
    tenure = [f.name for f in plan.features if f.name == "tenure_days"]  # a plan of one's own may have none
    measures = {"tenure (days)": tenure, f"events in the last {w} days": counts}
    found = []
    for label, columns in measures.items():
        if not columns or len(latest) == 0:
            continue
        then, now = (rows[columns].sum(axis=1, min_count=1).to_numpy(dtype=np.float64) for rows in (train_rows, latest))
        value = population_stability(numeric_reference(then), now)
        if value > SHIFT_PSI:
            found.append(f"{label}: median {np.nanmedian(then):,.0f} vs {np.nanmedian(now):,.0f} (PSI {value:.1f})")
    if not found:
        return []
    dates = sorted(train_rows["snapshot"].unique())
    return [f"population shift: the training block ({dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}) is sharply unlike the "
            f"latest snapshot ({latest['snapshot'].iloc[0]:%Y-%m-%d}), whose partners the model will score: {'; '.join(found)}. "
            "The model learns what its training partners do (with a single cohort: only what new partners do). Fix: start "
            "the grid later (snapshots.start) so the training block holds partners like today's, or train on a longer history"]


def fixed_bands(bands: BandsConfig, p_valid: np.ndarray, *, churn_rate: float) -> BandsConfig:
    """The risk bands the model keeps, as probability thresholds: the configured ones, or (``share``, and
    ``auto`` at a training churn rate from ``medium`` up) the quantiles of the validation block's risk that
    put ``high_share`` of its partners in the high band and ``medium_share`` in the medium one."""
    mode = bands.mode if bands.mode != "auto" else ("probability" if churn_rate < bands.medium else "share")
    if mode == "share":
        high = float(np.quantile(p_valid, 1 - bands.high_share))
        medium = min(float(np.quantile(p_valid, 1 - bands.high_share - bands.medium_share)), float(np.nextafter(high, 0)))
        bands = bands.model_copy(update={"high": high, "medium": medium})
    return bands.model_copy(update={"mode": mode})  # the thresholds are fixed now; mode says how they were set


def capped_threshold(threshold: float, p_valid: np.ndarray, y_valid: np.ndarray, campaign) -> tuple[float, list[str]]:
    """The campaign threshold, raised so that it flags at most ``campaign.max_share`` of the validation block."""
    flagged = float(np.mean(p_valid >= threshold))
    if flagged <= campaign.max_share:
        return threshold, []
    capped = float(np.quantile(p_valid, 1 - campaign.max_share))
    return capped, [f"campaign threshold: expected profit alone would contact {flagged:.0%} of the validation block's partners "
                    f"(at a {np.mean(y_valid):.0%} churn rate, train.campaign's economics -- clv {campaign.clv:g}, incentive "
                    f"{campaign.incentive_cost:g}, contact {campaign.contact_cost:g} -- make almost everyone worth a call); capped at "
                    f"train.campaign.max_share {campaign.max_share:.0%} (threshold {capped:.3f}). Set train.campaign to your economics"]


def split_by_time(labelled: pd.DataFrame, *, test_snapshots: int, valid_snapshots: int, purge_days: int) -> Split:
    """Blocks of whole snapshot dates: train | purge | valid | purge | test (latest)."""
    dates = np.sort(labelled["snapshot"].unique())
    if len(dates) < test_snapshots + valid_snapshots + 1:
        raise DataError(
            f"only {len(dates)} labelled snapshot dates; train.test_snapshots ({test_snapshots}) + "
            f"train.valid_snapshots ({valid_snapshots}) + at least one for training are needed. "
            f"{_what_fits(dates, test_snapshots=test_snapshots, valid_snapshots=valid_snapshots, purge_days=purge_days)}"
        )
    train, valid, test = _blocks(dates, test_snapshots, valid_snapshots, purge_days)
    if len(valid) < valid_snapshots or len(train) == 0:
        raise DataError(
            f"not enough labelled snapshot dates for train | {purge_days}-day purge | valid ({valid_snapshots}) | "
            f"{purge_days}-day purge | test ({test_snapshots}): dates run {pd.Timestamp(dates[0]).date()} to "
            f"{pd.Timestamp(dates[-1]).date()}. "
            f"{_what_fits(dates, test_snapshots=test_snapshots, valid_snapshots=valid_snapshots, purge_days=purge_days)}"
        )
    snap = labelled["snapshot"].to_numpy()

    def rows(block: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(snap, block))

    def names(block: np.ndarray) -> list[str]:
        return [pd.Timestamp(d).strftime("%Y-%m-%d") for d in block]

    return Split(rows(train), rows(valid), rows(test), {"train": names(train), "valid": names(valid), "test": names(test)})


def _blocks(dates: np.ndarray, test_snapshots: int, valid_snapshots: int, purge_days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, valid, test) snapshot dates: the latest ``test_snapshots``, the ``valid_snapshots`` a purge before them, the rest a purge before those."""
    purge = pd.Timedelta(days=purge_days)
    test = dates[-test_snapshots:]
    valid = dates[dates <= test[0] - purge][-valid_snapshots:]
    train = dates[dates <= valid[0] - purge] if len(valid) else dates[:0]
    return train, valid, test


def _what_fits(dates: np.ndarray, *, test_snapshots: int, valid_snapshots: int, purge_days: int) -> str:
    """Settings under which these labelled dates do split (fewer test/valid dates first, then a shorter
    purge), or the snapshot frequency that would give more dates: the end of a "not enough history" message."""
    counts = dict.fromkeys((c, c) for c in (min(test_snapshots, valid_snapshots), 2, 1) if c <= max(test_snapshots, valid_snapshots))
    for purge in dict.fromkeys((purge_days, purge_days // 2, 0)):
        for test, valid in counts:
            if len(dates) >= test + valid + 1:
                train, blocks_valid, _ = _blocks(dates, test, valid, purge)
                if len(blocks_valid) == valid and len(train):
                    shorter = "" if purge == purge_days else (f", train.purge_days: {purge} (blocks closer than the horizon "
                                                              "share part of their outcome window)")
                    return f"These dates split with e.g. train.test_snapshots: {test}, train.valid_snapshots: {valid}{shorter}"
    return ("Use a more frequent snapshots.freq (e.g. W-MON: a date every week), a shorter label.horizon_days (fewer dates wait "
            "for their outcome), or more history")


def _tune(config: Config, X_train, y_train, X_valid, y_valid) -> dict:
    import optuna  # only when tuning: optuna is slow to import

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lgbm = config.train.lightgbm

    def objective(trial: optuna.Trial) -> float:
        overrides = {
            "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 10, 300, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        }
        booster, _ = fit_booster(lgb_params(config, overrides), X_train, y_train, X_valid, y_valid,
                                  rounds=lgbm.n_estimators, patience=lgbm.early_stopping_rounds)
        return roc_auc_score(y_valid, booster.predict(X_valid, raw_score=True))

    sampler = optuna.samplers.TPESampler(seed=config.random_state)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=config.train.tuning.trials, timeout=config.train.tuning.timeout_seconds)
    log.info("tuning: best validation AUC %.4f with %s", study.best_value, study.best_params)
    return dict(study.best_params)


def fit_baseline(X: pd.DataFrame, y: np.ndarray, *, random_state: int):
    """Logistic regression on the same features (:func:`~churnmodel.linear.linear_preprocessor`)."""
    model = make_pipeline(linear_preprocessor(X), LogisticRegression(C=0.1, max_iter=3000, random_state=random_state))
    return model.fit(X, y)


def _group_cv(config: Config, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, params: dict, rounds: int) -> dict[str, float]:
    scores = []
    for train_idx, test_idx in GroupKFold(n_splits=config.train.group_cv_folds).split(X, y, groups):
        if y[test_idx].min() == y[test_idx].max():
            continue
        booster = lgb.train(params, lgb.Dataset(X.iloc[train_idx], y[train_idx]), num_boost_round=rounds)
        scores.append(roc_auc_score(y[test_idx], booster.predict(X.iloc[test_idx], raw_score=True)))
    return {"cv_auc_mean": float(np.mean(scores)), "cv_auc_std": float(np.std(scores)), "cv_folds": float(len(scores))} if scores else {}


def _seasons(model: ChurnModel, frame: pd.DataFrame, until: pd.Timestamp) -> dict:
    """Per calendar month, the distributions of the latest snapshot of that month up to ``until`` (the test
    block's end: the data the model was trained and tested on; features only, so purged snapshots count
    too): drift at a scoring date is measured against the same season with a similar length of history."""
    latest = {d.month: d for d in sorted(frame["snapshot"].unique()) if d <= until}  # the last of each month wins
    out = {}
    for month, day in sorted(latest.items()):
        rows = frame.loc[(frame["snapshot"] == day).to_numpy()]
        if len(rows) >= 200:
            X = model.prepare(rows)
            out[str(month)] = reference_statistics(X, model.probabilities(X), typical_rows=None)
    return out


def train(frame: pd.DataFrame, plan: FeaturePlan, config: Config) -> TrainingResult:
    """Split, fit, calibrate and evaluate on a training frame from :func:`~churnmodel.features.build_training_frame`."""
    cfg = config.train
    if "label" not in frame.columns or "censored" not in frame.columns:
        raise ValueError("frame needs the label and censored columns of build_training_frame")
    labelled = frame.loc[~frame["censored"].to_numpy()].reset_index(drop=True)
    purge = cfg.purge_days if cfg.purge_days is not None else config.label.horizon_days
    split = split_by_time(labelled, test_snapshots=cfg.test_snapshots, valid_snapshots=cfg.valid_snapshots, purge_days=purge)
    y = labelled["label"].to_numpy(dtype=np.int8)
    for name, idx in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        if y[idx].min() == y[idx].max():
            raise DataError(f"the {name} block ({', '.join(split.dates[name])}) has only one class; churn cannot be learnt "
                            "or measured. Use more snapshot dates per block or a longer label.horizon_days")
    if plan.btyd is not None:  # BG/NBD fitted on the training block's histories only
        plan = replace(plan, btyd=fit_btyd(plan.btyd, labelled.iloc[split.train], random_state=config.random_state))
    shell = ChurnModel(booster=None, calibrator=Calibrator("none"), plan=plan)
    X = shell.prepare(labelled)
    X_train, X_valid, X_test = X.iloc[split.train], X.iloc[split.valid], X.iloc[split.test]
    y_train, y_valid, y_test = y[split.train], y[split.valid], y[split.test]

    tuned = _tune(config, X_train, y_train, X_valid, y_valid) if cfg.tuning.trials else {}
    params = lgb_params(config, tuned)
    booster, best = fit_booster(params, X_train, y_train, X_valid, y_valid,
                                 rounds=cfg.lightgbm.n_estimators, patience=cfg.lightgbm.early_stopping_rounds)
    raw_valid = booster.predict(X_valid, raw_score=True)
    method = cfg.calibration
    if method == "auto":  # measured by benchmarks/bench_calibration.py: see docs/training.md
        method = "sigmoid"
    calibrator = Calibrator.fit(raw_valid, y_valid, method=method)
    p_valid = calibrator(raw_valid)
    threshold, said = capped_threshold(campaign_threshold(y_valid, p_valid, cfg.campaign), p_valid, y_valid, cfg.campaign)
    bands = fixed_bands(config.score.bands, p_valid, churn_rate=float(y_train.mean()))
    p_train = calibrator(booster.predict(X_train, raw_score=True))
    model = ChurnModel(
        booster=booster, calibrator=calibrator, plan=plan, threshold=threshold,
        metadata={
            "best_iteration": best, "calibration": method, "params": {k: v for k, v in params.items() if k != "num_threads"},
            "horizon_days": config.label.horizon_days, "label_source": config.label.source, "label": config.label.model_dump(mode="json"), "split": split.dates,
            "bands": bands.model_dump(),
            "train_rows": len(split.train), "train_churn_rate": float(y_train.mean()),
        },
        reference=reference_statistics(X_train, p_train, typical_rows=y_train == 0),
    )
    model.reference = {**model.reference, "by_month": _seasons(model, frame, pd.Timestamp(max(split.dates["test"]), tz="UTC"))}
    p_test = model.probabilities(X_test)
    test_rows = labelled.iloc[split.test]
    predictions = pd.DataFrame({
        "partner_id": test_rows["partner_id"].to_numpy(),
        "snapshot": test_rows["snapshot"].to_numpy(),
        "segment": test_rows["segment"].to_numpy() if "segment" in test_rows else "all",
        "label": y_test,
        "probability": p_test,
    })
    metrics = binary_metrics(y_test, p_test, top_share=cfg.top_share, bootstrap=cfg.bootstrap,
                             random_state=config.random_state, campaign=cfg.campaign, threshold=threshold)
    metrics.update({"valid_" + k: v for k, v in binary_metrics(y_valid, p_valid, top_share=cfg.top_share, bootstrap=0,
                                                               random_state=config.random_state, campaign=cfg.campaign).items()
                    if k in ("auc", "log_loss", "ece")})
    metrics["best_iteration"] = float(best)
    # what monitoring judges later runs against: the test block's AUC and its interval
    model.metadata["test"] = {k: float(metrics[k]) for k in ("auc", "auc_ci_low", "auc_ci_high") if k in metrics}
    baseline = None
    if cfg.baseline:
        baseline = fit_baseline(X_train, y_train, random_state=config.random_state)
        predictions["baseline_probability"] = baseline.predict_proba(X_test)[:, 1]
        base = binary_metrics(y_test, predictions["baseline_probability"].to_numpy(), top_share=cfg.top_share, bootstrap=0,
                              random_state=config.random_state, campaign=cfg.campaign)
        metrics.update({f"baseline_{k}": v for k, v in base.items() if k in ("auc", "pr_auc", "log_loss", "brier", "ece", "lift_top")})
    if plan.btyd is not None:  # the BG/NBD model alone: fewer expected purchase days, more risk (none yet: the most)
        expected = X_test[plan.btyd.model_columns[1]].to_numpy(dtype=np.float64)
        metrics["btyd_auc"] = float(roc_auc_score(y_test, -np.nan_to_num(expected, nan=0.0)))
    cv = _group_cv(config, X.iloc[np.r_[split.train, split.valid]], y[np.r_[split.train, split.valid]],
                   labelled["partner_id"].to_numpy()[np.r_[split.train, split.valid]], params, best) if cfg.group_cv_folds else {}
    metrics.update(cv)
    segments = segment_metrics(predictions, top_share=cfg.top_share)
    inputs = labelled[model.input_columns].iloc[split.test]  # what predict_proba reads (X_test: what the booster reads)
    return TrainingResult(model, split, predictions, metrics, segments, params, baseline, cv, inputs,
                          warnings=(*said, *population_shift(frame, plan, labelled.iloc[split.train])))
