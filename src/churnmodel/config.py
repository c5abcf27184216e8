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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from churnmodel.errors import ConfigError

__all__ = [
    "CANONICAL_COLUMNS",
    "ColumnsConfig",
    "Config",
    "DataConfig",
    "load_config",
    "parse_overrides",
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


class Config(_Strict):
    """The whole configuration file."""

    data: DataConfig
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
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({exc.problem})") from None
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

    Relative data paths are resolved against the config file's folder.
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
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raise ConfigError(f"{path}: the config file is empty; it needs at least data.partners and data.events")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    raw = _deep_merge(raw, parse_overrides(overrides))
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(str(path), exc)) from None
    return cfg.model_copy(update={"data": cfg.data.resolve_paths(path.resolve().parent)})
