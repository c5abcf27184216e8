"""A consumer-like purchase log, as buy-till-you-die models assume it: the scenario where the BG/NBD
baseline is at its best (``benchmarks/bench_quality.py``).

Customers arrive at a steady rate over the whole span. While active, each buys at its own Poisson
rate (gamma-distributed across customers); after every purchase it leaves for good with its own
probability (beta-distributed). Amounts are lognormal around a per-customer level. Nothing else is
recorded: no tickets, meetings or contracts, and the moment a customer leaves is never seen, so the
label is inactivity (``label.source: inactivity``). The ground truth (each customer's rate, dropout
probability and the day it left) comes back in ``truth``.

>>> sim = simulate_consumers(200, months=12, random_state=3)
>>> sorted(sim.events["event_type"].unique()), list(sim.partners.columns)
(['order'], ['partner_id', 'joined_at', 'churned_at'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnmodel.times import DAY

__all__ = ["ConsumerLog", "simulate_consumers"]


@dataclass(frozen=True)
class ConsumerLog:
    partners: pd.DataFrame  # partner_id, joined_at (first purchase), churned_at (empty: never observed)
    events: pd.DataFrame  # one order per purchase, with its amount
    truth: pd.DataFrame  # partner_id, rate_per_day, dropout, left_at (NaT: still active at the end)


def simulate_consumers(n_customers: int, *, months: int = 36, start: str = "2023-01-01", random_state: int,
                       r: float = 0.6, alpha: float = 12.0, a: float = 1.0, b: float = 6.0,
                       arrival_days: int | None = None) -> ConsumerLog:
    """``n_customers`` BG/NBD customers over ``months`` from ``start``: rates ~ gamma(``r``, scale 1/``alpha``
    per day), dropout after each purchase ~ beta(``a``, ``b``). The defaults give a purchase every ~20 days
    on average while active and ~7 purchases in a lifetime. ``arrival_days``: customers arrive only in the
    first this many days (a single cohort, e.g. 30), by default over the whole span."""
    rng = np.random.default_rng(random_state)
    t0 = pd.Timestamp(start, tz="UTC")
    span = ((t0 + pd.DateOffset(months=months)) - t0).days
    joined = np.sort(rng.uniform(0, min(arrival_days or span, span) - 1, n_customers))  # the first purchase, in days
    rate, dropout = rng.gamma(r, 1 / alpha, n_customers), rng.beta(a, b, n_customers)
    level = rng.lognormal(3.5, 0.6, n_customers)
    owner, day, left = [], [], np.full(n_customers, np.nan)
    for i in range(n_customers):
        t = joined[i]
        while t < span:
            owner.append(i)
            day.append(t)
            if rng.random() < dropout[i]:
                left[i] = t
                break
            t += rng.exponential(1 / rate[i])
    owner, day = np.asarray(owner), np.asarray(day)
    ids = np.array([f"C{i:06d}" for i in range(n_customers)])
    stamp = (t0 + pd.to_timedelta(np.round(day * DAY), unit="s")).astype("datetime64[us, UTC]")
    events = pd.DataFrame({"partner_id": ids[owner], "timestamp": stamp, "event_type": "order",
                           "amount": np.round(level[owner] * rng.lognormal(0, 0.4, len(owner)), 2)})
    partners = pd.DataFrame({"partner_id": ids, "joined_at": (t0 + pd.to_timedelta(np.floor(joined), unit="D")).astype("datetime64[us, UTC]"),
                             "churned_at": pd.Series(pd.NaT, index=range(n_customers), dtype="datetime64[us, UTC]")})
    left_at = pd.Series(t0 + pd.to_timedelta(left, unit="D")).astype("datetime64[us, UTC]")
    truth = pd.DataFrame({"partner_id": ids, "rate_per_day": rate, "dropout": dropout, "left_at": left_at})
    return ConsumerLog(partners, events.sort_values(["timestamp", "partner_id"], kind="stable").reset_index(drop=True), truth)
