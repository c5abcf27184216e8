"""One month's events, family by family (helpers of :mod:`churnmodel.simulate`).

Each family draws its events inside the part of the month each partner is active in, from the
partner's traits and latent states, and adds what the hazard later reads to the history. The
families run in a fixed order (:func:`month_events`), so the random draws happen in the same order
for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from churnmodel.simulate.month import (
    DAY,
    History,
    Holdbacks,
    Latent,
    Month,
    Population,
    Tickets,
    sigmoid,
)

__all__ = ["EVENT_TYPES", "EventLog", "Scene", "Window", "month_events"]

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
_TYPE_CODE = {name: i for i, name in enumerate(EVENT_TYPES)}


@dataclass
class EventLog:
    """Events as they are drawn (one batch of parallel arrays per call) and the next item id."""

    batches: tuple[list[np.ndarray], ...] = field(default_factory=lambda: ([], [], [], [], [], []))
    next_item: int = 0

    def emit(
        self,
        pid: np.ndarray,
        t: np.ndarray,
        etype: str,
        *,
        amount: np.ndarray | None = None,
        item: np.ndarray | None = None,
        detail: np.ndarray | None = None,
    ) -> None:
        """Record events of type ``etype`` for partners ``pid`` at times ``t`` (seconds)."""
        n = len(pid)
        ev_pid, ev_t, ev_type, ev_amt, ev_item, ev_detail = self.batches
        ev_pid.append(pid)
        ev_t.append(t)
        ev_type.append(np.full(n, _TYPE_CODE[etype], dtype=np.int8))
        ev_amt.append(np.full(n, np.nan) if amount is None else amount)
        ev_item.append(np.full(n, -1, dtype=np.int64) if item is None else item)
        ev_detail.append(np.zeros(n, dtype=np.int8) if detail is None else detail)

    def new_items(self, n: int) -> np.ndarray:
        """Ids for ``n`` new items (tickets, holdbacks) that link two events."""
        items = self.next_item + np.arange(n)
        self.next_item += n
        return items

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Partner, time, type code, amount, item id (-1: none) and detail code of every event."""
        return tuple(np.concatenate(x) for x in self.batches)


@dataclass(frozen=True)
class Window:
    """Partners active this month (``idx``) and the part of it they are active in (seconds)."""

    idx: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    frac: np.ndarray  # share of the month

    @classmethod
    def of(
        cls, present: np.ndarray, *, joined_day: np.ndarray, churn_day: np.ndarray, month: Month
    ) -> Window:
        """From joining (or the month start) to leaving (or the month end), where that is not empty."""
        idx = np.flatnonzero(present)
        lo = np.maximum(month.t0, joined_day[idx] * DAY)
        hi = np.minimum(month.t1, np.minimum(churn_day[idx], month.day1) * DAY)
        ok = hi > lo
        idx, lo, hi = idx[ok], lo[ok], hi[ok]
        return cls(idx, lo, hi, (hi - lo) / (month.t1 - month.t0))

    def draw(self, rng: np.random.Generator, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Poisson events at ``rate`` per month per active partner: their partners and times."""
        counts = rng.poisson(np.maximum(rate, 0) * self.frac)
        rows = np.repeat(np.arange(len(self.idx)), counts)
        return self.idx[rows], self.lo[rows] + rng.random(len(rows)) * (self.hi - self.lo)[rows]

    def times(self, rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
        """One uniform time in the window of each active partner selected by ``mask``."""
        return self.lo[mask] + rng.random(int(mask.sum())) * (self.hi - self.lo)[mask]


@dataclass(frozen=True)
class Scene:
    """What this month's events are drawn from, and where they go."""

    grid: np.ndarray  # month starts (seconds)
    month: Month
    window: Window
    pop: Population
    latent: Latent  # after this month's dynamics
    history: History  # filled in place
    churn_day: np.ndarray  # including this month's decisions
    log: EventLog

    @property
    def t_end(self) -> float:
        """The data end (seconds)."""
        return self.grid[-1]


def month_events(
    rng: np.random.Generator, scene: Scene, tickets: Tickets, holdbacks: Holdbacks
) -> tuple[Tickets, Holdbacks, Tickets]:
    """Draw every event family of the month; the open tickets and holdbacks after it, and its new tickets."""
    holdbacks = _orders(rng, scene, holdbacks)
    new = _tickets(rng, scene)
    tickets = tickets.add(new)
    still_open = tickets.pid[tickets.resolved >= scene.month.t1]
    open_now = np.bincount(still_open, minlength=scene.pop.size)[scene.window.idx]
    _complaints(rng, scene, open_now)
    _meetings(rng, scene)
    _logins_and_trainings(rng, scene)
    _nps_survey(rng, scene, open_now)
    _bonuses(rng, scene)
    _delays_and_disputes(rng, scene)
    return tickets, holdbacks, new


def _orders(rng: np.random.Generator, scene: Scene, holdbacks: Holdbacks) -> Holdbacks:
    """Orders (more with mutual benefit), adding to revenue; a contractor's carry a holdback."""
    w, pop = scene.window, scene.pop
    pid, t = w.draw(rng, pop.order_rate[w.idx] * np.exp(scene.latent.benefit[w.idx]))
    value = np.round(pop.order_value[pid] * rng.lognormal(0, 0.5, len(pid)), 2)
    scene.log.emit(pid, t, "order", amount=value)
    np.add.at(scene.history.rev[:, scene.month.m], pid, value)
    hold = pop.contractor[pid]
    if not hold.any():
        return holdbacks
    withheld = _holdbacks(rng, scene, pid=pid[hold], t=t[hold] + DAY, amount=np.round(0.1 * value[hold], 2))
    return holdbacks.add(withheld)


def _holdbacks(
    rng: np.random.Generator, scene: Scene, *, pid: np.ndarray, t: np.ndarray, amount: np.ndarray
) -> Holdbacks:
    """Holdbacks withheld at ``t`` and released after acceptance (late when opaque); the ones withheld."""
    n = len(pid)
    acc = t + rng.uniform(15, 45, n) * DAY
    wait = np.where(scene.latent.opaque[pid], 60 + rng.exponential(150, n), rng.exponential(10, n))
    rel = acc + wait * DAY
    items = scene.log.new_items(n)
    w = scene.window
    keep = t < w.hi[np.searchsorted(w.idx, pid)]
    scene.log.emit(pid[keep], t[keep], "holdback_withheld", amount=amount[keep], item=items[keep])
    later = keep & (rel < np.minimum(scene.t_end, scene.churn_day[pid] * DAY))
    scene.log.emit(pid[later], rel[later], "holdback_released", amount=amount[later], item=items[later])
    return Holdbacks(pid[keep], amount[keep], acc[keep], rel[keep])


def _tickets(rng: np.random.Generator, scene: Scene) -> Tickets:
    """Tickets opened, and resolved after hours that grow with slowness (some never); the new tickets."""
    w, lat, hist = scene.window, scene.latent, scene.history
    pid, t = w.draw(rng, scene.pop.ticket_rate[w.idx] * (1 + 0.5 * lat.opaque[w.idx] + 0.5 * lat.conflict[w.idx]))
    items = scene.log.new_items(len(pid))
    scene.log.emit(pid, t, "ticket_opened", item=items)
    never = rng.random(len(pid)) < sigmoid(-2.6 + 1.8 * lat.slow[pid])
    hours = np.round(rng.lognormal(np.log(16.0) + 0.9 * lat.slow[pid], 0.8), 1)
    hours = np.where(never, np.round(24 * (30 + rng.exponential(120, len(pid))), 1), hours)
    res_t = t + hours * 3600.0
    done = res_t < np.minimum(scene.t_end, scene.churn_day[pid] * DAY)
    scene.log.emit(pid[done], res_t[done], "ticket_resolved", amount=hours[done], item=items[done])
    res_month = np.searchsorted(scene.grid, res_t[done], side="right") - 1
    np.add.at(hist.res_sum, (pid[done], res_month), hours[done])
    np.add.at(hist.res_cnt, (pid[done], res_month), 1)
    return Tickets(pid, t, res_t)


def _complaints(rng: np.random.Generator, scene: Scene, open_now: np.ndarray) -> None:
    """Complaints, more with open tickets, slowness and opacity."""
    w, lat = scene.window, scene.latent
    pid, t = w.draw(rng, 0.03 + 0.12 * open_now + 0.05 * np.maximum(lat.slow[w.idx], 0) + 0.1 * lat.opaque[w.idx])
    scene.log.emit(pid, t, "complaint")


def _meetings(rng: np.random.Generator, scene: Scene) -> None:
    """Quarterly business reviews (if engaged) and personal meetings; both reset the silence."""
    w, lat, seg, m = scene.window, scene.latent, scene.pop.segment, scene.month.m
    idx = w.idx
    qbr = (m % 3 == lat.qbr_phase[idx]) & (rng.random(len(idx)) < sigmoid(1.4 + 1.6 * lat.engage[idx] + (seg[idx] == 0)))
    q_t = w.times(rng, qbr)
    scene.log.emit(idx[qbr], q_t, "meeting", detail=np.ones(int(qbr.sum()), dtype=np.int8))
    pid, t = w.draw(rng, 0.12 * np.exp(lat.engage[idx]) * np.where(seg[idx] == 0, 2.0, 1.0))
    scene.log.emit(pid, t, "meeting", detail=np.full(len(pid), 2, dtype=np.int8))
    for p_, tt in ((idx[qbr], q_t), (pid, t)):
        np.maximum.at(scene.history.last_meeting, p_, tt)


def _logins_and_trainings(rng: np.random.Generator, scene: Scene) -> None:
    """Portal logins and trainings, both more with engagement; trainings are counted."""
    w, lat = scene.window, scene.latent
    pid, t = w.draw(rng, 1.5 * np.exp(0.6 * lat.engage[w.idx] + 0.3 * lat.benefit[w.idx]))
    scene.log.emit(pid, t, "portal_login")
    pid, t = w.draw(rng, 0.05 * np.exp(scene.pop.train_prop[w.idx] + 0.4 * lat.engage[w.idx]))
    scene.log.emit(pid, t, "training")
    np.add.at(scene.history.trainings[:, scene.month.m], pid, 1)


def _nps_survey(rng: np.random.Generator, scene: Scene, open_now: np.ndarray) -> None:
    """The quarterly NPS survey: lower with open tickets, slowness, opacity, silence and conflict."""
    w, lat, hist, m = scene.window, scene.latent, scene.history, scene.month
    survey = (m.m % 3 == 1) & (rng.random(len(w.idx)) < 0.55)
    sp = w.idx[survey]
    score = (
        8.4
        - 0.9 * np.log1p(open_now[survey])
        - 0.4 * np.maximum(lat.slow[sp], 0)
        - 1.3 * lat.opaque[sp]
        - 0.15 * np.minimum((m.t1 - hist.last_meeting[sp]) / (30.44 * DAY), 12)
        - 1.2 * lat.conflict[sp]
        + 0.5 * lat.benefit[sp]
        + rng.normal(0, 1.2, len(sp))
    )
    score = np.clip(np.round(score), 0, 10)
    scene.log.emit(sp, w.times(rng, survey), "nps_response", amount=score)
    hist.nps_prev[sp] = hist.nps_last[sp]
    hist.nps_last[sp] = score


def _bonuses(rng: np.random.Generator, scene: Scene) -> None:
    """Quarterly loyalty bonuses near the month end: the tier's percent of the quarter's revenue."""
    m = scene.month.m
    if m % 3 != 2:
        return
    w, tier, rev = scene.window, scene.pop.tier, scene.history.rev
    idx = w.idx
    eligible = (tier[idx] > 0) & (rev[idx, max(0, m - 2):m + 1].sum(1) > 0) & (rng.random(len(idx)) < 0.95)
    bp = idx[eligible]
    amount = np.round(0.01 * tier[bp] * rev[bp, max(0, m - 2):m + 1].sum(1), 2)
    paid = w.hi[eligible] - rng.random(len(bp)) * (w.hi - w.lo)[eligible] * 0.2
    scene.log.emit(bp, paid, "bonus_paid", amount=amount)


def _delays_and_disputes(rng: np.random.Generator, scene: Scene) -> None:
    """Payment delays (frequent and long when opaque) and disputes (with conflict); both counted."""
    w, lat, hist, m = scene.window, scene.latent, scene.history, scene.month.m
    pid, t = w.draw(rng, 0.06 + 0.7 * lat.opaque[w.idx])
    days = np.round(np.where(lat.opaque[pid], 10 + rng.exponential(25, len(pid)), 1 + rng.exponential(4, len(pid))))
    scene.log.emit(pid, t, "payment_delay", amount=days)
    np.add.at(hist.delay[:, m], pid, days)
    pid, t = w.draw(rng, 0.008 + 0.35 * lat.conflict[w.idx] + 0.04 * lat.opaque[w.idx])
    scene.log.emit(pid, t, "dispute")
    np.add.at(hist.disputes[:, m], pid, 1)
