"""What the application layer returns: one result object per command, the same for the CLI and Python.

Each carries what its command prints and writes: the facts of the inputs, the feature frame and
plan, the fitted model with its metrics and MLflow run, the ranked list with drift and the report's
inputs, one partner's explanation, the simulated tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from churnmodel.config import Config
from churnmodel.features import FeaturePlan
from churnmodel.model import ChurnModel
from churnmodel.report import render_report
from churnmodel.simulate import SimulationResult
from churnmodel.survival import SurvivalResult
from churnmodel.tracking import TrainSummary
from churnmodel.train import TrainingResult

__all__ = ["Explanation", "FeaturesRun", "FitResult", "MonitorRun", "PlanRun", "ScoreRun", "Simulated"]


@dataclass(frozen=True)
class FeaturesRun:
    plan: FeaturePlan
    summary: dict  # rows, partners, snapshots, features, labelled, churn_rate, censored
    frame: pd.DataFrame | None = None  # None when built on Spark (the frame is the Parquet folder written)
    warnings: tuple[str, ...] = ()
    written: tuple[Path, ...] = ()


@dataclass(frozen=True)
class FitResult:
    config: Config
    model: ChurnModel  # with its hazard model when label.horizons is set
    metrics: dict[str, float]  # test block (and survival) metrics
    training: TrainingResult  # split, test predictions, per-segment metrics, baseline
    survival: SurvivalResult | None = None
    tracking: TrainSummary | None = None  # the MLflow run and registered version, when tracked
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreRun:
    as_of: pd.Timestamp
    model_label: str  # "NAME VERSION" of a registered model, else its URI or folder
    summary: dict  # partners, expected_churners, high_risk, revenue_at_risk
    scores: pd.DataFrame | None  # the ranked list (None on Spark: it is the Parquet folder written)
    drift: pd.DataFrame  # feature, psi; "(score)" is the score distribution
    warnings: tuple[str, ...] = ()
    prr: float | None = None  # Partner Retention Rate over the year to as_of (when the inputs were read)
    written: tuple[Path, ...] = ()
    budgets: pd.DataFrame | None = None  # with uplift models: value kept per budget by the plan and by ranking (planning.budget_curve)

    def report(self, *, config: Config, lang: str = "en") -> str:
        """The analyst report of this run as a self-contained HTML page."""
        if self.scores is None:
            raise ValueError("the ranked list is not in memory (Spark); read it back to render a report")
        return render_report(self.scores, self.drift, as_of=self.as_of, prr=self.prr if self.prr is not None else float("nan"),
                             horizon_days=config.label.horizon_days, bands=_bands(config),
                             drift_warn=config.score.drift_warn, model_label=self.model_label, lang=lang,
                             currency=config.output.currency, budgets=self.budgets)


@dataclass(frozen=True)
class PlanRun:
    as_of: pd.Timestamp
    model_label: str
    summary: dict  # budget, spent, funded, value_plan, value_risk, value_revenue_at_risk, funded_by_action
    plan: pd.DataFrame  # planning.PLAN_COLUMNS: every active partner, the funded first
    warnings: tuple[str, ...] = ()
    written: tuple[Path, ...] = ()


@dataclass(frozen=True)
class MonitorRun:
    runs: pd.DataFrame  # one row per scoring run (date order): maturity, realised and estimated AUC, rates, verdict, reason
    segments: pd.DataFrame  # the same figures per run and segment
    written: tuple[Path, ...] = ()
    drift: pd.DataFrame | None = None  # per run and input: PSI against the training data's same calendar month

    @property
    def verdict(self) -> str:
        """The model's verdict now (fine, watch or retrain): the worst from the latest matured run on (the runs
        after it are still maturing: they can raise a warning, never clear the last one judged on outcomes)."""
        return str(self.deciding["verdict"])

    @property
    def deciding(self) -> pd.Series:
        """The run that sets :attr:`verdict` (its date, verdict and reason)."""
        matured = np.flatnonzero(self.runs["status"].to_numpy() == "matured")
        recent = self.runs.iloc[matured[-1] if len(matured) else 0:]
        order = recent["verdict"].map(["fine", "watch", "retrain"].index).to_numpy()
        return recent.iloc[int(np.argmax(order))]


@dataclass(frozen=True)
class Explanation:
    partner: str
    as_of: pd.Timestamp
    horizon_days: int
    table: pd.DataFrame  # kind, rank, feature, name, value, typical, points, lever, action
    probability: float
    base_rate: float


@dataclass(frozen=True)
class Simulated:
    result: SimulationResult
    written: tuple[Path, ...] = field(default=())


def _bands(config: Config) -> dict[str, float]:
    """The report's band thresholds, and the shares they were set by when the model set them so."""
    b = config.score.bands
    return {"high": b.high, "medium": b.medium} | ({"high_share": b.high_share, "medium_share": b.medium_share} if b.mode == "share" else {})
