"""Feature build speed and memory on a synthetic event log. Prints figures, asserts nothing.

Default: 10M events, 50k partners, 10 event types, 12 monthly snapshots, windows 30/90/365, in-memory
frame to frame (reading files is not timed). Two feature sets are timed:
  - "perf-notes": count + sum per window and recency (70 features), the set PERF_NOTES.md measured;
  - "default": the package's default features for this log (counts, sums, means, maxima, recency,
    lifetime rates, trends, segments, attributes).

    NUMPY_MADVISE_HUGEPAGE=0 .venv/bin/python benchmarks/bench_features.py [--events 10_000_000] [--repeat 3] [--no-tune]

Memory is the peak resident set during a build minus the resident set before it (sampled every 2 ms),
compared with the event frame's own size (``memory_usage(deep=True)``).
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import pandas as pd

from churnmodel.cli import tune_allocator
from churnmodel.config import FeaturesConfig
from churnmodel.data import InputTables
from churnmodel.features import build_features, resolve_plan


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Sample the resident set size every few milliseconds while a block runs."""

    def __enter__(self):
        self.peak = self.start = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def synthetic_log(n_events: int, n_partners: int, n_types: int, seed: int = 0) -> InputTables:
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:07d}" for i in range(n_partners)], dtype=object)
    start = pd.Timestamp("2023-01-01", tz="UTC").value // 1000
    span = 2 * 365 * 86_400 * 1_000_000
    partner = rng.zipf(1.3, n_events) % n_partners  # a few very active partners, a long tail
    events = pd.DataFrame({
        "partner_id": pd.array(ids[partner], dtype="str"),
        "timestamp": pd.to_datetime(start + rng.integers(0, span, n_events), unit="us", utc=True),
        "event_type": pd.array(np.array([f"type_{i}" for i in range(n_types)], dtype=object)[rng.integers(0, n_types, n_events)], dtype="str"),
        "amount": np.round(rng.lognormal(4, 1, n_events), 2),
    })
    partners = pd.DataFrame({
        "partner_id": pd.array(ids, dtype="str"),
        "joined_at": pd.Timestamp("2022-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365, n_partners), unit="D"),
        "churned_at": pd.Series(pd.NaT, index=range(n_partners), dtype="datetime64[us, UTC]"),
        "region": pd.array(rng.choice(["N", "S", "E", "W"], n_partners), dtype="str"),
    })
    partners["joined_at"] = partners["joined_at"].astype("datetime64[us, UTC]")
    return InputTables(partners=partners, events=events)


def run(tables: InputTables, cfg: FeaturesConfig, rows: pd.DataFrame, repeat: int) -> tuple[list[float], int, int]:
    plan = resolve_plan(tables, cfg)
    times, peak_extra = [], 0
    for _ in range(repeat):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            X = build_features(tables, rows, plan)
            times.append(time.perf_counter() - t0)
        peak_extra = max(peak_extra, mem.peak - mem.start)
        del X
    return times, peak_extra, len(plan.columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--partners", type=int, default=50_000)
    parser.add_argument("--types", type=int, default=10)
    parser.add_argument("--snapshots", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-tune", action="store_true", help="leave glibc's allocator as it is (as in a notebook)")
    args = parser.parse_args()
    if not args.no_tune:
        tune_allocator()  # as the CLI does

    base = rss_bytes()
    tables = synthetic_log(args.events, args.partners, args.types)
    log_bytes = int(tables.events.memory_usage(deep=True).sum())
    snaps = pd.date_range("2024-01-01", periods=args.snapshots, freq="MS", tz="UTC").as_unit("us")
    rows = pd.DataFrame({
        "partner_id": np.repeat(tables.partners["partner_id"].to_numpy(), len(snaps)),
        "snapshot": np.tile(snaps, len(tables.partners)),
    })
    print(f"events {args.events:,}, partners {args.partners:,}, types {args.types}, snapshots {len(snaps)}, rows {len(rows):,}")
    print(f"event log in memory: {log_bytes / 2**30:.2f} GiB (process RSS before building: {(rss_bytes() - base) / 2**30:.2f} GiB over start)")
    perf_notes = FeaturesConfig(aggregations=["count", "sum"], lifetime_rate=False, trends=[], ratios=[], balances=[],
                                scores=[], attributes=[], segments={"revenue_type": "none"}, contracts=False)
    for name, cfg in (("perf-notes", perf_notes), ("default", FeaturesConfig())):
        times, extra, n_features = run(tables, cfg, rows, args.repeat)
        median = float(np.median(times))
        print(
            f"{name:10s}: {n_features:3d} features, build median {median:.2f} s (runs {', '.join(f'{t:.2f}' for t in times)}; "
            "the first run also faults in fresh memory), "
            f"{args.events / median / 1e6:.1f} M events/s, peak extra RSS {extra / 2**30:.2f} GiB "
            f"= {extra / log_bytes:.2f}x the event log"
        )


if __name__ == "__main__":
    main()
