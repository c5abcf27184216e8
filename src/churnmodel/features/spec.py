"""The feature plan: one declarative list of features, resolved once from the config and the data.

The plan fixes what the data looked like at training time (event types, which carry amounts, item
links, attribute categories, where history starts) so that scoring builds exactly the same columns.
Every feature carries metadata: a readable name in English and Russian, a unit and its retention lever.
Engines (local numpy, Spark) compute the plan's *primitives*; :mod:`.derive` turns them into features.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace

import pandas as pd

from churnmodel.config import FeaturesConfig, LabelConfig
from churnmodel.data import InputTables
from churnmodel.errors import ConfigError

__all__ = ["TYPE_DEFAULTS", "EventProfile", "FeatureInfo", "FeaturePlan", "resolve_plan"]

# event type -> (lever, unit of amount or None, amounts add up?, English label, Russian label)
TYPE_DEFAULTS: dict[str, tuple[str, str | None, bool, str, str]] = {
    "order": ("mutual_value", "money", True, "orders", "заказы"),
    "ticket_opened": ("responsiveness", None, True, "support tickets opened", "открытые обращения"),
    "ticket_resolved": ("responsiveness", "hours", False, "tickets resolved", "решённые обращения"),
    "complaint": ("responsiveness", None, True, "complaints", "жалобы"),
    "meeting": ("communication", None, True, "meetings (QBR / personal)", "встречи (QBR / личные)"),
    "portal_login": ("communication", None, True, "portal logins", "входы на портал"),
    "training": ("development", None, True, "trainings and events", "обучение и мероприятия"),
    "nps_response": ("satisfaction", "score 0-10", False, "NPS answers", "ответы NPS"),
    "bonus_paid": ("loyalty", "money", True, "loyalty bonuses paid", "выплаченные бонусы лояльности"),
    "payment_delay": ("transparency", "days late", True, "late payments", "задержки платежей"),
    "holdback_withheld": ("transparency", "money", True, "holdbacks withheld", "удержания (гарантийные)"),
    "holdback_released": ("transparency", "money", True, "holdbacks released", "возвраты удержаний"),
    "dispute": ("conflict", None, True, "disputes", "споры"),
}
_DEFAULT_BALANCES = (
    ("open_tickets", "ticket_opened", "ticket_resolved", "count", "responsiveness",
     "open support tickets (unresolved backlog)", "нерешённые обращения (бэклог)",
     "days the oldest unresolved ticket has been open", "дней открыто самое старое нерешённое обращение"),
    ("outstanding_holdback", "holdback_withheld", "holdback_released", "amount", "transparency",
     "holdback still withheld", "невозвращённые удержания",
     "days the oldest holdback has been withheld", "дней удерживается самое старое удержание"),
)
_DEFAULT_RATIOS = (
    ("complaints_per_order", "complaint", "order", "responsiveness", "complaints per order", "жалоб на заказ"),
    ("tickets_resolved_share", "ticket_resolved", "ticket_opened", "responsiveness",
     "tickets resolved per ticket opened", "доля решённых обращений"),
)
#: Columns whose value depends on other partners (the network); everything else is partner-local.
NETWORK_FEATURES = ("revenue_share", "segment")


def safe_name(event_type: str) -> str:
    """A column-name-safe form of an event type (LightGBM rejects some characters)."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", event_type).strip("_") or "type"


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    kind: str
    lever: str
    unit: str
    label_en: str
    label_ru: str


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
    ratios: tuple[dict, ...]
    balances: tuple[dict, ...]
    scores: tuple[dict, ...]
    segments: dict
    contracts: bool
    attributes: tuple[dict, ...]
    history_start: str
    levers: dict[str, str]
    units: dict[str, str]
    labels: dict[str, tuple[str, str]]
    features: tuple[FeatureInfo, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.features]

    def info(self) -> pd.DataFrame:
        """Feature metadata as a frame: name, kind, lever, unit, label_en, label_ru."""
        return pd.DataFrame([asdict(f) for f in self.features])

    def intervals(self) -> list[tuple[int | None, int]]:
        """(lo, hi) day offsets back from a snapshot: events in [s - lo, s - hi); lo None = all history."""
        wanted: set[tuple[int | None, int]] = {(w, 0) for w in self.windows}
        for recent, prior in self.trends:
            wanted |= {(recent, 0), (recent + prior, recent)}
        seg = self.segments
        if seg:
            wanted.add((seg["revenue_window_days"], 0))
        wanted.add((None, 0))
        return sorted(wanted, key=lambda x: (x[0] is None, x[0] or 0, x[1]))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeaturePlan:
        raw = json.loads(text)
        raw["features"] = tuple(FeatureInfo(**f) for f in raw["features"])
        raw["trends"] = tuple(tuple(t) for t in raw["trends"])
        raw["labels"] = {k: tuple(v) for k, v in raw["labels"].items()}
        for key in ("event_types", "amount_types", "additive_types", "windows", "aggregations", "ratios", "balances", "scores", "attributes"):
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


def resolve_plan(tables: InputTables, cfg: FeaturesConfig, label: LabelConfig | None = None, *,
                 profile: EventProfile | None = None) -> FeaturePlan:
    """Fix the feature list for these inputs and this ``features:`` config.

    ``profile``: the event log's :class:`EventProfile` when the log is not in ``tables.events``
    (computed by another engine); by default it is taken from ``tables.events``.
    """
    del label  # reserved: label-dependent features would go here
    profile = profile if profile is not None else EventProfile.of(tables.events)
    present = list(profile.types)
    if cfg.event_types is not None:
        missing = sorted(set(cfg.event_types) - set(present))
        if missing:
            raise ConfigError(f"features.event_types: {missing} do not occur in the events; types present: {present}")
        types = list(cfg.event_types)
    else:
        types = present
    names = [safe_name(t) for t in types]
    if len(set(names)) != len(names):
        raise ConfigError(f"features.event_types: {types} give clashing column names {names}; rename the types")
    amount_types = [t for t in types if profile.amount_counts.get(t, 0) > 0]
    levers = {t: TYPE_DEFAULTS.get(t, ("profile",))[0] for t in types} | {t: v for t, v in cfg.levers.items() if t in types}
    units = {t: TYPE_DEFAULTS[t][1] or "amount" for t in amount_types if t in TYPE_DEFAULTS}
    units = {t: units.get(t, "amount") for t in amount_types} | {t: v for t, v in cfg.amount_units.items() if t in amount_types}
    additive = [t for t in amount_types if TYPE_DEFAULTS.get(t, (None, None, True))[2]]
    labels = {t: (TYPE_DEFAULTS[t][3], TYPE_DEFAULTS[t][4]) if t in TYPE_DEFAULTS else (t.replace("_", " "), t.replace("_", " ")) for t in types}

    def check_type(path: str, event_type: str) -> None:
        if event_type not in types:
            raise ConfigError(f"{path}: event type {event_type!r} is not among the feature event types {types}")

    if cfg.balances is None:
        balances = [
            {"name": n, "add": a, "subtract": s, "measure": m, "lever": lv, "label_en": en, "label_ru": ru,
             "age_en": age_en, "age_ru": age_ru}
            for n, a, s, m, lv, en, ru, age_en, age_ru in _DEFAULT_BALANCES
            if a in types and s in types and (m == "count" or (a in amount_types and s in amount_types))
        ]
        item_column = "item_id"
    else:
        balances = []
        for i, b in enumerate(cfg.balances):
            check_type(f"features.balances.{i}.add", b.add)
            check_type(f"features.balances.{i}.subtract", b.subtract)
            if b.measure == "amount":
                for side, t in (("add", b.add), ("subtract", b.subtract)):
                    if t not in amount_types:
                        raise ConfigError(f"features.balances.{i}.{side}: {t!r} has no amounts; use measure: count")
            lever = b.lever or levers[b.add]
            balances.append({"name": b.name, "add": b.add, "subtract": b.subtract, "measure": b.measure, "lever": lever,
                             "label_en": f"open balance of {labels[b.add][0]} minus {labels[b.subtract][0]}",
                             "label_ru": f"остаток: {labels[b.add][1]} минус {labels[b.subtract][1]}",
                             "age_en": f"days the oldest open item ({labels[b.add][0]}) has been open",
                             "age_ru": f"дней открыт самый старый элемент ({labels[b.add][1]})", "item_column": b.item_column})
        item_column = None
    for b in balances:
        column = b.pop("item_column", item_column)
        linked = column is not None and profile.filled(column, [b["add"], b["subtract"]])
        b["item_column"] = column if linked else None

    middle = cfg.windows[len(cfg.windows) // 2]
    if cfg.ratios is None:
        ratios = [
            {"name": n, "numerator": f"{safe_name(a)}__count_{middle}d", "denominator": f"{safe_name(b)}__count_{middle}d",
             "lever": lv, "label_en": f"{en}, last {middle} days", "label_ru": f"{ru} за {middle} дн."}
            for n, a, b, lv, en, ru in _DEFAULT_RATIOS if a in types and b in types and "count" in cfg.aggregations
        ]
    else:
        ratios = [{"name": r.name, "numerator": r.numerator, "denominator": r.denominator, "lever": r.lever,
                   "label_en": f"{r.numerator} / {r.denominator}", "label_ru": f"{r.numerator} / {r.denominator}"} for r in cfg.ratios]
    if cfg.scores is None:
        scores = [{"event_type": "nps_response", "detractor_below": 7.0}] if "nps_response" in amount_types else []
    else:
        scores = []
        for i, sc in enumerate(cfg.scores):
            check_type(f"features.scores.{i}.event_type", sc.event_type)
            if sc.event_type not in amount_types:
                raise ConfigError(f"features.scores.{i}.event_type: {sc.event_type!r} has no amounts to score")
            scores.append({"event_type": sc.event_type, "detractor_below": sc.detractor_below})

    seg = cfg.segments
    segments = seg.model_dump() if seg.revenue_type in amount_types else {}
    attributes = _resolve_attributes(tables, cfg)
    history_start = profile.first_timestamp.floor("D").isoformat()
    plan = FeaturePlan(
        event_types=tuple(types), amount_types=tuple(amount_types), additive_types=tuple(additive),
        windows=tuple(cfg.windows), aggregations=tuple(cfg.aggregations), recency=cfg.recency,
        lifetime_rate=cfg.lifetime_rate, trends=tuple((t.recent_days, t.prior_days) for t in cfg.trends),
        ratios=tuple(ratios), balances=tuple(balances), scores=tuple(scores), segments=segments,
        contracts=cfg.contracts and tables.contracts is not None, attributes=tuple(attributes),
        history_start=history_start, levers=levers, units=units, labels=labels,
    )
    from churnmodel.features.derive import base_infos, ratio_infos

    base = base_infos(plan)
    known = {f.name for f in base}
    for i, r in enumerate(ratios):
        for side in ("numerator", "denominator"):
            if r[side] not in known:
                near = sorted(known, key=lambda n: -_similarity(n, r[side]))[:3]
                raise ConfigError(f"features.ratios.{i}.{side}: no feature named {r[side]!r}; similar: {near}")
    return replace(plan, features=(*base, *ratio_infos(plan)))


def _similarity(a: str, b: str) -> float:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio()


def _resolve_attributes(tables: InputTables, cfg: FeaturesConfig) -> list[dict]:
    p = tables.partners
    reserved = {"partner_id", "joined_at", "churned_at"}
    extra = [c for c in p.columns if c not in reserved]
    if cfg.attributes == "auto":
        chosen = extra
    else:
        missing = sorted(set(cfg.attributes) - set(extra))
        if missing:
            raise ConfigError(f"features.attributes: {missing} are not partner columns; available: {extra}")
        chosen = list(cfg.attributes)
    out = []
    for col in chosen:
        values = p[col]
        if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
            out.append({"name": col, "kind": "numeric", "categories": []})
        elif pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue  # dates are not attributes; send them as events
        else:
            cats = sorted(str(v) for v in values.dropna().unique())
            out.append({"name": col, "kind": "category", "categories": cats})
    return out
