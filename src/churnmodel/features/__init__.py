"""Point-in-time features: one declarative plan, engines that compute it, shared derivations.

>>> from churnmodel import load_config, read_inputs                      # doctest: +SKIP
>>> cfg = load_config("configs/partner_churn.yaml")                      # doctest: +SKIP
>>> frame, plan = build_training_frame(read_inputs(cfg.data), cfg)        # doctest: +SKIP

Every feature of a row ``(partner, snapshot)`` uses only what was known before ``snapshot``:
events strictly before it, contracts signed by then, terminations that had happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from churnmodel.config import Config
from churnmodel.data import InputTables
from churnmodel.errors import ConfigError, DataError
from churnmodel.features.derive import derive_features
from churnmodel.features.spec import NETWORK_FEATURES, FeatureInfo, FeaturePlan, resolve_plan

__all__ = [
    "ENGINES",
    "NETWORK_FEATURES",
    "FeatureInfo",
    "FeaturePlan",
    "build_features",
    "build_training_frame",
    "resolve_plan",
]


def _local(events: pd.DataFrame, rows: pd.DataFrame, plan: FeaturePlan, network=None) -> Mapping[str, np.ndarray]:
    from churnmodel.features.local import compute_primitives

    return compute_primitives(events, rows, plan, network=network)


#: Engines compute the plan's primitives for in-memory rows; everything after that is shared
#: (:mod:`.derive`). The Spark engine (:mod:`.spark`) runs the local one on each partner partition
#: of a distributed log, with the network-wide facts (:class:`.local.Network`) computed by Spark.
ENGINES: dict[str, Callable[..., Mapping[str, np.ndarray]]] = {"local": _local}


def build_features(tables: InputTables, rows: pd.DataFrame, plan: FeaturePlan, *, engine: str = "local",
                   network=None) -> pd.DataFrame:
    """Features for each ``(partner_id, snapshot)`` row; the rows' own columns come first, order kept.

    ``network``: a :class:`churnmodel.features.local.Network` when ``tables`` hold one partition of a
    larger event log (the network-wide revenue facts then come from the whole log)."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {sorted(ENGINES)}, got {engine!r}")
    missing = {"partner_id", "snapshot"} - set(rows.columns)
    if missing:
        raise ValueError(f"rows need the columns partner_id and snapshot; missing {sorted(missing)}")
    rows = rows.reset_index(drop=True)
    snapshot = rows["snapshot"]
    if not isinstance(snapshot.dtype, pd.DatetimeTZDtype):
        raise DataError(f"rows.snapshot must be UTC timestamps (datetime64[us, UTC]), got {snapshot.dtype}")
    if snapshot.isna().any():
        raise DataError(f"rows.snapshot has {int(snapshot.isna().sum())} missing value(s); every row needs a snapshot date")
    if (snapshot.dt.microsecond != 0).any() or (snapshot.dt.nanosecond != 0).any():
        raise DataError("rows.snapshot must be whole seconds (a cut-off between events); round it, e.g. to the day")
    prims = ENGINES[engine](tables.events, rows[["partner_id", "snapshot"]], plan, network)
    if len(rows) == 0:
        return rows.assign(**{c: pd.Series(dtype="float64") for c in plan.columns})
    features = derive_features(rows, prims, plan, tables.partners, tables.contracts)
    return pd.concat([rows, features], axis=1)


def build_training_frame(tables: InputTables, config: Config) -> tuple[pd.DataFrame, FeaturePlan]:
    """Snapshots with labels and features for every (partner, snapshot date) in the config's grid."""
    from churnmodel.labels import label_snapshots

    plan = resolve_plan(tables, config.features, config.label)
    rows = label_snapshots(tables, config)
    return build_features(tables, rows, plan), plan
