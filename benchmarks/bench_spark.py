"""Local engine vs Spark engine on the same synthetic event log, files to features. Prints figures, asserts nothing.

Default: 10M events, 50k partners, 10 event types (one of them ``order``, so network revenue and
segments are built), 12 monthly snapshots, default features. Inputs are written once as Parquet
(events) and CSV (partners). Timed, each end to end from the files:
  - local: read + validate + labels + features, in memory;
  - spark: start a session, read + validate on Spark, labels + features on the partitions, write Parquet.

    .venv/bin/python benchmarks/bench_spark.py [--events 10_000_000] [--master local[2]] [--partitions 0]

On one 2-core machine Spark cannot beat the in-memory engine (same numpy code per partition plus
JVM start, Arrow transfer and a shuffle); the figure that matters is that it scales out with
executors while keeping the results identical (tests/test_spark.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import synthetic_log

from churnmodel.cli import tune_allocator
from churnmodel.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--partners", type=int, default=50_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=0)
    args = parser.parse_args()
    tune_allocator()
    tables = synthetic_log(args.events, args.partners, 10)
    events = tables.events.assign(event_type=tables.events["event_type"].replace({"type_0": "order"}))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events.to_parquet(root / "events.parquet", index=False)
        tables.partners.to_csv(root / "partners.csv", index=False)
        del events, tables
        (root / "config.yaml").write_text(
            "data:\n  partners: partners.csv\n  events: events.parquet\n"
            "snapshots:\n  start: 2024-01-01\n  end: 2024-12-01\n  freq: MS\n"
            f"spark:\n  master: {args.master}\n  partitions: {args.partitions}\n")
        cfg = load_config(root / "config.yaml")

        from churnmodel.data import read_inputs
        from churnmodel.features import build_training_frame

        t0 = time.perf_counter()
        frame, plan = build_training_frame(read_inputs(cfg.data), cfg)
        local = time.perf_counter() - t0
        rows, n_features = len(frame), len(plan.columns)
        del frame

        from churnmodel import spark

        t0 = time.perf_counter()
        session = spark.session(cfg.spark)
        started = time.perf_counter() - t0
        inputs = spark.read_inputs(session, cfg.data)
        read = time.perf_counter() - t0
        sframe, _ = spark.training_frame(inputs, cfg)
        spark.write_parquet(sframe, root / "features.parquet")
        total = time.perf_counter() - t0
        written = session.read.parquet(str(root / "features.parquet")).count()
        cores = session.sparkContext.defaultParallelism
        session.stop()
    print(f"events {args.events:,}, partners {args.partners:,}, rows {rows:,} x {n_features} features")
    print(f"local engine : {local:6.1f} s (read + validate + labels + features, in memory)")
    print(f"spark engine : {total:6.1f} s on {args.master} ({cores} cores): session {started:.1f} s, "
          f"read + validate {read - started:.1f} s, labels + features + Parquet write {total - read:.1f} s; "
          f"{written:,} rows written")
    print(f"ratio spark / local: {total / local:.1f}x; events/s on Spark {args.events / (total - started) / 1e6:.2f} M; "
          f"same row count: {written == rows}")


if __name__ == "__main__":
    main()
