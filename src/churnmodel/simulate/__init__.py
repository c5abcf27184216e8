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

Same arguments -> identical frames (and byte-identical files). The steps live in
:mod:`churnmodel.simulate.month` (partner state, hazard and churn, latent dynamics) and
:mod:`churnmodel.simulate.events` (each event family); this module draws the partners and their
contracts, runs the months and assembles the frames.

>>> sim = simulate(n_partners=50, months=6, start="2024-01-01", random_state=1)
>>> sorted(sim.partners.columns)[:3]
['churned_at', 'industry', 'joined_at']
>>> bool(((sim.hazard[[f"contrib_{c}" for c in CAUSES]].sum(axis=1) + sim.hazard["baseline"])
...       - sim.hazard["logit"]).abs().max() < 1e-9)
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from churnmodel.outputs import atomic_write
from churnmodel.simulate.campaigns import ACTIONS, Campaigns
from churnmodel.simulate.events import EVENT_TYPES, EventLog, Scene, Window, month_events
from churnmodel.simulate.month import (
    CAUSES,
    DAY,
    History,
    Holdbacks,
    Latent,
    Month,
    Population,
    Regime,
    Tickets,
    decide_churn,
    evolve_latent,
    initial_history,
    initial_latent,
    monthly_risk,
    sigmoid,
)

__all__ = ["CAUSES", "EVENT_TYPES", "SEGMENTS", "Regime", "SimulationResult", "simulate", "write_simulation"]

SEGMENTS = ("strategic", "prospective", "transactional")
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
    campaigns: pd.DataFrame | None = None  # with campaigns=True: every assignment and its true effect


@dataclass(frozen=True)
class _Contracts:
    """Each partner's chain of contracts: partner, start and scheduled end (days since 1970)."""

    pid: np.ndarray
    start: np.ndarray
    end: np.ndarray


@dataclass(frozen=True)
class _Run:
    """What the simulated months produced, for the result frames."""

    churn_day: np.ndarray  # int64 max for partners who stay
    churned: np.ndarray
    events: tuple[np.ndarray, ...]  # partner, time, type code, amount, item id, detail code
    hazard: pd.DataFrame  # per partner (pid) and month at risk: the Risk rows
    tickets: Tickets  # every ticket opened
    assignments: pd.DataFrame | None = None  # the campaigns' assignments (Campaigns.assignments)
    dislikes: np.ndarray | None = None  # partners an approach pushes away (with campaigns)


def simulate(
    n_partners: int = 1000,
    months: int = 36,
    *,
    start: str = "2023-01-01",
    random_state: int = 0,
    campaigns: bool = False,
    regime: Regime | None = None,
) -> SimulationResult:
    """Simulate ``months`` of partner history from ``start`` for ``n_partners`` partners. ``campaigns``:
    also retention campaigns (randomised and targeted, :mod:`churnmodel.simulate.campaigns`), drawn from
    their own random stream, logged as action events with ``campaign_id`` and ``control``. ``regime``: a
    change no input shows (:class:`~churnmodel.simulate.month.Regime`), for monitoring to catch."""
    if not isinstance(n_partners, int | np.integer) or n_partners < 1:
        raise ValueError(f"n_partners must be a positive integer, got {n_partners!r}")
    if not isinstance(months, int | np.integer) or not 1 <= months <= 240:
        raise ValueError(f"months must be an integer in [1, 240], got {months!r}")
    rng = np.random.default_rng(random_state)
    grid = _month_starts(start, months)
    P = int(n_partners)
    # The order of these steps is the order of the random draws: keep it.
    pop = _draw_population(rng, grid, P)
    contracts = _contract_chain(rng, pop.joined_day, pop.segment, grid[-1] / DAY)
    latent = initial_latent(rng, P)
    history = initial_history(rng, pop, latent, t_start=grid[0], months=months)
    renewal_day = _renewal_days(contracts, grid, n_partners=P, months=months)
    team = Campaigns.start(random_state, P, months) if campaigns else None
    run = _run_months(rng, pop, latent, history, renewal_day=renewal_day, grid=grid, campaigns=team, regime=regime)
    params = {"n_partners": P, "months": months, "start": start, "random_state": random_state} | ({"campaigns": True} if campaigns else {}) \
        | ({"regime": vars(regime)} if regime is not None else {})
    return _assemble(rng, pop, contracts, run, grid=grid, params=params)


def _month_starts(start: str, months: int) -> np.ndarray:
    """The ``months + 1`` month starts from ``start`` in seconds since 1970 (the last is the data end)."""
    first = pd.Timestamp(start)
    if first != first.normalize() or first.day != 1 or first.tzinfo is not None:
        raise ValueError(f"start must be the first day of a month as YYYY-MM-01, got {start!r}")
    grid = pd.date_range(first, periods=months + 1, freq="MS")
    return grid.as_unit("s").asi8.astype(np.float64)


def _draw_population(rng: np.random.Generator, grid: np.ndarray, P: int) -> Population:
    """Who the partners are: since when, which segment, their attributes and base rates."""
    t_start, t_end = grid[0], grid[-1]
    initial = rng.random(P) < 0.7
    tenure_days = rng.integers(30, 8 * 365, size=P)
    join_offset = rng.random(P) * (t_end - t_start - 30 * DAY)
    joined_day = np.where(initial, t_start / DAY - tenure_days, np.floor((t_start + join_offset) / DAY))
    joined_day = joined_day.astype(np.int64)
    young = (t_start / DAY - joined_day) < 540
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
    return Population(
        initial=initial, joined_day=joined_day, segment=segment, ptype=ptype, region=region,
        industry=industry, tier=tier, order_rate=order_rate, order_value=order_value,
        base_logit=base_logit, ticket_rate=ticket_rate, train_prop=train_prop, contractor=ptype == 3,
    )


def _contract_chain(
    rng: np.random.Generator, joined_day: np.ndarray, segment: np.ndarray, churn_free_end_day: float
) -> _Contracts:
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
    return _Contracts(np.concatenate(rows_pid), np.concatenate(rows_start), np.concatenate(rows_end))


def _renewal_days(contracts: _Contracts, grid: np.ndarray, *, n_partners: int, months: int) -> np.ndarray:
    """Per partner and month, the day a contract ends inside that month, or -1."""
    renewal_day = np.full((n_partners, months), -1, dtype=np.int64)
    end_month = np.searchsorted(grid, contracts.end * DAY, side="right") - 1
    inside = (end_month >= 0) & (end_month < months)
    renewal_day[contracts.pid[inside], end_month[inside]] = contracts.end[inside]
    return renewal_day


def _run_months(
    rng: np.random.Generator, pop: Population, latent: Latent, history: History, *, renewal_day: np.ndarray, grid: np.ndarray,
    campaigns: Campaigns | None = None, regime: Regime | None = None,
) -> _Run:
    """Live the months in turn: hazard and churn from the month-start state, then the month's events."""
    P = pop.size
    churn_day = np.full(P, np.iinfo(np.int64).max, dtype=np.int64)
    churned = np.zeros(P, dtype=bool)
    log = EventLog()
    tickets, holdbacks = Tickets.empty(), Holdbacks.empty()  # open ones
    hazard_rows, new_tickets = [], []
    for m in range(len(grid) - 1):
        month = Month.of(grid, m)
        present = (pop.joined_day < month.day1) & ~churned
        idx_risk = np.flatnonzero(present & (pop.joined_day < month.day0))
        tickets, holdbacks = tickets.pending(month.t0), holdbacks.pending(month.t0)
        risk = monthly_risk(pop, history, tickets, holdbacks, month=month, renewal_day=renewal_day[:, m])
        if campaigns is not None:  # actions taken now and earlier move this month's log-odds
            at_risk = np.zeros(P, dtype=bool)
            at_risk[idx_risk] = True
            extra = campaigns.month(m, present=at_risk, contrib=risk.contrib, logit=risk.logit, t0=month.t0)
            risk = replace(risk, logit=risk.logit + extra, hazard=sigmoid(risk.logit + extra))
        risk = risk if regime is None else regime.apply(risk, m, pop.segment)
        leave, day = decide_churn(rng, risk, idx_risk=idx_risk, month=month, renewal_day=renewal_day[:, m])
        churn_day[leave] = day
        rows = risk.frame(idx_risk, m, leave)
        hazard_rows.append(rows if campaigns is None else rows.assign(action_effect=extra[idx_risk]))
        latent = evolve_latent(rng, latent, segment=pop.segment, tenure_m=risk.tenure_m)
        window = Window.of(present, joined_day=pop.joined_day, churn_day=churn_day, month=month)
        scene = Scene(grid, month, window, pop, latent, history, churn_day, log)
        tickets, holdbacks, new = month_events(rng, scene, tickets, holdbacks)
        new_tickets.append(new)
        churned |= leave
    hazard = pd.concat(hazard_rows, ignore_index=True)
    return _Run(churn_day, churned, log.arrays(), hazard, Tickets.concat(new_tickets),
                None if campaigns is None else campaigns.assignments(), None if campaigns is None else campaigns.dislikes)


def _day_to_ts(days: np.ndarray) -> pd.Series:
    """Days since 1970 as UTC timestamps (microseconds)."""
    return pd.Series(pd.to_datetime(days.astype("int64"), unit="D", utc=True)).astype("datetime64[us, UTC]")


def _assemble(
    rng: np.random.Generator, pop: Population, contracts: _Contracts, run: _Run, *, grid: np.ndarray, params: dict
) -> SimulationResult:
    """The result's frames (drawing the contract values, the last random draw) and parameters."""
    ids = np.array([f"P{i:06d}" for i in range(pop.size)], dtype=object)
    partners = _partners_frame(pop, run, ids)
    contracts_df = _contracts_frame(rng, contracts, pop, run, ids=ids, end_data_day=int(grid[-1] // DAY))
    events = _events_frame(run, ids)
    hazard = _hazard_frame(run.hazard, ids, grid)
    truth = _truth_frame(run, ids, segment=pop.segment, churned_at=partners["churned_at"])
    params = {**params, "data_end": pd.Timestamp(int(grid[-1]), unit="s", tz="UTC").isoformat()}
    campaigns = None
    if run.assignments is not None:
        events, campaigns = _with_campaigns(events, run, ids, grid)
        truth["dislikes_contact"] = run.dislikes  # any action adds to this partner's log-odds
    return SimulationResult(partners, events, contracts_df, hazard, truth, params, campaigns)


def _with_campaigns(events: pd.DataFrame, run: _Run, ids: np.ndarray, grid: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The log with the action rows (``campaign_id``, ``control``: the hold-out's rows record an assignment,
    not an approach) and the ground truth of every assignment."""
    a = run.assignments
    stay = np.where(run.churned, run.churn_day, np.iinfo(np.int64).max // 86_400)[a["pid"].to_numpy()] * 86_400
    a = a.loc[a["t"].to_numpy() < stay].reset_index(drop=True)  # gone before the approach: never reached
    stamp = pd.Series(a["t"].to_numpy().astype("int64").astype("datetime64[s]")).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    actions = pd.DataFrame({"partner_id": ids[a["pid"]], "timestamp": stamp, "event_type": a["action"].to_numpy(),
                            "amount": [ACTIONS[x][2] for x in a["action"]], "campaign_id": a["campaign_id"].to_numpy(),
                            "control": pd.array(a["control"].to_numpy(), dtype="boolean")})
    events = events.assign(campaign_id=pd.Series(None, index=events.index, dtype=object), control=pd.array([pd.NA] * len(events), dtype="boolean"))
    log = pd.concat([events, actions], ignore_index=True).sort_values(["partner_id", "timestamp", "event_type"], kind="stable")
    truth = a.drop(columns=["pid", "t"]).assign(partner_id=ids[a["pid"]], month=pd.to_datetime(grid[a["month"]].astype("int64"), unit="s", utc=True))
    return log.reset_index(drop=True), truth[["partner_id", "month", *[c for c in truth.columns if c not in ("partner_id", "month")]]]


def _partners_frame(pop: Population, run: _Run, ids: np.ndarray) -> pd.DataFrame:
    """One row per partner: joining, churn date (if any) and static attributes."""
    churned = run.churned
    churn = np.where(churned, run.churn_day, -1)
    return pd.DataFrame(
        {
            "partner_id": ids,
            "joined_at": _day_to_ts(pop.joined_day),
            "churned_at": _day_to_ts(np.where(churned, churn, 0)).where(churned),
            "partner_type": _PARTNER_TYPES[pop.ptype],
            "region": _REGIONS[pop.region],
            "industry": _INDUSTRIES[pop.industry],
            "loyalty_tier": _TIERS[pop.tier],
        }
    )


def _contracts_frame(
    rng: np.random.Generator, contracts: _Contracts, pop: Population, run: _Run, *, ids: np.ndarray, end_data_day: int
) -> pd.DataFrame:
    """Contracts started before churn and the data end, with a value and the early end at churn."""
    c_pid, c_start, c_end = contracts.pid, contracts.start, contracts.end
    cut = run.churn_day[c_pid]
    keep = (c_start < cut) & (c_start < end_data_day)
    c_pid, c_start, c_end, cut = c_pid[keep], c_start[keep], c_end[keep], cut[keep]
    terminated = np.where(cut < c_end, cut, -1)
    monthly = pop.order_rate[c_pid] * pop.order_value[c_pid]
    value = np.round(0.6 * monthly * rng.lognormal(0, 0.15, len(c_pid)), -1)
    order = np.lexsort((c_start, c_pid))
    return pd.DataFrame(
        {
            "partner_id": ids[c_pid[order]],
            "start_date": _day_to_ts(c_start[order]),
            "end_date": _day_to_ts(c_end[order]),
            "value": value[order],
            "terminated_at": _day_to_ts(np.maximum(terminated[order], 0)).where(terminated[order] >= 0),
        }
    )


def _events_frame(run: _Run, ids: np.ndarray) -> pd.DataFrame:
    """The events before each partner's exit, by partner, time and type."""
    ev_pid, ev_t, ev_type, ev_amt, ev_item, ev_detail = run.events
    ts = np.floor(ev_t).astype(np.int64)
    # Resolutions and releases were scheduled when the item was opened; a partner who left in
    # between never sees them.
    before_exit = ts < np.where(run.churned, run.churn_day, np.iinfo(np.int64).max // 86_400)[ev_pid] * 86_400
    order = np.flatnonzero(before_exit)
    order = order[np.lexsort((ev_type[order], ts[order], ev_pid[order]))]
    detail = np.array([None, "qbr", "personal"], dtype=object)[ev_detail[order]]
    item = pd.array(ev_item[order], dtype="Int64")
    item[ev_item[order] < 0] = pd.NA
    return pd.DataFrame(
        {
            "partner_id": ids[ev_pid[order]],
            "timestamp": pd.Series(ts[order].astype("datetime64[s]")).dt.tz_localize("UTC").astype("datetime64[us, UTC]"),
            "event_type": np.array(EVENT_TYPES, dtype=object)[ev_type[order]],
            "amount": ev_amt[order],
            "item_id": item,
            "detail": detail,
        }
    )


def _hazard_frame(hz: pd.DataFrame, ids: np.ndarray, grid: np.ndarray) -> pd.DataFrame:
    """The ground-truth hazard rows with partner ids and month timestamps."""
    month = pd.to_datetime(grid[:-1].astype("int64")[hz["month"].to_numpy()], unit="s", utc=True)
    hazard = pd.DataFrame({"partner_id": ids[hz["pid"]], "month": month.astype("datetime64[us, UTC]")})
    return pd.concat([hazard, hz.drop(columns=["pid", "month"])], axis=1)


def _truth_frame(run: _Run, ids: np.ndarray, *, segment: np.ndarray, churned_at: pd.Series) -> pd.DataFrame:
    """Per partner: segment, churn date, the two largest causes and the open tickets at churn."""
    hz, churned, churn_day = run.hazard, run.churned, run.churn_day
    cols = [f"contrib_{c}" for c in CAUSES]
    at_churn = hz.loc[hz["churned"]].set_index("pid")
    ranked = np.argsort(-at_churn[cols].to_numpy(), axis=1)
    truth = pd.DataFrame(
        {
            "partner_id": ids,
            "segment": np.array(SEGMENTS, dtype=object)[segment],
            "churned_at": churned_at,
        }
    )
    truth["top_cause"] = None
    truth["second_cause"] = None
    truth["backlog_at_churn"] = np.nan
    names = np.array(CAUSES, dtype=object)
    truth.loc[at_churn.index, "top_cause"] = names[ranked[:, 0]]
    truth.loc[at_churn.index, "second_cause"] = names[ranked[:, 1]]
    # open tickets at the moment of leaving: opened before, not resolved by then
    tk = run.tickets
    leave_t = np.where(churned, churn_day, 0) * DAY
    open_at_exit = churned[tk.pid] & (tk.opened < leave_t[tk.pid]) & (tk.resolved >= leave_t[tk.pid])
    truth.loc[churned, "backlog_at_churn"] = np.bincount(tk.pid[open_at_exit], minlength=len(ids))[churned]
    return truth


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
    if result.campaigns is not None:
        written.append(atomic_write(truth_dir / "campaigns.csv", csv(result.campaigns)))
    params = json.dumps(result.params, indent=2, sort_keys=True) + "\n"
    written.append(atomic_write(truth_dir / "simulation.json", lambda tmp: tmp.write_text(params)))
    return written
