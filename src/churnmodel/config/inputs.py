"""Config sections about the data: where the inputs are (``data``), what churn is (``label``), when
snapshots are taken (``snapshots``) and which features are built (``features``)."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import Field, field_validator, model_validator

from churnmodel.config.base import CANONICAL_COLUMNS, Lever, Strict

__all__ = ["ActionConfig", "ActionsConfig", "BalanceConfig", "BtydConfig", "ColumnsConfig", "DataConfig", "FeaturesConfig", "LabelConfig", "RatioConfig", "ScoredEventConfig",
           "SegmentConfig", "SnapshotConfig", "TrendConfig",
           "lookback_budget"]


STANDARD_WINDOWS = (30, 90, 365)
AUTO_WINDOWS = (7, 14, 30, 90, 365)


def lookback_budget(days: int) -> int:
    """The longest look-back that leaves two thirds of ``days`` of history for the snapshot grid and the horizon."""
    return max(days // 3, 1)


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


class ColumnsConfig(Strict):
    """Map the package's column names (keys) to the names in your files (values)."""

    partners: dict[str, str] = Field(default_factory=dict, validate_default=True)
    events: dict[str, str] = Field(default_factory=dict, validate_default=True)
    contracts: dict[str, str] = Field(default_factory=dict, validate_default=True)

    _p = field_validator("partners")(_column_map("partners"))
    _e = field_validator("events")(_column_map("events"))
    _c = field_validator("contracts")(_column_map("contracts"))


class ActionConfig(Strict):
    """A retention action recorded as an event type (``data.actions.types.<type>:``)."""

    lever: Lever = Field(description="The retention lever it pulls (communication for a QBR, transparency for a holdback release, ...).")
    cost: float = Field(default=0.0, ge=0, description="What one action costs (the planner's budget unit).")
    spread: Literal["lever", "uniform"] = Field(
        default="lever", description="How the action's average effect, learned from its campaigns, is shared out among "
        "partners: `lever` in proportion to their lever risk (what the churn model's features of the action's lever add "
        "to their log-odds of leaving, as the scored list's drivers: a QBR helps most where silence drives the risk); "
        "`uniform`: the same log-odds shift for everyone. Differences the campaigns themselves bear out come on top.")


class ActionsConfig(Strict):
    """Retention actions in the event log (``data.actions:``): which event types are actions, and the columns
    naming their campaign and the randomised hold-out. A hold-out row records an assignment, not an
    interaction: features and activity ignore it."""

    types: dict[str, ActionConfig] = Field(default_factory=dict, description="event type -> lever and cost.")
    campaign_column: str = Field(default="campaign_id", description="Events column naming the campaign (optional in the data).")
    control_column: str = Field(
        default="control", description="Events column flagging the randomised hold-out: true = assigned to the action's "
        "control group, never approached (true/false, 1/0, yes/no or empty; optional in the data).")


class DataConfig(Strict):
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
    duplicate_events: Literal["drop", "keep", "error"] = Field(
        default="drop",
        description="Events equal in every column: drop all but the first copy with a counted warning (a log exported "
        "twice, or joined twice, repeats rows), keep them all (a purchase log whose identical rows are real: two "
        "same-day orders of the same amount when times are days; add an order id column and they are no longer "
        "identical), or fail naming the rows.",
    )
    signed_amount_types: list[str] = Field(
        default_factory=list,
        description="Event types whose amount may be negative (refunds, credit notes). All others must be >= 0.",
    )
    max_gap_days: int = Field(
        default=366, ge=31,
        description="Events cut off from the rest of the log by more than this many days without any event, and partner or "
        "contract dates this far after the data's end, are an error (a typo or a placeholder year would stretch the "
        "snapshot grid over centuries).")
    extracted_at: datetime.date | None = Field(
        default=None,
        description="When the export was taken: nothing after it is known. Default: the day after the latest date in the inputs.",
    )
    actions: ActionsConfig = Field(default_factory=ActionsConfig)

    @field_validator("naive_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
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


class LabelConfig(Strict):
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
        "p_churn_<h>d per horizon (monotone in h), anchored on churn_probability at horizon_days (which must be one "
        "of them), so every probability shown is one coherent set. null = the single-horizon model only.",
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

    @model_validator(mode="after")
    def _headline_on_the_curve(self) -> LabelConfig:
        if self.horizons and self.horizon_days not in self.horizons:
            raise ValueError(f"horizon_days ({self.horizon_days}) must be one of horizons {self.horizons}: the survival "
                             "curve is anchored on churn_probability there")
        return self


class SnapshotConfig(Strict):
    """The snapshot grid (``snapshots:`` section)."""

    freq: str = Field(default="MS", description="pandas frequency: MS (month starts), W-MON, QS, ...")
    start: datetime.date | None = Field(default=None, description="Default: first grid date a full longest window after the first event.")
    end: datetime.date | None = Field(default=None, description="Default: data.extracted_at.")

    @field_validator("freq")
    @classmethod
    def _known_freq(cls, value: str) -> str:
        try:
            offset = pd.tseries.frequencies.to_offset(value)
        except ValueError:
            raise ValueError(f"unknown frequency {value!r}; use a pandas frequency such as MS, W-MON or QS") from None
        if pd.Timestamp("2024-01-01") + offset <= pd.Timestamp("2024-01-01"):
            raise ValueError(f"frequency {value!r} does not move forward")
        return value


class TrendConfig(Strict):
    recent_days: int = Field(gt=0)
    prior_days: int = Field(gt=0)


class RatioConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    numerator: str = Field(description="A feature name, e.g. complaint__count_90d")
    denominator: str
    lever: Lever | None = None


class BalanceConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    add: str = Field(description="Event type that opens an item (ticket_opened, holdback_withheld).")
    subtract: str = Field(description="Event type that closes one (ticket_resolved, holdback_released).")
    measure: Literal["count", "amount"] = "count"
    item_column: str | None = Field(
        default="item_id",
        description="Events column linking an opening to its closing; if absent, items close first-in first-out.",
    )
    lever: Lever | None = None


class ScoredEventConfig(Strict):
    event_type: str
    detractor_below: float | None = Field(default=7.0, description="A last score below this flags a detractor.")


class SegmentConfig(Strict):
    """Seed segments: strategic (large share of revenue), prospective (new, growing), transactional (the rest)."""

    revenue_type: str = "order"
    revenue_window_days: int | Literal["auto"] = Field(
        default="auto", description="Days of revenue behind the shares; auto = 365 given two years of history, else the longest feature window.")

    @field_validator("revenue_window_days")
    @classmethod
    def _positive_window(cls, value: int | str) -> int | str:
        if value != "auto" and value <= 0:
            raise ValueError(f"revenue_window_days must be a positive number of days or auto, got {value}")
        return value
    strategic_min_share: float = Field(default=0.20, gt=0, le=1, description="A partner with this share of network revenue is strategic.")
    strategic_core_share: float = Field(
        default=0.50, ge=0, le=1,
        description="The largest partners that together make this share of network revenue are strategic too (0 = off).",
    )
    prospective_max_tenure_days: int = Field(default=365, ge=0)
    prospective_min_growth: float = Field(default=1.25, gt=0, description="Or: revenue growth (recent vs prior rate) at least this, within 2x the tenure limit.")


class BtydConfig(Strict):
    """Buy-till-you-die features (``features.btyd:``): BG/NBD frequency, recency and age of one event type's
    purchases, and from a BG/NBD model fitted on the training block P(still buying) and the expected
    purchase days within label.horizon_days. Also reported alone as a baseline in every training run."""

    enabled: bool = True
    event_type: str | None = Field(default=None, description="The purchases counted; null = segments.revenue_type when the data has it.")


class FeaturesConfig(Strict):
    """Which features to build (``features:`` section); the defaults suit any event log."""

    windows: list[int] | Literal["auto"] = Field(
        default="auto", description=f"Days; strictly increasing. auto = {list(STANDARD_WINDOWS)} given two years of history, else up to three of "
                                    f"{list(AUTO_WINDOWS)} days within a third of it (the rest is left for the snapshots).")
    event_types: list[str] | None = Field(default=None, description="null = every event type in the data.")
    aggregations: list[Literal["count", "sum", "mean", "max"]] = Field(default=["count", "sum", "mean", "max"])
    recency: bool = True
    lifetime_rate: bool = True
    lifetime_days: int | None = Field(
        default=730, gt=0,
        description="How far back the lifetime features (per-month rates, days since the last event) look; null = all history. "
                    "Bounded, a late snapshot and an early one see the same span, so a growing history is not drift.")
    trends: list[TrendConfig] | Literal["auto"] = Field(
        default="auto", description="auto = the last 30 days vs the 90 before and the last 90 vs the 90 before (quarter "
                                    "over quarter) given two years of history, else the longest of 30/90, 14/42, 7/21 "
                                    "within a third of it (none under 28 days).")
    rhythm: list[Literal["overdue", "gap", "regularity", "active_share"]] = Field(
        default=["overdue"],
        description="Each partner's own rhythm per event type: overdue (days since the last event / the partner's typical "
                    "gap), gap (the typical gap over the lifetime span and the longest window), regularity (the gaps' "
                    "spread / mean), active_share (share of active months in the longest window; weeks under 60 days). "
                    "On the sample (3 seeds) overdue alone kept the test AUC (0.8784 vs 0.8779 mean), all four cost 0.005.")
    ratios: list[RatioConfig] | None = Field(default=None, description="null = the standard ratios that fit the data.")
    balances: list[BalanceConfig] | None = Field(default=None, description="null = the standard balances that fit the data.")
    scores: list[ScoredEventConfig] | None = Field(default=None, description="null = nps_response if present.")
    segments: SegmentConfig = Field(default_factory=SegmentConfig)
    btyd: BtydConfig = Field(default_factory=BtydConfig)
    contracts: bool = True
    attributes: list[str] | Literal["auto"] = Field(default="auto", description="Partner columns to use; auto = all extra columns.")
    levers: dict[str, Lever] = Field(default_factory=dict, description="event type -> lever, for types without a default.")
    amount_units: dict[str, str] = Field(default_factory=dict, description="event type -> unit of its amount.")

    def lookback_days(self) -> int:
        """The longest stretch of history any feature looks back over (windows, trends, revenue window)."""
        return max(self.lookbacks().values())

    def for_history(self, days: int) -> FeaturesConfig:
        """This section with every ``auto`` look-back fixed for ``days`` of history (explicit values kept).

        Two years or more get the standard look-backs; a shorter history gets the longest that fit in a
        third of it, so the other two thirds are left for the snapshot grid and the label horizon.

        >>> cfg = FeaturesConfig().for_history(151)
        >>> cfg.windows, cfg.trends, cfg.segments.revenue_window_days
        ([7, 14, 30], [TrendConfig(recent_days=7, prior_days=21)], 30)
        >>> FeaturesConfig().for_history(730).windows
        [30, 90, 365]
        """
        budget = 10**9 if days >= 2 * 365 else lookback_budget(days)
        windows = self.windows
        if windows == "auto":
            windows = list(STANDARD_WINDOWS) if budget >= max(STANDARD_WINDOWS) else [w for w in AUTO_WINDOWS if w <= budget][-3:] or [budget]
        trends = self.trends
        if trends == "auto":
            trends = [TrendConfig(recent_days=r, prior_days=3 * r) for r in (30, 14, 7) if 4 * r <= budget][:1]
            if days >= 2 * 365:  # and quarter over quarter, the change a business review looks at
                trends.append(TrendConfig(recent_days=90, prior_days=90))
        segments = self.segments
        if segments.revenue_window_days == "auto":
            segments = segments.model_copy(update={"revenue_window_days": 365 if budget >= 365 else max(windows)})
        return self.model_copy(update={"windows": windows, "trends": trends, "segments": segments})

    def lookbacks(self) -> dict[str, int]:
        """Every setting that makes features look back over history, by its key path, with the days it needs
        (``auto`` values fixed by :meth:`for_history` first).

        >>> FeaturesConfig(windows=[7, 28], trends=[{"recent_days": 30, "prior_days": 90}]).for_history(1000).lookbacks()
        {'features.windows': 28, 'features.trends[0]': 120, 'features.segments.revenue_window_days': 365}
        """
        unresolved = [key for key, value in (("features.windows", self.windows), ("features.trends", self.trends),
                                             ("features.segments.revenue_window_days", self.segments.revenue_window_days))
                      if value == "auto"]
        if unresolved:
            raise ValueError(f"{', '.join(unresolved)}: auto depends on the history; call for_history(days) first")
        out = {"features.windows": max(self.windows)}
        out.update({f"features.trends[{i}]": t.recent_days + t.prior_days for i, t in enumerate(self.trends)})
        out["features.segments.revenue_window_days"] = self.segments.revenue_window_days
        return out

    @field_validator("rhythm")
    @classmethod
    def _rhythm_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"rhythm lists each kind once, got {value}")
        return value

    @field_validator("windows")
    @classmethod
    def _sorted_windows(cls, value: list[int] | str) -> list[int] | str:
        if value == "auto":
            return value
        if not value:
            raise ValueError("windows needs at least one window, e.g. [30, 90, 365], or auto")
        if any(w <= 0 for w in value):
            raise ValueError(f"windows must be positive numbers of days, got {value}")
        if value != sorted(set(value)):
            raise ValueError(f"windows must be strictly increasing, e.g. [30, 90, 365]; got {value}")
        return value


