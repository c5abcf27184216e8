"""Seed-grounded partner simulator with a known ground truth.

Partners of three segments (strategic, prospective, transactional) live month by month. Latent
states — support slowness, account-manager engagement, opacity (hidden withholdings, late
payments), mutual benefit, conflicts — drive the events the data shows: orders, tickets opened
and resolved, complaints, meetings (QBR/personal), portal logins, trainings, NPS answers, loyalty
bonuses, payment delays, holdbacks withheld/released and disputes. Each month's churn hazard is a
logistic function of what those events add up to (open backlog, slow resolution, no meeting for
months, NPS drop, late payments and overdue holdbacks, falling revenue, disputes; protective:
training and loyalty tier), and the simulator writes that hazard with each cause's contribution
in log-odds, so a model's explanations can be checked against the truth.

Same arguments -> identical frames (and byte-identical files).

>>> sim = simulate(n_partners=50, months=6, start="2024-01-01", random_state=1)
>>> sorted(sim.partners.columns)[:3]
['churned_at', 'industry', 'joined_at']
>>> bool(((sim.hazard[[f"contrib_{c}" for c in CAUSES]].sum(axis=1) + sim.hazard["baseline"])
...       - sim.hazard["logit"]).abs().max() < 1e-9)
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from churnmodel.data import atomic_write

__all__ = ["CAUSES", "EVENT_TYPES", "SEGMENTS", "SimulationResult", "simulate", "write_simulation"]

#: Causes of churn in the ground truth; the names are the retention levers they belong to.
CAUSES = (
    "responsiveness",
    "communication",
    "satisfaction",
    "transparency",
    "mutual_value",
    "conflict",
    "development",
    "loyalty",
)
EVENT_TYPES = (
    "order",
    "ticket_opened",
    "ticket_resolved",
    "complaint",
    "meeting",
    "portal_login",
    "training",
    "nps_response",
    "bonus_paid",
    "payment_delay",
    "holdback_withheld",
    "holdback_released",
    "dispute",
)
SEGMENTS = ("strategic", "prospective", "transactional")
_TYPE_CODE = {name: i for i, name in enumerate(EVENT_TYPES)}
_DAY = 86_400.0
_TIERS = np.array(["none", "silver", "gold", "platinum"])
_PARTNER_TYPES = np.array(["reseller", "supplier", "franchisee", "contractor"])
_REGIONS = np.array(["Central", "North-West", "South", "Volga", "Urals", "Siberia"])
_INDUSTRIES = np.array(["construction", "retail", "manufacturing", "logistics", "IT services"])
# segment -> (orders per month, median order value, base log-odds of monthly churn)
_SEGMENT_PARAMS = {0: (5.0, 40_000.0, -7.6), 1: (1.8, 6_000.0, -7.0), 2: (1.0, 2_500.0, -6.6)}


@dataclass(frozen=True)
class SimulationResult:
    """Inputs (partners, events, contracts) and ground truth (hazard per partner-month, truth per partner)."""

    partners: pd.DataFrame
    events: pd.DataFrame
    contracts: pd.DataFrame
    hazard: pd.DataFrame
    truth: pd.DataFrame
    params: dict


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _month_starts(start: str, months: int) -> np.ndarray:
    first = pd.Timestamp(start)
    if first != first.normalize() or first.day != 1 or first.tzinfo is not None:
        raise ValueError(f"start must be the first day of a month as YYYY-MM-01, got {start!r}")
    grid = pd.date_range(first, periods=months + 1, freq="MS")
    return grid.as_unit("s").asi8.astype(np.float64)


def _contract_chain(rng, joined_day, segment, churn_free_end_day):
    """Contracts from each partner's join day, renewed (with a short gap) until past the data end."""
    term_choices = {0: (24, 36), 1: (12, 12), 2: (6, 12)}
    n = len(joined_day)
    rows_pid, rows_start, rows_end = [], [], []
    start = joined_day.astype(np.int64)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        term = np.empty(len(idx), dtype=np.int64)
        for seg, (a, b) in term_choices.items():
            m = segment[idx] == seg
            term[m] = rng.choice(np.array([a, b]), size=int(m.sum()))
        end = start[idx] + np.round(term * 30.4375).astype(np.int64)
        rows_pid.append(idx)
        rows_start.append(start[idx])
        rows_end.append(end)
        gap = rng.integers(0, 15, size=len(idx))
        start[idx] = end + gap
        alive[idx] = end + gap < churn_free_end_day
    return np.concatenate(rows_pid), np.concatenate(rows_start), np.concatenate(rows_end)


def simulate(
    n_partners: int = 1000,
    months: int = 36,
    *,
    start: str = "2023-01-01",
    random_state: int = 0,
) -> SimulationResult:
    """Simulate ``months`` of partner history from ``start`` for ``n_partners`` partners."""
    if not isinstance(n_partners, int | np.integer) or n_partners < 1:
        raise ValueError(f"n_partners must be a positive integer, got {n_partners!r}")
    if not isinstance(months, int | np.integer) or not 1 <= months <= 240:
        raise ValueError(f"months must be an integer in [1, 240], got {months!r}")
    rng = np.random.default_rng(random_state)
    grid = _month_starts(start, months)
    t_start, t_end = grid[0], grid[-1]
    P = int(n_partners)

    # ---- partners: who, since when, which segment ---------------------------------------------
    initial = rng.random(P) < 0.7
    tenure_days = rng.integers(30, 8 * 365, size=P)
    join_offset = rng.random(P) * (t_end - t_start - 30 * _DAY)
    joined_day = np.where(initial, t_start / _DAY - tenure_days, np.floor((t_start + join_offset) / _DAY))
    joined_day = joined_day.astype(np.int64)
    young = (t_start / _DAY - joined_day) < 540
    u = rng.random(P)
    segment = np.where(u < np.where(young, 0.05, 0.14), 0, np.where(u < np.where(young, 0.70, 0.30), 1, 2))
    ptype = rng.choice(len(_PARTNER_TYPES), size=P, p=[0.35, 0.2, 0.15, 0.3])
    region = rng.choice(len(_REGIONS), size=P)
    industry = np.where(ptype == 3, 0, rng.choice(len(_INDUSTRIES), size=P))
    tier = np.minimum(3, rng.binomial(3, np.select([segment == 0, segment == 1], [0.6, 0.2], 0.15)))
    order_rate = np.array([_SEGMENT_PARAMS[s][0] for s in range(3)])[segment] * rng.lognormal(0, 0.3, P)
    order_value = np.array([_SEGMENT_PARAMS[s][1] for s in range(3)])[segment] * rng.lognormal(0, 0.5, P)
    base_logit = np.array([_SEGMENT_PARAMS[s][2] for s in range(3)])[segment]
    ticket_rate = np.where(segment == 0, 1.6, 0.8) * rng.lognormal(0, 0.4, P)
    train_prop = rng.normal(0, 0.7, P)
    contractor = ptype == 3

    c_pid, c_start, c_end = _contract_chain(rng, joined_day, segment, t_end / _DAY)
    renewal_day = np.full((P, months), -1, dtype=np.int64)  # a contract end inside month m
    end_month = np.searchsorted(grid, c_end * _DAY, side="right") - 1
    inside = (end_month >= 0) & (end_month < months)
    renewal_day[c_pid[inside], end_month[inside]] = c_end[inside]

    # ---- latent states ---------------------------------------------------------------------------
    # Each state = a static partner trait + a shock part that decays; shocks start near their
    # stationary level so the network neither improves nor degrades over the simulated years.
    slow_base = rng.normal(0, 0.4, P)
    slow_shock = np.where(rng.random(P) < 0.2, rng.uniform(0, 1.5, P), 0.0)
    engage_base = rng.normal(0.2, 0.5, P)
    engage_shock = np.where(rng.random(P) < 0.2, -rng.uniform(0, 1.6, P), 0.0)
    slow = slow_base + slow_shock
    engage = engage_base + engage_shock
    opaque = rng.random(P) < 0.12
    benefit = np.zeros(P)
    conflict = rng.random(P) < 0.07
    qbr_phase = rng.integers(0, 3, P)
    last_meeting = t_start - rng.uniform(0, 100, P) * _DAY * np.exp(-engage)
    last_meeting = np.where(initial, last_meeting, joined_day * _DAY)
    nps_last = np.full(P, np.nan)
    nps_prev = np.full(P, np.nan)
    churn_day = np.full(P, np.iinfo(np.int64).max, dtype=np.int64)
    churned = np.zeros(P, dtype=bool)

    rev = np.zeros((P, months + 1))
    delay = np.zeros((P, months + 1))
    disputes = np.zeros((P, months + 1))
    trainings = np.zeros((P, months + 1))
    res_sum = np.zeros((P, months + 1))
    res_cnt = np.zeros((P, months + 1))
    tk_pid = np.empty(0, dtype=np.int64)
    tk_open = np.empty(0)
    tk_res = np.empty(0)
    hb_pid = np.empty(0, dtype=np.int64)
    hb_amt = np.empty(0)
    hb_acc = np.empty(0)
    hb_rel = np.empty(0)

    ev_pid, ev_t, ev_type, ev_amt, ev_item, ev_detail = [], [], [], [], [], []
    haz_rows = []
    tickets = []
    item_counter = 0

    def emit(pid, t, etype, amount=None, item=None, detail=None):
        ev_pid.append(pid)
        ev_t.append(t)
        ev_type.append(np.full(len(pid), _TYPE_CODE[etype], dtype=np.int8))
        ev_amt.append(np.full(len(pid), np.nan) if amount is None else amount)
        ev_item.append(np.full(len(pid), -1, dtype=np.int64) if item is None else item)
        ev_detail.append(np.zeros(len(pid), dtype=np.int8) if detail is None else detail)

    for m in range(months):
        t0, t1 = grid[m], grid[m + 1]
        day0, day1 = int(t0 // _DAY), int(t1 // _DAY)
        present = (joined_day < day1) & ~churned
        at_risk = present & (joined_day < day0)
        idx_risk = np.flatnonzero(at_risk)

        # ---- hazard from the state at the month start -------------------------------------------
        pending = tk_res >= t0
        tk_pid, tk_open, tk_res = tk_pid[pending], tk_open[pending], tk_res[pending]
        backlog = np.bincount(tk_pid, minlength=P).astype(float)
        first_open = np.full(P, t0)
        np.minimum.at(first_open, tk_pid, tk_open)
        oldest_days = (t0 - first_open) / _DAY
        lo3 = max(0, m - 3)
        rc = res_cnt[:, lo3:m].sum(1)
        res_hours = np.where(rc > 0, res_sum[:, lo3:m].sum(1) / np.maximum(rc, 1), 18.0)
        months_silent = (t0 - last_meeting) / (30.44 * _DAY)
        hb_keep = hb_rel >= t0
        hb_pid, hb_amt, hb_acc, hb_rel = hb_pid[hb_keep], hb_amt[hb_keep], hb_acc[hb_keep], hb_rel[hb_keep]
        overdue = np.bincount(hb_pid, weights=hb_amt * (hb_acc + 60 * _DAY < t0), minlength=P)
        typical_rev = order_rate * order_value
        rev3 = rev[:, max(0, m - 3):m].sum(1)
        prior = rev[:, max(0, m - 6):max(0, m - 3)].sum(1)
        has_trend = m >= 6
        trend = np.where(has_trend, np.log((rev3 + 0.3 * typical_rev) / (prior + 0.3 * typical_rev)), 0.0)
        # Effects are not additive-linear: problems matter once they have piled up and stayed open,
        # silence once it lasts, detractors and collapses more than small moves; strategic partners
        # punish neglect harder. Trees can learn this; it is what the retention material describes.
        strategic = segment == 0
        nps_known = ~np.isnan(nps_last)
        nps = np.nan_to_num(nps_last, nan=7.0)
        delay_90 = delay[:, max(0, m - 3):m].sum(1)
        disputes_180 = disputes[:, max(0, m - 6):m].sum(1)
        contrib = {
            "responsiveness": 0.5 * np.log1p(backlog)
            + 1.3 * (backlog > 0) * _sigmoid((oldest_days - 45.0) / 8.0)
            + 0.3 * np.maximum(0, np.log(res_hours / 24.0)),
            "communication": np.where(months_silent > 5, 0.8 + 0.15 * (np.minimum(months_silent, 12) - 5), -0.3)
            * np.where(strategic, 1.6, 1.0),
            "satisfaction": np.where(nps_known, np.where(nps <= 6, 0.7 + 0.15 * (6 - nps), np.where(nps >= 9, -0.4, 0.0)), 0.0)
            + 0.5 * (np.nan_to_num(nps_prev - nps_last) >= 3),
            "transparency": 0.9 * (delay_90 > 30) + 0.01 * np.minimum(delay_90, 120)
            + 1.0 * np.minimum(overdue / np.maximum(typical_rev, 1.0), 2.0),
            "mutual_value": np.where(trend < -0.7, 1.2, -0.3 * np.clip(trend, -0.7, 0.5)),
            "conflict": 0.3 * (disputes_180 == 1) + 1.3 * (disputes_180 >= 2),
            "development": -0.3 * np.minimum(trainings[:, max(0, m - 12):m].sum(1), 4),
            "loyalty": -0.25 * tier,
        }
        tenure_m = (day0 - joined_day) / 30.44
        renewal = renewal_day[:, m] >= 0
        # partners with grievances wait for the contract to come up, then leave: at renewal every
        # risk-raising cause weighs more (an interaction, not an extra additive term)
        contrib = {c: np.where((v > 0) & renewal, 1.8 * v, v) for c, v in contrib.items()}
        baseline = base_logit + 0.35 * (tenure_m < 12) + 0.4 * renewal
        logit = baseline + sum(contrib.values())
        hazard = _sigmoid(logit)
        leave = np.zeros(P, dtype=bool)
        leave[idx_risk] = rng.random(len(idx_risk)) < hazard[idx_risk]
        n_leave = int(leave.sum())
        if n_leave:
            li = np.flatnonzero(leave)
            day = day0 + rng.integers(0, day1 - day0, size=n_leave)
            day = np.where(renewal[li], renewal_day[li, m], day)  # a contract is up: they do not renew
            churn_day[li] = day
        haz_rows.append(
            pd.DataFrame(
                {
                    "pid": idx_risk,
                    "month": np.full(len(idx_risk), m),
                    "backlog": backlog[idx_risk],
                    "baseline": baseline[idx_risk],
                    **{f"contrib_{c}": v[idx_risk] for c, v in contrib.items()},
                    "logit": logit[idx_risk],
                    "hazard": hazard[idx_risk],
                    "churned": leave[idx_risk],
                }
            )
        )

        # ---- latent dynamics -------------------------------------------------------------------
        slow_shock = 0.92 * slow_shock + 1.5 * (rng.random(P) < 0.015)
        slow = slow_base + slow_shock + rng.normal(0, 0.08, P)
        engage_shock = 0.95 * engage_shock - 1.6 * (rng.random(P) < 0.01)
        engage = engage_base + engage_shock + rng.normal(0, 0.1, P)
        opaque = np.where(opaque, rng.random(P) > 0.07, rng.random(P) < 0.01)
        drift = np.where((segment == 1) & (tenure_m < 24), 0.03, 0.0)
        benefit = 0.97 * benefit + drift + rng.normal(0, 0.08, P) - 0.8 * (rng.random(P) < 0.012)
        conflict = np.where(conflict, rng.random(P) > 0.06, rng.random(P) < 0.005)

        # ---- events inside the partner's active part of the month ------------------------------
        idx = np.flatnonzero(present)
        lo = np.maximum(t0, joined_day[idx] * _DAY)
        hi = np.minimum(t1, np.minimum(churn_day[idx], day1) * _DAY)
        ok = hi > lo
        idx, lo, hi = idx[ok], lo[ok], hi[ok]
        frac = (hi - lo) / (t1 - t0)

        def draw(rate, idx=idx, lo=lo, hi=hi, frac=frac):
            counts = rng.poisson(np.maximum(rate, 0) * frac)
            rows = np.repeat(np.arange(len(idx)), counts)
            return idx[rows], lo[rows] + rng.random(len(rows)) * (hi - lo)[rows]

        pid, t = draw(order_rate[idx] * np.exp(benefit[idx]))
        value = np.round(order_value[pid] * rng.lognormal(0, 0.5, len(pid)), 2)
        emit(pid, t, "order", value)
        np.add.at(rev[:, m], pid, value)
        hold = contractor[pid]
        if hold.any():
            h_pid, h_t, h_amt = pid[hold], t[hold] + _DAY, np.round(0.1 * value[hold], 2)
            acc = h_t + rng.uniform(15, 45, len(h_pid)) * _DAY
            wait = np.where(opaque[h_pid], 60 + rng.exponential(150, len(h_pid)), rng.exponential(10, len(h_pid)))
            rel = acc + wait * _DAY
            items = item_counter + np.arange(len(h_pid))
            item_counter += len(h_pid)
            keep = h_t < hi[np.searchsorted(idx, h_pid)]
            emit(h_pid[keep], h_t[keep], "holdback_withheld", h_amt[keep], items[keep])
            hb_pid = np.concatenate([hb_pid, h_pid[keep]])
            hb_amt = np.concatenate([hb_amt, h_amt[keep]])
            hb_acc = np.concatenate([hb_acc, acc[keep]])
            hb_rel = np.concatenate([hb_rel, rel[keep]])
            later = keep & (rel < np.minimum(t_end, churn_day[h_pid] * _DAY))
            emit(h_pid[later], rel[later], "holdback_released", h_amt[later], items[later])

        pid, t = draw(ticket_rate[idx] * (1 + 0.5 * opaque[idx] + 0.5 * conflict[idx]))
        items = item_counter + np.arange(len(pid))
        item_counter += len(pid)
        emit(pid, t, "ticket_opened", None, items)
        never = rng.random(len(pid)) < _sigmoid(-2.6 + 1.8 * slow[pid])
        hours = np.round(rng.lognormal(np.log(16.0) + 0.9 * slow[pid], 0.8), 1)
        hours = np.where(never, np.round(24 * (30 + rng.exponential(120, len(pid))), 1), hours)
        res_t = t + hours * 3600.0
        tk_pid = np.concatenate([tk_pid, pid])
        tk_open = np.concatenate([tk_open, t])
        tk_res = np.concatenate([tk_res, res_t])
        tickets.append((pid, t, res_t))
        done = res_t < np.minimum(t_end, churn_day[pid] * _DAY)
        emit(pid[done], res_t[done], "ticket_resolved", hours[done], items[done])
        res_month = np.searchsorted(grid, res_t[done], side="right") - 1
        np.add.at(res_sum, (pid[done], res_month), hours[done])
        np.add.at(res_cnt, (pid[done], res_month), 1)

        open_now = np.bincount(tk_pid[tk_res >= t1], minlength=P)[idx]
        pid, t = draw(0.03 + 0.12 * open_now + 0.05 * np.maximum(slow[idx], 0) + 0.1 * opaque[idx])
        emit(pid, t, "complaint")

        qbr = (m % 3 == qbr_phase[idx]) & (rng.random(len(idx)) < _sigmoid(1.4 + 1.6 * engage[idx] + (segment[idx] == 0)))
        q_t = lo[qbr] + rng.random(int(qbr.sum())) * (hi - lo)[qbr]
        emit(idx[qbr], q_t, "meeting", None, None, np.ones(int(qbr.sum()), dtype=np.int8))
        pid, t = draw(0.12 * np.exp(engage[idx]) * np.where(segment[idx] == 0, 2.0, 1.0))
        emit(pid, t, "meeting", None, None, np.full(len(pid), 2, dtype=np.int8))
        for p_, tt in ((idx[qbr], q_t), (pid, t)):
            np.maximum.at(last_meeting, p_, tt)

        pid, t = draw(1.5 * np.exp(0.6 * engage[idx] + 0.3 * benefit[idx]))
        emit(pid, t, "portal_login")
        pid, t = draw(0.05 * np.exp(train_prop[idx] + 0.4 * engage[idx]))
        emit(pid, t, "training")
        np.add.at(trainings[:, m], pid, 1)

        survey = (m % 3 == 1) & (rng.random(len(idx)) < 0.55)
        sp = idx[survey]
        score = (
            8.4
            - 0.9 * np.log1p(open_now[survey])
            - 0.4 * np.maximum(slow[sp], 0)
            - 1.3 * opaque[sp]
            - 0.15 * np.minimum((t1 - last_meeting[sp]) / (30.44 * _DAY), 12)
            - 1.2 * conflict[sp]
            + 0.5 * benefit[sp]
            + rng.normal(0, 1.2, len(sp))
        )
        score = np.clip(np.round(score), 0, 10)
        s_t = lo[survey] + rng.random(len(sp)) * (hi - lo)[survey]
        emit(sp, s_t, "nps_response", score)
        nps_prev[sp] = nps_last[sp]
        nps_last[sp] = score

        if m % 3 == 2:
            eligible = (tier[idx] > 0) & (rev[idx, max(0, m - 2):m + 1].sum(1) > 0) & (rng.random(len(idx)) < 0.95)
            bp = idx[eligible]
            amount = np.round(0.01 * tier[bp] * rev[bp, max(0, m - 2):m + 1].sum(1), 2)
            emit(bp, hi[eligible] - rng.random(len(bp)) * (hi - lo)[eligible] * 0.2, "bonus_paid", amount)

        pid, t = draw(0.06 + 0.7 * opaque[idx])
        days = np.round(np.where(opaque[pid], 10 + rng.exponential(25, len(pid)), 1 + rng.exponential(4, len(pid))))
        emit(pid, t, "payment_delay", days)
        np.add.at(delay[:, m], pid, days)
        pid, t = draw(0.008 + 0.35 * conflict[idx] + 0.04 * opaque[idx])
        emit(pid, t, "dispute")
        np.add.at(disputes[:, m], pid, 1)

        churned |= leave

    return _assemble(
        rng=rng, P=P, grid=grid, months=months, joined_day=joined_day, churn_day=churn_day,
        churned=churned, segment=segment, ptype=ptype, region=region, industry=industry, tier=tier,
        contracts=(c_pid, c_start, c_end), order_rate=order_rate, order_value=order_value,
        events=(ev_pid, ev_t, ev_type, ev_amt, ev_item, ev_detail), haz_rows=haz_rows,
        tickets=tuple(np.concatenate(x) for x in zip(*tickets, strict=True)),
        params={"n_partners": P, "months": months, "start": start, "random_state": random_state},
    )


def _day_to_ts(days: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(days.astype("int64"), unit="D", utc=True)).astype("datetime64[us, UTC]")


def _assemble(*, rng, P, grid, months, joined_day, churn_day, churned, segment, ptype, region,
              industry, tier, contracts, order_rate, order_value, events, haz_rows, tickets, params):
    ids = np.array([f"P{i:06d}" for i in range(P)], dtype=object)
    churn = np.where(churned, churn_day, -1)
    partners = pd.DataFrame(
        {
            "partner_id": ids,
            "joined_at": _day_to_ts(joined_day),
            "churned_at": _day_to_ts(np.where(churned, churn, 0)).where(churned),
            "partner_type": _PARTNER_TYPES[ptype],
            "region": _REGIONS[region],
            "industry": _INDUSTRIES[industry],
            "loyalty_tier": _TIERS[tier],
        }
    )
    c_pid, c_start, c_end = contracts
    end_data_day = int(grid[-1] // _DAY)
    cut = churn_day[c_pid]
    keep = (c_start < cut) & (c_start < end_data_day)
    c_pid, c_start, c_end, cut = c_pid[keep], c_start[keep], c_end[keep], cut[keep]
    terminated = np.where(cut < c_end, cut, -1)
    monthly = order_rate[c_pid] * order_value[c_pid]
    value = np.round(0.6 * monthly * rng.lognormal(0, 0.15, len(c_pid)), -1)
    order = np.lexsort((c_start, c_pid))
    contracts_df = pd.DataFrame(
        {
            "partner_id": ids[c_pid[order]],
            "start_date": _day_to_ts(c_start[order]),
            "end_date": _day_to_ts(c_end[order]),
            "value": value[order],
            "terminated_at": _day_to_ts(np.maximum(terminated[order], 0)).where(terminated[order] >= 0),
        }
    )

    ev_pid, ev_t, ev_type, ev_amt, ev_item, ev_detail = (np.concatenate(x) for x in events)
    ts = np.floor(ev_t).astype(np.int64)
    # Resolutions and releases were scheduled when the item was opened; a partner who left in
    # between never sees them.
    before_exit = ts < np.where(churned, churn_day, np.iinfo(np.int64).max // 86_400)[ev_pid] * 86_400
    order = np.flatnonzero(before_exit)
    order = order[np.lexsort((ev_type[order], ts[order], ev_pid[order]))]
    detail = np.array([None, "qbr", "personal"], dtype=object)[ev_detail[order]]
    item = pd.array(ev_item[order], dtype="Int64")
    item[ev_item[order] < 0] = pd.NA
    events_df = pd.DataFrame(
        {
            "partner_id": ids[ev_pid[order]],
            "timestamp": pd.Series(ts[order].astype("datetime64[s]")).dt.tz_localize("UTC").astype("datetime64[us, UTC]"),
            "event_type": np.array(EVENT_TYPES, dtype=object)[ev_type[order]],
            "amount": ev_amt[order],
            "item_id": item,
            "detail": detail,
        }
    )

    hz = pd.concat(haz_rows, ignore_index=True)
    month = pd.to_datetime(grid[:-1].astype("int64")[hz["month"].to_numpy()], unit="s", utc=True)
    hazard = pd.DataFrame({"partner_id": ids[hz["pid"]], "month": month.astype("datetime64[us, UTC]")})
    hazard = pd.concat([hazard, hz.drop(columns=["pid", "month"])], axis=1)

    cols = [f"contrib_{c}" for c in CAUSES]
    at_churn = hz.loc[hz["churned"]].set_index("pid")
    ranked = np.argsort(-at_churn[cols].to_numpy(), axis=1)
    truth = pd.DataFrame(
        {
            "partner_id": ids,
            "segment": np.array(SEGMENTS, dtype=object)[segment],
            "churned_at": partners["churned_at"],
        }
    )
    truth["top_cause"] = None
    truth["second_cause"] = None
    truth["backlog_at_churn"] = np.nan
    names = np.array(CAUSES, dtype=object)
    truth.loc[at_churn.index, "top_cause"] = names[ranked[:, 0]]
    truth.loc[at_churn.index, "second_cause"] = names[ranked[:, 1]]
    # open tickets at the moment of leaving: opened before, not resolved by then
    tk_pid, tk_open, tk_res = tickets
    leave_t = np.where(churned, churn_day, 0) * _DAY
    open_at_exit = churned[tk_pid] & (tk_open < leave_t[tk_pid]) & (tk_res >= leave_t[tk_pid])
    truth.loc[churned, "backlog_at_churn"] = np.bincount(tk_pid[open_at_exit], minlength=P)[churned]
    params = {**params, "data_end": pd.Timestamp(int(grid[-1]), unit="s", tz="UTC").isoformat()}
    return SimulationResult(partners, events_df, contracts_df, hazard, truth, params)


def write_simulation(result: SimulationResult, out_dir: str | Path, *, events_format: str = "parquet") -> list[Path]:
    """Write the inputs and ``ground_truth/`` to ``out_dir`` (each file atomically)."""
    if events_format not in ("parquet", "csv"):
        raise ValueError(f"events_format must be 'parquet' or 'csv', got {events_format!r}")
    out = Path(out_dir)
    truth_dir = out / "ground_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)

    def csv(frame: pd.DataFrame):
        def write(tmp: Path) -> None:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%d", lineterminator="\n")

        return write

    def parquet(frame: pd.DataFrame):
        def write(tmp: Path) -> None:
            frame.to_parquet(tmp, index=False, compression="zstd")

        return write

    def timestamps_csv(frame: pd.DataFrame):
        def write(tmp: Path) -> None:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%SZ", lineterminator="\n")

        return write

    written = [
        atomic_write(out / "partners.csv", csv(result.partners)),
        atomic_write(out / "contracts.csv", csv(result.contracts)),
        atomic_write(
            out / f"events.{events_format}",
            parquet(result.events) if events_format == "parquet" else timestamps_csv(result.events),
        ),
        atomic_write(truth_dir / "hazard.parquet", parquet(result.hazard)),
        atomic_write(truth_dir / "partners.csv", csv(result.truth)),
    ]
    params = json.dumps(result.params, indent=2, sort_keys=True) + "\n"
    written.append(atomic_write(truth_dir / "simulation.json", lambda tmp: tmp.write_text(params)))
    return written
