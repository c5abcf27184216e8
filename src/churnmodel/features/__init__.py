"""Point-in-time features: one declarative plan, one engine that computes it, shared derivations.

The modules form one straight chain: :mod:`.plan` (the plan's types) -> :mod:`.spec` (resolving a
plan from the config and the data, and the catalogue of columns) -> :mod:`.local` (the engine's
primitives) -> :mod:`.derive` (features from primitives) -> this module (building frames).

>>> from churnmodel import load_config, read_inputs                      # doctest: +SKIP
>>> cfg = load_config("configs/partner_churn.yaml")                      # doctest: +SKIP
>>> frame, plan = build_training_frame(read_inputs(cfg.data), cfg)        # doctest: +SKIP

Every feature of a row ``(partner, snapshot)`` uses only what was known before ``snapshot``:
events strictly before it, contracts signed by then, terminations that had happened. The Spark
engine (:mod:`churnmodel.spark`) runs the local one on each partner partition of a distributed log,
with the network-wide facts (:class:`.local.Network`) computed by Spark.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from churnmodel.actions import interactions
from churnmodel.config import Config
from churnmodel.errors import DataError
from churnmodel.features.btyd import BgNbd, btyd_model_values, fit_btyd
from churnmodel.features.derive import derive_features
from churnmodel.features.local import Network, compute_primitives
from churnmodel.features.plan import Btyd, EventProfile, FeatureInfo, FeaturePlan, safe_name
from churnmodel.features.spec import NETWORK_FEATURES, resolve_plan
from churnmodel.labels import data_end, fit_history, label_snapshots
from churnmodel.validation import InputTables

__all__ = [
    "NETWORK_FEATURES",
    "BgNbd",
    "Btyd",
    "EventProfile",
    "FeatureInfo",
    "FeaturePlan",
    "Network",
    "btyd_model_values",
    "build_features",
    "build_training_frame",
    "check_inputs",
    "check_tables",
    "fit_btyd",
    "frame_summary",
    "item_gaps",
    "resolve_plan",
    "safe_name",
    "unseen_inputs",
]


def check_inputs(plan: FeaturePlan, *, partners: pd.DataFrame, event_columns, contracts: pd.DataFrame | None,
                 sources: Mapping[str, str], item_gaps: Mapping[str, int] | None = None) -> None:
    """Raise a DataError if the inputs lack a column or table the plan's features are computed from.

    A model trained with contracts, partner attributes or linked holdback items would otherwise
    score every partner as if those facts were empty: silently wrong probabilities. ``item_gaps``:
    per linked balance, the events of its types without an item id (:func:`item_gaps`).
    """
    problems = []
    attrs = [a.source for a in plan.attributes if a.source not in partners.columns]
    if attrs:
        problems.append(f"{sources.get('partners', 'partners')}: missing partner column(s) {attrs} the model uses as "
                        f"features (found {sorted(map(str, partners.columns))}); add them, or retrain without them (features.attributes)")
    items = sorted({b.item_column for b in plan.balances if b.item_column and b.item_column not in event_columns})
    if items:
        problems.append(f"{sources.get('events', 'events')}: missing event column(s) {items} the model links open items "
                        "by (e.g. which holdback was released); add them, or retrain on a log without them")
    for b in plan.balances:
        if (item_gaps or {}).get(b.name):
            problems.append(f"{sources.get('events', 'events')}: column {b.item_column!r}: {item_gaps[b.name]:,} "
                            f"{b.add}/{b.subtract} event(s) without an item id; the model matches them by id "
                            "(as in training): fill the ids, or retrain on this export")
    if plan.contracts and contracts is None:
        problems.append("the model uses contract features but the config has no data.contracts; add the contracts file "
                        "(same export as for training)")
    if problems:
        raise DataError("the inputs do not carry what the model was trained on:\n" + "\n".join(f"  - {m}" for m in problems))


def check_tables(plan: FeaturePlan, tables: InputTables) -> None:
    """:func:`check_inputs` on in-memory tables, item ids included (one scan of the event log)."""
    check_inputs(plan, partners=tables.partners, event_columns=tables.events.columns, contracts=tables.contracts,
                 sources=tables.sources, item_gaps=item_gaps(plan, tables.events))


def item_gaps(plan: FeaturePlan, events: pd.DataFrame) -> dict[str, int]:
    """Per balance linked by item id, how many of its opening/closing events have no id."""
    out = {}
    for b in plan.balances:
        if b.item_column and b.item_column in events.columns:
            linked = events["event_type"].isin([b.add, b.subtract]).to_numpy()
            out[b.name] = int((linked & events[b.item_column].isna().to_numpy()).sum())
    return out


def unseen_inputs(plan: FeaturePlan, tables: InputTables) -> list[str]:
    """Warnings for values the model never saw in training: event types (ignored by the model) and
    attribute categories (scored as missing). Data drift rather than an error; the user should know."""
    out = []
    counts = tables.events["event_type"].value_counts()
    new = counts.loc[~counts.index.isin(plan.event_types)]
    if len(new):
        shown = ", ".join(f"{k!r} ({v:,})" for k, v in new.head(5).items())
        out.append(f"{tables.sources.get('events', 'events')}: {int(new.sum()):,} event(s) of {len(new)} type(s) unseen in "
                   f"training, ignored by the model: {shown}; retrain to use them")
    for a in plan.attributes:
        if a.kind != "category" or a.source not in tables.partners.columns:
            continue
        values = tables.partners[a.source].dropna().astype("str")
        unseen = values.loc[~values.isin(a.categories)].value_counts()
        if len(unseen):
            shown = ", ".join(f"{k!r} ({v:,})" for k, v in unseen.head(5).items())
            out.append(f"{tables.sources.get('partners', 'partners')}: column {a.source!r}: {int(unseen.sum()):,} partner(s) "
                       f"with a value unseen in training, scored as missing: {shown}; known: {list(a.categories)}")
    return out


def build_features(tables: InputTables, rows: pd.DataFrame, plan: FeaturePlan, *,
                   network: Network | None = None) -> pd.DataFrame:
    """Features for each ``(partner_id, snapshot)`` row; the rows' own columns come first, order kept.

    ``network``: a :class:`churnmodel.features.local.Network` when ``tables`` hold one partition of a
    larger event log (the network-wide revenue facts then come from the whole log)."""
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
    check_inputs(plan, partners=tables.partners, event_columns=tables.events.columns, contracts=tables.contracts,
                 sources=tables.sources)  # item gaps: the callers check them once (a scan of the log)
    prims = compute_primitives(interactions(tables.events), rows[["partner_id", "snapshot"]], plan, network=network)
    if len(rows) == 0:
        return rows.assign(**{c: pd.Series(dtype="float64") for c in plan.frame_columns})
    features = derive_features(rows, prims, plan, tables.partners, tables.contracts)
    return pd.concat([rows, features], axis=1)


def build_training_frame(tables: InputTables, config: Config) -> tuple[pd.DataFrame, FeaturePlan]:
    """Snapshots with labels and features for every (partner, snapshot date) in the config's grid."""
    config = fit_history(config, first_event=tables.events["timestamp"].min(), end=data_end(tables, config.data.extracted_at))
    plan = resolve_plan(tables, config.features, horizon_days=config.label.horizon_days)
    rows = label_snapshots(tables, config)
    return build_features(tables, rows, plan), plan


def frame_summary(frame: pd.DataFrame, plan: FeaturePlan) -> dict:
    """Rows, partners, snapshots, features, labelled and censored rows and the churn rate of a training frame."""
    labelled = frame.loc[~frame["censored"]]
    return {"rows": len(frame), "partners": int(frame["partner_id"].nunique()), "snapshots": int(frame["snapshot"].nunique()),
            "features": len(plan.columns), "labelled": len(labelled), "censored": int(frame["censored"].sum()),
            "churn_rate": float(labelled["label"].mean()) if len(labelled) else 0.0}
