"""Each partner's own rhythm: which events end a gap and which open a calendar period, per event type.

A weekly buyer three weeks silent is alarming, a quarterly one is not: the rhythm features compare a
partner with its own normal (:func:`~churnmodel.features.derive.derive_features` turns these into the
typical gap, its irregularity, how overdue the partner is and the share of active periods). The
engines count what is here in the same buckets as every other window aggregate, so each value at a
snapshot uses only the events before it.
"""

from __future__ import annotations

import numpy as np

from churnmodel.features.plan import FeaturePlan
from churnmodel.times import DAY

__all__ = ["rhythm_cells", "rhythm_period"]


def rhythm_period(plan: FeaturePlan) -> tuple[str, float]:
    """The period the active share counts in the longest window: ("week", 7) under 60 days, else ("month", 30.4375)."""
    return ("week", 7.0) if max(plan.windows) < 60 else ("month", 30.4375)


def rhythm_cells(cells: np.ndarray, ev_p: np.ndarray, ev_t: np.ndarray, ts: np.ndarray, plan: FeaturePlan) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """(cells, weights) to count per cell, only those the kinds in ``plan.rhythm`` use: the gaps that end
    at each event (its distance in days to the partner's previous event of its type: how many
    ``gapn``, their sum ``gaps1``, their sum of squares ``gaps2``) and the events that open a calendar
    period (:func:`rhythm_period`) for their partner and type (``active``).

    ``cells``: each event's table cell (bucket, type, partner); ``ev_p``, ``ev_t``: partner and type
    codes; ``ts``: whole seconds. A gap and a period's first event are fixed by the event and those
    before it: nothing later changes them.

    >>> plan = FeaturePlan(("order",), (), (), (7, 28), (), False, False, (), (), (), (), None, False, (), "", {}, {}, {},
    ...                    rhythm=("gap", "active_share"))
    >>> day = 86_400  # days 0, 2 and 9: Thursday, Saturday, and Saturday a week later
    >>> out = rhythm_cells(np.array([0, 1, 2]), np.zeros(3, int), np.zeros(3, int), np.array([0, 2, 9]) * day, plan)
    >>> sorted(out), out["gaps1"][0].tolist(), out["gaps1"][1].tolist(), out["active"][0].tolist()
    (['active', 'gapn', 'gaps1'], [1, 2], [2.0, 7.0], [0, 2])
    """
    kinds = set(plan.rhythm)
    group = ev_p.astype(np.int64) * len(plan.event_types) + ev_t
    if len(ts) == 0:
        order = np.arange(0)
    else:  # one int64 sort on (partner, type, time) when the key fits, else lexsort
        t0, span = int(ts.min()), int(ts.max()) - int(ts.min()) + 1
        fits = (int(group.max()) + 1) * span < 2 ** 62
        order = np.argsort(group * span + (ts - t0), kind="stable") if fits else np.lexsort((ts, group))
    g, when, where = group[order], ts[order], cells[order]
    same = np.zeros(len(order), dtype=bool)
    same[1:] = g[1:] == g[:-1]
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if kinds & {"overdue", "gap", "regularity"}:
        gap = np.diff(when, prepend=when[:1]) / DAY
        ended, gap = where[same], gap[same]
        out |= {"gapn": (ended, None), "gaps1": (ended, gap)} | ({"gaps2": (ended, gap * gap)} if "regularity" in kinds else {})
    if "active_share" in kinds:
        days = np.floor_divide(when, DAY)
        weeks = rhythm_period(plan)[0] == "week"
        period = (days + 3) // 7 if weeks else days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        opens = np.ones(len(order), dtype=bool)
        opens[1:] = ~same[1:] | (period[1:] != period[:-1])
        out["active"] = (where[opens], None)
    return out
