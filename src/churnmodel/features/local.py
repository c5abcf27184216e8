"""Local engine: the plan's primitives with numpy, bucket + cumulative sums (measured fastest here).

Every snapshot date ``s`` and every window offset give a cut point (``s - W`` days). Events are put
in the bucket between two consecutive cut points, counted per (partner, type, bucket) with one
``bincount``, and cumulated along buckets, so ``C[p, t, k]`` = events of type ``t`` with time
``< edges[k]``. A window count is then a difference of two lookups, exact for any snapshot dates.
Times are whole seconds: for a cut point at a whole second, ``ts < s`` iff ``floor(ts) < s``.
An event exactly at the cut point belongs to the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.features.spec import FeaturePlan

__all__ = ["DAY", "compute_primitives", "seconds"]

DAY = 86_400


def seconds(values: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 whole seconds since the epoch (floor)."""
    micros = values.astype("datetime64[us, UTC]").array.asi8
    return np.floor_divide(micros, 1_000_000)


def _codes(values: pd.Series, universe: pd.Index) -> np.ndarray:
    """Position of each value in ``universe`` (-1 if absent), via Arrow's hash lookup."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values, from_pandas=True)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    found = pc.index_in(arr, value_set=pa.array(np.asarray(universe, dtype=object), type=arr.type))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _key(kind: str, event_type: str, lo: int | None, hi: int) -> str:
    return f"{kind}|{event_type}|{'all' if lo is None else lo}|{hi}"


def compute_primitives(events: pd.DataFrame, rows: pd.DataFrame, plan: FeaturePlan) -> dict[str, np.ndarray]:
    """Primitive aggregates for each row of ``rows`` (``partner_id``, ``snapshot``), keyed by name."""
    R = len(rows)
    universe = pd.Index(pd.unique(rows["partner_id"]))
    row_p = _codes(rows["partner_id"], universe)
    snaps, row_j = np.unique(seconds(rows["snapshot"]), return_inverse=True)
    P, T = len(universe), len(plan.event_types)
    out: dict[str, np.ndarray] = {}
    if R == 0:
        return out

    intervals = plan.intervals()
    cuts = [snaps - hi * DAY for lo, hi in intervals] + [snaps - lo * DAY for lo, hi in intervals if lo is not None]
    edges = np.unique(np.concatenate(cuts))
    NB = len(edges) + 1

    def k(values: np.ndarray) -> np.ndarray:
        return np.searchsorted(edges, values)

    all_ts = seconds(events["timestamp"])
    all_types = _codes(events["event_type"], pd.Index(plan.event_types))
    if plan.segments:
        _network(out, events, all_ts, snaps, row_j, edges, plan)

    ev_p = _codes(events["partner_id"], universe)
    keep = (ev_p >= 0) & (all_types >= 0) & (all_ts < snaps[-1])
    ev_p, ev_t, ts = ev_p[keep], all_types[keep], all_ts[keep]
    amount = events["amount"].to_numpy(dtype=np.float64, na_value=np.nan)[keep]
    del all_ts, all_types
    bucket = np.searchsorted(edges, ts, side="right")
    cells = (ev_p * T + ev_t) * NB + bucket

    C = np.bincount(cells, minlength=P * T * NB).reshape(P, T, NB)
    np.cumsum(C, axis=-1, out=C)
    for lo, hi in intervals:
        total = C[row_p, :, k(snaps[row_j] - hi * DAY)]
        if lo is not None:
            total = total - C[row_p, :, k(snaps[row_j] - lo * DAY)]
        for t, name in enumerate(plan.event_types):
            out[_key("count", name, lo, hi)] = total[:, t].astype(np.float64)
    now = k(snaps[row_j])

    if plan.recency:
        last = np.full(P * T * NB, -np.inf)
        np.maximum.at(last, cells, ts.astype(np.float64))
        last = np.maximum.accumulate(last.reshape(P, T, NB), axis=-1)[row_p, :, now]
        for t, name in enumerate(plan.event_types):
            out[f"last|{name}"] = np.where(np.isinf(last[:, t]), np.nan, last[:, t])
        del last

    amount_types = list(plan.amount_types)
    if amount_types:
        _amount_primitives(out, plan, amount_types, ev_p, ev_t, bucket, amount, P, NB, intervals, row_p, row_j, snaps, k)
    for score in plan.scores:
        _scores(out, score["event_type"], plan, ev_p, ev_t, ts, amount, row_p, snaps[row_j])
    for balance in plan.balances:
        items = events[balance["item_column"]].to_numpy()[keep] if balance["item_column"] else None
        _balance(out, balance, plan, items, ev_p, ev_t, ts, amount, C, row_p, row_j, snaps, now)
    return out


def _amount_primitives(out, plan, amount_types, ev_p, ev_t, bucket, amount, P, NB, intervals, row_p, row_j, snaps, k):
    remap = np.full(len(plan.event_types), -1)
    for i, name in enumerate(amount_types):
        remap[plan.event_types.index(name)] = i
    Ta = len(amount_types)
    sel = (remap[ev_t] >= 0) & ~np.isnan(amount)
    cells = (ev_p[sel] * Ta + remap[ev_t[sel]]) * NB + bucket[sel]
    values = amount[sel]
    S = np.bincount(cells, weights=values, minlength=P * Ta * NB).reshape(P, Ta, NB)
    np.cumsum(S, axis=-1, out=S)
    N = np.bincount(cells, minlength=P * Ta * NB).reshape(P, Ta, NB)
    np.cumsum(N, axis=-1, out=N)
    for lo, hi in intervals:
        k_hi = k(snaps[row_j] - hi * DAY)
        total, count = S[row_p, :, k_hi], N[row_p, :, k_hi]
        if lo is not None:
            k_lo = k(snaps[row_j] - lo * DAY)
            total, count = total - S[row_p, :, k_lo], count - N[row_p, :, k_lo]
        for i, name in enumerate(amount_types):
            out[_key("sum", name, lo, hi)] = total[:, i]
            out[_key("nn", name, lo, hi)] = count[:, i].astype(np.float64)
    del S, N
    if "max" not in plan.aggregations:
        return
    M = np.full(P * Ta * NB, -np.inf)
    np.maximum.at(M, cells, values)
    M = M.reshape(P, Ta, NB)
    for w in plan.windows:
        result = np.empty((len(row_p), Ta))
        for j, s in enumerate(snaps):
            rows_j = np.flatnonzero(row_j == j)
            k0, k1 = k(np.array([s - w * DAY]))[0], k(np.array([s]))[0]
            window_max = M[:, :, k0 + 1 : k1 + 1].max(axis=-1) if k1 > k0 else np.full((M.shape[0], Ta), -np.inf)
            result[rows_j] = window_max[row_p[rows_j]]
        result[np.isinf(result)] = np.nan
        for i, name in enumerate(amount_types):
            out[_key("max", name, w, 0)] = result[:, i]


def _scores(out, name, plan, ev_p, ev_t, ts, amount, row_p, row_s):
    t = plan.event_types.index(name)
    sel = (ev_t == t) & ~np.isnan(amount)
    p, when, value = ev_p[sel], ts[sel], amount[sel]
    order = np.lexsort((when, p))
    p, when, value = p[order], when[order], value[order]
    base = min(when.min(initial=0), row_s.min()) - 1
    span = max(when.max(initial=0), row_s.max()) - base + 1
    keys = p * span + (when - base)
    pos = np.searchsorted(keys, row_p * span + (row_s - base), side="left") - 1
    safe = np.clip(pos, 0, max(len(keys) - 1, 0))
    has_last = (pos >= 0) & (len(keys) > 0) & (p[safe] == row_p) if len(keys) else np.zeros(len(row_p), bool)
    prev = np.clip(pos - 1, 0, max(len(keys) - 1, 0))
    has_prev = has_last & (pos - 1 >= 0) & (p[prev] == row_p) if len(keys) else has_last
    out[f"score_last|{name}"] = np.where(has_last, value[safe] if len(keys) else np.nan, np.nan)
    out[f"score_prev|{name}"] = np.where(has_prev, value[prev] if len(keys) else np.nan, np.nan)


def _balance(out, balance, plan, items, ev_p, ev_t, ts, amount, C, row_p, row_j, snaps, now):
    name, add, sub = balance["name"], plan.event_types.index(balance["add"]), plan.event_types.index(balance["subtract"])
    by_amount = balance["measure"] == "amount"
    R = len(row_p)
    if items is not None:
        mine = np.isin(ev_t, [add, sub])
        p, t, when, value = ev_p[mine], ev_t[mine], ts[mine], amount[mine]
        frame = pd.DataFrame({"item": items[mine], "p": p, "open": np.where(t == add, when, np.nan),
                              "close": np.where(t == sub, when, np.nan), "value": np.where(t == add, value, np.nan)})
        # an item is a (partner, item id) pair: ids may repeat across partners
        grouped = frame.groupby(["p", "item"], sort=False).agg(open=("open", "min"), close=("close", "min"), value=("value", "first"))
        grouped = grouped.reset_index()
        grouped = grouped.loc[grouped["open"].notna()]
        ip, iopen, iclose = grouped["p"].to_numpy(), grouped["open"].to_numpy(), grouped["close"].to_numpy()
        ivalue = np.nan_to_num(grouped["value"].to_numpy()) if by_amount else np.ones(len(grouped))
        level, oldest = np.zeros(R), np.full(R, np.nan)
        P = C.shape[0]
        for j, s in enumerate(snaps):
            rows_j = np.flatnonzero(row_j == j)
            is_open = (iopen < s) & ~(iclose < s)
            level[rows_j] = np.bincount(ip[is_open], weights=ivalue[is_open], minlength=P)[row_p[rows_j]]
            first = np.full(P, np.inf)
            np.minimum.at(first, ip[is_open], iopen[is_open])
            oldest[rows_j] = first[row_p[rows_j]]
        oldest[np.isinf(oldest)] = np.nan
    else:
        opened, closed = C[row_p, add, now], C[row_p, sub, now]
        if by_amount:
            level = out[_key("sum", balance["add"], None, 0)] - out[_key("sum", balance["subtract"], None, 0)]
        else:
            level = (opened - closed).astype(np.float64)
        # first in, first out: the oldest open item is the (closed + 1)-th opened one
        sel = ev_t == add
        p, when = ev_p[sel], ts[sel]
        order = np.lexsort((when, p))
        p, when = p[order], when[order]
        start = np.searchsorted(p, row_p, side="left")
        idx = start + np.minimum(closed, opened)
        has_open = opened > closed
        oldest = np.where(has_open, when[np.clip(idx, 0, max(len(when) - 1, 0))] if len(when) else np.nan, np.nan)
    out[f"bal|{name}"] = np.maximum(level, 0.0) if not by_amount else level
    out[f"oldest|{name}"] = oldest.astype(np.float64)


def _network(out, events, all_ts, snaps, row_j, edges, plan) -> None:
    """Network revenue in the segment window at each snapshot, and the strategic core threshold."""
    seg = plan.segments
    window = seg["revenue_window_days"]
    sel = (events["event_type"] == seg["revenue_type"]).to_numpy() & (all_ts < snaps[-1])
    value = events["amount"].to_numpy(dtype=np.float64, na_value=np.nan)[sel]
    ok = ~np.isnan(value)
    codes, _ = pd.factorize(events["partner_id"].to_numpy()[sel][ok])
    NB = len(edges) + 1
    bucket = np.searchsorted(edges, all_ts[sel][ok], side="right")
    n = int(codes.max()) + 1 if len(codes) else 0
    cum = np.bincount(codes * NB + bucket, weights=value[ok], minlength=n * NB).reshape(n, NB).cumsum(axis=-1)
    net_sum, core = np.zeros(len(snaps)), np.full(len(snaps), np.inf)
    for j, s in enumerate(snaps):
        rev = cum[:, np.searchsorted(edges, s)] - cum[:, np.searchsorted(edges, s - window * DAY)]
        net_sum[j] = rev.sum()
        if net_sum[j] > 0 and seg["strategic_core_share"] > 0:
            desc = np.sort(rev)[::-1]
            reach = np.searchsorted(np.cumsum(desc) / net_sum[j], seg["strategic_core_share"] - 1e-12)
            core[j] = desc[min(reach, len(desc) - 1)]
    out[f"net_sum|{window}"] = net_sum[row_j]
    out[f"net_core|{window}"] = core[row_j]
