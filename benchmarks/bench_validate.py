"""Reading + validating an event log, and features end to end, against a hand-written reference.
Prints figures, asserts nothing; the three runs are side by side in one process tree.

A synthetic log (default 10M events, 50k partners, 10 event types; bench_features.synthetic_log) is
written as Parquet with its partners table and a config. Then, each a fresh process with its peak RSS:
  1. ``churnmodel validate``: read and check the inputs;
  2. ``churnmodel features``: read, check, build the monthly snapshots' features, write Parquet;
  3. the reference (PERF_NOTES.md): a pandas Parquet read, bucket + cumsum counts, sums and recency per
     type and window (70 features), a Parquet write - no checks at all.
Throughput is feature values (rows x columns) per second, so the two builders compare fairly.

    NUMPY_MADVISE_HUGEPAGE=0 .venv/bin/python benchmarks/bench_validate.py [--events 10_000_000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_features import synthetic_log

REFERENCE = r'''
import sys, time, numpy as np, pandas as pd
events_path, partners_path, out = sys.argv[1:4]
DAY = 86_400 * 1_000_000
t0 = time.perf_counter()
ev = pd.read_parquet(events_path)
partners = pd.read_parquet(partners_path)
snaps = (pd.date_range("2024-01-01", periods=12, freq="MS", tz="UTC").as_unit("us").asi8)
windows = (30, 90, 365)
p_code = pd.Index(partners["partner_id"]).get_indexer(ev["partner_id"])
types, t_code = np.unique(ev["event_type"].to_numpy(), return_inverse=True)
ts = ev["timestamp"].array.asi8 if hasattr(ev["timestamp"].array, "asi8") else ev["timestamp"].to_numpy("datetime64[us]").view(np.int64)
amount = ev["amount"].to_numpy(np.float64)
edges = np.unique(np.concatenate([snaps] + [snaps - w * DAY for w in windows]))
b = np.searchsorted(edges, ts, side="right")
P, T, NB = len(partners), len(types), len(edges) + 1
cell = (p_code * T + t_code) * NB + b
cnt = np.bincount(cell, minlength=P * T * NB).reshape(P, T, NB).cumsum(-1)
tot = np.bincount(cell, weights=amount, minlength=P * T * NB).reshape(P, T, NB).cumsum(-1)
last = np.full(P * T * NB, np.iinfo(np.int64).min)
np.maximum.at(last, cell, ts)
last = np.maximum.accumulate(last.reshape(P, T, NB), axis=-1)
cols = {}
k = lambda s: np.searchsorted(edges, s, side="right")  # bucket index holding events < s
for j, s in enumerate(snaps):
    ks = k(s - 1)
    for t in range(T):
        for w in windows:
            kw = k(s - w * DAY - 1)
            cols.setdefault(f"{types[t]}__count_{w}d", []).append(cnt[:, t, ks] - cnt[:, t, kw])
            cols.setdefault(f"{types[t]}__sum_{w}d", []).append(tot[:, t, ks] - tot[:, t, kw])
        lt = last[:, t, ks].astype(np.float64)
        cols.setdefault(f"{types[t]}__days_since_last", []).append(np.where(lt > 0, (s - lt) / DAY, np.nan))
frame = pd.DataFrame({c: np.concatenate(v) for c, v in cols.items()})
frame.insert(0, "partner_id", np.tile(partners["partner_id"].to_numpy(), len(snaps)))
frame.to_parquet(out, index=False)
print(f"{len(frame)} {frame.shape[1] - 1} {time.perf_counter() - t0}")
'''


def timed(args: list[str], cwd: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS of the process in GB, stdout) of one fresh process."""
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0"}
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *args], cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])  # GNU time's %M: KiB
    return seconds, peak_kib * 1024 / 1e9, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--partners", type=int, default=50_000)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tables = synthetic_log(args.events, args.partners, 10)
        tables.events.to_parquet(root / "events.parquet", index=False)
        tables.partners.to_parquet(root / "partners.parquet", index=False)
        in_memory = tables.events.memory_usage(deep=True).sum() / 1e9
        del tables
        (root / "config.yaml").write_text(
            "data: {partners: partners.parquet, events: events.parquet}\nrandom_state: 0\n"
            "snapshots: {freq: MS, start: '2024-01-01', end: '2024-12-01'}\n"
            "features: {segments: {revenue_type: type_0}}\n")
        print(f"{args.events:,} events, {args.partners:,} partners; the event frame in memory: {in_memory:.2f} GB")
        print(f"{'run':<34}{'seconds':>9}{'peak GB':>9}{'rows':>10}{'cols':>6}{'values/s':>12}")
        sec, validate_peak, _ = timed([str(bin_dir / "churnmodel"), "validate", "--config", "config.yaml"], root)
        print(f"{'churnmodel validate':<34}{sec:>9.1f}{validate_peak:>9.2f}")
        sec, peak, _ = timed([str(bin_dir / "churnmodel"), "features", "--config", "config.yaml", "--out", "features.parquet"], root)
        shape = pd.read_parquet(root / "features.parquet", columns=["partner_id"]).shape[0], len(pd.read_parquet(root / "features.parquet").columns) - 2
        ours = shape[0] * shape[1] / sec
        print(f"{'churnmodel features (end to end)':<34}{sec:>9.1f}{peak:>9.2f}{shape[0]:>10,}{shape[1]:>6}{ours:>12,.0f}")
        (root / "reference.py").write_text(REFERENCE)
        sec, peak, out = timed([sys.executable, "reference.py", "events.parquet", "partners.parquet", "reference.parquet"], root)
        rows, cols, _ = out.split()
        theirs = int(rows) * int(cols) / sec
        print(f"{'hand-written reference':<34}{sec:>9.1f}{peak:>9.2f}{int(rows):>10,}{int(cols):>6}{theirs:>12,.0f}")
        print(json.dumps({"features_vs_reference": round(ours / theirs, 2), "validate_peak_vs_frame": round(validate_peak / in_memory, 2)}))


if __name__ == "__main__":
    main()
