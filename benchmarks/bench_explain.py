"""Reason codes for 100k partners on a 70-feature frame, with the model the default config trains.

Prints rows/s of every exact route on the same model and rows, side by side in one run: the pattern
tables (the default for shallow trees), LightGBM pred_contrib in batches on all cores,
``shap.TreeExplainer`` and WOODELF (``pip install -e '.[bench]'``), with their largest difference; then
the product route (calibrated probabilities for everyone, reason codes for the configured scope).
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

    model.shap_tables()  # built once per model (kept with it): timed apart
    t0 = time.perf_counter()
    from churnmodel.shapley import PatternShap

    build_s = (PatternShap.of(model.booster), time.perf_counter() - t0)[1]
    t0 = time.perf_counter()
    tables = contributions(model, score_frame, route="tables")
    tables_s = time.perf_counter() - t0
    print(f"churnmodel pattern tables (the default for these trees): {tables_s:.1f} s = {args.partners / tables_s:,.0f} rows/s "
          f"(tables built in {build_s:.2f} s); max |difference| vs pred_contrib {float(np.abs(tables - full).max()):.2e} (log-odds)")
    try:
        from woodelf import WoodelfExplainer
    except ImportError:
        print("WOODELF: not installed (pip install -e '.[bench]')")
    else:
        X = model.prepare(score_frame)
        t0 = time.perf_counter()
        values = WoodelfExplainer(model.booster).shap_values(X, verbose=False)
        wood_s = time.perf_counter() - t0
        values = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
        print(f"WOODELF {__import__('woodelf').__version__} (same booster and rows): {wood_s:.1f} s = {args.partners / wood_s:,.0f} rows/s; "
              f"max |difference| vs pred_contrib {float(np.abs(values - full[:, :-1]).max()):.2e}; tables / WOODELF: "
              f"{wood_s / tables_s:.2f}x")

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
