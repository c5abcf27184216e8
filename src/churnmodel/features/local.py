"""Local engine: the plan's primitives with numpy, bucket + cumulative sums (measured fastest here).

Every snapshot date ``s`` and every window offset give a cut point (``s - W`` days). Events are put
in the bucket between two consecutive cut points, counted per (partner, bucket, type) with one
``bincount`` and cumulated along buckets, so ``C[p, k, t]`` = events of type ``t`` with time
``< edges[k]``. A window count is then a difference of two lookups, exact for any snapshot dates.
Times are whole seconds: for a cut point at a whole second, ``ts < s`` iff ``floor(ts) < s``.
An event exactly at the cut point belongs to the future.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnmodel.features.btyd import btyd_summaries
from churnmodel.features.plan import Btyd, FeaturePlan
from churnmodel.features.rhythm import rhythm_cells
from churnmodel.times import DAY, seconds

__all__ = ["LocalPrimitives", "Network", "compute_primitives", "strategic_core"]


def _key(kind: str, event_type: str, lo: int | None, hi: int) -> str:
    return f"{kind}|{event_type}|{'all' if lo is None else lo}|{hi}"


class LocalPrimitives(Mapping):
    """Primitives computed on access from dense cumulative tables (memory: the tables, not every vector).

    Layout ``[type, partner, bucket]``: one type's column for all rows is a single ``take`` with a
    flat index per cut point, shared by every type and every table.
    """

    def __init__(self, events: pd.DataFrame, rows: pd.DataFrame, plan: FeaturePlan, network: Network | None = None) -> None:
        self.plan = plan
        self.eager: dict[str, np.ndarray] = {}
        universe = pd.Index(pd.unique(rows["partner_id"]))
        row_p = universe.get_indexer(rows["partner_id"])
        snaps, row_j = np.unique(seconds(rows["snapshot"]), return_inverse=True)
        P, T = len(universe), len(plan.event_types)

        # codes once per column (hashing strings is the expensive part), then small lookups
        p_codes, p_uniques = pd.factorize(events["partner_id"])
        t_codes, t_uniques = pd.factorize(events["event_type"])
        all_t = pd.Index(plan.event_types).get_indexer(t_uniques)[t_codes]
        all_ts = seconds(events["timestamp"])
        all_amount = events["amount"].to_numpy(dtype=np.float64, na_value=np.nan)
        if plan.segments is not None:
            if network is None:
                is_revenue = all_t == plan.event_types.index(plan.segments.revenue_type)
                network = _network(p_codes, p_uniques, is_revenue, all_ts, all_amount, snaps, plan)
            window = plan.segments.revenue_window_days
            self.eager[f"net_sum|{window}"], self.eager[f"net_core|{window}"] = network.lookup(rows["partner_id"], snaps[row_j])
        all_p = universe.get_indexer(p_uniques)[p_codes]
        mask = (all_p >= 0) & (all_t >= 0) & (all_ts < snaps[-1])
        keep = slice(None) if mask.all() else np.flatnonzero(mask)  # no copies when every event counts
        ev_p, ev_t, ts, amount = all_p[keep], all_t[keep], all_ts[keep], all_amount[keep]
        del p_codes, t_codes, all_t, all_ts, all_amount, all_p, mask

        edges = np.unique(np.concatenate(
            [snaps - hi * DAY for _, hi in plan.intervals()] + [snaps - lo * DAY for lo, _ in plan.intervals() if lo is not None]))
        self.NB = NB = len(edges) + 1
        self._edges, self._snaps, self._row_p, self._row_j = edges, snaps, row_p, row_j
        self._flat: dict[int, np.ndarray] = {}
        bucket = _buckets(edges, ts)
        cells = bucket * T
        cells += ev_t
        cells *= P
        cells += ev_p
        self._counts = _cumulative(cells, None, (NB, T, P))
        if plan.rhythm:
            self._rhythm = {name: _cumulative(where, weights, (NB, T, P)) for name, (where, weights) in rhythm_cells(cells, ev_p, ev_t, ts, plan).items()}
        if plan.recency or plan.rhythm:
            # snapshot dates are among the cut points: the snapshot bucket is a lookup of the cut bucket
            to_snapshot = np.concatenate([[0], np.cumsum(np.isin(edges, snaps))])
            self._last = _last_times(ev_p, ev_t, ts, to_snapshot[bucket], P, T, len(snaps))
        self._amount_index = {t: i for i, t in enumerate(plan.amount_types)}
        self._nn_from_counts = False
        if plan.amount_types:
            remap = np.full(T, -1)
            remap[[plan.event_types.index(t) for t in plan.amount_types]] = np.arange(len(plan.amount_types))
            has_type = remap[ev_t] >= 0
            sel = has_type & ~np.isnan(amount)
            # when every event of the amount types has an amount, the counts table already holds n
            self._nn_from_counts = bool(sel.sum() == has_type.sum())
            if sel.all():
                a_p, a_t, values, a_cells = ev_p, remap[ev_t], amount, cells
            else:
                a_p, a_t, values, a_cells = ev_p[sel], remap[ev_t[sel]], amount[sel], cells[sel]
            if plan.amount_types != plan.event_types:  # cells in a table of the amount types only
                a_cells = (bucket if sel.all() else bucket[sel]) * len(plan.amount_types)
                a_cells += a_t
                a_cells *= P
                a_cells += a_p
            shape = (NB, len(plan.amount_types), P)
            self._sums = _cumulative(a_cells, values, shape)
            if not self._nn_from_counts:
                self._nn = _cumulative(a_cells, None, shape)
            if "max" in plan.aggregations:
                self._max = _window_max(a_cells, values, shape, edges, snaps, plan.windows)
            del a_cells
        del cells
        now = self._cut(0)
        if plan.btyd is not None:
            sel = ev_t == plan.event_types.index(plan.btyd.event_type)
            summaries = btyd_summaries(ev_p[sel], ts[sel], row_p, snaps[row_j])
            self.eager |= dict(zip(Btyd.SUMMARIES, summaries, strict=True))
        for score in plan.scores:
            _scores(self.eager, score.event_type, plan, ev_p, ev_t, ts, amount, row_p, snaps[row_j])
        for balance in plan.balances:
            items = events[balance.item_column].to_numpy()[keep] if balance.item_column else None
            _balance(self, balance, plan, items, ev_p, ev_t, ts, amount, row_p, row_j, snaps, now)

    def _cut(self, offset_days: int) -> np.ndarray:
        """Per row, the index of the cut point ``snapshot - offset_days``."""
        if offset_days not in self._flat:
            self._flat[offset_days] = np.searchsorted(self._edges, self._snaps - offset_days * DAY)[self._row_j]
        return self._flat[offset_days]

    def _take(self, table: np.ndarray, first: np.ndarray, i: int) -> np.ndarray:
        """``table[first[r], i, row_p[r]]`` for every row r, as one flat ``take``."""
        _, n_types, n_partners = table.shape
        index = first * (n_types * n_partners)
        index += i * n_partners + self._row_p
        return table.reshape(-1).take(index)

    def _window(self, table: np.ndarray, i: int, lo: int | None, hi: int) -> np.ndarray:
        total = self._take(table, self._cut(hi), i).astype(np.float64)
        if lo is not None:
            total -= self._take(table, self._cut(lo), i)
        return total

    def __getitem__(self, key: str) -> np.ndarray:
        if key in self.eager:
            return self.eager[key]
        kind, *rest = key.split("|")
        plan = self.plan
        if kind == "last":
            t = plan.event_types.index(rest[0])
            return self._take(self._last, self._row_j, t)
        lo, hi = (None if rest[1] == "all" else int(rest[1])), int(rest[2])
        if kind == "count":
            return self._window(self._counts, plan.event_types.index(rest[0]), lo, hi)
        if kind in ("gapn", "gaps1", "gaps2", "active"):
            return self._window(self._rhythm[kind], plan.event_types.index(rest[0]), lo, hi)
        i = self._amount_index[rest[0]]
        if kind == "sum":
            return self._window(self._sums, i, lo, hi)
        if kind == "nn":
            if self._nn_from_counts:
                return self._window(self._counts, plan.event_types.index(rest[0]), lo, hi)
            return self._window(self._nn, i, lo, hi)
        if kind == "max":
            return self._take(self._max[lo], self._row_j, i)
        raise KeyError(key)

    def __iter__(self):
        return iter(self.eager)

    def __len__(self) -> int:
        return len(self.eager)


def compute_primitives(events: pd.DataFrame, rows: pd.DataFrame, plan: FeaturePlan, *,
                       network: Network | None = None) -> Mapping[str, np.ndarray]:
    """Primitive aggregates for each row of ``rows`` (``partner_id``, ``snapshot``), by name.

    ``network``: network-wide revenue facts computed elsewhere (a partition of a bigger event log);
    by default they come from ``events``.
    """
    if len(rows) == 0:
        return {}
    return LocalPrimitives(events, rows, plan, network)


def _cumulative(cells: np.ndarray, weights: np.ndarray | None, shape: tuple[int, int, int]) -> np.ndarray:
    """Counts (or sums) per [bucket, type, partner] cell, cumulated along buckets in place."""
    table = np.bincount(cells, weights=weights, minlength=int(np.prod(shape))).reshape(shape)
    np.cumsum(table, axis=0, out=table)
    return table


def _buckets(edges: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Number of cut points <= each time. With cut points on whole days, a per-day lookup table."""
    if len(ts) == 0 or np.any(edges % DAY):
        return np.searchsorted(edges, ts, side="right")
    first = min(int(ts.min()), int(edges[0])) // DAY
    days = np.arange(first, max(int(ts.max()), int(edges[-1])) // DAY + 1)
    table = np.searchsorted(edges, days * DAY, side="right")
    day = np.floor_divide(ts, DAY)
    day -= first
    return table[day]


def _last_times(ev_p, ev_t, ts, bucket, P, T, S) -> np.ndarray:
    """[snapshot, type, partner] -> last event time before that snapshot (NaN if none).

    ``bucket`` = number of snapshot dates <= the event time: events before snapshot j are in buckets <= j.
    """
    last = np.full(S * T * P, -np.inf)
    cells = bucket * T
    cells += ev_t
    cells *= P
    cells += ev_p
    np.maximum.at(last, cells, ts.astype(np.float64))
    last = last.reshape(S, T, P)
    np.maximum.accumulate(last, axis=0, out=last)
    last[np.isinf(last)] = np.nan
    return last


def _window_max(cells, values, shape, edges, snaps, windows) -> dict[int, np.ndarray]:
    """Per window: [snapshot, amount type, partner] -> largest amount in [s - w days, s).

    Maxima do not subtract: take the maximum per bucket once, then reduce over the buckets inside
    each window (cut points include every ``s - w``, so windows are unions of whole buckets)."""
    top = np.full(int(np.prod(shape)), -np.inf)
    np.maximum.at(top, cells, values)
    top = top.reshape(shape)
    result = {}
    for w in windows:
        out = np.full((len(snaps), shape[1], shape[2]), -np.inf)
        for j, s in enumerate(snaps):
            k0, k1 = np.searchsorted(edges, [s - w * DAY, s])
            if k1 > k0:
                np.max(top[k0 + 1 : k1 + 1], axis=0, out=out[j])
        out[np.isinf(out)] = np.nan
        result[w] = out
    return result


def _scores(out, name, plan, ev_p, ev_t, ts, amount, row_p, row_s) -> None:
    """Last and previous score before each snapshot: sort by (partner, time), then one searchsorted."""
    sel = (ev_t == plan.event_types.index(name)) & ~np.isnan(amount)
    p, when, value = ev_p[sel], ts[sel], amount[sel]
    order = np.lexsort((when, p))
    p, when, value = p[order], when[order], value[order]
    last, prev = np.full(len(row_p), np.nan), np.full(len(row_p), np.nan)
    if len(p):
        base = min(when.min(), row_s.min()) - 1
        span = max(when.max(), row_s.max()) - base + 1
        keys = p * span + (when - base)
        pos = np.searchsorted(keys, row_p * span + (row_s - base), side="left") - 1
        for shift, target in ((0, last), (1, prev)):
            i = pos - shift
            ok = (i >= 0) & (pos >= 0)
            ok[ok] &= p[i[ok]] == row_p[ok]
            target[ok] = value[i[ok]]
    out[f"score_last|{name}"] = last
    out[f"score_prev|{name}"] = prev


def _balance(prims, balance, plan, items, ev_p, ev_t, ts, amount, row_p, row_j, snaps, now) -> None:
    """Open items (opened, not yet closed) at each snapshot and the age of the oldest."""
    name = balance.name
    add, sub = plan.event_types.index(balance.add), plan.event_types.index(balance.subtract)
    by_amount = balance.measure == "amount"
    R, P = len(row_p), prims._counts.shape[2]
    if items is not None:
        level, oldest = _linked_balance(add, sub, by_amount, items, ev_p, ev_t, ts, amount, row_p, row_j, snaps, P)
    elif by_amount:
        level, oldest = _fifo_amount_balance(prims, balance, add, ev_p, ev_t, ts, amount, row_p)
    else:
        opened = prims._take(prims._counts, now, add)
        closed = prims._take(prims._counts, now, sub)
        level = np.maximum(opened - closed, 0).astype(np.float64)
        # first in, first out: the oldest open item is the (closed + 1)-th opened one
        sel = ev_t == add
        p, when = ev_p[sel], ts[sel]
        order = np.lexsort((when, p))
        p, when = p[order], when[order].astype(np.float64)
        idx = np.searchsorted(p, row_p, side="left") + np.minimum(closed, opened)
        oldest = np.full(R, np.nan)
        has_open = opened > closed
        oldest[has_open] = when[idx[has_open]]
    prims.eager[f"bal|{name}"] = level
    prims.eager[f"oldest|{name}"] = oldest


def _linked_balance(add, sub, by_amount, items, ev_p, ev_t, ts, amount, row_p, row_j, snaps, P):
    """Items matched by id: open at s = opened before s and not closed before s.

    The amount of an open item is the sum of its opening events before s (an item may be topped up).
    """
    mine = np.flatnonzero(np.isin(ev_t, [add, sub]))
    frame = pd.DataFrame({"p": ev_p[mine], "item": items[mine], "t": ts[mine].astype(np.float64), "is_add": ev_t[mine] == add})
    # an item is a (partner, item id) pair: ids may repeat across partners
    key = frame.groupby(["p", "item"], sort=False).ngroup().to_numpy()
    n_items = int(key.max()) + 1 if len(key) else 0
    opened, closed = np.full(n_items, np.inf), np.full(n_items, np.inf)
    is_add = frame["is_add"].to_numpy()
    when = frame["t"].to_numpy()
    np.minimum.at(opened, key[is_add], when[is_add])
    np.minimum.at(closed, key[~is_add], when[~is_add])
    item_p = np.zeros(n_items, dtype=np.int64)
    item_p[key] = frame["p"].to_numpy()
    adds = np.flatnonzero(is_add)
    add_key, add_t = key[adds], when[adds]
    add_value = np.nan_to_num(amount[mine][adds]) if by_amount else None
    level, oldest = np.zeros(len(row_p)), np.full(len(row_p), np.nan)
    for j, s in enumerate(snaps):
        rows_j = np.flatnonzero(row_j == j)
        is_open = (opened < s) & ~(closed < s)
        if by_amount:
            counted = (add_t < s) & is_open[add_key]
            total = np.bincount(item_p[add_key[counted]], weights=add_value[counted], minlength=P)
        else:
            total = np.bincount(item_p[is_open], minlength=P).astype(np.float64)
        level[rows_j] = total[row_p[rows_j]]
        first = np.full(P, np.inf)
        np.minimum.at(first, item_p[is_open], opened[is_open])
        oldest[rows_j] = first[row_p[rows_j]]
    oldest[np.isinf(oldest)] = np.nan
    return level, oldest


def _fifo_amount_balance(prims, balance, add, ev_p, ev_t, ts, amount, row_p):
    """Amounts without item ids: releases pay off the oldest withholdings first.

    Outstanding = withheld - released before s; the oldest open withholding is the first whose
    running total of withheld amounts exceeds what has been released.
    """
    level = prims[_key("sum", balance.add, None, 0)] - prims[_key("sum", balance.subtract, None, 0)]
    released = prims[_key("sum", balance.subtract, None, 0)]
    sel = (ev_t == add) & ~np.isnan(amount)
    p, when, value = ev_p[sel], ts[sel].astype(np.float64), amount[sel]
    order = np.lexsort((when, p))
    p, when, value = p[order], when[order], value[order]
    oldest = np.full(len(row_p), np.nan)
    if len(p):
        start = np.searchsorted(p, np.arange(p.max() + 2), side="left")
        running = np.cumsum(value)
        before = np.concatenate([[0.0], running])[start[p]]  # total withheld by earlier partners
        within = running - before  # running total within the partner
        span = within.max() + released.max() + 1.0
        keys = p * span + within
        first = np.searchsorted(keys, row_p * span + released, side="right")
        ok = (level > 1e-9) & (first < len(keys))
        ok[ok] &= p[first[ok]] == row_p[ok]
        oldest[ok] = when[first[ok]]
    return level, oldest


@dataclass(frozen=True)
class Network:
    """Network-wide revenue facts per snapshot date, the only inputs that cross partners.

    ``snapshots``: snapshot times (int seconds); ``net_sum``: network revenue in the segment window
    at each; ``core``: the (``partner_id``, ``snapshot`` seconds) pairs in the strategic core.
    Engines compute it over the whole event log; the rows of any partition then look it up.
    """

    snapshots: np.ndarray
    net_sum: np.ndarray
    core: pd.DataFrame

    def lookup(self, partner_id: pd.Series | np.ndarray, snapshot_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(network revenue, in the strategic core as 0/1) for each (partner, snapshot) row."""
        j = np.searchsorted(self.snapshots, snapshot_s)
        ok = (j < len(self.snapshots)) & (self.snapshots[np.minimum(j, len(self.snapshots) - 1)] == snapshot_s)
        if not ok.all():
            raise ValueError("network facts were computed for other snapshot dates than these rows")
        # integer keys (core partner code x snapshot index): a hash lookup of each row id against the
        # small core only, no per-row tuples
        core_ids = pd.Index(pd.unique(self.core["partner_id"].to_numpy(dtype=object)))
        S = len(self.snapshots)
        code = core_ids.get_indexer(np.asarray(partner_id, dtype=object))
        core_keys = core_ids.get_indexer(self.core["partner_id"].to_numpy(dtype=object)) * S + np.searchsorted(
            self.snapshots, self.core["snapshot"].to_numpy(dtype=np.int64))
        in_core = (code >= 0) & np.isin(code * S + j, core_keys)
        return self.net_sum[j].astype(np.float64), in_core.astype(np.float64)


def strategic_core(revenue: np.ndarray, core_share: float) -> tuple[float, np.ndarray]:
    """Network revenue and which partners form the strategic core: the largest partners that together
    make ``core_share`` of it (revenue > 0). One snapshot; ``revenue`` per partner in the window."""
    net = float(revenue.sum())
    if not (net > 0 and core_share > 0):
        return net, np.zeros(len(revenue), dtype=bool)
    desc = np.sort(revenue)[::-1]
    reach = np.searchsorted(np.cumsum(desc) / net, core_share - 1e-12)
    threshold = desc[min(reach, len(desc) - 1)]
    return net, (revenue >= threshold) & (revenue > 0)


def _network(p_codes, p_uniques, is_revenue, all_ts, all_amount, snaps, plan) -> Network:
    seg = plan.segments
    window = seg.revenue_window_days
    sel = np.flatnonzero(is_revenue & (all_ts < snaps[-1]) & ~np.isnan(all_amount))
    cuts = np.unique(np.concatenate([snaps - window * DAY, snaps]))
    NB = len(cuts) + 1
    bucket = np.searchsorted(cuts, all_ts[sel], side="right")
    n_partners = len(p_uniques)
    cum = np.bincount(p_codes[sel] * NB + bucket, weights=all_amount[sel], minlength=n_partners * NB)
    cum = cum.reshape(n_partners, NB).cumsum(axis=1)
    net_sum = np.zeros(len(snaps))
    core_ids, core_snaps = [], []
    for j, s in enumerate(snaps):
        k0, k1 = np.searchsorted(cuts, [s - window * DAY, s])
        net_sum[j], in_core = strategic_core(cum[:, k1] - cum[:, k0], seg.strategic_core_share)
        core_ids.append(np.asarray(p_uniques)[in_core])
        core_snaps.append(np.full(int(in_core.sum()), s, dtype=np.int64))
    core = pd.DataFrame({"partner_id": np.concatenate(core_ids) if core_ids else [], "snapshot": np.concatenate(core_snaps) if core_snaps else []})
    return Network(snaps, net_sum, core)
