"""Spark session and the edges: read and check the inputs (the event log stays distributed), write Parquet."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from churnmodel.actions import CONTROL
from churnmodel.cells import (
    FLAG_FALSE,
    FLAG_TRUE,
    MAX_AMOUNT,
    duplicate_events_text,
    raise_problems,
)
from churnmodel.config import DataConfig, SparkConfig
from churnmodel.data import read_table, sniff_delimiter
from churnmodel.errors import ConfigError, DataError
from churnmodel.features import EventProfile
from churnmodel.times import EARLIEST, LATEST, TIMESTAMP_DTYPE
from churnmodel.validation import InputTables, check_columns, validate_dimensions

__all__ = ["CANONICAL", "SparkInputs", "collect", "event_summary", "log_facts", "profile", "read_events", "read_inputs", "session",
           "write_parquet"]

#: The event log's canonical columns.
CANONICAL = ("partner_id", "timestamp", "event_type", "amount")


def session(cfg: SparkConfig, *, app_name: str = "churnmodel"):
    """A SparkSession: master from config, else the one spark-submit set, else ``$SPARK_MASTER``, else local[*].

    Time zone UTC (timestamps are UTC end to end); Arrow for pandas exchange; on a local master, no UI
    and ``spark.partitions`` (else 2 x the cores) shuffle partitions unless ``spark.conf`` says otherwise."""
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
    local = (cfg.master or os.environ.get("SPARK_MASTER") or SparkConf().get("spark.master", "local")).startswith("local")
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # PySpark 4 warns on every pandas >= 3 batch although the conversions used here are exact (tested)
        "spark.executorEnv.PYTHONWARNINGS": "ignore::FutureWarning",
        **({"spark.ui.enabled": "false"} if local else {}),
        **cfg.conf,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if local and "spark.sql.shuffle.partitions" not in cfg.conf:
        # Spark's default of 200 shuffle partitions turns each shuffle of a local run into 200 tasks:
        # the sample's training frame took 18.6 s with it and 4.5 s with 2 x the cores
        spark.conf.set("spark.sql.shuffle.partitions", str(cfg.partitions or 2 * spark.sparkContext.defaultParallelism))
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




def _event_source(spark, cfg: DataConfig):
    """The raw event log as Spark reads it: Parquet (a file or a folder of parts) or CSV."""
    path, name = cfg.events, cfg.events.name
    is_uri = "://" in str(path)
    if not is_uri and not path.exists():
        raise DataError(f"data.events: file not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    if path.is_dir() or suffixes[-1:] in ([".parquet"], [".pq"]):
        return spark.read.parquet(str(path))
    if suffixes[-1:] in ([".csv"], [".tsv"], [".txt"]) or suffixes[-2:] == [".csv", ".gz"]:
        delimiter = cfg.csv_delimiter
        if suffixes[-1:] == [".tsv"]:
            delimiter = "\t"
        elif delimiter == "auto":
            delimiter = sniff_delimiter(path, cfg.csv_encoding) if not is_uri else ","
        return spark.read.option("header", True).option("sep", delimiter).option("encoding", cfg.csv_encoding).csv(str(path))
    raise DataError(f"{name}: the Spark engine reads the event log from Parquet (a file or a folder of parts) or CSV; "
                    f"got {''.join(suffixes) or '(no extension)'}. Convert it, e.g. with pandas or DuckDB, to Parquet")


def _typed_events(sdf, cfg: DataConfig):
    """Canonical names and types (UTC timestamps, float amounts), with the raw texts kept for messages."""
    from pyspark.sql import functions as F

    mapping = cfg.columns.events
    check_columns(pd.DataFrame(columns=sdf.columns), table="events", source=cfg.events.name, mapping=mapping)
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
    flag = cfg.actions.control_column  # the hold-out flag, as the canonical boolean column (actions.CONTROL)
    text = F.lower(F.trim(F.coalesce(F.col(flag).cast("string"), F.lit(""))))
    control = [text.isin(list(FLAG_TRUE)).alias(CONTROL), text.alias("_raw_control")] if flag in sdf.columns else []
    return sdf.select(
        F.trim(F.col("partner_id").cast("string")).alias("partner_id"),
        ts.alias("timestamp"),
        F.trim(F.col("event_type").cast("string")).alias("event_type"),
        amount.alias("amount"),
        *[F.col(c) for c in sdf.columns if c not in CANONICAL and c != flag],
        *control,
        raw_ts.cast("string").alias("_raw_ts"),
        F.col("amount").cast("string").alias("_raw_amount"),
    )


def _checks(cfg: DataConfig, *, with_control: bool = False) -> list:
    """(column, failing rows, column shown as examples, what is wrong): the data contract on Spark."""
    from pyspark.sql import functions as F

    return [
        ("partner_id", F.col("partner_id").isNull() | (F.col("partner_id") == ""), "partner_id", "empty value(s); every row needs a partner_id"),
        ("timestamp", F.col("timestamp").isNull(), "_raw_ts",
         f"value(s) that are not dates/timestamps (naive ones are read in {cfg.naive_timezone}); "
         "every event needs a time like 2024-03-01 or 2024-03-01T10:00:00+03:00"),
        ("timestamp", (F.col("timestamp") < F.lit(EARLIEST.to_pydatetime())) | (F.col("timestamp") >= F.lit(LATEST.to_pydatetime())),
         "_raw_ts", f"date(s) outside the supported range {EARLIEST.date()} to {LATEST.date()}; a placeholder or a typo? "
         "Correct the dates or leave them empty"),
        ("event_type", F.col("event_type").isNull() | (F.col("event_type") == ""), "event_type", "empty value(s); every event needs a type"),
        ("amount", F.col("amount").isNull() & F.col("_raw_amount").isNotNull() & (F.trim(F.col("_raw_amount")) != ""), "_raw_amount",
         "value(s) that are not numbers"),
        ("amount", F.abs(F.col("amount")) > MAX_AMOUNT, "_raw_amount",
         f"value(s) beyond +/-{MAX_AMOUNT:.0e}; sums of them would overflow: a placeholder or a unit error? Correct them or leave them empty"),
        ("amount", (F.col("amount") < 0) & ~F.col("event_type").isin(list(cfg.signed_amount_types)), "event_type",
         "negative amount(s); amounts must be >= 0 (order value, hours, days late...). If a type is legitimately "
         "signed (refunds), list it in data.signed_amount_types"),
    ] + ([] if not with_control else [
        (cfg.actions.control_column, ~F.col("_raw_control").isin(list(FLAG_TRUE + FLAG_FALSE)), "_raw_control",
         "value(s) that are not yes/no flags; expected true/false, 1/0, yes/no or empty"),
        (cfg.actions.control_column, F.col(CONTROL) & ~F.col("event_type").isin(list(cfg.actions.types)), "event_type",
         "hold-out row(s) whose event_type is not an action in data.actions.types; a hold-out row records an assignment to "
         "an action's control group: declare the type under data.actions.types, or clear the flag"),
    ])


def read_events(spark, cfg: DataConfig, known: pd.Series):
    """(the event log as a typed Spark DataFrame, warnings); problems raise one :class:`DataError` naming file and column.

    Same contract as the local validator; rows are not numbered (a distributed file has no row order),
    so messages give counts and example values instead."""
    from pyspark.sql import functions as F

    name = cfg.events.name
    typed = _typed_events(_event_source(spark, cfg), cfg)
    ids = spark.createDataFrame(pd.DataFrame({"partner_id": known.astype(object).to_numpy()}), "partner_id string")
    typed = typed.join(F.broadcast(ids.withColumn("_known", F.lit(True))), "partner_id", "left")
    checks = _checks(cfg, with_control=CONTROL in typed.columns)
    unknown = F.col("_known").isNull() & ~checks[0][1]
    # one pass for every check, both counts and the types present
    counts = typed.agg(F.count("*").alias("rows"), F.sum(unknown.cast("long")).alias("unknown"), F.collect_set("event_type").alias("types"),
                       *[F.sum(cond.cast("long")).alias(f"c{i}") for i, (_, cond, _, _) in enumerate(checks)]).collect()[0]
    problems, warnings_ = [], []
    absent = [t for t in cfg.actions.types if t not in set(counts["types"])]
    if absent:
        warnings_.append(f"{name}: data.actions.types: {absent} have no events in the log")
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
            warnings_.append(text + "; dropped (data.unknown_partners: drop)")
            typed, rows = typed.where(~unknown), rows - counts["unknown"]
    raise_problems(problems)
    typed = typed.drop("_raw_ts", "_raw_amount", "_raw_control", "_known")
    if cfg.duplicate_events == "keep":
        return typed.persist(), warnings_
    distinct = typed.dropDuplicates().persist()
    dropped = rows - distinct.count()
    if dropped and cfg.duplicate_events == "error":
        distinct.unpersist()
        raise_problems([f"{name}: {duplicate_events_text(dropped, 'error')}"])
    if dropped:
        warnings_.append(f"{name}: {duplicate_events_text(dropped, 'drop')}")
    return distinct, warnings_


def profile(events) -> EventProfile:
    """The :class:`EventProfile` of a Spark event log, in one aggregation."""
    from pyspark.sql import functions as F

    if CONTROL in events.columns:  # the hold-out's rows are no interactions (actions.interactions)
        events = events.where(~F.col(CONTROL))
    extra = [c for c in events.columns if c not in CANONICAL]
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
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(copy keyword is deprecated|does not yet fully support pandas).*")
        return frame.toPandas()



def log_facts(events) -> dict:
    from pyspark.sql import functions as F

    row = events.agg(F.min("timestamp").alias("first"), F.max("timestamp").alias("latest")).collect()[0]
    utc = [pd.Timestamp(v).tz_localize("UTC") if pd.Timestamp(v).tzinfo is None else pd.Timestamp(v).tz_convert("UTC")
           for v in (row["first"], row["latest"])]
    return {"first": utc[0].as_unit("us"), "latest": utc[1].as_unit("us")}



def write_parquet(frame, out: Path) -> Path:
    """Write a Spark DataFrame as a folder of Parquet parts; a local folder appears only when complete."""
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
