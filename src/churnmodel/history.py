"""The score history edge: every scoring run kept as one Parquet file per scoring date and model.

Layout: ``<monitor.history>/as_of=YYYY-MM-DD/<model>.parquet`` (a Hive-style partitioned dataset, which
pandas, DuckDB, Spark and most BI tools read as one table), and each run's drift report (PSI of every
input and of the score) under ``<monitor.history>/drift/`` in the same layout. A re-run of the same date and model
writes the same file name, so it replaces the earlier run and never duplicates it. Nothing is written
outside the folder; each file is written atomically with the scored list it belongs to.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from churnmodel.errors import DataError
from churnmodel.outputs import check_finite

__all__ = ["HISTORY_COLUMNS", "drift_writer", "history_writer", "read_drift", "read_history", "run_file"]

#: The scored list's columns kept in the history (with the curve's p_churn_<h>d columns when present).
HISTORY_COLUMNS = ["partner_id", "churn_probability", "risk_band", "segment", "revenue", "revenue_at_risk", "driver_1", "lever_1"]


def run_file(folder: Path, *, as_of: pd.Timestamp, model_label: str) -> Path:
    """The file of one scoring run: its date's partition, named after the model (readable, with a hash so two
    labels never share a name).

    >>> run_file(Path("h"), as_of=pd.Timestamp("2026-01-01", tz="UTC"), model_label="partner_churn 3").as_posix()
    'h/as_of=2026-01-01/partner_churn_3-29ec3130.parquet'
    """
    readable = re.sub(r"[^0-9A-Za-z._-]+", "_", model_label).strip("._")[:60] or "model"
    digest = hashlib.sha256(model_label.encode()).hexdigest()[:8]
    return Path(folder) / f"as_of={as_of:%Y-%m-%d}" / f"{readable}-{digest}.parquet"


def history_writer(scores: pd.DataFrame, *, folder: Path, as_of: pd.Timestamp, model_name: str, model_version: str,
                   horizon_days: int, test: dict) -> tuple[Path, Callable[[Path], None]]:
    """(path, writer) of a scoring run's history file: the list's ids, probabilities, band, segment, revenue at
    risk and main driver, with the model (its label, name and registered version), the horizon and the model's
    test AUC (``test``: auc, auc_ci_low, auc_ci_high; what later runs are judged against). The partition folder
    is created here (the run's drift report: :func:`drift_writer`)."""
    model_label = f"{model_name} {model_version}".strip()
    keep = [c for c in scores.columns if c in HISTORY_COLUMNS or re.fullmatch(r"p_churn_\d+d", c)]
    frame = scores[keep].assign(as_of=scores["as_of"].to_numpy() if "as_of" in scores else as_of, model=model_label,
                                model_name=model_name, model_version=model_version,
                                horizon_days=int(horizon_days), **{f"model_test_{k}": float(v) for k, v in test.items()})
    path = run_file(folder, as_of=as_of, model_label=model_label)
    check_finite(frame, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, lambda tmp: frame.to_parquet(tmp, index=False)


def read_history(folder: Path) -> pd.DataFrame:
    """Every scoring run kept in ``folder``, one table (``as_of`` and ``model`` name the run)."""
    folder = Path(folder)
    files = sorted(folder.glob("as_of=*/*.parquet"))
    if not files:
        raise DataError(f"monitor.history {folder}: no scoring runs kept there yet; score with monitor.history set "
                        "(churnmodel score) first")
    try:
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    except (OSError, ValueError) as exc:
        raise DataError(f"monitor.history {folder}: a run file cannot be read ({exc}); remove it or score that date again") from None


def drift_writer(drift: pd.DataFrame, *, folder: Path, as_of: pd.Timestamp, model_name: str,
                 model_version: str) -> tuple[Path, Callable[[Path], None]]:
    """(path, writer) of a run's drift report (feature, psi, label_en, label_ru) under ``<folder>/drift/``."""
    model_label = f"{model_name} {model_version}".strip()
    frame = drift[["feature", "psi", "label_en", "label_ru"]].assign(as_of=as_of, model=model_label)
    path = run_file(Path(folder) / "drift", as_of=as_of, model_label=model_label)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, lambda tmp: frame.to_parquet(tmp, index=False)


def read_drift(folder: Path) -> pd.DataFrame:
    """Every kept run's drift report, one table (empty when none was kept)."""
    files = sorted((Path(folder) / "drift").glob("as_of=*/*.parquet"))
    if not files:
        return pd.DataFrame(columns=["feature", "psi", "label_en", "label_ru", "as_of", "model"])
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
