"""Config sections about the model and its use: training (``train``), MLflow (``tracking``),
explanations (``explain``), batch scoring (``score``) and the Spark engine (``spark``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from churnmodel.config.base import LEVERS, Strict
from churnmodel.texts import ACTIONS, LEVER_NAMES

__all__ = ["DEFAULT_ACTIONS", "DEFAULT_LEVER_NAMES", "BandsConfig", "CampaignConfig", "ExplainConfig", "LightGBMConfig", "MonitorConfig",
           "OutputConfig", "ScoreConfig", "SparkConfig", "Text", "TrackingConfig", "TrainConfig", "TuningConfig"]


class LightGBMConfig(Strict):
    """LightGBM settings (``train.lightgbm``); early stopping on the validation block picks the tree count."""

    n_estimators: int = Field(default=2000, gt=0, description="Upper bound; early stopping picks the number used.")
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=8, ge=2)
    max_depth: int = Field(
        default=3, ge=-1,
        description="Shallow trees: no AUC lost on the simulator seeds tried, and exact SHAP 5x faster than unlimited depth.")
    min_child_samples: int = Field(default=50, ge=1)
    feature_fraction: float = Field(default=0.5, gt=0, le=1)
    bagging_fraction: float = Field(default=0.8, gt=0, le=1)
    bagging_freq: int = Field(default=1, ge=0)
    lambda_l2: float = Field(default=5.0, ge=0)
    early_stopping_rounds: int = Field(default=200, gt=0)


class TuningConfig(Strict):
    trials: int = Field(default=0, ge=0, description="optuna trials on the validation block; 0 = no tuning.")
    timeout_seconds: float | None = Field(default=None, gt=0)


class CampaignConfig(Strict):
    """Retention campaign economics for the expected maximum profit (EMP) metric."""

    clv: float = Field(default=20_000.0, gt=0, description="Value of keeping a partner (margin over the relationship).")
    incentive_cost: float = Field(default=1_000.0, ge=0, description="Cost of the retention offer when accepted.")
    contact_cost: float = Field(default=100.0, ge=0, description="Cost of approaching a partner (QBR, call).")
    acceptance_alpha: float = Field(default=6.0, gt=0, description="Beta prior of the offer acceptance rate.")
    acceptance_beta: float = Field(default=14.0, gt=0)
    max_share: float = Field(
        default=0.5, gt=0, le=1, description="The campaign threshold flags at most this share of the validation block's "
        "partners: where profit alone would flag more (economics that do not fit the data, a high churn rate), it is "
        "raised to that quantile, with a warning.")


class TrainConfig(Strict):
    """How to split, fit, calibrate and evaluate (``train:`` section)."""

    test_snapshots: int = Field(default=3, ge=1, description="Latest labelled snapshot dates held out as the test block.")
    valid_snapshots: int = Field(default=3, ge=1, description="Snapshot dates before it for early stopping, calibration, threshold.")
    purge_days: int | None = Field(default=None, ge=0, description="Gap between blocks; null = label.horizon_days.")
    group_cv_folds: int = Field(default=0, ge=0, description="Partner-grouped CV folds on the train+valid rows (small networks); 0 = off.")
    hazard_folds: int = Field(default=3, ge=2, description="label.horizons: partner folds for the hazard model's out-of-fold evaluation.")
    hazard_early_stopping_rounds: int = Field(
        default=50, gt=0, description="label.horizons: the hazard fits' early-stopping patience. On the simulator (6,000 "
        "partners, sample) 50 rounds kept the trees and metrics of 200 at ~60% of the boosting time.")
    hazard_evaluation_stride: int = Field(
        default=3, ge=1, description="label.horizons: the evaluation's hazard fits (out of time, out of fold) learn from "
        "every n-th snapshot date (the latest always kept; early stopping, stacking and the scored rows keep all); the "
        "final model learns from every one. A partner's monthly snapshots share most of their windows and outcomes: on "
        "the simulator (2,000 and 6,000 partners) 3 cut the stage's time 1.4-1.7x, its metrics 0.002-0.006 lower than the "
        "final model's, a conservative estimate; 1 = every snapshot.")
    hazard_negative_share: float = Field(
        default=0.25, gt=0, le=1, description="label.horizons: the share of person-period rows without churn that the "
        "hazard fits learn from (every churn row kept; the sampled ones weighted 1 / share, so rates and likelihoods stay "
        "unbiased). Churn rows are a few percent of them; 1 = every row.")
    calibration: Literal["auto", "sigmoid", "beta", "isotonic", "none"] = Field(
        default="auto", description="The churn model's, fitted on the validation block; every method is strictly increasing "
        "(no ties, no AUC lost) and never gives exactly 0 or 1. auto = sigmoid (Platt): the lowest mean test ECE and log "
        "loss on the sample and two other simulator seeds; beta bends where Platt cannot; isotonic is blended with 5% of "
        "the sigmoid. (The hazard model's stacking regression calibrates each interval.)")
    lightgbm: LightGBMConfig = Field(default_factory=LightGBMConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    baseline: bool = Field(default=True, description="Also fit a logistic regression on the same features.")
    n_jobs: int = Field(default=2, ge=1, description="Threads; fixed so that results reproduce.")
    bootstrap: int = Field(default=1000, ge=0, description="Resamples for the AUC confidence interval.")
    top_share: float = Field(default=0.10, gt=0, lt=1, description="Share of partners for lift and capture.")
    campaign: CampaignConfig = Field(default_factory=CampaignConfig)

    @field_validator("group_cv_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("1 fold is not cross-validation; use 0 (off) or at least 2")
        return value


class TrackingConfig(Strict):
    """MLflow (``tracking:`` section)."""

    uri: str | None = Field(default=None, description="null = sqlite:///<project>/mlflow.db (embedded, no server).")
    experiment: str = Field(default="partner-churn", min_length=1)
    model_name: str = Field(default="partner-churn", min_length=1, description="Registered model name.")
    promote_margin: float = Field(default=0.0, ge=0, description="Test AUC gain over the champion needed to promote.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="How long to wait for a tracking server before failing.")


class Text(Strict):
    """A text in English and Russian."""

    en: str
    ru: str


DEFAULT_ACTIONS = {lever: Text(en=en, ru=ru) for lever, (en, ru) in ACTIONS.items()}
DEFAULT_LEVER_NAMES = {lever: Text(en=en, ru=ru) for lever, (en, ru) in LEVER_NAMES.items()}


class ExplainConfig(Strict):
    """Risk drivers, levers and actions (``explain:`` section)."""

    top_k: int = Field(default=3, ge=1, le=10, description="Drivers per partner.")
    scope: Literal["all", "at_risk", "top_n", "none"] = Field(
        default="at_risk",
        description="Whom to explain when scoring: everyone, partners at or above the risk threshold, or the "
        "top_n by revenue at risk. at_risk suits analysts: a reason for every partner they should act on.")
    at_risk_probability: float | None = Field(default=None, gt=0, lt=1, description="null = the medium risk band (score.bands.medium).")
    top_n: int = Field(default=1000, ge=1)
    route: Literal["auto", "tables", "lightgbm", "shap"] = Field(
        default="auto", description="Exact TreeSHAP: per-tree pattern tables (shallow trees), LightGBM pred_contrib or "
                                    "shap.TreeExplainer; auto = tables when every tree has at most 8 splits, else pred_contrib.")
    batch_rows: int = Field(default=50_000, gt=0)
    n_jobs: int = Field(default=2, ge=1)
    actions: dict[str, Text] = Field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    lever_names: dict[str, Text] = Field(default_factory=lambda: dict(DEFAULT_LEVER_NAMES))

    @field_validator("actions", "lever_names")
    @classmethod
    def _known_levers(cls, value: dict[str, Text]) -> dict[str, Text]:
        unknown = sorted(set(value) - set(LEVERS))
        if unknown:
            raise ValueError(f"unknown lever(s) {unknown}; levers are {list(LEVERS)}")
        return value

    @field_validator("actions")
    @classmethod
    def _merge_actions(cls, value: dict[str, Text]) -> dict[str, Text]:
        return {**DEFAULT_ACTIONS, **value}  # texts you give replace the shipped ones, lever by lever

    @field_validator("lever_names")
    @classmethod
    def _merge_names(cls, value: dict[str, Text]) -> dict[str, Text]:
        return {**DEFAULT_LEVER_NAMES, **value}


class BandsConfig(Strict):
    high: float = Field(default=0.25, gt=0, lt=1, description="Churn probability from which a partner is high risk.")
    medium: float = Field(default=0.10, gt=0, lt=1)
    mode: Literal["auto", "probability", "share"] = Field(
        default="auto", description="probability: the thresholds above. share: the riskiest high_share of the validation "
        "block's partners are high, the next medium_share medium (thresholds fixed at training, kept with the model). "
        "auto: probability while the training churn rate is below medium, else share (at a high base rate fixed "
        "thresholds put most partners in the high band).")
    high_share: float = Field(default=0.10, gt=0, lt=1)
    medium_share: float = Field(default=0.20, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> BandsConfig:
        if self.medium >= self.high:
            raise ValueError(f"medium ({self.medium}) must be below high ({self.high})")
        if self.high_share + self.medium_share >= 1:
            raise ValueError(f"high_share + medium_share ({self.high_share} + {self.medium_share}) must be below 1")
        return self


class ScoreConfig(Strict):
    """Batch scoring (``score:`` section)."""

    bands: BandsConfig = Field(default_factory=BandsConfig)
    chunk_partners: int = Field(default=50_000, gt=0, description="Partners per chunk: bounds memory.")
    sort_by: Literal["revenue_at_risk", "churn_probability"] = "revenue_at_risk"
    drift_warn: float = Field(default=0.1, gt=0, description="PSI above this is reported as drift.")
    drift_fail: float = Field(default=0.25, gt=0, description="With --strict, PSI above this stops scoring (exit 2).")
    max_days_past_data_end: int = Field(
        default=31, ge=0, description="--as-of may lie at most this many days after the data ends (scoring and explaining).")


class OutputConfig(Strict):
    """How outputs are written (``output:`` section)."""

    csv_formula_guard: bool = Field(
        default=True,
        description="In .csv outputs, prefix with ' every text value a spreadsheet would evaluate as a formula (starting "
        "with = + - @, a tab or a carriage return; plain numbers are left alone). Switch off for machine consumers; "
        ".xlsx cells are always plain text and Parquet keeps raw values.")
    csv_style: Literal["spreadsheet", "machine"] = Field(
        default="spreadsheet",
        description="The scored list as .csv: spreadsheet = rank first, a UTF-8 BOM, bands and segments in the output "
        "language, and with --lang ru Russian headers, ';' and the decimal comma; machine = the data contract's columns, ',' and '.'.")
    currency: str = Field(default="", max_length=8, description="Currency shown with money in the workbook and the report, e.g. RUB or €.")


class SparkConfig(Strict):
    """How to reach Spark when ``engine: spark`` (``spark:`` section)."""

    master: str | None = Field(
        default=None,
        description="Master URL (local[4], spark://host:7077, yarn, k8s://...). null = the one spark-submit gives, "
        "else $SPARK_MASTER, else local[*].",
    )
    partitions: int = Field(default=0, ge=0, description="Partner partitions (shuffle groups); 0 = 2 x the cluster's cores.")
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings, e.g. spark.executor.memory: 8g.")




class MonitorConfig(Strict):
    """The score history and how past scoring runs are judged once their outcomes are known (``monitor:``)."""

    history: Path | None = Field(
        default=None, description="Folder of the score history (a Parquet file per scoring date and model, relative to the "
        "config file): every scoring run is kept there, a re-run of the same date and model replaces its file. "
        "null = scoring runs are not kept.")
    min_outcomes: int = Field(default=30, ge=1, description="Churners and stayers each needed before a run's realised AUC is judged.")
    watch_drop: float = Field(default=0.03, gt=0, lt=1, description="AUC below the model's test AUC by more than this: watch.")
    retrain_drop: float = Field(default=0.06, gt=0, lt=1, description="AUC below the model's test AUC by more than this, "
                                "and below the model's 95% CI: retrain.")
    calibration_tolerance: float = Field(default=0.2, gt=0, description="Observed churn rate off the predicted by more than "
                                         "this share of it (and beyond its sampling band): watch.")
    bootstrap: int = Field(default=300, ge=0, description="Resamples for each run's realised AUC interval.")
