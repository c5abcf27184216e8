"""The headline probability with ``label.horizons``: the churn model (which the survival curve is anchored
on) against reading it off the hazard model's own curve, on the same test block rows. Prints figures;
nothing is asserted.

At the headline horizon, out of time (both fitted on the train block, the curve stacked on the
validation block): test AUC with its bootstrap 95% interval and ECE; then the anchored curve at the
other horizons the test block shows. On the committed sample and simulator networks with other seeds.

    .venv/bin/python benchmarks/bench_headline.py [--seeds 11 23] [--partners 3000] [--folds 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from churnmodel import pipeline
from churnmodel.evaluate import bootstrap_auc, expected_calibration_error

sys.path.insert(0, str(Path(__file__).parent))
from bench_calibration import simulated_configs

REPO = Path(__file__).resolve().parents[1]


def report(name: str, config, overrides: list[str]) -> None:
    fitted = pipeline.fit(config, overrides, track=False)
    m, h = fitted.metrics, fitted.config.label.horizon_days
    test = fitted.training.predictions  # the churn model's test rows: label, probability
    own = fitted.survival.test.set_index(["partner_id", "snapshot"])[f"p_churn_{h}d"]
    p_own = own.reindex(pd.MultiIndex.from_arrays([test["partner_id"], test["snapshot"]])).to_numpy()
    y = test["label"].to_numpy()
    print(f"{name}: {len(test):,} test rows, churn rate {y.mean():.1%}, headline {h} days")
    for label, p in (("churn model = headline", test["probability"].to_numpy()), ("hazard curve's own value", p_own)):
        low, high = bootstrap_auc(y, p, n=1000, random_state=0)
        print(f"  {label:>26}: AUC {roc_auc_score(y, p):.4f} (95% CI {low:.4f}-{high:.4f}), ECE {expected_calibration_error(y, p):.4f}")
    others = sorted(k for k in m if k.startswith("anchored_oot_auc_") and k != f"anchored_oot_auc_{h}d")
    print("  anchored curve, other horizons: " + ", ".join(
        f"{k.removeprefix('anchored_oot_auc_')} AUC {m[k]:.4f} (curve's own {m[k.replace('anchored', 'hazard')]:.4f})" for k in others))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[11, 23])
    parser.add_argument("--partners", type=int, default=3000)
    parser.add_argument("--folds", type=int, default=2, help="train.hazard_folds (the out-of-fold evaluation only)")
    args = parser.parse_args()
    overrides = ["train.bootstrap=0", f"train.hazard_folds={args.folds}", "label.horizons=[30, 90, 180, 365]"]
    report("sample (2,000 partners, seed 7)", REPO / "configs" / "partner_churn.yaml", overrides)
    for name, path in simulated_configs(args.seeds, args.partners):
        report(name, path, overrides)


if __name__ == "__main__":
    main()
