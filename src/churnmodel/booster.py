"""LightGBM primitives shared by the churn model and the hazard model: parameters from the config,
fitting with early stopping, and loading a text model only once its checksum matches.

>>> from churnmodel.config import Config
>>> lgb_params(Config.model_validate({"data": {"partners": "p", "events": "e"}}))["objective"]
'binary'
"""

from __future__ import annotations

import hashlib

import lightgbm as lgb
import numpy as np

from churnmodel.config import Config
from churnmodel.errors import DataError

__all__ = ["SIDE_BY_SIDE", "checked_booster", "fit_booster", "lgb_params", "train_booster"]

#: LightGBM's ``num_threads`` in every call (dataset, training, prediction) of fits that run side by side in
#: threads: the survival stage's and the uplift stage's. LightGBM keeps its thread count in one process-wide
#: variable that each call with parameters sets (``num_threads`` unset: OpenMP's default, every core), and sizes
#: per-thread buffers from it before a parallel loop: a call in one thread that changes it while another
#: thread trains can make that thread's loop run more threads than it has buffers for. Seen once in about six
#: suite runs: a general protection fault in lib_lightgbm.so in notebook 04's training, during the uplift stage,
#: whose predictions left it unset.
SIDE_BY_SIDE = 1


def lgb_params(config: Config, overrides: dict | None = None) -> dict:
    """LightGBM parameters from ``train.lightgbm``, seeded and deterministic, with ``overrides`` on top."""
    p = config.train.lightgbm
    params = {
        "objective": "binary",
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "max_depth": p.max_depth,
        "min_child_samples": p.min_child_samples,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": p.bagging_freq,
        "lambda_l2": p.lambda_l2,
        "seed": config.random_state,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": config.train.n_jobs,
        "verbosity": -1,
    }
    return {**params, **(overrides or {})}


def fit_booster(params: dict, X_train, y_train, X_valid, y_valid, *, rounds: int, patience: int,
                offsets: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[lgb.Booster, int]:
    """(booster, trees kept): LightGBM with early stopping on the validation rows.

    ``offsets`` (train, valid): fixed log-odds each row starts from. The booster returned holds
    exactly the trees early stopping chose."""
    train_set = lgb.Dataset(X_train, y_train, categorical_feature="auto", free_raw_data=False,
                            init_score=None if offsets is None else offsets[0])
    valid_set = lgb.Dataset(X_valid, y_valid, reference=train_set, init_score=None if offsets is None else offsets[1])
    return train_booster(params, train_set, valid_set, rounds=rounds, patience=patience)


def train_booster(params: dict, train_set: lgb.Dataset, valid_set: lgb.Dataset, *, rounds: int,
                  patience: int) -> tuple[lgb.Booster, int]:
    """(booster, trees kept): :func:`fit_booster` on datasets already made (e.g. subsets of one binned
    dataset, :meth:`lightgbm.Dataset.subset`, so that several fits bin the data once)."""
    booster = lgb.train(
        {**params, "metric": "binary_logloss"},  # early stopping's only metric: an AUC per round would sort the rows each time
        train_set,
        num_boost_round=rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )
    best = booster.best_iteration or rounds
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best)), best


def checked_booster(text: str, sha256: str | None, *, source: str, name: str) -> lgb.Booster:
    """A LightGBM booster from its text model, once the text matches the SHA-256 recorded for it
    (LightGBM's parser can crash the process on a damaged file, so nothing unchecked reaches it)."""
    if sha256 != hashlib.sha256(text.encode()).hexdigest():
        raise DataError(f"{source}: {name} does not match the SHA-256 recorded in model.json; the model files were "
                        "altered, truncated or mixed from two models. Download or retrain the model")
    try:
        return lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise DataError(f"{source}: {name} is not a LightGBM text model ({exc})") from None
