"""Configuration: pydantic models for ``configs/*.yaml``, validated once on load.

Unknown keys are rejected and every error names the key path. Relative paths in the
``data`` section are resolved against the folder of the config file, not the working
directory, so a config works wherever it is run from.

>>> cfg = Config.model_validate({"data": {"partners": "p.csv", "events": "e.parquet"}})
>>> cfg.data.columns.events["timestamp"]
'timestamp'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError

from churnmodel.config.base import CANONICAL_COLUMNS, LEVERS, Strict
from churnmodel.config.inputs import (
    BalanceConfig,
    ColumnsConfig,
    DataConfig,
    FeaturesConfig,
    LabelConfig,
    RatioConfig,
    ScoredEventConfig,
    SegmentConfig,
    SnapshotConfig,
    TrendConfig,
)
from churnmodel.config.modelling import (
    BandsConfig,
    CampaignConfig,
    ExplainConfig,
    MonitorConfig,
    OutputConfig,
    ScoreConfig,
    SparkConfig,
    TrackingConfig,
    TrainConfig,
)
from churnmodel.errors import ConfigError

__all__ = [
    "CANONICAL_COLUMNS",
    "LEVERS",
    "BalanceConfig",
    "BandsConfig",
    "CampaignConfig",
    "ColumnsConfig",
    "Config",
    "DataConfig",
    "ExplainConfig",
    "FeaturesConfig",
    "LabelConfig",
    "MonitorConfig",
    "OutputConfig",
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


class Config(Strict):
    """The whole configuration file."""

    data: DataConfig
    label: LabelConfig = Field(default_factory=LabelConfig)
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    engine: Literal["local", "spark"] = Field(
        default="local", description="Where features are built and partners scored: local (in memory) or spark."
    )
    spark: SparkConfig = Field(default_factory=SparkConfig)
    random_state: int = Field(default=0, ge=0, description="Seed for every random source.")
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The YAML file this config was loaded from (None when built in memory)."""
        return self._source


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
    if cfg.monitor.history is not None and not cfg.monitor.history.is_absolute():  # like data paths: from the config's folder
        update["monitor"] = cfg.monitor.model_copy(update={"history": (folder / cfg.monitor.history).resolve()})
    cfg = cfg.model_copy(update=update)
    cfg._source = path.resolve()
    return cfg


def project_dir(config_path: str | Path) -> Path:
    """The project a config belongs to: the parent of a ``configs/`` folder, else the config's folder."""
    folder = Path(config_path).resolve().parent
    return folder.parent if folder.name == "configs" else folder
