"""Calibration methods side by side: test-block AUC (raw score and calibrated), ECE, log loss, ties and
probabilities at exactly 0 or 1. Prints figures; nothing is asserted.

On the committed sample and on simulator networks with other seeds (tuning is done on the simulator
only). One booster per data set (calibration does not change it); each calibrator is fitted on the
validation block and measured on the test block, with a bootstrap 95% interval of the AUC.
"old isotonic" is the step function alone, as it was before the blend.

    .venv/bin/python benchmarks/bench_calibration.py [--seeds 11 23] [--partners 3000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss, roc_auc_score

from churnmodel import load_config, pipeline
from churnmodel.calibration import CALIBRATION_METHODS, Calibrator
from churnmodel.evaluate import bootstrap_auc, expected_calibration_error
from churnmodel.features import build_training_frame
from churnmodel.train import train

REPO = Path(__file__).resolve().parents[1]


def measure(name: str, config, tables) -> None:
    frame, plan = build_training_frame(tables, config)
    result = train(frame, plan, config)
    labelled = frame.loc[~frame["censored"].to_numpy()].reset_index(drop=True)
    X = result.model.prepare(labelled)
    y = labelled["label"].to_numpy(dtype=np.int8)
    raw = result.model.booster.predict(X, raw_score=True)
    valid, test = result.split.valid, result.split.test
    print(f"{name}: {len(valid):,} validation rows ({int(y[valid].sum())} churners), {len(test):,} test rows "
          f"({int(y[test].sum())} churners); raw-score test AUC {roc_auc_score(y[test], raw[test]):.4f}")
    candidates = {m: Calibrator.fit(raw[valid], y[valid], method=m) for m in CALIBRATION_METHODS}
    old = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw[valid], y[valid])
    outputs = {m: c(raw[test]) for m, c in candidates.items()} | {"old isotonic": old.predict(raw[test])}
    for method, p in outputs.items():
        low, high = bootstrap_auc(y[test], p, n=1000, random_state=0)
        print(f"  {method:>12}: AUC {roc_auc_score(y[test], p):.4f} (95% CI {low:.4f}-{high:.4f}), ECE {expected_calibration_error(y[test], p):.4f}, "
              f"log loss {log_loss(y[test], np.clip(p, 1e-15, 1 - 1e-15)):.4f}, distinct {len(np.unique(p)):,}, "
              f"exactly 0 or 1: {int(((p == 0) | (p == 1)).sum())}")


def simulated_configs(seeds, partners: int):
    """(name, config path) of a simulator network per seed, 36 months each, in a temporary folder."""
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            pipeline.simulate(partners=partners, months=36, random_state=seed, out=root / "sim")
            (root / "c.yaml").write_text("data:\n  partners: sim/partners.csv\n  events: sim/events.parquet\n"
                                         "  contracts: sim/contracts.csv\nrandom_state: 7\n")
            yield f"simulator seed {seed} ({partners:,} partners)", root / "c.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[11, 23])
    parser.add_argument("--partners", type=int, default=3000)
    args = parser.parse_args()
    quick = ["train.bootstrap=0", "label.horizons=null", "train.baseline=false"]
    sample = REPO / "configs" / "partner_churn.yaml"
    measure("sample (2,000 partners, seed 7)", load_config(sample, quick), pipeline.validate(sample, quick).tables)
    for name, path in simulated_configs(args.seeds, args.partners):
        config = load_config(path, quick)
        measure(name, config, pipeline.validate(config).tables)


if __name__ == "__main__":
    main()
