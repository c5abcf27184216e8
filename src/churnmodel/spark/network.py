"""The only facts that cross partners, computed by Spark over the whole event log: network revenue
and the strategic core at each snapshot time, with the local engine's own rule
(:func:`~churnmodel.features.local.strategic_core`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.features import FeaturePlan, Network
from churnmodel.features.local import strategic_core
from churnmodel.spark.io import collect
from churnmodel.times import DAY

__all__ = ["network"]


def _seconds_col(column: str):
    from pyspark.sql import functions as F

    return F.floor(F.unix_micros(F.col(column)) / 1_000_000).cast("long")


def network(events, snapshots: np.ndarray, plan: FeaturePlan) -> Network:
    """Network revenue and the strategic core at each snapshot time (int seconds), over the whole log."""
    from pyspark.sql import functions as F

    seg = plan.segments
    window = seg.revenue_window_days * DAY
    share = seg.strategic_core_share
    snaps = np.unique(np.asarray(snapshots, dtype=np.int64))
    spark = events.sparkSession
    grid = spark.createDataFrame(pd.DataFrame({"snap": snaps}), "snap long")
    revenue = (events.where((F.col("event_type") == seg.revenue_type) & F.col("amount").isNotNull())
               .select("partner_id", _seconds_col("timestamp").alias("ts"), "amount"))
    per_partner = (revenue.join(F.broadcast(grid), (F.col("ts") >= F.col("snap") - window) & (F.col("ts") < F.col("snap")))
                   .groupBy("snap", "partner_id").agg(F.sum("amount").alias("revenue")))

    def core(frame: pd.DataFrame) -> pd.DataFrame:
        net, in_core = strategic_core(frame["revenue"].to_numpy(dtype=np.float64), share)
        ids = frame["partner_id"].to_numpy(dtype=object)[in_core]
        return pd.DataFrame({"snap": frame["snap"].iloc[0], "net_sum": net, "partner_id": [None, *ids]})

    facts = collect(per_partner.groupBy("snap").applyInPandas(core, "snap long, net_sum double, partner_id string"))
    totals = facts.drop_duplicates("snap").set_index("snap")["net_sum"]
    members = facts.dropna(subset=["partner_id"])
    return Network(snaps, totals.reindex(snaps).fillna(0.0).to_numpy(dtype=np.float64),
                   pd.DataFrame({"partner_id": members["partner_id"].to_numpy(dtype=object),
                                 "snapshot": members["snap"].to_numpy(dtype=np.int64)}))

