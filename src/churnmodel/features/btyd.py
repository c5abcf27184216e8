"""Buy-till-you-die: each partner's purchase history summarised as the BG/NBD model sees it, and the
model's own answers (the probability of still being active, the expected purchases ahead).

The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way") assumes that
while active a partner buys at a Poisson rate (gamma-distributed across partners, ``r``, ``alpha``)
and after each purchase leaves for good with probability ``p`` (beta-distributed, ``a``, ``b``). Its
summaries of a history at a snapshot ``s``, from the purchases strictly before ``s``:

- ``frequency`` x: repeat purchase days (distinct days with a purchase, minus one);
- ``recency`` t_x: days from the first purchase to the last;
- ``age`` T: days from the first purchase to ``s``.

Why a small implementation here rather than a kept library: ``lifetimes`` (the reference, 0.11.3,
last released 2020) is unmaintained and pins ``autograd``; ``pymc-marketing`` brings PyMC. The
published likelihood is a few lines of ``scipy.special``; tests check it against ``lifetimes``'
numbers on a shared example. The conditional expectation uses Euler's transformation of the
hypergeometric function, so partners with hundreds of purchase days do not overflow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize, special

from churnmodel.errors import DataError
from churnmodel.features.plan import Btyd
from churnmodel.times import DAY

__all__ = ["BgNbd", "btyd_model_values", "btyd_summaries", "fit_btyd"]


def btyd_summaries(ev_p: np.ndarray, when: np.ndarray, row_p: np.ndarray, row_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency, recency days, age days) per row from one event type's purchases strictly before the
    row's snapshot: ``ev_p`` partner codes and ``when`` whole seconds of the purchases, ``row_p`` and
    ``row_s`` the rows' partner codes and snapshot seconds. Rows with no purchase yet get NaN.

    >>> day = 86_400  # purchases on days 0, 0, 3 and 10; snapshots on days 5 and 10 (the day-10 purchase is not before it)
    >>> btyd_summaries(np.zeros(4, int), np.array([0, 60, 3 * day, 10 * day]), np.zeros(3, int), np.array([0, 5, 10]) * day)
    (array([nan,  1.,  1.]), array([nan,  3.,  3.]), array([nan,  5., 10.]))
    """
    n = len(row_p)
    x, t_x, age = (np.full(n, np.nan) for _ in range(3))
    if len(when) == 0 or n == 0:
        return x, t_x, age
    base = min(int(when.min()), int(row_s.min())) - 1
    span = max(int(when.max()), int(row_s.max())) - base + 1
    key = ev_p.astype(np.int64) * span + (when.astype(np.int64) - base)  # (partner, time) as one int64: one sort (dates lie
    # within 1900-2199, so span < 1e10 s and the key fits for fewer than 9e8 partners)
    key.sort()
    p, t = key // span, key % span + base
    day = np.floor_divide(t, DAY)
    opens = np.ones(len(t), dtype=bool)  # the first purchase of a partner's day
    opens[1:] = (p[1:] != p[:-1]) | (day[1:] != day[:-1])
    row_key = row_p.astype(np.int64) * span + (row_s.astype(np.int64) - base)
    start = np.searchsorted(key, row_p.astype(np.int64) * span, side="left")  # the partner's first purchase
    end = np.searchsorted(key, row_key, side="left")  # purchases strictly before s
    seen = end > start
    opened = np.concatenate([[0], np.cumsum(opens)])
    days = opened[end] - opened[start]
    first, last = t[np.minimum(start, len(t) - 1)], t[np.maximum(end - 1, 0)]
    x[seen] = days[seen] - 1
    t_x[seen] = (last[seen] - first[seen]) / DAY
    age[seen] = (row_s[seen] - first[seen]) / DAY
    return x, t_x, age


@dataclass(frozen=True)
class BgNbd:
    """A fitted BG/NBD model: ``r``, ``alpha`` (purchase rates), ``a``, ``b`` (dropout after a purchase)."""

    r: float
    alpha: float
    a: float
    b: float

    @classmethod
    def fit(cls, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray, *, penalizer: float = 0.0) -> BgNbd:
        """Maximum likelihood on the rows with a purchase (L-BFGS-B on the log parameters, from 1, 1, 1, 1).
        ``penalizer``: an L2 penalty on the parameters, as ``lifetimes``' ``penalizer_coef``."""
        x, t_x, T = _valid(frequency, recency, age)
        if len(x) == 0:
            raise ValueError("BG/NBD needs at least one row with a purchase")

        def loss(log_params: np.ndarray) -> float:
            params = np.exp(log_params)
            return -float(np.mean(_log_likelihood(params, x, t_x, T))) + penalizer * float(np.sum(params ** 2))

        best = optimize.minimize(loss, np.zeros(4), method="L-BFGS-B", bounds=[(-20.0, 20.0)] * 4)
        return cls(*(float(v) for v in np.exp(best.x)))

    def log_likelihood(self, frequency, recency, age) -> np.ndarray:
        """Each row's log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
        return _log_likelihood(np.array([self.r, self.alpha, self.a, self.b]), *_as_arrays(frequency, recency, age))

    def _log_odds_dead(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            term = (np.log(self.a) - np.log(np.maximum(self.b + x - 1, 1e-300))
                    + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x)))
        return np.where(x > 0, term, -np.inf)

    def p_alive(self, frequency, recency, age) -> np.ndarray:
        """P(still active at the end of the history) per row (eq. 13); NaN where there is no purchase."""
        x, t_x, T = _as_arrays(frequency, recency, age)
        return np.where(np.isnan(x), np.nan, special.expit(-self._log_odds_dead(np.nan_to_num(x), np.nan_to_num(t_x), np.nan_to_num(T))))

    def expected(self, days: float, frequency, recency, age) -> np.ndarray:
        """Expected purchase days in the next ``days`` given the history (eq. 10); NaN where there is no purchase.

        With z = t / (alpha + T + t), Euler's transformation turns ((alpha+T)/(alpha+T+t))^(r+x)
        2F1(r+x, b+x; a+b+x-1; z) into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): small parameters."""
        x, t_x, T = _as_arrays(frequency, recency, age)
        missing = np.isnan(x)
        x, t_x, T = np.nan_to_num(x), np.nan_to_num(t_x), np.nan_to_num(T)
        r, alpha, b = self.r, self.alpha, self.b
        a = self.a if abs(self.a - 1) > 1e-9 else 1 + 1e-9  # the formula's (a - 1) at a = 1: its limit
        z = days / (alpha + T + days)
        tail = (1 - z) ** (a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        value = (a + b + x - 1) / (a - 1) * (1 - tail) * special.expit(-self._log_odds_dead(x, t_x, T))
        return np.where(missing, np.nan, value)

    def to_list(self) -> list[float]:
        return [self.r, self.alpha, self.a, self.b]


def _as_arrays(frequency, recency, age) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.asarray(v, dtype=np.float64) for v in (frequency, recency, age))


def _valid(frequency, recency, age) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = _as_arrays(frequency, recency, age)
    keep = ~(np.isnan(x) | np.isnan(t_x) | np.isnan(T))
    return x[keep], t_x[keep], T[keep]


def _log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    head = (special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
            + special.betaln(a, b + x) - special.betaln(a, b))
    stay = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        leave = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return head + np.logaddexp(stay, leave)


def fit_btyd(btyd: Btyd, frame: pd.DataFrame, *, random_state: int, max_rows: int = 200_000) -> Btyd:
    """``btyd`` with BG/NBD parameters fitted on the summaries of ``frame``'s rows (the training block:
    each row's history is what was known at its snapshot). At most ``max_rows`` rows, a seeded sample."""
    rows = frame[list(Btyd.SUMMARIES)].dropna()
    if len(rows) > max_rows:
        rows = rows.sample(max_rows, random_state=random_state)
    if len(rows) == 0:
        raise DataError(f"features.btyd: no training row has a {btyd.event_type!r} event before its snapshot; "
                        "set features.btyd.event_type to a type the partners have, or features.btyd.enabled: false")
    model = BgNbd.fit(*(rows[c].to_numpy() for c in Btyd.SUMMARIES))
    return replace(btyd, params=tuple(model.to_list()))


def btyd_model_values(btyd: Btyd, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The fitted model's columns (P(active), expected purchase days in the horizon) for ``frame``'s rows."""
    model = BgNbd(*btyd.params)
    summaries = [frame[c].to_numpy(dtype=np.float64) for c in Btyd.SUMMARIES]
    p_alive, expected = btyd.model_columns
    return {p_alive: model.p_alive(*summaries), expected: model.expected(btyd.horizon_days, *summaries)}
