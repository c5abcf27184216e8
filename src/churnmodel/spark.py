"""Spark engine (``engine: spark``): the same features, labels and scores on a cluster, no second copy of the logic.

The event log (the big table) stays distributed. Partners and contracts (one row per partner or
contract) are read and validated on the driver by the local code and shipped to the executors.
Events are grouped by partner into partitions (``spark.partitions``); each partition runs the
local engine (:mod:`churnmodel.features.local`), the shared derivations (:mod:`churnmodel.features.derive`) and the label code
(:mod:`churnmodel.labels`) on its partners. The only facts that cross partners — network revenue
and the strategic core — are computed by Spark over the whole log (:func:`network`) with the same
:func:`~churnmodel.features.local.strategic_core` rule, and handed to every partition.

>>> spark = session(config.spark)                                           # doctest: +SKIP
>>> inputs = read_inputs(spark, config.data)                                # doctest: +SKIP
>>> frame, plan = training_frame(inputs, config)     # a Spark DataFrame    # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from churnmodel.config import Config, DataConfig, SparkConfig
from churnmodel.data import TIMESTAMP_DTYPE, InputTables, read_table, validate_dimensions
from churnmodel.errors import ConfigError, DataError
from churnmodel.features.derive import SEGMENT_LABELS
from churnmodel.features.local import DAY, Network, strategic_core
from churnmodel.features.spec import EventProfile, FeaturePlan, resolve_plan

__all__ = ["SparkInputs", "collect", "event_summary", "network", "profile", "read_inputs", "score", "scoring_frame", "session", "to_pandas",
           "training_frame", "write_parquet"]

_CANONICAL = ("partner_id", "timestamp", "event_type", "amount")


def session(cfg: SparkConfig, *, app_name: str = "churnmodel"):
    """A SparkSession: master from config, else the one spark-submit set, else ``$SPARK_MASTER``, else local[*].

    Time zone UTC (timestamps are UTC end to end); Arrow for pandas exchange."""
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("engine: spark needs PySpark: pip install 'churnmodel[spark]' (and Java 17)") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this interpreter unless told otherwise
    builder = SparkSession.builder.appName(app_name)
    if cfg.master:
        builder = builder.master(cfg.master)
    elif not SparkConf().contains("spark.master"):  # spark-submit sets it
        builder = builder.master(os.environ.get("SPARK_MASTER") or "local[*]")
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # PySpark 4 warns on every pandas >= 3 batch although the conversions used here are exact (tested)
        "spark.executorEnv.PYTHONWARNINGS": "ignore::FutureWarning",
        **({"spark.ui.enabled": "false"} if (cfg.master or os.environ.get("SPARK_MASTER") or "local").startswith("local") else {}),
        **cfg.conf,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@dataclass
class SparkInputs:
    """Validated inputs: partners and contracts in memory, the event log as a Spark DataFrame."""

    spark: object
    partners: pd.DataFrame
    events: object  # pyspark.sql.DataFrame: partner_id, timestamp (UTC), event_type, amount, optional columns
    contracts: pd.DataFrame | None
    sources: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def dimensions(self) -> InputTables:
        """Partners and contracts as :class:`InputTables` with an empty event log (for the plan and labels)."""
        empty = pd.DataFrame({"partner_id": pd.Series([], dtype="str"), "timestamp": pd.Series([], dtype=TIMESTAMP_DTYPE),
                              "event_type": pd.Series([], dtype="str"), "amount": pd.Series([], dtype="float64")})
        return InputTables(self.partners, empty, self.contracts, self.sources)


def read_inputs(spark, cfg: DataConfig) -> SparkInputs:
    """Partners and contracts with the local reader and validator; events read and checked on Spark."""
    kwargs = {"delimiter": cfg.csv_delimiter, "encoding": cfg.csv_encoding}
    partners = read_table(cfg.partners, table="partners", columns=cfg.columns.partners, **kwargs)
    contracts = None if cfg.contracts is None else read_table(cfg.contracts, table="contracts", columns=cfg.columns.contracts, **kwargs)
    sources = {"partners": cfg.partners.name, "events": cfg.events.name}
    if cfg.contracts is not None:
        sources["contracts"] = cfg.contracts.name
    partners, contracts = validate_dimensions(partners, contracts, config=cfg, sources=sources)
    events, warnings = read_events(spark, cfg, partners["partner_id"])
    return SparkInputs(spark, partners, events, contracts, sources, warnings)


def read_events(spark, cfg: DataConfig, known: pd.Series):
    """The event log as a typed Spark DataFrame; problems raise one :class:`DataError` naming file and column.

    Same contract as the local validator; rows are not numbered (a distributed file has no row order),
    so messages give counts and example values instead."""
    from pyspark.sql import functions as F

    path, name = cfg.events, cfg.events.name
    is_uri = "://" in str(path)
    if not is_uri and not path.exists():
        raise DataError(f"data.events: file not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    if path.is_dir() or suffixes[-1:] in ([".parquet"], [".pq"]):
        sdf = spark.read.parquet(str(path))
    elif suffixes[-1:] in ([".csv"], [".tsv"], [".txt"]) or suffixes[-2:] == [".csv", ".gz"]:
        delimiter = cfg.csv_delimiter
        if suffixes[-1:] == [".tsv"]:
            delimiter = "\t"
        elif delimiter == "auto":
            from churnmodel.data import _sniff_delimiter

            delimiter = _sniff_delimiter(path, cfg.csv_encoding) if not is_uri else ","
        sdf = spark.read.option("header", True).option("sep", delimiter).option("encoding", cfg.csv_encoding).csv(str(path))
    else:
        raise DataError(f"{name}: the Spark engine reads the event log from Parquet (a file or a folder of parts) or CSV; "
                        f"got {''.join(suffixes) or '(no extension)'}. Convert it, e.g. with pandas or DuckDB, to Parquet")
    from churnmodel.data import _check_columns

    mapping = cfg.columns.events
    _check_columns(pd.DataFrame(columns=sdf.columns), table="events", source=name, mapping=mapping)
    for canon, src in mapping.items():
        if src in sdf.columns and src != canon:
            sdf = sdf.withColumnRenamed(src, canon)
    if "amount" not in sdf.columns:
        sdf = sdf.withColumn("amount", F.lit(None).cast("double"))
    types = dict(sdf.dtypes)
    raw_ts = F.col("timestamp")
    if types["timestamp"] == "timestamp":
        ts = raw_ts
    elif types["timestamp"] in ("timestamp_ntz", "date"):
        ts = F.to_utc_timestamp(raw_ts.cast("timestamp"), cfg.naive_timezone)
    else:
        text = F.trim(raw_ts.cast("string"))
        offset = text.rlike(r"(Z|[+-]\d{2}:?\d{2})$")
        ts = F.when(offset, text.try_cast("timestamp")).otherwise(F.to_utc_timestamp(text.try_cast("timestamp"), cfg.naive_timezone))
    amount = F.col("amount") if types["amount"] == "double" else F.trim(F.col("amount").cast("string")).try_cast("double")
    typed = sdf.select(
        F.trim(F.col("partner_id").cast("string")).alias("partner_id"),
        ts.alias("timestamp"),
        F.trim(F.col("event_type").cast("string")).alias("event_type"),
        amount.alias("amount"),
        *[F.col(c) for c in sdf.columns if c not in _CANONICAL],
        raw_ts.cast("string").alias("_raw_ts"),
        F.col("amount").cast("string").alias("_raw_amount"),
    )
    ids = spark.createDataFrame(pd.DataFrame({"partner_id": known.astype(object).to_numpy()}), "partner_id string")
    typed = typed.join(F.broadcast(ids.withColumn("_known", F.lit(True))), "partner_id", "left")
    empty_id = F.col("partner_id").isNull() | (F.col("partner_id") == "")
    checks = [  # (column, failing rows, column shown as examples, what is wrong)
        ("partner_id", empty_id, "partner_id", "empty value(s); every row needs a partner_id"),
        ("timestamp", F.col("timestamp").isNull(), "_raw_ts",
         f"value(s) that are not dates/timestamps (naive ones are read in {cfg.naive_timezone}); "
         "every event needs a time like 2024-03-01 or 2024-03-01T10:00:00+03:00"),
        ("event_type", F.col("event_type").isNull() | (F.col("event_type") == ""), "event_type", "empty value(s); every event needs a type"),
        ("amount", F.col("amount").isNull() & F.col("_raw_amount").isNotNull() & (F.trim(F.col("_raw_amount")) != ""), "_raw_amount",
         "value(s) that are not numbers"),
        ("amount", (F.col("amount") < 0) & ~F.col("event_type").isin(list(cfg.signed_amount_types)), "event_type",
         "negative amount(s); amounts must be >= 0 (order value, hours, days late...). If a type is legitimately "
         "signed (refunds), list it in data.signed_amount_types"),
    ]
    unknown = F.col("_known").isNull() & ~empty_id
    # one pass for every check and both counts
    counts = typed.agg(F.count("*").alias("rows"), F.sum(unknown.cast("long")).alias("unknown"),
                       *[F.sum(cond.cast("long")).alias(f"c{i}") for i, (_, cond, _, _) in enumerate(checks)]).collect()[0]
    problems, warnings = [], []
    for i, (column, cond, shown, text) in enumerate(checks):
        if counts[f"c{i}"]:
            examples = [r[0] for r in typed.where(cond).select(shown).limit(3).collect()]
            problems.append(f"{name}: column {column!r}: {counts[f'c{i}']} {text} (e.g. {', '.join(repr(e) for e in examples)})")
    rows = counts["rows"]
    if counts["unknown"]:
        examples = ", ".join(repr(r[0]) for r in typed.where(unknown).select("partner_id").distinct().limit(3).collect())
        text = f"{name}: column 'partner_id': {counts['unknown']} event(s) for partner id(s) not in the partners table (e.g. {examples})"
        if cfg.unknown_partners == "error":
            problems.append(text + "; add the partners, or set data.unknown_partners: drop to ignore them")
        else:
            warnings.append(text + "; dropped (data.unknown_partners: drop)")
            typed, rows = typed.where(~unknown), rows - counts["unknown"]
    if problems:
        n = len(problems)
        raise DataError(f"input data has {n} problem{'s' if n > 1 else ''}:\n" + "\n".join(f"  - {m}" for m in problems))
    distinct = typed.drop("_raw_ts", "_raw_amount", "_known").dropDuplicates().persist()
    dropped = rows - distinct.count()
    if dropped:
        warnings.append(f"{name}: {dropped} exact duplicate event(s) dropped; the first copy of each is kept")
    return distinct, warnings


def profile(events) -> EventProfile:
    """The :class:`EventProfile` of a Spark event log, in one aggregation."""
    from pyspark.sql import functions as F

    extra = [c for c in events.columns if c not in _CANONICAL]
    rows = collect(events.groupBy("event_type").agg(
        F.count("amount").alias("amount"),
        F.min("timestamp").alias("first"),
        *[F.sum(F.col(c).isNull().cast("long")).alias(f"missing_{i}") for i, c in enumerate(extra)],
    ))
    if rows.empty:
        raise DataError("events: no rows; expected at least one event")
    first = pd.Timestamp(rows["first"].min())
    return EventProfile(
        types=tuple(sorted(rows["event_type"])),
        amount_counts={t: int(n) for t, n in zip(rows["event_type"], rows["amount"], strict=True)},
        missing={c: {t: int(n) for t, n in zip(rows["event_type"], rows[f"missing_{i}"], strict=True)} for i, c in enumerate(extra)},
        first_timestamp=first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC"),
    )


def event_summary(events) -> dict:
    """Rows, first and last time, rows per type of a Spark event log (for the run's data fingerprint)."""
    from pyspark.sql import functions as F

    by_type = collect(events.groupBy("event_type").agg(F.count("*").alias("n"), F.min("timestamp").alias("first"),
                                                        F.max("timestamp").alias("last")))
    utc = lambda v: str(pd.Timestamp(v).tz_localize("UTC").as_unit("us"))  # noqa: E731
    return {"rows": int(by_type["n"].sum()), "first": utc(by_type["first"].min()), "last": utc(by_type["last"].max()),
            "by_type": {str(t): int(n) for t, n in sorted(zip(by_type["event_type"], by_type["n"], strict=True))}}


def collect(frame) -> pd.DataFrame:
    """``frame.toPandas()`` without PySpark 4's pandas-3 deprecation noise (the conversion itself is exact)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(copy keyword is deprecated|does not yet fully support pandas).*")
        return frame.toPandas()


def _seconds_col(column: str):
    from pyspark.sql import functions as F

    return F.floor(F.unix_micros(F.col(column)) / 1_000_000).cast("long")


def network(events, snapshots: np.ndarray, plan: FeaturePlan) -> Network:
    """Network revenue and the strategic core at each snapshot time (int seconds), over the whole log."""
    from pyspark.sql import functions as F

    seg = plan.segments
    window = seg["revenue_window_days"] * DAY
    share = seg["strategic_core_share"]
    snaps = np.unique(np.asarray(snapshots, dtype=np.int64))
    spark = events.sparkSession
    grid = spark.createDataFrame(pd.DataFrame({"snap": snaps}), "snap long")
    revenue = (events.where((F.col("event_type") == seg["revenue_type"]) & F.col("amount").isNotNull())
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


def _events_from_spark(frame: pd.DataFrame) -> pd.DataFrame:
    """An event partition as the local engine expects it (UTC microsecond timestamps, float amounts)."""
    ts = pd.to_datetime(frame["timestamp"])
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    return frame.assign(timestamp=ts.astype(TIMESTAMP_DTYPE), amount=frame["amount"].astype(np.float64),
                        partner_id=frame["partner_id"].astype("str"), event_type=frame["event_type"].astype("str"))


def _schema(plan: FeaturePlan, labelled: bool) -> str:
    cats = {f.name for f in plan.features if f.unit == "category"}
    head = "partner_id string, snapshot timestamp" + (", churn_date timestamp, censored boolean, label int" if labelled else "")
    return ", ".join([head] + [f"`{c}` {'string' if c in cats else 'double'}" for c in plan.columns])


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

    from churnmodel.features import build_features

    spark = inputs.spark
    n = config.spark.partitions or 2 * spark.sparkContext.defaultParallelism
    key = F.pmod(F.xxhash64("partner_id"), F.lit(n)).alias("_part")
    item_columns = sorted({b["item_column"] for b in plan.balances if b["item_column"]})
    events = inputs.events.select(key, *_CANONICAL, *item_columns)
    ids = spark.createDataFrame(pd.DataFrame({"partner_id": inputs.partners["partner_id"].astype(object).to_numpy()}), "partner_id string")
    ids = ids.select(key, "partner_id")
    shared = spark.sparkContext.broadcast((inputs.partners, inputs.contracts))  # internal transport to executors
    schema = _schema(plan, labelled)
    columns = ["partner_id", "snapshot", *(["churn_date", "censored", "label"] if labelled else []), *plan.columns]

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


def _log_facts(events) -> dict:
    from pyspark.sql import functions as F

    row = events.agg(F.min("timestamp").alias("first"), F.max("timestamp").alias("latest")).collect()[0]
    utc = [pd.Timestamp(v).tz_localize("UTC") if pd.Timestamp(v).tzinfo is None else pd.Timestamp(v).tz_convert("UTC")
           for v in (row["first"], row["latest"])]
    return {"first": utc[0].as_unit("us"), "latest": utc[1].as_unit("us")}


def training_frame(inputs: SparkInputs, config: Config):
    """(Spark DataFrame of labelled snapshots with features, plan): the Spark twin of ``build_training_frame``."""
    from churnmodel.labels import data_end, snapshot_dates

    prof = profile(inputs.events)
    plan = resolve_plan(inputs.dimensions(), config.features, config.label, profile=prof)
    facts = _log_facts(inputs.events) | {"types": list(prof.types)}
    end = facts["end"] = data_end(inputs.dimensions(), config.data.extracted_at, latest_event=facts["latest"])
    dates = snapshot_dates(config.snapshots, first_event=facts["first"], end=end, warmup_days=config.features.lookback_days())
    net = network(inputs.events, dates.asi8 // 1_000_000, plan) if plan.segments else None

    def rows(tables: InputTables) -> pd.DataFrame:
        from churnmodel.labels import label_snapshots

        return label_snapshots(tables, config, log=facts)

    return _partition_frames(inputs, plan, config, rows, net, labelled=True), plan


def scoring_frame(inputs: SparkInputs, plan: FeaturePlan, config: Config, as_of: pd.Timestamp):
    """Spark DataFrame of the features of every partner active at ``as_of`` (the model's plan)."""
    from pyspark.sql import functions as F

    from churnmodel.features import check_inputs
    from churnmodel.score import active_rows

    columns = inputs.events.columns
    gaps = {b["name"]: inputs.events.where(F.col("event_type").isin(b["add"], b["subtract"]) & F.col(b["item_column"]).isNull()).count()
            for b in plan.balances if b["item_column"] and b["item_column"] in columns}
    check_inputs(plan, partners=inputs.partners, event_columns=columns, contracts=inputs.contracts,
                 sources=inputs.sources, item_gaps=gaps)
    late = inputs.events.where(F.col("timestamp") >= F.lit((as_of + pd.Timedelta(days=1)).to_pydatetime())).count()
    if late:
        raise DataError(f"{inputs.sources['events']}: {late} event(s) are dated after --as-of {as_of.date()}; scoring must not "
                        "see the future: pass the export date as --as-of, or filter the export")
    # the whole log's types only matter for an inactivity label restricted to some types
    types = list(profile(inputs.events).types) if config.label.activity_types is not None else None
    net = network(inputs.events, np.array([as_of.value // 1000 // 1_000_000]), plan) if plan.segments else None

    def rows(tables: InputTables) -> pd.DataFrame:
        return active_rows(tables, config, as_of, types_present=types)

    return _partition_frames(inputs, plan, config, rows, net, labelled=False)


def _restore(out: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """A feature frame from Spark with the local engine's dtypes (UTC timestamps, categoricals, floats)."""
    out = out.copy()
    for col in ("snapshot", "churn_date", "as_of"):
        if col in out:
            ts = pd.to_datetime(out[col])
            out[col] = (ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")).astype(TIMESTAMP_DTYPE)
    if "label" in out:
        out["label"] = out["label"].astype("Int8")
        out["censored"] = out["censored"].astype(bool)
    out["partner_id"] = out["partner_id"].astype("str")
    cats = {a["name"]: a["categories"] for a in plan.attributes if a["kind"] == "category"}
    if plan.segments:
        cats["segment"] = list(SEGMENT_LABELS)
    for col, categories in cats.items():
        if col in out:
            out[col] = pd.Categorical(out[col], categories=categories)
    for col in plan.columns:
        if col in out and col not in cats:
            out[col] = out[col].astype(np.float64)
    return out


def to_pandas(frame, plan: FeaturePlan) -> pd.DataFrame:
    """Collect a Spark feature frame with the local engine's dtypes, sorted by (snapshot, partner_id)."""
    return _restore(collect(frame), plan).sort_values(["snapshot", "partner_id"], kind="stable").reset_index(drop=True)


def score(model, features, *, config: Config, lang: str = "en", model_name: str = "", model_version: str = ""):
    """Score a Spark feature frame: (Spark DataFrame of the ranked list, drift report as pandas).

    Each partition loads the model from its two texts (LightGBM text model + JSON, broadcast; no
    pickle) and runs the local scoring code on Arrow batches (``mapInPandas``): probabilities, risk
    band, revenue at risk and reason codes. The rank is then a global Spark ordering."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from churnmodel.model import ChurnModel
    from churnmodel.score import _score_chunk, _with_reasons, drift_report, reason_columns
    from churnmodel.survival import horizon_columns

    spark = features.sparkSession
    features = features.persist()  # scored, counted and sampled: build it once
    texts = spark.sparkContext.broadcast(model.to_texts())
    plan = model.plan
    reasons = reason_columns(config)
    curve = horizon_columns(model.hazard.horizons) if model.hazard is not None else []
    schema = ("partner_id string, as_of timestamp, churn_probability double, risk_band string, segment string, "
              "revenue double, revenue_at_risk double, " + "".join(f"`{c}` double, " for c in curve)
              + ", ".join(f"`{c}` string" for c in reasons))
    base_cols = ["partner_id", "as_of", "churn_probability", "risk_band", "segment", "revenue", "revenue_at_risk", *curve]

    def run(batches):
        m = ChurnModel.from_texts(texts.value)
        for batch in batches:
            frame = _restore(batch, plan)
            base, explained, _ = _score_chunk(m, frame, config, lang, 0)
            scored = _with_reasons(base, [explained] if explained is not None else [], config, top_n_done=True)
            scored["segment"] = scored["segment"].astype(object).where(scored["segment"].notna(), "")
            yield scored[base_cols + reasons]

    scored = features.mapInPandas(run, schema)
    if config.explain.scope == "top_n":  # partitions each kept their own top n; keep the overall top n
        top = F.row_number().over(Window.orderBy(F.desc("revenue_at_risk"), "partner_id"))
        scored = scored.withColumn("_top", top)
        scored = scored.select(*[F.when(F.col("_top") <= config.explain.top_n, F.col(c)).otherwise(F.lit("")).alias(c)
                                 if c in reasons else F.col(c) for c in base_cols + reasons])
    order = "revenue_at_risk" if config.score.sort_by == "revenue_at_risk" else "churn_probability"
    ranked = scored.withColumn("rank", F.row_number().over(Window.orderBy(F.desc(order), "partner_id")).cast("long"))
    ranked = ranked.select(*base_cols[:4], "rank", *base_cols[4:], *reasons, F.lit(model_name).alias("model_name"),
                           F.lit(model_version).alias("model_version"), F.col("as_of").alias("scored_at"))
    total = features.count()
    sample = features if total <= 100_000 else features.sample(fraction=100_000 / total, seed=config.random_state)
    X = _restore(collect(sample), plan).sort_values(["partner_id"], kind="stable")
    prepared = model.prepare(X)
    drift = drift_report(model, prepared, model.probabilities(prepared))
    return ranked.orderBy("rank"), drift


def write_parquet(frame, out: Path) -> Path:
    """Write a Spark DataFrame as a folder of Parquet parts; a local folder appears only when complete."""
    import shutil
    import uuid

    if "://" in str(out):
        frame.write.mode("errorifexists").parquet(str(out))
        return out
    out = Path(out)
    if not out.parent.is_dir():
        raise DataError(f"--out: folder {out.parent} does not exist; create it first")
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        frame.write.parquet(str(tmp))
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
