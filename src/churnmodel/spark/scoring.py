"""Scoring on Spark: each partition scores its rows with the local code (:func:`churnmodel.score.score_frame`),
then the explanation scope and the rank are settled over the whole list with the same rules
(:func:`churnmodel.explain.select_scope`, :func:`churnmodel.score.rank_columns`)."""

from __future__ import annotations

import pandas as pd

from churnmodel.config import Config
from churnmodel.explain import select_scope
from churnmodel.hazard import horizon_columns
from churnmodel.model import ChurnModel
from churnmodel.score import (
    action_columns,
    drift_report,
    for_model,
    point_columns,
    rank_columns,
    reason_columns,
    score_frame,
)
from churnmodel.spark.frames import restore
from churnmodel.spark.io import collect

__all__ = ["score", "score_summary"]

_BASE = ["partner_id", "as_of", "churn_probability", "risk_band", "segment", "revenue", "revenue_at_risk"]


def _scored_partitions(model: ChurnModel, features, config: Config, lang: str, columns: list[str], schema: str):
    """Every partition scored by :func:`score_frame`; the model travels as its two texts (no pickle)."""
    texts = features.sparkSession.sparkContext.broadcast(model.to_texts())
    plan = model.plan

    def run(batches):
        m = ChurnModel.from_texts(texts.value)
        for batch in batches:
            scored = score_frame(m, restore(batch, plan), config=config, lang=lang)
            scored["segment"] = scored["segment"].astype(object).where(scored["segment"].notna(), "")
            yield scored[columns]

    return features.mapInPandas(run, schema)


def _settle_scope(scored, config: Config, reasons: list[str], sizes: list[str]):
    """Reason codes only for the rows the scope picks over the whole list. Row by row rules (all, at_risk,
    none) are settled in each partition already; ``top_n`` is settled on the partitions' candidates, a
    few rows each, by the same :func:`select_scope` as the local engine."""
    from pyspark.sql import functions as F

    if config.explain.scope != "top_n":
        return scored
    candidates = collect(scored.where(F.col("_explained")).select("partner_id", "churn_probability", "revenue_at_risk"))
    keep = candidates.loc[select_scope(candidates, config=config.explain, threshold=config.score.bands.medium), ["partner_id"]]
    spark = scored.sparkSession
    kept = spark.createDataFrame(keep.assign(_keep=True) if len(keep) else pd.DataFrame({"partner_id": [], "_keep": []}),
                                 "partner_id string, _keep boolean")
    scored = scored.join(F.broadcast(kept), "partner_id", "left")
    empty = {**{c: F.lit("") for c in reasons}, **{c: F.lit(None).cast("double") for c in sizes}}
    return scored.select(*[F.when(F.col("_keep").isNotNull(), F.col(c)).otherwise(empty[c]).alias(c) if c in empty else F.col(c)
                           for c in scored.columns if c != "_keep"])


def score(model: ChurnModel, features, *, config: Config, lang: str = "en", model_name: str = "", model_version: str = ""):
    """Score a Spark feature frame: (Spark DataFrame of the ranked list, drift report as pandas).

    Each partition loads the model from its two texts (LightGBM text model + JSON, broadcast; no
    pickle) and runs the local scoring code on Arrow batches (``mapInPandas``): probabilities, risk
    band, revenue at risk, survival columns and reason codes. The scope and the rank are then settled
    over the whole list."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    config = for_model(config, model)
    features = features.persist()  # scored, counted and sampled: build it once
    reasons, sizes = reason_columns(config), point_columns(config)
    curve = horizon_columns(model.hazard.horizons) if model.hazard is not None else []
    actions = action_columns(model)
    base = [*_BASE, *curve, *actions]
    schema = ("partner_id string, as_of timestamp, churn_probability double, risk_band string, segment string, "
              "revenue double, revenue_at_risk double, " + "".join(f"`{c}` double, " for c in curve)
              + "".join(f"`{c}` {kind}, " for c, kind in actions.items())
              + "".join(f"`{c}` string, " for c in reasons) + "".join(f"`{c}` double, " for c in sizes) + "_explained boolean")
    scored = _scored_partitions(model, features, config, lang, [*base, *reasons, *sizes, "_explained"], schema).persist()
    scored = _settle_scope(scored, config, reasons, sizes).drop("_explained")
    order = [F.col(c).asc() if ascending else F.col(c).desc() for c, ascending in rank_columns(config)]
    ranked = scored.withColumn("rank", F.row_number().over(Window.orderBy(*order)).cast("long"))
    ranked = ranked.select(*base[:4], "rank", *base[4:], *reasons, *sizes, F.lit(model_name).alias("model_name"),
                           F.lit(model_version).alias("model_version"), F.col("as_of").alias("scored_at"))
    total = features.count()
    sample = features if total <= 100_000 else features.sample(fraction=100_000 / total, seed=config.random_state)
    X = restore(collect(sample), model.plan).sort_values(["partner_id"], kind="stable")
    prepared = model.prepare(X)
    month = int(pd.Timestamp(X["snapshot"].iloc[0]).month) if "snapshot" in X and len(X) else None
    drift = drift_report(model, prepared, model.probabilities(prepared), month=month)
    return ranked.orderBy("rank"), drift


def score_summary(ranked) -> dict:
    """Partners, expected churners, high-risk partners and revenue at risk of a Spark ranked list."""
    from pyspark.sql import functions as F

    n = ranked.agg(F.count("*").alias("n"), F.sum("churn_probability").alias("p"), F.sum("revenue_at_risk").alias("r"),
                   F.sum((F.col("risk_band") == "high").cast("long")).alias("high")).collect()[0]
    return {"partners": n["n"], "expected_churners": float(n["p"] or 0.0), "high_risk": int(n["high"] or 0),
            "revenue_at_risk": float(n["r"] or 0.0)}
