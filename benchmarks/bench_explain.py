"""Reason codes for 100k partners on a 70-feature frame, with the model the default config trains.

Prints partners/s of the product route (calibrated probabilities for everyone, exact SHAP reason
codes for the configured scope, LightGBM pred_contrib in batches on all cores) beside
``shap.TreeExplainer`` on the same model and rows, and checks the values are identical.
Nothing is asserted about time.

    .venv/bin/python benchmarks/bench_explain.py [--partners 100000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from churnmodel.cli import tune_allocator
from churnmodel.config import Config, ExplainConfig
from churnmodel.explain import contributions, explain, select_scope
from churnmodel.train import train


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_train import synthetic

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partners", type=int, default=100_000)
    parser.add_argument("--train-rows", type=int, default=600_000)
    args = parser.parse_args()
    tune_allocator()
    frame, plan = synthetic(args.train_rows, 70)
    config = Config.model_validate({"data": {"partners": "p", "events": "e"}, "label": {"horizon_days": 30},
                                    "train": {"test_snapshots": 2, "valid_snapshots": 2, "bootstrap": 0, "baseline": False}})
    t0 = time.perf_counter()
    result = train(frame, plan, config)
    model = result.model
    lgbm = config.train.lightgbm
    print(f"model (default config): {model.booster.num_trees()} trees, max_depth {lgbm.max_depth}, {lgbm.num_leaves} leaves; "
          f"test AUC {result.metrics['auc']:.3f}; trained in {time.perf_counter() - t0:.0f} s")
    score_frame, _ = synthetic(args.partners, 70, seed=1)

    # the configuration PERF_NOTES measured (500 trees, 31 leaves, no depth limit): the route to beat
    ref_config = config.model_copy(update={"train": config.train.model_copy(update={"lightgbm": config.train.lightgbm.model_copy(
        update={"n_estimators": 500, "early_stopping_rounds": 10_000, "num_leaves": 31, "max_depth": -1, "learning_rate": 0.05})})})
    ref = train(frame, plan, ref_config)
    t0 = time.perf_counter()
    contributions(ref.model, score_frame, route="shap")
    ref_rate = args.partners / (time.perf_counter() - t0)
    print(f"reference model (500 trees, 31 leaves): test AUC {ref.metrics['auc']:.3f}; shap.TreeExplainer {ref_rate:,.0f} rows/s")

    t0 = time.perf_counter()
    reference = contributions(model, score_frame, route="shap")
    shap_s = time.perf_counter() - t0
    print(f"shap.TreeExplainer, all {args.partners:,} partners: {shap_s:.1f} s = {args.partners / shap_s:,.0f} rows/s")

    t0 = time.perf_counter()
    full = contributions(model, score_frame, route="lightgbm", n_jobs=2)
    full_s = time.perf_counter() - t0
    diff = float(np.abs(full - reference).max())
    print(f"LightGBM pred_contrib, all partners, 2 threads, batches: {full_s:.1f} s = {args.partners / full_s:,.0f} rows/s; "
          f"max |difference| vs shap {diff:.2e} (log-odds)")

    for scope in ("at_risk", "top_n", "all"):
        cfg = ExplainConfig(scope=scope)
        t0 = time.perf_counter()
        p = model.churn_probability(score_frame)
        # the scope's columns; revenue at risk taken as the probability here (no revenue in this frame)
        scored = pd.DataFrame({"partner_id": score_frame["partner_id"].to_numpy(), "churn_probability": p, "revenue_at_risk": p})
        mask = select_scope(scored, config=cfg, threshold=model.threshold)
        chosen = score_frame.loc[mask]
        codes = explain(model, chosen, config=cfg)
        elapsed = time.perf_counter() - t0
        print(f"product route, scope={scope:8s}: {mask.sum():6,} partners explained, {elapsed:.1f} s for all {args.partners:,} "
              f"= {args.partners / elapsed:,.0f} partners/s ({args.partners / elapsed / (args.partners / shap_s):.1f}x TreeExplainer "
              f"on this model, {args.partners / elapsed / ref_rate:.1f}x on the reference model); {len(codes.columns)} columns")


if __name__ == "__main__":
    main()
