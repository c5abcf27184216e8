"""Monitoring at scale: 24 monthly scoring runs of 50,000 partners in the score history. Prints figures.

Synthetic partners churn at a constant monthly hazard of their own; each run scores the partners active
at its date with their true 90-day churn probability (a calibrated model, so the estimate before
outcomes should agree with the realised AUC), and the model's test AUC is the first run's expected AUC. The runs are
written through the score history's own writer, then judged by the monitor's stages (read the history,
outcomes, per-run and per-segment metrics, verdicts). Nothing is asserted.

    .venv/bin/python benchmarks/bench_monitor.py [--partners 50000] [--runs 24]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from churnmodel.config import MonitorConfig
from churnmodel.history import history_writer, read_history
from churnmodel.monitoring import estimated_auc, outcomes, run_metrics, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=24)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2023-01-01", tz="UTC")
    monthly = rng.beta(1.2, 60, args.partners)  # each partner's monthly hazard
    months_to_churn = rng.geometric(monthly)
    spells = pd.DataFrame({"partner_id": [f"P{i:06d}" for i in range(args.partners)], "start": start - pd.DateOffset(months=1),
                           "end": [start + pd.DateOffset(months=int(m)) if m <= args.runs + 3 else pd.NaT for m in months_to_churn]})
    spells["end"] = pd.to_datetime(spells["end"], utc=True)
    segment = rng.choice(["strategic", "prospective", "transactional"], args.partners, p=[0.05, 0.2, 0.75])
    revenue = rng.lognormal(11, 1.2, args.partners)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "history"
        t0 = time.perf_counter()
        for k in range(args.runs):
            as_of = start + pd.DateOffset(months=k)
            active = (spells["end"].isna() | (spells["end"] > as_of)).to_numpy()
            p_true = 1 - (1 - monthly[active]) ** 3
            p = p_true
            if k == 0:
                test_auc = estimated_auc(p)
            scores = pd.DataFrame({"partner_id": spells["partner_id"].to_numpy()[active], "as_of": as_of, "churn_probability": p,
                                   "risk_band": np.where(p >= 0.25, "high", np.where(p >= 0.10, "medium", "low")),
                                   "segment": segment[active], "revenue": revenue[active], "revenue_at_risk": p * revenue[active],
                                   "driver_1": "backlog of open tickets", "lever_1": "Responsiveness"})
            path, write = history_writer(scores, folder=folder, as_of=as_of, model_name="partner_churn", model_version="3", horizon_days=90,
                                         test={"auc": test_auc, "auc_ci_low": test_auc - 0.01, "auc_ci_high": test_auc + 0.01})
            write(path)
        t_write = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in folder.rglob("*.parquet"))
        t0 = time.perf_counter()
        history = read_history(folder)
        t_read = time.perf_counter() - t0
        cfg = MonitorConfig()
        t0 = time.perf_counter()
        frame = outcomes(history, spells, observed_until=start + pd.DateOffset(months=args.runs))
        runs = verdicts(run_metrics(frame, cfg=cfg, random_state=0), cfg=cfg)
        t_runs = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_metrics(frame, cfg=cfg.model_copy(update={"bootstrap": 0}), random_state=0, by=("segment",))
        t_segments = time.perf_counter() - t0
    print(f"{args.runs} monthly runs, {len(history):,} scored rows ({args.partners:,} partners at the start)")
    print(f"history on disk {size / 2**20:.1f} MiB ({size / len(history):.1f} bytes per scored row); writing the runs {t_write:.1f} s")
    print(f"monitor: read {t_read:.1f} s, outcomes + per-run metrics (bootstrap {cfg.bootstrap}) + verdicts {t_runs:.1f} s, "
          f"per segment {t_segments:.1f} s; total {t_read + t_runs + t_segments:.1f} s; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print(f"verdicts: {runs['verdict'].value_counts().to_dict()}; runs maturing {int((runs['status'] == 'maturing').sum())}")
    matured = runs.loc[runs["status"] == "matured"]
    print(f"matured runs: realised AUC {matured['auc'].mean():.3f} on average, estimated {matured['estimated_auc'].mean():.3f}; "
          f"realised inside the estimate's 5-95% band in {((matured['auc'] >= matured['estimated_low']) & (matured['auc'] <= matured['estimated_high'])).mean():.0%} of runs")


if __name__ == "__main__":
    main()
