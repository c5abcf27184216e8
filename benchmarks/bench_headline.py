"""The headline probability with ``label.horizons``: the survival curve at ``label.horizon_days`` against the
single-horizon model it replaces, on the same test block rows. Prints figures; nothing is asserted.

Test AUC with its bootstrap 95% interval, ECE, log loss and Brier at the headline horizon, out of time
(both models fitted on the train block, the curve stacked on the validation block), on the committed
sample and simulator networks with other seeds.

    .venv/bin/python benchmarks/bench_headline.py [--seeds 11 23] [--partners 3000] [--folds 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from churnmodel import pipeline

REPO = Path(__file__).resolve().parents[1]


def report(name: str, config, overrides: list[str]) -> None:
    fitted = pipeline.fit(config, overrides, track=False)
    m = fitted.metrics
    h = fitted.config.label.horizon_days
    print(f"{name}: {int(m['rows']):,} test rows, churn rate {m['churn_rate']:.1%}, headline {h} days")
    for label, prefix in (("single-horizon model", "single_"), ("survival curve (headline)", "")):
        print(f"  {label:>26}: AUC {m[f'{prefix}auc']:.4f} (95% CI {m[f'{prefix}auc_ci_low']:.4f}-{m[f'{prefix}auc_ci_high']:.4f}), "
              f"ECE {m[f'{prefix}ece']:.4f}, log loss {m[f'{prefix}log_loss']:.4f}, Brier {m[f'{prefix}brier']:.4f}, "
              f"lift {m[f'{prefix}lift_top']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[11, 23])
    parser.add_argument("--partners", type=int, default=3000)
    parser.add_argument("--folds", type=int, default=2, help="train.hazard_folds (the out-of-fold evaluation only)")
    args = parser.parse_args()
    overrides = ["train.bootstrap=1000", f"train.hazard_folds={args.folds}", "label.horizons=[30, 90, 180, 365]"]
    report("sample (2,000 partners, seed 7)", REPO / "configs" / "partner_churn.yaml", overrides)
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            pipeline.simulate(partners=args.partners, months=36, random_state=seed, out=root / "sim")
            (root / "c.yaml").write_text("data:\n  partners: sim/partners.csv\n  events: sim/events.parquet\n"
                                         "  contracts: sim/contracts.csv\nrandom_state: 7\n")
            report(f"simulator seed {seed} ({args.partners:,} partners)", root / "c.yaml", overrides)


if __name__ == "__main__":
    main()
