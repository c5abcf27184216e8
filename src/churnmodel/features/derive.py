"""Features from primitives: the one place where feature values and their metadata are defined.

Engines compute primitives (window counts and sums, last event times, last scores, open balances,
network revenue); everything here is shared by all engines, so the logic exists once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.features.spec import FeatureInfo, FeaturePlan, safe_name

__all__ = ["SEGMENT_LABELS", "base_infos", "derive_features", "ratio_infos"]

DAY = 86_400
MONTH_DAYS = 30.4375
#: Segment names in the retention material's terms.
SEGMENT_LABELS = {
    "strategic": ("strategic", "стратегический"),
    "prospective": ("prospective", "перспективный"),
    "transactional": ("transactional", "транзакционный"),
}
_CONTRACT_FEATURES = (
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


def base_infos(plan: FeaturePlan) -> list[FeatureInfo]:
    """Metadata of every feature except ratios, in column order."""
    infos = [FeatureInfo("tenure_days", "tenure", "profile", "days", "days since joining", "дней с начала сотрудничества")]
    for t in plan.event_types:
        n, lever, (en, ru) = safe_name(t), plan.levers[t], plan.labels[t]
        infos += [FeatureInfo(name, kind, lever, unit, le, lr) for name, kind, unit, le, lr in _windowed(plan, t)]
        if plan.recency:
            infos.append(FeatureInfo(f"{n}__days_since_last", "recency", lever, "days", f"days since the last of {en}", f"дней с последнего события: {ru}"))
        if plan.lifetime_rate:
            infos.append(FeatureInfo(f"{n}__per_month", "rate", lever, "per month", f"{en} per month since joining", f"{ru}: в среднем в месяц"))
        for r, p in plan.trends:
            infos.append(FeatureInfo(
                f"{n}__trend_{r}v{p}d", "trend", lever, "change -1..+1",
                f"{en}: change, last {r} days vs the {p} before", f"{ru}: изменение, {r} дн. к предыдущим {p} дн."))
            if plan.segments and t == plan.segments["revenue_type"]:
                infos.append(FeatureInfo(
                    f"{n}__amount_trend_{r}v{p}d", "trend", lever, "change -1..+1",
                    f"{en}: change in value, last {r} days vs the {p} before", f"{ru}: изменение суммы, {r} дн. к предыдущим {p} дн."))
    for b in plan.balances:
        unit = plan.units.get(b["add"], "amount") if b["measure"] == "amount" else "count"
        infos.append(FeatureInfo(b["name"], "balance", b["lever"], unit, b["label_en"], b["label_ru"]))
        infos.append(FeatureInfo(f"{b['name']}__oldest_days", "balance_age", b["lever"], "days", b["age_en"], b["age_ru"]))
    for sc in plan.scores:
        t = sc["event_type"]
        n, lever, (en, ru) = safe_name(t), plan.levers[t], plan.labels[t]
        unit = plan.units.get(t, "score")
        infos.append(FeatureInfo(f"{n}__last", "score_last", lever, unit, f"{en}: last score", f"{ru}: последняя оценка"))
        infos.append(FeatureInfo(f"{n}__change", "score_change", lever, unit, f"{en}: change from the previous score", f"{ru}: изменение к предыдущей оценке"))
        if sc["detractor_below"] is not None:
            thr = sc["detractor_below"]
            infos.append(FeatureInfo(f"{n}__detractor", "score_flag", lever, "flag",
                                     f"{en}: detractor (last score below {thr:g})", f"{ru}: критик (последняя оценка ниже {thr:g})"))
    if plan.contracts:
        # contract state is context (timing of the renewal decision), not a lever in itself
        infos += [FeatureInfo(name, "contract", "profile", unit, en, ru) for name, unit, en, ru in _CONTRACT_FEATURES]
    if plan.segments:
        w = plan.segments["revenue_window_days"]
        infos.append(FeatureInfo("revenue_share", "network", "mutual_value", "share",
                                 f"share of network revenue, last {w} days", f"доля в выручке сети за {w} дн."))
        infos.append(FeatureInfo("segment", "segment", "profile", "category",
                                 "segment (strategic / prospective / transactional)", "сегмент (стратегический / перспективный / транзакционный)"))
    taken = {f.name for f in infos}
    for a in plan.attributes:
        if a["name"] in taken:
            from churnmodel.errors import ConfigError

            raise ConfigError(f"partner column {a['name']!r} clashes with a feature name; rename it or leave it out of features.attributes")
        lever = "loyalty" if any(w in a["name"].lower() for w in ("loyal", "tier", "status")) else "profile"
        unit = "category" if a["kind"] == "category" else "value"
        infos.append(FeatureInfo(a["name"], "attribute", lever, unit, a["name"].replace("_", " "), a["name"].replace("_", " ")))
    return infos


def ratio_infos(plan: FeaturePlan) -> list[FeatureInfo]:
    infos = []
    for r in plan.ratios:
        infos.append(FeatureInfo(r["name"], "ratio", r["lever"] or "profile", "ratio", r["label_en"], r["label_ru"]))
    return infos


def _rate_change(recent: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Symmetric relative change of two rates: -1 stopped, 0 steady, +1 started from nothing."""
    total = recent + prior
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (recent - prior) / np.where(total > 0, total, 1), 0.0)


def _key(kind: str, t: str, lo, hi) -> str:
    return f"{kind}|{t}|{'all' if lo is None else lo}|{hi}"


def derive_features(
    rows: pd.DataFrame,
    prims: dict[str, np.ndarray],
    plan: FeaturePlan,
    partners: pd.DataFrame,
    contracts: pd.DataFrame | None,
) -> pd.DataFrame:
    """The feature frame for ``rows`` (same order), columns in ``plan.columns`` order."""
    from churnmodel.features.local import seconds

    s = seconds(rows["snapshot"]).astype(np.float64)
    bounds = partners.set_index("partner_id")["joined_at"]
    joined_at = bounds.reindex(rows["partner_id"]).reset_index(drop=True)
    joined = np.where(joined_at.isna(), np.nan, seconds(joined_at.fillna(pd.Timestamp(0, tz="UTC"))).astype(np.float64))
    history = float(seconds(pd.Series([pd.Timestamp(plan.history_start)]))[0])
    categorical = {f.name for f in plan.features if f.unit == "category"}
    numeric = [c for c in plan.columns if c not in categorical]
    slot = {name: i for i, name in enumerate(numeric)}
    # one float block, column-major, filled in place: no per-column copies when the frame is built
    block = np.empty((len(numeric), len(rows)))

    def put(name: str, values) -> None:
        block[slot[name]] = values

    put("tenure_days", (s - joined) / DAY)
    # at least one month, so a partner seen for a few days does not get a huge monthly rate
    observed_months = np.maximum((s - np.maximum(joined, history)) / (MONTH_DAYS * DAY), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in plan.event_types:
            n = safe_name(t)
            for w in plan.windows:
                if "count" in plan.aggregations:
                    put(f"{n}__count_{w}d", prims[_key("count", t, w, 0)])
                if t in plan.amount_types:
                    total, nn = prims[_key("sum", t, w, 0)], prims[_key("nn", t, w, 0)]
                    if "sum" in plan.aggregations and t in plan.additive_types:
                        put(f"{n}__sum_{w}d", total)
                    if "mean" in plan.aggregations:
                        put(f"{n}__mean_{w}d", np.where(nn > 0, total / np.where(nn > 0, nn, 1), np.nan))
                    if "max" in plan.aggregations:
                        put(f"{n}__max_{w}d", prims[_key("max", t, w, 0)])
            if plan.recency:
                put(f"{n}__days_since_last", (s - prims[f"last|{t}"]) / DAY)
            if plan.lifetime_rate:
                put(f"{n}__per_month", prims[_key("count", t, None, 0)] / observed_months)
            for r, p in plan.trends:
                recent = prims[_key("count", t, r, 0)] / r
                prior = prims[_key("count", t, r + p, r)] / p
                put(f"{n}__trend_{r}v{p}d", _rate_change(recent, prior))
                if plan.segments and t == plan.segments["revenue_type"]:
                    put(f"{n}__amount_trend_{r}v{p}d", _rate_change(
                        prims[_key("sum", t, r, 0)] / r, prims[_key("sum", t, r + p, r)] / p))
        for b in plan.balances:
            put(b["name"], prims[f"bal|{b['name']}"])
            put(f"{b['name']}__oldest_days", (s - prims[f"oldest|{b['name']}"]) / DAY)
        for sc in plan.scores:
            t = sc["event_type"]
            n = safe_name(t)
            last, prev = prims[f"score_last|{t}"], prims[f"score_prev|{t}"]
            put(f"{n}__last", last)
            put(f"{n}__change", last - prev)
            if sc["detractor_below"] is not None:
                put(f"{n}__detractor", np.where(np.isnan(last), np.nan, (last < sc["detractor_below"]).astype(np.float64)))
        if plan.contracts:
            for name, values in _contract_features(rows, contracts).items():
                put(name, values)
        extra: dict[str, pd.Categorical] = {}
        if plan.segments:
            share, extra["segment"] = _segments(plan, prims, block[slot["tenure_days"]])
            put("revenue_share", share)
        by_id = partners.set_index("partner_id")
        for a in plan.attributes:
            values = by_id[a["name"]].reindex(rows["partner_id"]).reset_index(drop=True)
            if a["kind"] == "category":
                text = values.astype("object").where(values.isna(), values.astype("str"))
                known = text.where(text.isin(a["categories"]))  # a category unseen in training is missing
                extra[a["name"]] = pd.Categorical(known, categories=a["categories"])
            else:
                put(a["name"], values.astype(np.float64))
        for r in plan.ratios:
            num, den = block[slot[r["numerator"]]], block[slot[r["denominator"]]]
            put(r["name"], np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))
    frame = pd.DataFrame(block.T, columns=numeric, copy=False)
    for name in plan.columns:  # ascending final positions, so each insert lands in place
        if name in extra:
            frame.insert(plan.columns.index(name), name, extra[name])
    return frame


def _contract_features(rows: pd.DataFrame, contracts: pd.DataFrame | None) -> pd.DataFrame:
    """Contract state as known at each snapshot: contracts signed (started) by then; terminations that happened by then."""
    from churnmodel.features.local import seconds

    R = len(rows)
    out = pd.DataFrame({name: np.zeros(R) for name, *_ in _CONTRACT_FEATURES})
    out[["contract__days_to_end", "contract__days_since_start"]] = np.nan
    if contracts is None or contracts.empty or R == 0:
        return out
    left = pd.DataFrame({"row": np.arange(R), "partner_id": rows["partner_id"].to_numpy(), "s": seconds(rows["snapshot"])})
    c = pd.DataFrame({
        "partner_id": contracts["partner_id"].to_numpy(),
        "start": seconds(contracts["start_date"]),
        "end": np.where(contracts["end_date"].isna(), np.iinfo(np.int64).max, seconds(contracts["end_date"].fillna(pd.Timestamp(0, tz="UTC")))),
        "term": np.where(contracts["terminated_at"].isna(), np.iinfo(np.int64).max, seconds(contracts["terminated_at"].fillna(pd.Timestamp(0, tz="UTC")))),
        "value": contracts["value"].to_numpy(dtype=np.float64),
    })
    m = left.merge(c, on="partner_id", how="inner")
    m = m.loc[m["start"] <= m["s"]]
    known_end = np.where(m["term"] <= m["s"], np.minimum(m["term"], m["end"]), m["end"])
    active = known_end > m["s"]
    signed = m.groupby("row").size()
    a = m.loc[active].assign(known_end=known_end[active.to_numpy()])
    grouped = a.groupby("row")
    out.loc[signed.index, "contract__signed_total"] = signed.to_numpy(dtype=np.float64)
    if len(a):
        idx = grouped.size().index
        out.loc[idx, "contract__active"] = grouped.size().to_numpy(dtype=np.float64)
        out.loc[idx, "contract__value"] = grouped["value"].sum().to_numpy()
        last_end = grouped["known_end"].max()
        s_idx = left["s"].to_numpy()[idx]
        finite = last_end.to_numpy() < np.iinfo(np.int64).max
        out.loc[idx, "contract__days_to_end"] = np.where(finite, (last_end.to_numpy() - s_idx) / DAY, np.nan)
        out.loc[idx, "contract__days_since_start"] = (s_idx - grouped["start"].max().to_numpy()) / DAY
    return out


def _segments(plan: FeaturePlan, prims: dict[str, np.ndarray], tenure: np.ndarray):
    seg = plan.segments
    t, w = seg["revenue_type"], seg["revenue_window_days"]
    revenue = prims[_key("sum", t, w, 0)]
    network = prims[f"net_sum|{w}"]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(network > 0, revenue / np.where(network > 0, network, 1), np.nan)
        strategic = (revenue > 0) & ((share >= seg["strategic_min_share"]) | (prims[f"net_core|{w}"] > 0))
        if plan.trends:
            r, p = plan.trends[0]
            recent, prior = prims[_key("sum", t, r, 0)] / r, prims[_key("sum", t, r + p, r)] / p
            growth = np.where(prior > 0, recent / np.where(prior > 0, prior, 1), np.where(recent > 0, np.inf, 0.0))
        else:
            growth = np.zeros_like(revenue)
    limit = seg["prospective_max_tenure_days"]
    prospective = (tenure <= limit) | ((growth >= seg["prospective_min_growth"]) & (tenure <= 2 * limit))
    names = np.where(strategic, "strategic", np.where(prospective, "prospective", "transactional"))
    return share, pd.Categorical(names, categories=list(SEGMENT_LABELS))
