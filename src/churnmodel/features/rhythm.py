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

__all__ = ["rhythm_cells", "rhythm_period", "rhythm_tables_needed"]


def rhythm_period(plan: FeaturePlan) -> tuple[str, float]:
    """The period the active share counts in the longest window: ("week", 7) under 60 days, else ("month", 30.4375)."""
    return ("week", 7.0) if max(plan.windows) < 60 else ("month", 30.4375)


def rhythm_tables_needed(kinds: tuple[str, ...]) -> set[str]:
    """The counts :func:`rhythm_cells` gives that these rhythm kinds use.

    >>> sorted(rhythm_tables_needed(("overdue",)))
    ['gapn', 'gaps1']
    """
    needed = {"gapn", "gaps1"} if {"overdue", "gap", "regularity"} & set(kinds) else set()
    return needed | ({"gaps2"} if "regularity" in kinds else set()) | ({"active"} if "active_share" in kinds else set())


def rhythm_cells(cells: np.ndarray, ev_p: np.ndarray, ev_t: np.ndarray, ts: np.ndarray, n_types: int, *,
                 weeks: bool) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """(cells, weights) to count per cell: the gaps that end at each event (its distance in days to the
    partner's previous event of its type: how many, their sum, their sum of squares) and the events that
    open a calendar month (a Monday-to-Sunday week with ``weeks``) for their partner and type.

    ``cells``: each event's table cell (bucket, type, partner); ``ev_p``, ``ev_t``: partner and type
    codes; ``ts``: whole seconds. A gap and a period's first event are fixed by the event and those
    before it: nothing later changes them.

    >>> day = 86_400  # days 0, 2 and 9: Thursday, Saturday, and Saturday a week later
    >>> out = rhythm_cells(np.array([0, 1, 2]), np.zeros(3, int), np.zeros(3, int), np.array([0, 2, 9]) * day, 1, weeks=True)
    >>> out["gaps1"][0].tolist(), out["gaps1"][1].tolist(), out["active"][0].tolist()
    ([1, 2], [2.0, 7.0], [0, 2])
    """
    group = ev_p.astype(np.int64) * n_types + ev_t
    if len(ts) == 0:
        order = np.arange(0)
    else:  # one int64 sort on (partner, type, time) when the key fits, else lexsort
        t0, span = int(ts.min()), int(ts.max()) - int(ts.min()) + 1
        fits = (int(group.max()) + 1) * span < 2 ** 62
        order = np.argsort(group * span + (ts - t0), kind="stable") if fits else np.lexsort((ts, group))
    g, when, where = group[order], ts[order], cells[order]
    same = np.zeros(len(order), dtype=bool)
    same[1:] = g[1:] == g[:-1]
    gap = np.zeros(len(order))
    gap[1:] = (when[1:] - when[:-1]) / DAY
    days = np.floor_divide(when, DAY)
    period = (days + 3) // 7 if weeks else days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    opens = np.ones(len(order), dtype=bool)
    opens[1:] = ~same[1:] | (period[1:] != period[:-1])
    ended, gap = where[same], gap[same]
    return {"gapn": (ended, None), "gaps1": (ended, gap), "gaps2": (ended, gap * gap), "active": (where[opens], None)}
