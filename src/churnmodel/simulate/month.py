"""The simulator's state and one month's churn step (helpers of :mod:`churnmodel.simulate`).

The partners' static traits, their latent states and what their history adds up to; from these,
each month's churn hazard with every cause's contribution in log-odds, who leaves and when, and
how the latent states move on. :mod:`churnmodel.simulate` documents what is simulated; the
random draws here happen in the order it makes them, so the same seed gives the same files.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from churnmodel.times import DAY as _SECONDS_PER_DAY

#: Seconds in a day as a float: the simulator computes in float seconds (an int here changes its draws).
DAY = float(_SECONDS_PER_DAY)

__all__ = [
    "CAUSES",
    "DAY",
    "History",
    "Holdbacks",
    "Latent",
    "Month",
    "Population",
    "Regime",
    "Risk",
    "Tickets",
    "decide_churn",
    "evolve_latent",
    "initial_history",
    "initial_latent",
    "monthly_risk",
    "sigmoid",
]

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


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Population:
    """Static partner traits, drawn once; row ``i`` of every array is partner ``i``."""

    initial: np.ndarray  # a partner before the first month (else joins during the data)
    joined_day: np.ndarray  # days since 1970-01-01
    segment: np.ndarray  # index into SEGMENTS
    ptype: np.ndarray
    region: np.ndarray
    industry: np.ndarray
    tier: np.ndarray  # loyalty tier 0-3
    order_rate: np.ndarray  # orders per month
    order_value: np.ndarray  # median order value
    base_logit: np.ndarray  # the segment's base log-odds of monthly churn
    ticket_rate: np.ndarray  # tickets per month
    train_prop: np.ndarray  # propensity to attend trainings
    contractor: np.ndarray  # contractors' orders carry a holdback

    @property
    def size(self) -> int:
        """Number of partners."""
        return len(self.joined_day)


@dataclass(frozen=True)
class Latent:
    """Hidden states behind the events; each a static trait plus a shock part that decays."""

    slow_base: np.ndarray
    slow_shock: np.ndarray
    slow: np.ndarray  # support slowness
    engage_base: np.ndarray
    engage_shock: np.ndarray
    engage: np.ndarray  # account-manager engagement
    opaque: np.ndarray  # hidden withholdings, late payments
    benefit: np.ndarray  # mutual benefit
    conflict: np.ndarray
    qbr_phase: np.ndarray  # which month of each quarter has the QBR


@dataclass(frozen=True)
class History:
    """What each partner's past adds up to; the arrays are filled in place as months pass."""

    rev: np.ndarray  # (partners, months + 1) order revenue
    delay: np.ndarray  # days of payment delay
    disputes: np.ndarray
    trainings: np.ndarray
    res_sum: np.ndarray  # hours to resolve tickets, by month of resolution
    res_cnt: np.ndarray  # tickets resolved
    last_meeting: np.ndarray  # (partners,) seconds
    nps_last: np.ndarray  # last NPS answer (NaN before the first)
    nps_prev: np.ndarray  # the one before


class _Rows:
    """Parallel arrays (dataclass fields), one row per item, selected and appended together."""

    @classmethod
    def concat(cls, parts: list[_Rows]) -> _Rows:
        """The rows of all ``parts``, in order."""
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def add(self, more: _Rows) -> _Rows:
        """These rows followed by ``more``."""
        return type(self).concat([self, more])

    def take(self, keep: np.ndarray) -> _Rows:
        """The rows selected by the mask ``keep``."""
        return type(self)(*(getattr(self, f.name)[keep] for f in fields(self)))


@dataclass(frozen=True)
class Tickets(_Rows):
    """Tickets: partner, opened and resolved (seconds; resolution may lie past the data end)."""

    pid: np.ndarray
    opened: np.ndarray
    resolved: np.ndarray

    @classmethod
    def empty(cls) -> Tickets:
        """No tickets."""
        return cls(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0))

    def pending(self, t: float) -> Tickets:
        """The tickets not yet resolved at ``t``."""
        return self.take(self.resolved >= t)


@dataclass(frozen=True)
class Holdbacks(_Rows):
    """Money withheld from contractors: partner, amount, acceptance and release (seconds)."""

    pid: np.ndarray
    amount: np.ndarray
    accepted: np.ndarray
    release: np.ndarray

    @classmethod
    def empty(cls) -> Holdbacks:
        """No holdbacks."""
        return cls(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty(0))

    def pending(self, t: float) -> Holdbacks:
        """The holdbacks not yet released at ``t``."""
        return self.take(self.release >= t)

    def overdue(self, t: float, n_partners: int) -> np.ndarray:
        """Per partner, the money still withheld at ``t`` more than 60 days after acceptance."""
        late = self.accepted + 60 * DAY < t
        return np.bincount(self.pid, weights=self.amount * late, minlength=n_partners)


@dataclass(frozen=True)
class Month:
    """Month ``m`` of the grid: its start and end in seconds and in days."""

    m: int
    t0: float
    t1: float
    day0: int
    day1: int

    @classmethod
    def of(cls, grid: np.ndarray, m: int) -> Month:
        """Month ``m`` of the month-start ``grid`` (seconds)."""
        t0, t1 = grid[m], grid[m + 1]
        return cls(m, t0, t1, int(t0 // DAY), int(t1 // DAY))


@dataclass(frozen=True)
class Risk:
    """One month's churn hazard for every partner, with each cause's log-odds contribution."""

    backlog: np.ndarray  # open tickets at the month start
    baseline: np.ndarray
    contrib: dict[str, np.ndarray]  # cause -> log-odds, in the order of CAUSES
    logit: np.ndarray  # baseline + sum of contributions
    hazard: np.ndarray
    tenure_m: np.ndarray  # months since joining
    renewal: np.ndarray  # a contract ends inside this month

    def frame(self, idx: np.ndarray, m: int, leave: np.ndarray) -> pd.DataFrame:
        """The ground-truth rows of the partners ``idx`` at risk in month ``m``."""
        return pd.DataFrame(
            {
                "pid": idx,
                "month": np.full(len(idx), m),
                "backlog": self.backlog[idx],
                "baseline": self.baseline[idx],
                **{f"contrib_{c}": v[idx] for c, v in self.contrib.items()},
                "logit": self.logit[idx],
                "hazard": self.hazard[idx],
                "churned": leave[idx],
            }
        )


@dataclass(frozen=True)
class _Signals:
    """What the hazard reads at a month start, per partner; all of it shows in the events."""

    backlog: np.ndarray  # open tickets
    oldest_days: np.ndarray  # age of the oldest open ticket (0 without one)
    res_hours: np.ndarray  # mean hours to resolve over the last 3 months (18 without any)
    months_silent: np.ndarray  # since the last meeting
    overdue: np.ndarray  # holdback money over 60 days past acceptance
    typical_rev: np.ndarray  # expected revenue per month
    trend: np.ndarray  # log revenue, last 3 months over the 3 before (0 before month 6)
    nps_last: np.ndarray
    nps_prev: np.ndarray
    delay_90: np.ndarray  # days of payment delay over the last 3 months
    disputes_180: np.ndarray
    trainings_365: np.ndarray


def initial_latent(rng: np.random.Generator, n_partners: int) -> Latent:
    """Latent states at the first month; shocks start near their stationary level."""
    P = n_partners
    slow_base = rng.normal(0, 0.4, P)
    slow_shock = np.where(rng.random(P) < 0.2, rng.uniform(0, 1.5, P), 0.0)
    engage_base = rng.normal(0.2, 0.5, P)
    engage_shock = np.where(rng.random(P) < 0.2, -rng.uniform(0, 1.6, P), 0.0)
    opaque = rng.random(P) < 0.12
    conflict = rng.random(P) < 0.07
    qbr_phase = rng.integers(0, 3, P)
    return Latent(
        slow_base=slow_base, slow_shock=slow_shock, slow=slow_base + slow_shock,
        engage_base=engage_base, engage_shock=engage_shock, engage=engage_base + engage_shock,
        opaque=opaque, benefit=np.zeros(P), conflict=conflict, qbr_phase=qbr_phase,
    )


def initial_history(
    rng: np.random.Generator, pop: Population, latent: Latent, *, t_start: float, months: int
) -> History:
    """Empty history, but the last meeting before the start (engaged partners met more recently)."""
    P = pop.size
    last_meeting = t_start - rng.uniform(0, 100, P) * DAY * np.exp(-latent.engage)
    last_meeting = np.where(pop.initial, last_meeting, pop.joined_day * DAY)
    shape = (P, months + 1)
    return History(
        rev=np.zeros(shape), delay=np.zeros(shape), disputes=np.zeros(shape), trainings=np.zeros(shape),
        res_sum=np.zeros(shape), res_cnt=np.zeros(shape),
        last_meeting=last_meeting, nps_last=np.full(P, np.nan), nps_prev=np.full(P, np.nan),
    )


def evolve_latent(
    rng: np.random.Generator, latent: Latent, *, segment: np.ndarray, tenure_m: np.ndarray
) -> Latent:
    """One month of latent dynamics: shocks decay and new ones arrive, opacity and conflict switch."""
    P = len(segment)
    slow_shock = 0.92 * latent.slow_shock + 1.5 * (rng.random(P) < 0.015)
    slow = latent.slow_base + slow_shock + rng.normal(0, 0.08, P)
    engage_shock = 0.95 * latent.engage_shock - 1.6 * (rng.random(P) < 0.01)
    engage = latent.engage_base + engage_shock + rng.normal(0, 0.1, P)
    opaque = np.where(latent.opaque, rng.random(P) > 0.07, rng.random(P) < 0.01)
    drift = np.where((segment == 1) & (tenure_m < 24), 0.03, 0.0)
    benefit = 0.97 * latent.benefit + drift + rng.normal(0, 0.08, P) - 0.8 * (rng.random(P) < 0.012)
    conflict = np.where(latent.conflict, rng.random(P) > 0.06, rng.random(P) < 0.005)
    return replace(
        latent, slow_shock=slow_shock, slow=slow, engage_shock=engage_shock, engage=engage,
        opaque=opaque, benefit=benefit, conflict=conflict,
    )


def _signals(
    pop: Population, history: History, tickets: Tickets, holdbacks: Holdbacks, month: Month
) -> _Signals:
    """Read the hazard's inputs off the open tickets, holdbacks and history at the month start."""
    P, m, t0 = pop.size, month.m, month.t0
    backlog = np.bincount(tickets.pid, minlength=P).astype(float)
    first_open = np.full(P, t0)
    np.minimum.at(first_open, tickets.pid, tickets.opened)
    lo3 = max(0, m - 3)
    rc = history.res_cnt[:, lo3:m].sum(1)
    typical_rev = pop.order_rate * pop.order_value
    rev3 = history.rev[:, max(0, m - 3):m].sum(1)
    prior = history.rev[:, max(0, m - 6):max(0, m - 3)].sum(1)
    has_trend = m >= 6
    return _Signals(
        backlog=backlog,
        oldest_days=(t0 - first_open) / DAY,
        res_hours=np.where(rc > 0, history.res_sum[:, lo3:m].sum(1) / np.maximum(rc, 1), 18.0),
        months_silent=(t0 - history.last_meeting) / (30.44 * DAY),
        overdue=holdbacks.overdue(t0, P),
        typical_rev=typical_rev,
        trend=np.where(has_trend, np.log((rev3 + 0.3 * typical_rev) / (prior + 0.3 * typical_rev)), 0.0),
        nps_last=history.nps_last,
        nps_prev=history.nps_prev,
        delay_90=history.delay[:, max(0, m - 3):m].sum(1),
        disputes_180=history.disputes[:, max(0, m - 6):m].sum(1),
        trainings_365=history.trainings[:, max(0, m - 12):m].sum(1),
    )


def _contributions(s: _Signals, *, segment: np.ndarray, tier: np.ndarray) -> dict[str, np.ndarray]:
    """Each cause's log-odds contribution to the month's churn hazard, before the renewal boost."""
    # Effects are not additive-linear: problems matter once they have piled up and stayed open,
    # silence once it lasts, detractors and collapses more than small moves; strategic partners
    # punish neglect harder. Trees can learn this; it is what the retention material describes.
    strategic = segment == 0
    nps_known = ~np.isnan(s.nps_last)
    nps = np.nan_to_num(s.nps_last, nan=7.0)
    return {
        "responsiveness": 0.5 * np.log1p(s.backlog)
        + 1.3 * (s.backlog > 0) * sigmoid((s.oldest_days - 45.0) / 8.0)
        + 0.3 * np.maximum(0, np.log(s.res_hours / 24.0)),
        "communication": np.where(s.months_silent > 5, 0.8 + 0.15 * (np.minimum(s.months_silent, 12) - 5), -0.3)
        * np.where(strategic, 1.6, 1.0),
        "satisfaction": np.where(nps_known, np.where(nps <= 6, 0.7 + 0.15 * (6 - nps), np.where(nps >= 9, -0.4, 0.0)), 0.0)
        + 0.5 * (np.nan_to_num(s.nps_prev - s.nps_last) >= 3),
        "transparency": 0.9 * (s.delay_90 > 30) + 0.01 * np.minimum(s.delay_90, 120)
        + 1.0 * np.minimum(s.overdue / np.maximum(s.typical_rev, 1.0), 2.0),
        "mutual_value": np.where(s.trend < -0.7, 1.2, -0.3 * np.clip(s.trend, -0.7, 0.5)),
        "conflict": 0.3 * (s.disputes_180 == 1) + 1.3 * (s.disputes_180 >= 2),
        "development": -0.3 * np.minimum(s.trainings_365, 4),
        "loyalty": -0.25 * tier,
    }


def monthly_risk(
    pop: Population, history: History, tickets: Tickets, holdbacks: Holdbacks, *, month: Month, renewal_day: np.ndarray
) -> Risk:
    """The churn hazard from the state at the month start (``renewal_day``: contract end in it, or -1)."""
    signals = _signals(pop, history, tickets, holdbacks, month)
    contrib = _contributions(signals, segment=pop.segment, tier=pop.tier)
    tenure_m = (month.day0 - pop.joined_day) / 30.44
    renewal = renewal_day >= 0
    # partners with grievances wait for the contract to come up, then leave: at renewal every
    # risk-raising cause weighs more (an interaction, not an extra additive term)
    contrib = {c: np.where((v > 0) & renewal, 1.8 * v, v) for c, v in contrib.items()}
    baseline = pop.base_logit + 0.35 * (tenure_m < 12) + 0.4 * renewal
    logit = baseline + sum(contrib.values())
    return Risk(
        backlog=signals.backlog, baseline=baseline, contrib=contrib, logit=logit,
        hazard=sigmoid(logit), tenure_m=tenure_m, renewal=renewal,
    )


@dataclass(frozen=True)
class Regime:
    """A regime change for monitoring to catch: from month ``from_month`` on (0 = the first simulated month), a
    new driver no input shows multiplies the monthly churn odds of one segment (an index into ``SEGMENTS``)
    by ``factor`` (about the hazard, at the small monthly hazards here)."""

    from_month: int
    segment: int = 2
    factor: float = 2.0

    def apply(self, risk: Risk, m: int, segment: np.ndarray) -> Risk:
        if m < self.from_month:
            return risk
        logit = risk.logit + np.where(segment == self.segment, np.log(self.factor), 0.0)
        return replace(risk, logit=logit, hazard=sigmoid(logit))


def decide_churn(
    rng: np.random.Generator, risk: Risk, *, idx_risk: np.ndarray, month: Month, renewal_day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Who of ``idx_risk`` leaves this month (a mask) and their churn days, in partner order."""
    leave = np.zeros(len(risk.hazard), dtype=bool)
    leave[idx_risk] = rng.random(len(idx_risk)) < risk.hazard[idx_risk]
    li = np.flatnonzero(leave)
    if not len(li):
        return leave, np.empty(0, dtype=np.int64)
    day = month.day0 + rng.integers(0, month.day1 - month.day0, size=len(li))
    return leave, np.where(risk.renewal[li], renewal_day[li], day)  # a contract is up: they do not renew
