"""Batch scoring of 1M partners from a feature table to written Parquet. Prints figures.

The model is the one the default config trains (on 600k synthetic rows x 70 features). First
probabilities, risk bands and revenue at risk only (``explain.scope: none``), then with reason codes
for the default explanation scope (high and medium bands). Peak memory is the resident set during
scoring minus before it.

    .venv/bin/python benchmarks/bench_score.py [--partners 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from churnmodel.cli import tune_allocator
from churnmodel.config import Config
from churnmodel.outputs import write_frame
from churnmodel.score import score_features
from churnmodel.train import train

sys.path.insert(0, str(Path(__file__).parent))
from bench_features import PeakRSS
from bench_train import synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partners", type=int, default=1_000_000)
    args = parser.parse_args()
    tune_allocator()
    frame, plan = synthetic(600_000, 70)
    config = Config.model_validate({"data": {"partners": "p", "events": "e"}, "label": {"horizon_days": 30},
                                    "train": {"test_snapshots": 2, "valid_snapshots": 2, "bootstrap": 0, "baseline": False}})
    model = train(frame, plan, config).model
    features, _ = synthetic(args.partners, 70, seed=2)
    features["partner_id"] = [f"P{i:07d}" for i in range(len(features))]  # one row per partner
    print(f"{args.partners:,} partners x 70 features; model {model.booster.num_trees()} trees")
    for scope in ("none", "at_risk"):
        cfg = config.model_copy(update={"explain": config.explain.model_copy(update={"scope": scope})})
        with tempfile.TemporaryDirectory() as tmp, PeakRSS() as mem:
            t0 = time.perf_counter()
            result = score_features(model, features, config=cfg)
            t1 = time.perf_counter()
            write_frame(result.scores, Path(tmp) / "scores.parquet")
            t2 = time.perf_counter()
        explained = int((result.scores["driver_1"] != "").sum())
        print(f"scope={scope:8s}: score {t1 - t0:5.1f} s + write Parquet {t2 - t1:4.1f} s = {t2 - t0:5.1f} s "
              f"({args.partners / (t2 - t0):,.0f} partners/s); reason codes for {explained:,}; "
              f"peak extra RSS {(mem.peak - mem.start) / 2**30:.2f} GiB (feature table {features.memory_usage(deep=True).sum() / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
