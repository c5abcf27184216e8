"""Feature frames on Spark: events grouped by partner partition, each partition run through the local
engine, the shared derivations and the label code; the Spark twins of ``build_training_frame`` and
of the scoring rows, and the way back to pandas with the local engine's dtypes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.actions import CONTROL
from churnmodel.config import Config
from churnmodel.errors import DataError
from churnmodel.features import FeaturePlan, Network, build_features, check_inputs, resolve_plan
from churnmodel.labels import data_end, fit_history, label_snapshots, snapshot_dates
from churnmodel.score import active_rows
from churnmodel.spark.io import CANONICAL, SparkInputs, collect, log_facts, profile
from churnmodel.spark.network import network
from churnmodel.times import utc_series
from churnmodel.validation import InputTables

__all__ = ["frame_summary", "restore", "scoring_frame", "to_pandas", "training_frame"]


def _events_from_spark(frame: pd.DataFrame) -> pd.DataFrame:
    """An event partition as the local engine expects it (UTC microsecond timestamps, float amounts)."""
    return frame.assign(timestamp=utc_series(frame["timestamp"]), amount=frame["amount"].astype(np.float64),
                        partner_id=frame["partner_id"].astype("str"), event_type=frame["event_type"].astype("str"))


def _schema(plan: FeaturePlan, labelled: bool) -> str:
    cats = {f.name for f in plan.features if f.unit == "category"}
    head = "partner_id string, snapshot timestamp" + (", churn_date timestamp, censored boolean, label int" if labelled else "")
    return ", ".join([head] + [f"`{c}` {'string' if c in cats else 'double'}" for c in plan.frame_columns])


def _for_spark(frame: pd.DataFrame, plan: FeaturePlan, labelled: bool) -> pd.DataFrame:
    out = frame.copy()
    for f in plan.features:
        if f.unit == "category":
            out[f.name] = out[f.name].astype(object).where(out[f.name].notna(), None)
    if labelled:
        out["label"] = out["label"].astype("Int32")
    return out


def _partition_frames(inputs: SparkInputs, plan: FeaturePlan, config: Config, make_rows, net: Network | None, labelled: bool):
    """Group events by partner partition and run ``make_rows`` + the local feature build on each."""
    from pyspark.sql import functions as F

    spark = inputs.spark
    n = config.spark.partitions or 2 * spark.sparkContext.defaultParallelism
    key = F.pmod(F.xxhash64("partner_id"), F.lit(n)).alias("_part")
    item_columns = sorted({b.item_column for b in plan.balances if b.item_column})
    hold_out = [CONTROL] if CONTROL in inputs.events.columns else []  # the local engine leaves the hold-out's rows out
    events = inputs.events.select(key, *CANONICAL, *item_columns, *hold_out)
    ids = spark.createDataFrame(pd.DataFrame({"partner_id": inputs.partners["partner_id"].astype(object).to_numpy()}), "partner_id string")
    ids = ids.select(key, "partner_id")
    shared = spark.sparkContext.broadcast((inputs.partners, inputs.contracts))  # internal transport to executors
    schema = _schema(plan, labelled)
    columns = ["partner_id", "snapshot", *(["churn_date", "censored", "label"] if labelled else []), *plan.frame_columns]

    def run(events_part: pd.DataFrame, ids_part: pd.DataFrame) -> pd.DataFrame:
        partners, contracts = shared.value
        mine = set(ids_part["partner_id"])
        p = partners.loc[partners["partner_id"].isin(mine)].reset_index(drop=True)
        c = None if contracts is None else contracts.loc[contracts["partner_id"].isin(mine)].reset_index(drop=True)
        tables = InputTables(p, _events_from_spark(events_part.drop(columns="_part")), c)
        rows = make_rows(tables)
        if rows.empty:
            return pd.DataFrame({c: [] for c in columns})
        return _for_spark(build_features(tables, rows, plan, network=net), plan, labelled)[columns]

    return events.groupBy("_part").cogroup(ids.groupBy("_part")).applyInPandas(run, schema)



def training_frame(inputs: SparkInputs, config: Config):
    """(Spark DataFrame of labelled snapshots with features, plan): the Spark twin of ``build_training_frame``."""
    prof = profile(inputs.events)
    facts = log_facts(inputs.events) | {"types": list(prof.types)}
    end = facts["end"] = data_end(inputs.dimensions(), config.data.extracted_at, latest_event=facts["latest"])
    config = fit_history(config, first_event=facts["first"], end=end)
    plan = resolve_plan(inputs.dimensions(), config.features, profile=prof, horizon_days=config.label.horizon_days)
    dates = snapshot_dates(config.snapshots, first_event=facts["first"], end=end, lookbacks=config.features.lookbacks())
    net = network(inputs.events, dates.asi8 // 1_000_000, plan) if plan.segments is not None else None

    def rows(tables: InputTables) -> pd.DataFrame:
        return label_snapshots(tables, config, log=facts)

    return _partition_frames(inputs, plan, config, rows, net, labelled=True), plan


def scoring_frame(inputs: SparkInputs, plan: FeaturePlan, config: Config, as_of: pd.Timestamp):
    """Spark DataFrame of the features of every partner active at ``as_of`` (the model's plan)."""
    from pyspark.sql import functions as F

    columns = inputs.events.columns
    gaps = {b.name: inputs.events.where(F.col("event_type").isin(b.add, b.subtract) & F.col(b.item_column).isNull()).count()
            for b in plan.balances if b.item_column and b.item_column in columns}
    check_inputs(plan, partners=inputs.partners, event_columns=columns, contracts=inputs.contracts,
                 sources=inputs.sources, item_gaps=gaps)
    late = inputs.events.where(F.col("timestamp") >= F.lit((as_of + pd.Timedelta(days=1)).to_pydatetime())).count()
    if late:
        raise DataError(f"{inputs.sources['events']}: {late} event(s) are dated after --as-of {as_of.date()}; scoring must not "
                        "see the future: pass the export date as --as-of, or filter the export")
    # the whole log's types only matter for an inactivity label restricted to some types
    types = list(profile(inputs.events).types) if config.label.activity_types is not None else None
    net = network(inputs.events, np.array([as_of.value // 1000 // 1_000_000]), plan) if plan.segments is not None else None

    def rows(tables: InputTables) -> pd.DataFrame:
        return active_rows(tables, config, as_of, types_present=types)

    return _partition_frames(inputs, plan, config, rows, net, labelled=False)


def restore(out: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """A feature frame from Spark with the local engine's dtypes (UTC timestamps, categoricals, floats)."""
    out = out.copy()
    for col in ("snapshot", "churn_date", "as_of", "scored_at"):
        if col in out:
            out[col] = utc_series(out[col])
    if "label" in out:
        out["label"] = out["label"].astype("Int8")
        out["censored"] = out["censored"].astype(bool)
    out["partner_id"] = out["partner_id"].astype("str")
    cats = plan.categories
    for col, categories in cats.items():
        if col in out:
            out[col] = pd.Categorical(out[col], categories=categories)
    for col in plan.frame_columns:
        if col in out and col not in cats:
            out[col] = out[col].astype(np.float64)
    return out


def to_pandas(frame, plan: FeaturePlan) -> pd.DataFrame:
    """Collect a Spark feature frame with the local engine's dtypes, sorted by (snapshot, partner_id)."""
    return restore(collect(frame), plan).sort_values(["snapshot", "partner_id"], kind="stable").reset_index(drop=True)



def frame_summary(frame, plan: FeaturePlan) -> dict:
    """Rows, partners, snapshots, features, labelled and censored rows and the churn rate of a Spark
    training frame, in one aggregation (the keys of the local engine's summary)."""
    from pyspark.sql import functions as F

    n = frame.agg(F.count("*").alias("rows"), F.countDistinct("partner_id").alias("partners"),
                  F.countDistinct("snapshot").alias("snapshots"), F.sum(F.col("censored").cast("long")).alias("censored"),
                  F.avg(F.when(~F.col("censored"), F.col("label"))).alias("rate")).collect()[0]
    return {"rows": n["rows"], "partners": n["partners"], "snapshots": n["snapshots"], "features": len(plan.columns),
            "labelled": n["rows"] - (n["censored"] or 0), "censored": n["censored"] or 0, "churn_rate": float(n["rate"] or 0.0)}
