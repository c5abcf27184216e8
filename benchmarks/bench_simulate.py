"""Simulator speed: 50k partners x 36 months, generation and writing. Prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_simulate.py [--partners 50000] [--months 36]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from churnmodel.simulate import simulate, write_simulation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partners", type=int, default=50_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    result = simulate(n_partners=args.partners, months=args.months, random_state=args.seed)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_simulation(result, Path(tmp))
        t2 = time.perf_counter()
        size_mb = sum(p.stat().st_size for p in paths) / 2**20
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    n = len(result.events)
    print(f"partners x months     : {args.partners:,} x {args.months}")
    print(f"events                : {n:,}  ({result.partners['churned_at'].notna().sum():,} churned)")
    print(f"simulate              : {t1 - t0:6.1f} s  ({n / (t1 - t0):,.0f} events/s)")
    print(f"write (parquet + csv) : {t2 - t1:6.1f} s  ({size_mb:,.1f} MB on disk)")
    print(f"total                 : {t2 - t0:6.1f} s, peak RSS {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
