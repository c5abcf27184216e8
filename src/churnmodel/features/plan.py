"""The feature plan's types: what to build, fixed once at training time, as typed frozen dataclasses.

The plan records what the data looked like when the model was trained (event types, which carry
amounts, item links, attribute categories, where history starts) so that scoring builds exactly the
same columns. It is JSON-serialisable (it travels inside ``model.json``). How a plan is resolved
from the config and the data: :mod:`.spec`; how it is computed: :mod:`.local` and :mod:`.derive`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

import pandas as pd

from churnmodel.texts import SEGMENT_LABELS

__all__ = ["Attribute", "Balance", "Btyd", "EventProfile", "FeatureInfo", "FeaturePlan", "Ratio", "ScoredType", "Segments",
           "safe_name"]


def safe_name(text: str) -> str:
    """A column-name-safe form of an event type or partner column: ASCII letters, digits and ``_``.

    LightGBM rejects some characters in feature names, file systems others. A safe text is kept as
    it is; any other (spaces, ``/``, quotes, colons, Cyrillic, emoji) becomes its ASCII part plus a
    short hash of the original, so two different texts never map to one name. The readable text is
    kept for people in the feature labels.

    >>> safe_name("ticket_opened"), safe_name("Region/Zone"), safe_name("Регион")
    ('ticket_opened', 'Region_Zone_1ed20c', 'x_1089c8')
    """
    if re.fullmatch(r"[A-Za-z][0-9A-Za-z_]{0,63}", text):
        return text
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:6]
    return f"{re.sub(r'[^0-9A-Za-z]+', '_', text).strip('_')[:40] or 'x'}_{digest}"


@dataclass(frozen=True)
class FeatureInfo:
    """One feature column: its name, kind, retention lever, unit and readable labels."""

    name: str
    kind: str
    lever: str
    unit: str
    label_en: str
    label_ru: str


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator`` of two other feature columns."""

    name: str
    numerator: str
    denominator: str
    lever: str | None
    label_en: str
    label_ru: str


@dataclass(frozen=True)
class Balance:
    """Items opened by ``add`` events and closed by ``subtract`` events (tickets, holdbacks)."""

    name: str
    add: str
    subtract: str
    measure: str  # count | amount
    lever: str
    label_en: str
    label_ru: str
    age_en: str
    age_ru: str
    item_column: str | None = None  # events column linking an opening to its closing; None = first in, first out


@dataclass(frozen=True)
class ScoredType:
    """An event type whose amount is a score (NPS): last score, change, detractor flag."""

    event_type: str
    detractor_below: float | None


@dataclass(frozen=True)
class Segments:
    """The retention material's segments: strategic, prospective, transactional."""

    revenue_type: str
    revenue_window_days: int
    strategic_min_share: float
    strategic_core_share: float
    prospective_max_tenure_days: int
    prospective_min_growth: float


@dataclass(frozen=True)
class Btyd:
    """The buy-till-you-die features: BG/NBD summaries of ``event_type`` and, once ``params`` (r, alpha,
    a, b) are fitted on the training block, P(active) and the expected purchase days in ``horizon_days``."""

    event_type: str
    horizon_days: int
    params: tuple[float, ...] = ()

    #: The BG/NBD summaries of a history, which the feature engines build.
    SUMMARIES = ("btyd__frequency", "btyd__recency_days", "btyd__age_days")

    @property
    def model_columns(self) -> tuple[str, str]:
        """The columns the fitted BG/NBD model gives (the model fills them; a feature frame holds NaN)."""
        return ("btyd__p_alive", f"btyd__expected_{self.horizon_days}d")


@dataclass(frozen=True)
class Attribute:
    """A partner column used as a feature: numeric, or a category with its training categories.
    ``name`` is the feature's (safe) name, ``column`` the partner column it is read from."""

    name: str
    kind: str  # numeric | category
    categories: tuple[str, ...] = ()
    column: str = ""

    @property
    def source(self) -> str:
        return self.column or self.name


@dataclass(frozen=True)
class FeaturePlan:
    """Everything needed to build the same feature columns again, JSON-serialisable."""

    event_types: tuple[str, ...]
    amount_types: tuple[str, ...]
    additive_types: tuple[str, ...]
    windows: tuple[int, ...]
    aggregations: tuple[str, ...]
    recency: bool
    lifetime_rate: bool
    trends: tuple[tuple[int, int], ...]
    ratios: tuple[Ratio, ...]
    balances: tuple[Balance, ...]
    scores: tuple[ScoredType, ...]
    segments: Segments | None
    contracts: bool
    attributes: tuple[Attribute, ...]
    history_start: str
    levers: dict[str, str]
    units: dict[str, str]
    labels: dict[str, tuple[str, str]]
    features: tuple[FeatureInfo, ...] = field(default=())
    lifetime_days: int | None = None  # None: all history (plans saved before the bound existed)
    rhythm: tuple[str, ...] = ()  # rhythm kinds per event type: overdue, gap, regularity, active_share
    btyd: Btyd | None = None  # buy-till-you-die features (plans saved before them have none)
    inputs: tuple[FeatureInfo, ...] = ()  # frame columns that are not features: what the model computes some from

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def frame_columns(self) -> list[str]:
        """The columns of a feature frame: the features, then what the model computes some of them from
        (:attr:`inputs`: the BG/NBD summaries)."""
        return self.columns + [f.name for f in self.inputs]

    @property
    def categories(self) -> dict[str, list[str]]:
        """The categorical columns and their categories, in the order the model knows them."""
        cats = {a.name: list(a.categories) for a in self.attributes if a.kind == "category"}
        if self.segments is not None:
            cats["segment"] = list(SEGMENT_LABELS)
        return cats

    def info(self) -> pd.DataFrame:
        """Metadata of every column of a feature frame (the features, then :attr:`inputs`): name, kind,
        lever, unit, label_en, label_ru."""
        return pd.DataFrame([asdict(f) for f in (*self.features, *self.inputs)], columns=[*FeatureInfo.__dataclass_fields__])

    def intervals(self) -> list[tuple[int | None, int]]:
        """(lo, hi) day offsets back from a snapshot: events in [s - lo, s - hi); lo None = all history."""
        wanted: set[tuple[int | None, int]] = {(w, 0) for w in self.windows}
        for recent, prior in self.trends:
            wanted |= {(recent, 0), (recent + prior, recent)}
        if self.segments is not None:
            wanted.add((self.segments.revenue_window_days, 0))
        wanted.add((None, 0))
        if self.lifetime_days is not None:
            wanted.add((self.lifetime_days, 0))
        return sorted(wanted, key=lambda x: (x[0] is None, x[0] or 0, x[1]))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeaturePlan:
        raw = json.loads(text)
        raw["features"] = tuple(FeatureInfo(**f) for f in raw["features"])
        raw["inputs"] = tuple(FeatureInfo(**f) for f in raw.get("inputs", ()))
        raw["trends"] = tuple(tuple(t) for t in raw["trends"])
        raw["labels"] = {k: tuple(v) for k, v in raw["labels"].items()}
        raw["ratios"] = tuple(Ratio(**r) for r in raw["ratios"])
        raw["balances"] = tuple(Balance(**b) for b in raw["balances"])
        raw["scores"] = tuple(ScoredType(**s) for s in raw["scores"])
        raw["segments"] = Segments(**raw["segments"]) if raw["segments"] else None  # {}: no segments (format 3)
        raw["attributes"] = tuple(Attribute(a["name"], a["kind"], tuple(a["categories"]), a.get("column", "")) for a in raw["attributes"])
        raw["rhythm"] = tuple(raw.get("rhythm", ()))  # plans saved before rhythm features have none
        btyd = raw.get("btyd")
        raw["btyd"] = Btyd(btyd["event_type"], int(btyd["horizon_days"]), tuple(float(v) for v in btyd["params"])) if btyd else None
        for key in ("event_types", "amount_types", "additive_types", "windows", "aggregations"):
            raw[key] = tuple(raw[key])
        return cls(**raw)


@dataclass(frozen=True)
class EventProfile:
    """What the plan needs to know about an event log: its types, which carry amounts, which optional
    columns are filled for which types, and when it starts. Small, whatever the log's size."""

    types: tuple[str, ...]
    amount_counts: dict[str, int]
    missing: dict[str, dict[str, int]]  # optional column -> event type -> rows without a value
    first_timestamp: pd.Timestamp

    @classmethod
    def of(cls, events: pd.DataFrame) -> EventProfile:
        """The profile of an in-memory event log (canonical columns)."""
        by_type = events.groupby("event_type", observed=True)
        extra = [c for c in events.columns if c not in ("partner_id", "timestamp", "event_type", "amount")]
        return cls(
            types=tuple(sorted(events["event_type"].unique())),
            amount_counts={str(k): int(v) for k, v in by_type["amount"].count().items()},
            missing={c: {str(k): int(v) for k, v in events[c].isna().groupby(events["event_type"], observed=True).sum().items()} for c in extra},
            first_timestamp=events["timestamp"].min(),
        )

    def filled(self, column: str, types: list[str]) -> bool:
        """Whether every event of these types has a value in ``column``."""
        return column in self.missing and all(self.missing[column].get(t, 0) == 0 for t in types)
