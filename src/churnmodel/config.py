"""Configuration: pydantic models for ``configs/*.yaml``, validated once on load.

Unknown keys are rejected and every error names the key path. Relative paths in the
``data`` section are resolved against the folder of the config file, not the working
directory, so a config works wherever it is run from.

>>> cfg = Config.model_validate({"data": {"partners": "p.csv", "events": "e.parquet"}})
>>> cfg.data.columns.events["timestamp"]
'timestamp'
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from churnmodel.errors import ConfigError

__all__ = [
    "CANONICAL_COLUMNS",
    "LEVERS",
    "BalanceConfig",
    "ColumnsConfig",
    "Config",
    "DataConfig",
    "ExplainConfig",
    "FeaturesConfig",
    "LabelConfig",
    "RatioConfig",
    "ScoreConfig",
    "ScoredEventConfig",
    "SegmentConfig",
    "SnapshotConfig",
    "SparkConfig",
    "TrackingConfig",
    "TrainConfig",
    "TrendConfig",
    "load_config",
    "parse_overrides",
    "project_dir",
]

#: The data contract: canonical column names per input, and which are required.
CANONICAL_COLUMNS: dict[str, dict[str, bool]] = {
    "partners": {"partner_id": True, "joined_at": True, "churned_at": False},
    "events": {"partner_id": True, "timestamp": True, "event_type": True, "amount": False},
    "contracts": {
        "partner_id": True,
        "start_date": True,
        "end_date": True,
        "value": True,
        "terminated_at": False,
    },
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _column_map(table: str):
    canonical = CANONICAL_COLUMNS[table]

    def check(mapping: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(mapping) - set(canonical))
        if unknown:
            raise ValueError(
                f"unknown column(s) {unknown} for {table}; the keys are the package's column "
                f"names, allowed: {sorted(canonical)}; the values are the names in your file"
            )
        return {**{name: name for name in canonical}, **mapping}

    return check


class ColumnsConfig(_Strict):
    """Map the package's column names (keys) to the names in your files (values)."""

    partners: dict[str, str] = Field(default_factory=dict, validate_default=True)
    events: dict[str, str] = Field(default_factory=dict, validate_default=True)
    contracts: dict[str, str] = Field(default_factory=dict, validate_default=True)

    _p = field_validator("partners")(_column_map("partners"))
    _e = field_validator("events")(_column_map("events"))
    _c = field_validator("contracts")(_column_map("contracts"))


class DataConfig(_Strict):
    """Where the inputs are and how to read them (``data:`` section)."""

    partners: Path
    events: Path
    contracts: Path | None = None
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    naive_timezone: str = Field(
        default="UTC", description="Time zone assumed for timestamps written without an offset."
    )
    csv_delimiter: str = Field(
        default="auto",
        pattern=r"^(auto|.)$",
        description="A single character, or 'auto' to take the most frequent of , ; tab | in the header line.",
    )
    csv_encoding: str = "utf-8"
    unknown_partners: Literal["error", "drop"] = Field(
        default="error",
        description="Events whose partner_id is not in the partners table: fail, or drop with a counted warning.",
    )
    signed_amount_types: list[str] = Field(
        default_factory=list,
        description="Event types whose amount may be negative (refunds, credit notes). All others must be >= 0.",
    )
    extracted_at: datetime.date | None = Field(
        default=None,
        description="When the export was taken: nothing after it is known. Default: the day after the latest date in the inputs.",
    )

    @field_validator("naive_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'UTC' or 'Europe/Moscow'") from None
        return value

    def resolve_paths(self, base: Path) -> DataConfig:
        """Return a copy whose relative input paths are taken relative to ``base``."""
        update = {
            key: (base / path) if not path.is_absolute() else path
            for key in ("partners", "events", "contracts")
            if (path := getattr(self, key)) is not None
        }
        return self.model_copy(update=update)


LEVERS = (
    "responsiveness",
    "communication",
    "transparency",
    "mutual_value",
    "conflict",
    "development",
    "loyalty",
    "satisfaction",
    "profile",
)
Lever = Literal[
    "responsiveness", "communication", "transparency", "mutual_value", "conflict",
    "development", "loyalty", "satisfaction", "profile",
]


class LabelConfig(_Strict):
    """What counts as churn, and how far ahead to predict it (``label:`` section)."""

    source: Literal["churned_at", "contracts", "inactivity"] = Field(
        default="churned_at",
        description="churned_at: the partners table; contracts: the last contract ends with no new one within "
        "grace_days; inactivity: no event of activity_types for inactive_days.",
    )
    horizon_days: int = Field(default=90, gt=0, description="Label 1 if churn falls in (snapshot, snapshot + horizon].")
    grace_days: int = Field(default=30, ge=0, description="contracts: a new contract within this many days is a renewal.")
    inactive_days: int = Field(default=90, gt=0, description="inactivity: silence this long is churn (dated when it fires).")
    activity_types: list[str] | None = Field(default=None, description="inactivity: event types that count; null = all.")
    horizons: list[int] | None = Field(
        default=None,
        description="Days, e.g. [30, 90, 180, 365]: also fit a discrete-time hazard model giving a survival curve and "
        "p_churn_<h>d per horizon (monotone in h). null = the single-horizon model only.",
    )

    @field_validator("horizons")
    @classmethod
    def _sorted_horizons(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return value
        if not value or any(h <= 0 for h in value):
            raise ValueError(f"horizons must be positive numbers of days, got {value}")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"horizons must be strictly increasing, got {value}")
        return value


class SnapshotConfig(_Strict):
    """The snapshot grid (``snapshots:`` section)."""

    freq: str = Field(default="MS", description="pandas frequency: MS (month starts), W-MON, QS, ...")
    start: datetime.date | None = Field(default=None, description="Default: first grid date a full longest window after the first event.")
    end: datetime.date | None = Field(default=None, description="Default: data.extracted_at.")

    @field_validator("freq")
    @classmethod
    def _known_freq(cls, value: str) -> str:
        import pandas as pd

        try:
            offset = pd.tseries.frequencies.to_offset(value)
        except ValueError:
            raise ValueError(f"unknown frequency {value!r}; use a pandas frequency such as MS, W-MON or QS") from None
        if pd.Timestamp("2024-01-01") + offset <= pd.Timestamp("2024-01-01"):
            raise ValueError(f"frequency {value!r} does not move forward")
        return value


class TrendConfig(_Strict):
    recent_days: int = Field(gt=0)
    prior_days: int = Field(gt=0)


class RatioConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    numerator: str = Field(description="A feature name, e.g. complaint__count_90d")
    denominator: str
    lever: Lever | None = None


class BalanceConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    add: str = Field(description="Event type that opens an item (ticket_opened, holdback_withheld).")
    subtract: str = Field(description="Event type that closes one (ticket_resolved, holdback_released).")
    measure: Literal["count", "amount"] = "count"
    item_column: str | None = Field(
        default="item_id",
        description="Events column linking an opening to its closing; if absent, items close first-in first-out.",
    )
    lever: Lever | None = None


class ScoredEventConfig(_Strict):
    event_type: str
    detractor_below: float | None = Field(default=7.0, description="A last score below this flags a detractor.")


class SegmentConfig(_Strict):
    """Seed segments: strategic (large share of revenue), prospective (new, growing), transactional (the rest)."""

    revenue_type: str = "order"
    revenue_window_days: int = Field(default=365, gt=0)
    strategic_min_share: float = Field(default=0.20, gt=0, le=1, description="A partner with this share of network revenue is strategic.")
    strategic_core_share: float = Field(
        default=0.50, ge=0, le=1,
        description="The largest partners that together make this share of network revenue are strategic too (0 = off).",
    )
    prospective_max_tenure_days: int = Field(default=365, ge=0)
    prospective_min_growth: float = Field(default=1.25, gt=0, description="Or: revenue growth (recent vs prior rate) at least this, within 2x the tenure limit.")


class FeaturesConfig(_Strict):
    """Which features to build (``features:`` section); the defaults suit any event log."""

    windows: list[int] = Field(default=[30, 90, 365], min_length=1)
    event_types: list[str] | None = Field(default=None, description="null = every event type in the data.")
    aggregations: list[Literal["count", "sum", "mean", "max"]] = Field(default=["count", "sum", "mean", "max"])
    recency: bool = True
    lifetime_rate: bool = True
    trends: list[TrendConfig] = Field(default_factory=lambda: [TrendConfig(recent_days=30, prior_days=90)])
    ratios: list[RatioConfig] | None = Field(default=None, description="null = the standard ratios that fit the data.")
    balances: list[BalanceConfig] | None = Field(default=None, description="null = the standard balances that fit the data.")
    scores: list[ScoredEventConfig] | None = Field(default=None, description="null = nps_response if present.")
    segments: SegmentConfig = Field(default_factory=SegmentConfig)
    contracts: bool = True
    attributes: list[str] | Literal["auto"] = Field(default="auto", description="Partner columns to use; auto = all extra columns.")
    levers: dict[str, Lever] = Field(default_factory=dict, description="event type -> lever, for types without a default.")
    amount_units: dict[str, str] = Field(default_factory=dict, description="event type -> unit of its amount.")

    def lookback_days(self) -> int:
        """The longest stretch of history any feature looks back over (windows, trends, revenue window)."""
        spans = [*self.windows, *(t.recent_days + t.prior_days for t in self.trends), self.segments.revenue_window_days]
        return max(spans)

    @field_validator("windows")
    @classmethod
    def _sorted_windows(cls, value: list[int]) -> list[int]:
        if any(w <= 0 for w in value):
            raise ValueError(f"windows must be positive numbers of days, got {value}")
        if value != sorted(set(value)):
            raise ValueError(f"windows must be strictly increasing, e.g. [30, 90, 365]; got {value}")
        return value


class LightGBMConfig(_Strict):
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


class TuningConfig(_Strict):
    trials: int = Field(default=0, ge=0, description="optuna trials on the validation block; 0 = no tuning.")
    timeout_seconds: float | None = Field(default=None, gt=0)


class CampaignConfig(_Strict):
    """Retention campaign economics for the expected maximum profit (EMP) metric."""

    clv: float = Field(default=20_000.0, gt=0, description="Value of keeping a partner (margin over the relationship).")
    incentive_cost: float = Field(default=1_000.0, ge=0, description="Cost of the retention offer when accepted.")
    contact_cost: float = Field(default=100.0, ge=0, description="Cost of approaching a partner (QBR, call).")
    acceptance_alpha: float = Field(default=6.0, gt=0, description="Beta prior of the offer acceptance rate.")
    acceptance_beta: float = Field(default=14.0, gt=0)


class TrainConfig(_Strict):
    """How to split, fit, calibrate and evaluate (``train:`` section)."""

    test_snapshots: int = Field(default=3, ge=1, description="Latest labelled snapshot dates held out as the test block.")
    valid_snapshots: int = Field(default=3, ge=1, description="Snapshot dates before it for early stopping, calibration, threshold.")
    purge_days: int | None = Field(default=None, ge=0, description="Gap between blocks; null = label.horizon_days.")
    group_cv_folds: int = Field(default=0, ge=0, description="Partner-grouped CV folds on the train+valid rows (small networks); 0 = off.")
    hazard_folds: int = Field(default=3, ge=2, description="label.horizons: partner folds for the hazard model's out-of-fold evaluation.")
    calibration: Literal["auto", "isotonic", "sigmoid", "none"] = Field(
        default="auto", description="The churn model's: auto = isotonic with 500+ validation positives, else sigmoid "
        "(the hazard model's stacking regression calibrates each interval).")
    lightgbm: LightGBMConfig = Field(default_factory=LightGBMConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    baseline: bool = Field(default=True, description="Also fit a logistic regression on the same features.")
    n_jobs: int = Field(default=2, ge=1, description="Threads; fixed so that results reproduce.")
    bootstrap: int = Field(default=1000, ge=0, description="Resamples for the AUC confidence interval.")
    top_share: float = Field(default=0.10, gt=0, lt=1, description="Share of partners for lift and capture.")
    campaign: CampaignConfig = Field(default_factory=CampaignConfig)


class TrackingConfig(_Strict):
    """MLflow (``tracking:`` section)."""

    uri: str | None = Field(default=None, description="null = sqlite:///<project>/mlflow.db (embedded, no server).")
    experiment: str = Field(default="partner-churn", min_length=1)
    model_name: str = Field(default="partner-churn", min_length=1, description="Registered model name.")
    promote_margin: float = Field(default=0.0, ge=0, description="Test AUC gain over the champion needed to promote.")
    timeout_seconds: float = Field(default=10.0, gt=0, description="How long to wait for a tracking server before failing.")


class Text(_Strict):
    """A text in English and Russian."""

    en: str
    ru: str


DEFAULT_ACTIONS = {
    "responsiveness": Text(
        en="Escalate and clear the open ticket backlog with a dated plan; name an owner for each open item.",
        ru="Эскалировать и разобрать накопившиеся обращения по плану с датами; назначить ответственного за каждое."),
    "communication": Text(
        en="Schedule a quarterly business review or a personal meeting with the partner's decision maker.",
        ru="Назначить квартальную бизнес-встречу (QBR) или личную встречу с руководителем партнёра."),
    "transparency": Text(
        en="Explain withheld amounts and the payment schedule; release the holdbacks that are due.",
        ru="Объяснить удержанные суммы и график платежей; вернуть удержания, срок которых наступил."),
    "mutual_value": Text(
        en="Propose mutual value: a joint project, data sharing or a volume bonus.",
        ru="Предложить взаимную выгоду: совместный проект, обмен данными или бонус за объём."),
    "conflict": Text(
        en="Run the conflict-resolution routine: acknowledge the issue, make a fair proposal, document the agreement.",
        ru="Запустить процедуру урегулирования: признать проблему, предложить справедливое решение, зафиксировать договорённость."),
    "development": Text(
        en="Invite to training and partner events.",
        ru="Пригласить на обучение и партнёрские мероприятия."),
    "loyalty": Text(
        en="Offer the next loyalty programme tier or status.",
        ru="Предложить следующий уровень программы лояльности или статус."),
    "satisfaction": Text(
        en="Follow up the NPS detractor: call, understand the reason, agree a fix.",
        ru="Отработать оценку критика NPS: позвонить, выяснить причину, согласовать исправление."),
}
DEFAULT_LEVER_NAMES = {
    "responsiveness": Text(en="Responsiveness", ru="Оперативность"),
    "communication": Text(en="Communication", ru="Коммуникация"),
    "transparency": Text(en="Transparency", ru="Прозрачность"),
    "mutual_value": Text(en="Mutual value", ru="Взаимная выгода"),
    "conflict": Text(en="Conflict resolution", ru="Урегулирование конфликтов"),
    "development": Text(en="Partner development", ru="Развитие партнёра"),
    "loyalty": Text(en="Loyalty programme", ru="Программа лояльности"),
    "satisfaction": Text(en="Satisfaction (NPS)", ru="Удовлетворённость (NPS)"),
    "profile": Text(en="Profile", ru="Профиль"),
}


class ExplainConfig(_Strict):
    """Risk drivers, levers and actions (``explain:`` section)."""

    top_k: int = Field(default=3, ge=1, le=10, description="Drivers per partner.")
    scope: Literal["all", "at_risk", "top_n", "none"] = Field(
        default="at_risk",
        description="Whom to explain when scoring: everyone, partners at or above the risk threshold, or the "
        "top_n by revenue at risk. at_risk suits analysts: a reason for every partner they should act on.")
    at_risk_probability: float | None = Field(default=None, gt=0, lt=1, description="null = the medium risk band (score.bands.medium).")
    top_n: int = Field(default=1000, ge=1)
    route: Literal["lightgbm", "shap"] = Field(default="lightgbm", description="Exact TreeSHAP: LightGBM pred_contrib or shap.TreeExplainer.")
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


class BandsConfig(_Strict):
    high: float = Field(default=0.25, gt=0, lt=1, description="Churn probability from which a partner is high risk.")
    medium: float = Field(default=0.10, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> BandsConfig:
        if self.medium >= self.high:
            raise ValueError(f"medium ({self.medium}) must be below high ({self.high})")
        return self


class ScoreConfig(_Strict):
    """Batch scoring (``score:`` section)."""

    bands: BandsConfig = Field(default_factory=BandsConfig)
    chunk_partners: int = Field(default=50_000, gt=0, description="Partners per chunk: bounds memory.")
    sort_by: Literal["revenue_at_risk", "churn_probability"] = "revenue_at_risk"
    drift_warn: float = Field(default=0.1, gt=0, description="PSI above this is reported as drift.")
    drift_fail: float = Field(default=0.25, gt=0, description="With --strict, PSI above this stops scoring (exit 2).")


class SparkConfig(_Strict):
    """How to reach Spark when ``engine: spark`` (``spark:`` section)."""

    master: str | None = Field(
        default=None,
        description="Master URL (local[4], spark://host:7077, yarn, k8s://...). null = the one spark-submit gives, "
        "else $SPARK_MASTER, else local[*].",
    )
    partitions: int = Field(default=0, ge=0, description="Partner partitions (shuffle groups); 0 = 2 x the cluster's cores.")
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings, e.g. spark.executor.memory: 8g.")


class Config(_Strict):
    """The whole configuration file."""

    data: DataConfig
    label: LabelConfig = Field(default_factory=LabelConfig)
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    engine: Literal["local", "spark"] = Field(
        default="local", description="Where features are built and partners scored: local (in memory) or spark."
    )
    spark: SparkConfig = Field(default_factory=SparkConfig)
    random_state: int = Field(default=0, ge=0, description="Seed for every random source.")


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """Turn ``["data.events=e.csv", "random_state=3"]`` into a nested dict (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. --set data.events=events.csv")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} was already given a plain value")
        node[leaf] = value
    return nested


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _format_validation_error(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: {exc.error_count()} invalid setting(s)"]
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here; check the spelling against configs/reference.yaml)"
        got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {err['input']!r})"
        lines.append(f"  - {path}: {msg}{got}")
    return "\n".join(lines)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read, merge ``--set`` overrides into, and validate a YAML config file.

    Relative data paths and a relative ``sqlite:///`` tracking store are resolved against the
    config file's folder.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if raw is None:
        raise ConfigError(f"{path}: the config file is empty; it needs at least data.partners and data.events")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    raw = _deep_merge(raw, parse_overrides(overrides))
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(str(path), exc)) from None
    folder = path.resolve().parent
    update: dict[str, Any] = {"data": cfg.data.resolve_paths(folder)}
    if cfg.tracking.uri is None:
        update["tracking"] = cfg.tracking.model_copy(update={"uri": f"sqlite:///{project_dir(path) / 'mlflow.db'}"})
    elif cfg.tracking.uri.startswith("sqlite:///") and not Path(cfg.tracking.uri.removeprefix("sqlite:///")).is_absolute():
        store = (folder / cfg.tracking.uri.removeprefix("sqlite:///")).resolve()  # like data paths: from the config's folder
        update["tracking"] = cfg.tracking.model_copy(update={"uri": f"sqlite:///{store}"})
    return cfg.model_copy(update=update)


def project_dir(config_path: str | Path) -> Path:
    """The project a config belongs to: the parent of a ``configs/`` folder, else the config's folder."""
    folder = Path(config_path).resolve().parent
    return folder.parent if folder.name == "configs" else folder
