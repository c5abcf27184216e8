"""Features from primitives: the one place where feature values and their metadata are defined.

Engines compute primitives (window counts and sums, last event times, last scores, open balances,
network revenue); everything here is shared by all engines, so the logic exists once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.features.plan import Btyd, FeaturePlan, safe_name
from churnmodel.features.rhythm import rhythm_period
from churnmodel.features.spec import CONTRACT_FEATURES
from churnmodel.texts import SEGMENT_LABELS
from churnmodel.times import DAY, MONTH_DAYS, seconds

__all__ = ["derive_features"]
def _rate_change(recent: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Symmetric relative change of two rates: -1 stopped, 0 steady, +1 started from nothing."""
    total = recent + prior
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (recent - prior) / np.where(total > 0, total, 1), 0.0)


def _key(kind: str, t: str, lo, hi) -> str:
    return f"{kind}|{t}|{'all' if lo is None else lo}|{hi}"


def _event_type_features(put, t: str, plan: FeaturePlan, prims, s: np.ndarray, observed_months: np.ndarray) -> None:
    """Windowed aggregates, recency, lifetime rate and trends of one event type."""
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
        days = (s - prims[f"last|{t}"]) / DAY
        put(f"{n}__days_since_last", days if plan.lifetime_days is None else np.where(days <= plan.lifetime_days, days, np.nan))
    if plan.lifetime_rate:
        put(f"{n}__per_month", prims[_key("count", t, plan.lifetime_days, 0)] / observed_months)
    for r, p in plan.trends:
        recent = prims[_key("count", t, r, 0)] / r
        prior = prims[_key("count", t, r + p, r)] / p
        put(f"{n}__trend_{r}v{p}d", _rate_change(recent, prior))
        if plan.segments is not None and t == plan.segments.revenue_type:
            put(f"{n}__amount_trend_{r}v{p}d", _rate_change(
                prims[_key("sum", t, r, 0)] / r, prims[_key("sum", t, r + p, r)] / p))


def _rhythm_features(put, t: str, plan: FeaturePlan, prims, s: np.ndarray) -> None:
    """The partner's own rhythm in one event type (the kinds in ``plan.rhythm``): gaps between consecutive
    events (each counted where it ends), over the lifetime span and the longest window; overdue = days
    since the last event / typical gap over the lifetime span."""
    n, w, life = safe_name(t), max(plan.windows), plan.lifetime_days

    def mean_gap(lo: int | None) -> tuple[np.ndarray, np.ndarray]:
        k = prims[_key("gapn", t, lo, 0)]
        return np.where(k > 0, prims[_key("gaps1", t, lo, 0)] / np.where(k > 0, k, 1), np.nan), k

    if {"overdue", "gap", "regularity"} & set(plan.rhythm):
        typical, k = mean_gap(life)
    if "overdue" in plan.rhythm:
        since = (s - prims[f"last|{t}"]) / DAY
        put(f"{n}__overdue", np.where(typical > 0, since / np.where(typical > 0, typical, 1), np.nan))
    if "gap" in plan.rhythm:
        put(f"{n}__gap_days", typical)
        put(f"{n}__gap_days_{w}d", mean_gap(w)[0])
    if "regularity" in plan.rhythm:
        spread = np.sqrt(np.maximum(prims[_key("gaps2", t, life, 0)] / np.where(k > 0, k, 1) - typical ** 2, 0.0))
        put(f"{n}__gap_cv", np.where((k >= 2) & (typical > 0), spread / np.where(typical > 0, typical, 1), np.nan))
    if "active_share" in plan.rhythm:
        put(f"{n}__active_share_{w}d", np.minimum(prims[_key("active", t, w, 0)] / (w / rhythm_period(plan)[1]), 1.0))


def derive_features(
    rows: pd.DataFrame,
    prims: dict[str, np.ndarray],
    plan: FeaturePlan,
    partners: pd.DataFrame,
    contracts: pd.DataFrame | None,
) -> pd.DataFrame:
    """The feature frame for ``rows`` (same order), columns in ``plan.columns`` order."""
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
    # the lifetime features' span: since joining, the log's start or the lifetime bound, whichever is
    # latest; at least one month, so a partner seen for a few days does not get a huge monthly rate
    start = np.maximum(joined, history) if plan.lifetime_days is None else np.maximum(np.maximum(joined, history), s - plan.lifetime_days * DAY)
    observed_months = np.maximum((s - start) / (MONTH_DAYS * DAY), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in plan.event_types:
            _event_type_features(put, t, plan, prims, s, observed_months)
            if plan.rhythm:
                _rhythm_features(put, t, plan, prims, s)
        if plan.btyd is not None:  # filled by the model (ChurnModel.prepare) from the summaries, added below
            for name in plan.btyd.model_columns:
                put(name, np.nan)
        for b in plan.balances:
            put(b.name, prims[f"bal|{b.name}"])
            put(f"{b.name}__oldest_days", (s - prims[f"oldest|{b.name}"]) / DAY)
        for sc in plan.scores:
            t = sc.event_type
            n = safe_name(t)
            last, prev = prims[f"score_last|{t}"], prims[f"score_prev|{t}"]
            put(f"{n}__last", last)
            put(f"{n}__change", last - prev)
            if sc.detractor_below is not None:
                put(f"{n}__detractor", np.where(np.isnan(last), np.nan, (last < sc.detractor_below).astype(np.float64)))
        if plan.contracts:
            for name, values in _contract_features(rows, contracts).items():
                put(name, values)
        extra: dict[str, pd.Categorical] = {}
        if plan.segments is not None:
            share, extra["segment"] = _segments(plan, prims, block[slot["tenure_days"]])
            put("revenue_share", share)
        by_id = partners.set_index("partner_id")
        for a in plan.attributes:
            values = by_id[a.source].reindex(rows["partner_id"]).reset_index(drop=True)
            if a.kind == "category":
                text = values.astype("object").where(values.isna(), values.astype("str"))
                known = text.where(text.isin(a.categories))  # a category unseen in training is missing
                extra[a.name] = pd.Categorical(known, categories=a.categories)
            else:
                put(a.name, values.astype(np.float64))
        for r in plan.ratios:
            num, den = block[slot[r.numerator]], block[slot[r.denominator]]
            put(r.name, np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))
    frame = pd.DataFrame(block.T, columns=numeric, copy=False)
    for name in plan.columns:  # ascending final positions, so each insert lands in place
        if name in extra:
            frame.insert(plan.columns.index(name), name, extra[name])
    if plan.btyd is not None:  # the BG/NBD summaries: inputs of the model's own columns, not features
        for name in Btyd.SUMMARIES:
            frame[name] = prims[name]
    return frame


def _contract_features(rows: pd.DataFrame, contracts: pd.DataFrame | None) -> pd.DataFrame:
    """Contract state as known at each snapshot: contracts signed (started) by then; terminations that happened by then."""
    R = len(rows)
    out = pd.DataFrame({name: np.zeros(R) for name, *_ in CONTRACT_FEATURES})
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
    t, w = seg.revenue_type, seg.revenue_window_days
    revenue = prims[_key("sum", t, w, 0)]
    network = prims[f"net_sum|{w}"]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(network > 0, revenue / np.where(network > 0, network, 1), np.nan)
        strategic = (revenue > 0) & ((share >= seg.strategic_min_share) | (prims[f"net_core|{w}"] > 0))
        if plan.trends:
            r, p = plan.trends[0]
            recent, prior = prims[_key("sum", t, r, 0)] / r, prims[_key("sum", t, r + p, r)] / p
            growth = np.where(prior > 0, recent / np.where(prior > 0, prior, 1), np.where(recent > 0, np.inf, 0.0))
        else:
            growth = np.zeros_like(revenue)
    limit = seg.prospective_max_tenure_days
    prospective = (tenure <= limit) | ((growth >= seg.prospective_min_growth) & (tenure <= 2 * limit))
    names = np.where(strategic, "strategic", np.where(prospective, "prospective", "transactional"))
    return share, pd.Categorical(names, categories=list(SEGMENT_LABELS))
