"""Multi-horizon risk: time and quality of the hazard model against the Cox baseline. Prints figures.

Simulates partners (default 6,000 x 36 months) and runs what ``churnmodel train`` runs (the
application layer, without MLflow): the training frame, the single-horizon model, then the survival
stage (out-of-time fit, partner folds with a Cox baseline each, final fit), each stage timed through
the pipeline's status hook; then scores every active partner. With several ``--strides``
(``train.hazard_evaluation_stride``) or ``--shares`` (``train.hazard_negative_share``) the whole is
repeated per combination in one run, side by side. ``--sample``: the committed sample's config instead
of the simulator. Nothing is asserted.

    .venv/bin/python benchmarks/bench_survival.py [--partners 6000] [--months 36] [--folds 3] [--seed 3]
        [--strides 3] [--shares 1,0.25] [--sample]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from churnmodel import pipeline
from churnmodel.cli import tune_allocator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=6000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3, help="the simulator's random_state")
    parser.add_argument("--strides", default="3", help="train.hazard_evaluation_stride values, compared in one run")
    parser.add_argument("--shares", default="1,0.25", help="train.hazard_negative_share values, compared in one run")
    parser.add_argument("--sample", action="store_true", help="the committed sample (configs/partner_churn.yaml)")
    args = parser.parse_args()
    tune_allocator()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.sample:
            config = Path(__file__).resolve().parents[1] / "configs" / "partner_churn.yaml"
        else:
            pipeline.simulate(partners=args.partners, months=args.months, random_state=args.seed, out=root / "sim")
            config = root / "c.yaml"
            config.write_text(
                "data:\n  partners: sim/partners.csv\n  events: sim/events.parquet\n  contracts: sim/contracts.csv\n"
                f"random_state: 7\nlabel:\n  horizons: [30, 90, 180, 365]\ntrain:\n  bootstrap: 0\n  hazard_folds: {args.folds}\n")
        tables = pipeline.validate(config).tables
        for stride in (int(s) for s in args.strides.split(",")):
            for share in (float(s) for s in args.shares.split(",")):
                print(f"\n--- train.hazard_evaluation_stride = {stride}, train.hazard_negative_share = {share}")
                run(config, tables, args, [f"train.hazard_evaluation_stride={stride}", f"train.hazard_negative_share={share}"])


def run(config: Path, tables, args, overrides: list[str]) -> None:
    stages: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(stage: str):
        start = time.perf_counter()
        yield
        stages[stage.split(":")[0]] = time.perf_counter() - start

    result = pipeline.fit(config, overrides, tables=tables, track=False, status=timed)
    as_of = pd.Timestamp(tables.events["timestamp"].max()).ceil("D")
    start = time.perf_counter()
    scores = pipeline.score(config, as_of=as_of, model=result.model, tables=tables).scores
    t_score = time.perf_counter() - start
    plan, t_single, t_survival = result.model.plan, stages["training"], stages["survival"]
    m = result.metrics
    source = "the committed sample" if args.sample else f"{args.partners:,} partners x {args.months} months (simulator seed {args.seed})"
    print(f"{source}: {len(plan.columns)} features; "
          f"features {stages['building features']:.1f} s")
    print(f"single-horizon model {t_single:.1f} s; survival stage ({args.folds} folds + out of time + final) {t_survival:.1f} s "
          f"= {t_survival / t_single:.1f}x; scoring {len(scores):,} partners with curves {t_score:.1f} s; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print(f"hazard trees {result.model.hazard.booster.num_trees()}, stacking (intercept, tree, linear) {[tuple(round(x, 2) for x in s) for s in result.model.hazard.stack]}")
    print(f"out of time, 90 days: AUC hazard {m['hazard_oot_auc_90d']:.4f} vs single-horizon {m['single_oot_auc_90d']:.4f}")
    for key in ("auc_30d", "auc_90d", "auc_180d", "auc_365d", "brier_365d", "ece_90d", "ece_365d", "ibs",
                "c_index_30d", "c_index_90d", "c_index_180d", "c_index"):
        print(f"out of fold {key:>13}: hazard {m[f'hazard_{key}']:.4f}  Cox {m[f'cox_{key}']:.4f}")
    p = scores[[c for c in scores.columns if c.startswith("p_churn_")]].to_numpy()
    print(f"monotone curves: {bool((np.diff(p, axis=1) >= 0).all())}; median months to churn known for "
          f"{scores['median_months_to_churn'].notna().mean():.1%} of partners")

if __name__ == "__main__":
    main()
