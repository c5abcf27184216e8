"""Resolving the feature plan: from the ``features:`` config and the data to one declarative list.

:func:`resolve_plan` fixes what the data looked like at training time (event types, which carry
amounts, item links, attribute categories, where history starts) in a :class:`.plan.FeaturePlan`,
and names every feature column with its metadata (the catalogue below): a readable name in English
and Russian, a unit and its retention lever. Engines (local numpy, Spark) compute the plan's
*primitives*; :mod:`.derive` turns them into features.
"""

from __future__ import annotations

import difflib
from dataclasses import replace

import pandas as pd

from churnmodel.actions import interactions
from churnmodel.config import FeaturesConfig
from churnmodel.errors import ConfigError
from churnmodel.features.plan import (
    Attribute,
    Balance,
    Btyd,
    EventProfile,
    FeatureInfo,
    FeaturePlan,
    Ratio,
    ScoredType,
    Segments,
    safe_name,
)
from churnmodel.features.rhythm import rhythm_period
from churnmodel.labels import data_end, history_days
from churnmodel.validation import InputTables

__all__ = ["CONTRACT_FEATURES", "NETWORK_FEATURES", "TYPE_DEFAULTS", "base_infos", "ratio_infos", "resolve_plan"]

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


def _event_types(profile: EventProfile, cfg: FeaturesConfig) -> list[str]:
    present = list(profile.types)
    if cfg.event_types is None:
        types = present
    else:
        missing = sorted(set(cfg.event_types) - set(present))
        if missing:
            raise ConfigError(f"features.event_types: {missing} do not occur in the events; types present: {present}")
        types = list(cfg.event_types)
    names = [safe_name(t) for t in types]
    if len(set(names)) != len(names):
        raise ConfigError(f"features.event_types: {types} give clashing column names {names}; rename the types")
    return types


def _check_type(path: str, event_type: str, types: list[str]) -> None:
    if event_type not in types:
        raise ConfigError(f"{path}: event type {event_type!r} is not among the feature event types {types}")


def _balances(cfg: FeaturesConfig, profile: EventProfile, types: list[str], amount_types: list[str],
              levers: dict[str, str], labels: dict[str, tuple[str, str]]) -> list[Balance]:
    """The configured balances (or the standard ones that fit the data), linked by item id where every
    opening and closing event carries one, else first in, first out."""
    if cfg.balances is None:
        balances = [
            Balance(n, a, s, m, lv, en, ru, age_en, age_ru, "item_id")
            for n, a, s, m, lv, en, ru, age_en, age_ru in _DEFAULT_BALANCES
            if a in types and s in types and (m == "count" or (a in amount_types and s in amount_types))
        ]
    else:
        balances = []
        for i, b in enumerate(cfg.balances):
            _check_type(f"features.balances.{i}.add", b.add, types)
            _check_type(f"features.balances.{i}.subtract", b.subtract, types)
            if b.measure == "amount":
                for side, t in (("add", b.add), ("subtract", b.subtract)):
                    if t not in amount_types:
                        raise ConfigError(f"features.balances.{i}.{side}: {t!r} has no amounts; use measure: count")
            (add_en, add_ru), (sub_en, sub_ru) = labels[b.add], labels[b.subtract]
            balances.append(Balance(
                b.name, b.add, b.subtract, b.measure, b.lever or levers[b.add],
                f"open balance of {add_en} minus {sub_en}", f"остаток: {add_ru} минус {sub_ru}",
                f"days the oldest open item ({add_en}) has been open", f"дней открыт самый старый элемент ({add_ru})",
                b.item_column))
    return [replace(b, item_column=b.item_column if b.item_column and profile.filled(b.item_column, [b.add, b.subtract]) else None)
            for b in balances]


def _ratios(cfg: FeaturesConfig, types: list[str]) -> list[Ratio]:
    if cfg.ratios is not None:
        return [Ratio(r.name, r.numerator, r.denominator, r.lever, f"{r.numerator} / {r.denominator}",
                      f"{r.numerator} / {r.denominator}") for r in cfg.ratios]
    middle = cfg.windows[len(cfg.windows) // 2]
    return [Ratio(n, f"{safe_name(a)}__count_{middle}d", f"{safe_name(b)}__count_{middle}d", lv, f"{en}, last {middle} days",
                  f"{ru} за {middle} дн.")
            for n, a, b, lv, en, ru in _DEFAULT_RATIOS if a in types and b in types and "count" in cfg.aggregations]


def _scores(cfg: FeaturesConfig, types: list[str], amount_types: list[str]) -> list[ScoredType]:
    if cfg.scores is None:
        return [ScoredType("nps_response", 7.0)] if "nps_response" in amount_types else []
    scores = []
    for i, sc in enumerate(cfg.scores):
        _check_type(f"features.scores.{i}.event_type", sc.event_type, types)
        if sc.event_type not in amount_types:
            raise ConfigError(f"features.scores.{i}.event_type: {sc.event_type!r} has no amounts to score")
        scores.append(ScoredType(sc.event_type, sc.detractor_below))
    return scores


def _btyd(cfg: FeaturesConfig, types: list[str], horizon_days: int) -> Btyd | None:
    """The purchases BG/NBD counts: ``features.btyd.event_type``, else the revenue type when the data has it."""
    if not cfg.btyd.enabled:
        return None
    if cfg.btyd.event_type is not None:
        _check_type("features.btyd.event_type", cfg.btyd.event_type, types)
        return Btyd(cfg.btyd.event_type, horizon_days)
    return Btyd(cfg.segments.revenue_type, horizon_days) if cfg.segments.revenue_type in types else None


def resolve_plan(tables: InputTables, cfg: FeaturesConfig, *, profile: EventProfile | None = None, horizon_days: int = 90) -> FeaturePlan:
    """Fix the feature list for these inputs and this ``features:`` config.

    ``profile``: the event log's :class:`EventProfile` when the log is not in ``tables.events``
    (computed by another engine); by default it is taken from ``tables.events``. ``horizon_days``: the
    label horizon, over which the BG/NBD features count the expected purchases. ``auto`` look-backs
    left in ``cfg`` are fixed for the history up to the day after the latest input date (the pipeline
    fixes them once, with ``data.extracted_at``, before it calls this).
    """
    profile = profile if profile is not None else EventProfile.of(interactions(tables.events))
    if "auto" in (cfg.windows, cfg.trends, cfg.segments.revenue_window_days):
        cfg = cfg.for_history(history_days(profile.first_timestamp, data_end(tables)))
    types = _event_types(profile, cfg)
    amount_types = [t for t in types if profile.amount_counts.get(t, 0) > 0]
    levers = {t: TYPE_DEFAULTS.get(t, ("profile",))[0] for t in types} | {t: v for t, v in cfg.levers.items() if t in types}
    units = {t: (TYPE_DEFAULTS[t][1] if t in TYPE_DEFAULTS else None) or "amount" for t in amount_types}
    units |= {t: v for t, v in cfg.amount_units.items() if t in amount_types}
    labels = {t: (TYPE_DEFAULTS[t][3], TYPE_DEFAULTS[t][4]) if t in TYPE_DEFAULTS else (t.replace("_", " "),) * 2 for t in types}
    seg = cfg.segments
    plan = FeaturePlan(
        event_types=tuple(types), amount_types=tuple(amount_types),
        additive_types=tuple(t for t in amount_types if TYPE_DEFAULTS.get(t, (None, None, True))[2]),
        windows=tuple(cfg.windows), aggregations=tuple(cfg.aggregations), recency=cfg.recency,
        lifetime_rate=cfg.lifetime_rate, trends=tuple((t.recent_days, t.prior_days) for t in cfg.trends),
        ratios=tuple(_ratios(cfg, types)), balances=tuple(_balances(cfg, profile, types, amount_types, levers, labels)),
        scores=tuple(_scores(cfg, types, amount_types)),
        segments=Segments(**seg.model_dump()) if seg.revenue_type in amount_types else None,
        contracts=cfg.contracts and tables.contracts is not None, attributes=tuple(_resolve_attributes(tables, cfg)),
        history_start=profile.first_timestamp.floor("D").isoformat(), levers=levers, units=units, labels=labels,
        lifetime_days=cfg.lifetime_days, rhythm=tuple(cfg.rhythm), btyd=_btyd(cfg, types, horizon_days),
    )
    base = base_infos(plan)
    known = {f.name for f in base}
    for i, r in enumerate(plan.ratios):
        for side in ("numerator", "denominator"):
            if getattr(r, side) not in known:
                near = sorted(known, key=lambda n: -difflib.SequenceMatcher(None, n, getattr(r, side)).ratio())[:3]
                raise ConfigError(f"features.ratios.{i}.{side}: no feature named {getattr(r, side)!r}; similar: {near}")
    return replace(plan, features=(*base, *ratio_infos(plan)), inputs=tuple(_btyd_inputs(plan)) if plan.btyd else ())


def _resolve_attributes(tables: InputTables, cfg: FeaturesConfig) -> list[Attribute]:
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
        name, column = safe_name(col), "" if safe_name(col) == col else col
        if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
            out.append(Attribute(name, "numeric", column=column))
        elif pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue  # dates are not attributes; send them as events
        else:
            out.append(Attribute(name, "category", tuple(sorted(str(v) for v in values.dropna().unique())), column))
    return out


# --------------------------------------------------------------------------- the catalogue of columns


#: The contract columns: (name, unit, English label, Russian label).
CONTRACT_FEATURES = (
    ("contract__active", "count", "active contracts", "действующие контракты"),
    ("contract__value", "money per month", "monthly value of active contracts", "ежемесячная стоимость действующих контрактов"),
    ("contract__days_to_end", "days", "days to the scheduled end of the contract", "дней до планового окончания контракта"),
    ("contract__days_since_start", "days", "days since the current contract started", "дней с начала текущего контракта"),
    ("contract__signed_total", "count", "contracts signed so far", "подписано контрактов всего"),
)


def _windowed(plan: FeaturePlan, t: str):
    """(name, kind, unit, label_en, label_ru, window) for each windowed aggregate of type t."""
    n, (en, ru) = safe_name(t), plan.labels[t]
    unit = plan.units.get(t, "amount")
    for w in plan.windows:
        if "count" in plan.aggregations:
            yield f"{n}__count_{w}d", "count", "count", f"{en}: number in the last {w} days", f"{ru}: количество за {w} дн."
        if t in plan.amount_types:
            if "sum" in plan.aggregations and t in plan.additive_types:
                yield f"{n}__sum_{w}d", "sum", unit, f"{en}: total ({unit}), last {w} days", f"{ru}: сумма за {w} дн."
            if "mean" in plan.aggregations:
                yield f"{n}__mean_{w}d", "mean", unit, f"{en}: average ({unit}), last {w} days", f"{ru}: среднее за {w} дн."
            if "max" in plan.aggregations:
                yield f"{n}__max_{w}d", "max", unit, f"{en}: largest ({unit}), last {w} days", f"{ru}: максимум за {w} дн."


def _rhythm(plan: FeaturePlan, t: str, span_en: str, span_ru: str):
    """(name, unit, label_en, label_ru) of each rhythm feature of type t (the kinds in ``plan.rhythm``),
    relative to the partner's own normal."""
    n, (en, ru), w = safe_name(t), plan.labels[t], max(plan.windows)
    period = rhythm_period(plan)[0]
    if "overdue" in plan.rhythm:
        yield (f"{n}__overdue", "ratio", f"{en}: time since the last one, in the partner's typical gaps (above 1: longer than usual)",
               f"{ru}: время с последнего события в обычных интервалах партнёра (больше 1: дольше обычного)")
    if "gap" in plan.rhythm:
        yield f"{n}__gap_days", "days", f"{en}: typical days between two{span_en}", f"{ru}: среднее число дней между событиями{span_ru}"
        yield f"{n}__gap_days_{w}d", "days", f"{en}: typical days between two, last {w} days", f"{ru}: среднее число дней между событиями за {w} дн."
    if "regularity" in plan.rhythm:
        yield (f"{n}__gap_cv", "ratio", f"{en}: irregularity of the gaps (their spread / their mean){span_en}",
               f"{ru}: нерегулярность интервалов (разброс / среднее){span_ru}")
    if "active_share" in plan.rhythm:
        yield (f"{n}__active_share_{w}d", "share", f"{en}: share of {period}s with any, last {w} days",
               f"{ru}: доля {dict(week='недель', month='месяцев')[period]} с событиями за {w} дн.")


def _btyd_infos(plan: FeaturePlan) -> list[FeatureInfo]:
    """The buy-till-you-die columns: what the BG/NBD model fitted on the training block says of each history
    (the summaries it reads, frequency, recency and age, are carried beside the features: they grow with
    calendar time, which trees would learn as time itself)."""
    b = plan.btyd
    lever, (en, ru), h = plan.levers[b.event_type], plan.labels[b.event_type], b.horizon_days
    p_alive, expected = b.model_columns
    return [
        FeatureInfo(p_alive, "btyd", lever, "share", f"{en}: probability the partner is still active (BG/NBD)",
                    f"{ru}: вероятность, что партнёр ещё активен (BG/NBD)"),
        FeatureInfo(expected, "btyd", lever, "count", f"{en}: expected days with one in the next {h} days (BG/NBD)",
                    f"{ru}: ожидаемое число дней с событием за {h} дн. (BG/NBD)"),
    ]


def _btyd_inputs(plan: FeaturePlan) -> list[FeatureInfo]:
    """The BG/NBD summaries a feature frame carries for the model (not features: they grow with calendar time)."""
    lever, (en, ru) = plan.levers[plan.btyd.event_type], plan.labels[plan.btyd.event_type]
    texts = ((f"{en}: repeat days with one (BG/NBD frequency)", f"{ru}: дни повторных событий (частота BG/NBD)", "count"),
             (f"{en}: days from the first to the last (BG/NBD recency)", f"{ru}: дней от первого до последнего (давность BG/NBD)", "days"),
             (f"{en}: days since the first (BG/NBD age)", f"{ru}: дней с первого (возраст BG/NBD)", "days"))
    return [FeatureInfo(name, "btyd_input", lever, unit, le, lr) for name, (le, lr, unit) in zip(Btyd.SUMMARIES, texts, strict=True)]


def base_infos(plan: FeaturePlan) -> list[FeatureInfo]:
    """Metadata of every feature except ratios, in column order."""
    infos = [FeatureInfo("tenure_days", "tenure", "profile", "days", "days since joining", "дней с начала сотрудничества")]
    months = None if plan.lifetime_days is None else round(plan.lifetime_days / 30.4375)
    span_en = " since joining" if months is None else f" over the last {months} months (or since joining)"
    span_ru = "" if months is None else f" за последние {months} мес."
    for t in plan.event_types:
        n, lever, (en, ru) = safe_name(t), plan.levers[t], plan.labels[t]
        infos += [FeatureInfo(name, kind, lever, unit, le, lr) for name, kind, unit, le, lr in _windowed(plan, t)]
        if plan.recency:
            infos.append(FeatureInfo(f"{n}__days_since_last", "recency", lever, "days", f"{en}: days since the last one", f"{ru}: дней с последнего события"))
        if plan.lifetime_rate:
            infos.append(FeatureInfo(f"{n}__per_month", "rate", lever, "per month", f"{en} per month{span_en}", f"{ru}: в среднем в месяц{span_ru}"))
        for r, p in plan.trends:
            infos.append(FeatureInfo(
                f"{n}__trend_{r}v{p}d", "trend", lever, "change -1..+1",
                f"{en}: change, last {r} days vs the {p} before", f"{ru}: изменение, {r} дн. к предыдущим {p} дн."))
            if plan.segments is not None and t == plan.segments.revenue_type:
                infos.append(FeatureInfo(
                    f"{n}__amount_trend_{r}v{p}d", "trend", lever, "change -1..+1",
                    f"{en}: change in value, last {r} days vs the {p} before", f"{ru}: изменение суммы, {r} дн. к предыдущим {p} дн."))
        if plan.rhythm:
            infos += [FeatureInfo(name, "rhythm", lever, unit, le, lr) for name, unit, le, lr in _rhythm(plan, t, span_en, span_ru)]
    for b in plan.balances:
        unit = plan.units.get(b.add, "amount") if b.measure == "amount" else "count"
        infos.append(FeatureInfo(b.name, "balance", b.lever, unit, b.label_en, b.label_ru))
        infos.append(FeatureInfo(f"{b.name}__oldest_days", "balance_age", b.lever, "days", b.age_en, b.age_ru))
    for sc in plan.scores:
        t = sc.event_type
        n, lever, (en, ru) = safe_name(t), plan.levers[t], plan.labels[t]
        unit = plan.units.get(t, "score")
        infos.append(FeatureInfo(f"{n}__last", "score_last", lever, unit, f"{en}: last score", f"{ru}: последняя оценка"))
        infos.append(FeatureInfo(f"{n}__change", "score_change", lever, unit, f"{en}: change from the previous score", f"{ru}: изменение к предыдущей оценке"))
        if sc.detractor_below is not None:
            thr = sc.detractor_below
            infos.append(FeatureInfo(f"{n}__detractor", "score_flag", lever, "flag",
                                     f"{en}: detractor (last score below {thr:g})", f"{ru}: критик (последняя оценка ниже {thr:g})"))
    if plan.btyd is not None:
        infos += _btyd_infos(plan)
    if plan.contracts:
        # contract state is context (timing of the renewal decision), not a lever in itself
        infos += [FeatureInfo(name, "contract", "profile", unit, en, ru) for name, unit, en, ru in CONTRACT_FEATURES]
    if plan.segments is not None:
        w = plan.segments.revenue_window_days
        infos.append(FeatureInfo("revenue_share", "network", "mutual_value", "share",
                                 f"share of network revenue, last {w} days", f"доля в выручке сети за {w} дн."))
        infos.append(FeatureInfo("segment", "segment", "profile", "category",
                                 "segment (strategic / prospective / transactional)", "сегмент (стратегический / перспективный / транзакционный)"))
    taken = {f.name for f in infos}
    for a in plan.attributes:
        if a.name in taken:
            raise ConfigError(f"partner column {a.source!r} clashes with a feature name; rename it or leave it out of features.attributes")
        taken.add(a.name)
        lever = "loyalty" if any(w in a.source.lower() for w in ("loyal", "tier", "status", "уровень", "статус", "лояльн")) else "profile"
        unit = "category" if a.kind == "category" else "value"
        label = a.source.replace("_", " ") if not a.column else a.column
        infos.append(FeatureInfo(a.name, "attribute", lever, unit, label, label))
    return infos


def ratio_infos(plan: FeaturePlan) -> list[FeatureInfo]:
    """Metadata of the ratio features (they come last: they are computed from the others)."""
    return [FeatureInfo(r.name, "ratio", r.lever or "profile", "ratio", r.label_en, r.label_ru) for r in plan.ratios]
