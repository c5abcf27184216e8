"""The person-period design of a survival stage: each (partner, snapshot) row's outcome as time and
event (:func:`observed_times`), expanded into one row per horizon interval it was at risk and
observed in (:func:`expand_intervals`), and binned once for every hazard fit (:class:`PersonPeriod`);
the partner folds and the snapshot stride the evaluation's fits learn from.

Censoring: a row is observed until the data end (less the contracts' grace period, when a churn
is only confirmed then). An interval counts if the partner churned in it before that moment, or the
whole interval was observed; an interval the data end cuts through is left out, so a snapshot whose
later horizons run past the data end still contributes the intervals it saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnmodel.hazard import interval_columns
from churnmodel.times import DAY, utc_series

__all__ = ["PersonPeriod", "expand_intervals", "observed_times", "partner_folds", "strided_snapshots"]

_DAY_US = DAY * 1_000_000


def observed_times(frame: pd.DataFrame, *, observed_until) -> tuple[np.ndarray, np.ndarray]:
    """(time in days from the snapshot to churn or to the end of observation, churn observed) per row.

    ``observed_until``: one UTC timestamp, or one per row."""
    snap = frame["snapshot"].to_numpy("datetime64[us]").view(np.int64)
    churn = frame["churn_date"]
    churn_us = churn.to_numpy("datetime64[us]").view(np.int64)
    until = utc_series(observed_until).dt.tz_localize(None).to_numpy("datetime64[us]").view(np.int64)
    until = until[0] if np.ndim(observed_until) == 0 else until
    event = churn.notna().to_numpy() & (churn_us <= until)
    time_us = np.where(event, churn_us, until) - snap
    time_us = np.maximum(time_us, 0)  # a snapshot at the end of observation has seen nothing yet
    return time_us / _DAY_US, event


def expand_intervals(time: np.ndarray, event: np.ndarray, horizons) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Person-period rows: (source row, interval index, churned in it), only intervals at risk and observed.

    >>> rows, k, y = expand_intervals(np.array([20.0, 50.0, 40.0]), np.array([True, False, False]), [30, 90])
    >>> rows.tolist(), k.tolist(), y.tolist()
    ([0, 1, 2], [0, 0, 0], [1, 0, 0])
    """
    bounds = np.asarray([0, *horizons], dtype=np.float64)
    rows, ks, ys = [], [], []
    for k in range(len(horizons)):
        a, b = bounds[k], bounds[k + 1]
        at_risk = time > a  # active at the interval's start, and still observed then
        churned_in = event & (time <= b)
        keep = at_risk & (churned_in | (time >= b))  # the churn is seen, or the whole interval is
        idx = np.flatnonzero(keep)
        rows.append(idx)
        ks.append(np.full(len(idx), k, dtype=np.int8))
        ys.append(churned_in[idx].astype(np.int8))
    return np.concatenate(rows), np.concatenate(ks), np.concatenate(ys)


def partner_folds(partner_ids: np.ndarray, *, folds: int, random_state: int) -> np.ndarray:
    """A fold number per row: a seeded shuffle of the partners dealt into ``folds`` (a partner's rows stay together)."""
    unique, inverse = np.unique(partner_ids.astype(str), return_inverse=True)
    fold_of = np.empty(len(unique), dtype=np.int16)
    fold_of[np.random.default_rng(random_state).permutation(len(unique))] = np.arange(len(unique)) % folds
    return fold_of[inverse]


def strided_snapshots(snapshot: pd.Series, *, stride: int) -> np.ndarray:
    """Per row, whether its snapshot date is one of every ``stride``-th date counted back from the latest.

    A partner's consecutive monthly snapshots share most of their feature windows and all but a month of
    their outcomes; learning from every third loses little (measured in ``train.hazard_evaluation_stride``).

    >>> dates = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-04-01"]))
    >>> strided_snapshots(dates, stride=3).tolist()
    [True, False, False, True, True]
    """
    dates, inverse = np.unique(snapshot.to_numpy("datetime64[us]"), return_inverse=True)  # never boxed into Timestamps
    return ((len(dates) - 1 - inverse) % stride) == 0


def _design(X: pd.DataFrame, rows: np.ndarray, k: np.ndarray, horizons: Sequence[int], countdowns: Sequence[str]) -> pd.DataFrame:
    out = X.iloc[rows].reset_index(drop=True)
    bounds = np.asarray([0, *horizons], dtype=np.float64)
    return pd.concat([out, pd.DataFrame(interval_columns(out, start=bounds[k], end=bounds[k + 1], countdowns=countdowns))], axis=1)


class PersonPeriod:
    """Every snapshot row's person-period rows at the data end (:func:`expand_intervals` of ``time``,
    ``event``), their design (the churn model's features and the interval's columns) and one LightGBM
    dataset binned from it (features only, never an outcome). The fits of a survival stage learn from
    subsets of it (:meth:`lightgbm.Dataset.subset`): a fit on other partners takes fewer rows, and one
    whose outcomes are censored earlier (the out-of-time blocks) takes a subset with the same outcomes,
    since a row cut off earlier can only lose intervals. So the design is built and binned once.

    ``negative_share`` below 1: every churn row is kept and a seeded ``negative_share`` of the rows
    without churn, each weighted ``1 / negative_share`` (``weight``), so that weighted sums, rates and
    log-likelihoods are unbiased for the full rows' (case-control sampling of the rows, as in He et al. 2014
    for click models). Churn rows are a few percent: 0.25 makes every fit learn from about a quarter of the rows.

    >>> X = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    >>> pp = PersonPeriod(X, np.array([20.0, 100.0, 40.0]), np.array([True, False, False]), horizons=[30, 90],
    ...                   countdowns=(), params={"verbosity": -1})
    >>> pp.rows.tolist(), pp.k.tolist(), pp.y.tolist(), pp.weight.tolist()
    ([0, 1, 2, 1], [0, 0, 0, 1], [1, 0, 0, 0], [1.0, 1.0, 1.0, 1.0])
    >>> pp.select(np.array([20.0, 40.0, 0.0]), np.array([True, False, False])).tolist()  # censored at day 40
    [0, 1]
    """

    def __init__(self, X: pd.DataFrame, time: np.ndarray, event: np.ndarray, *, horizons: Sequence[int],
                 countdowns: Sequence[str], params: dict, negative_share: float = 1.0, random_state: int = 0) -> None:
        self.X, self.horizons, self.countdowns = X, tuple(int(h) for h in horizons), tuple(countdowns)
        rows, k, y = expand_intervals(time, event, self.horizons)
        kept = (y == 1) | (np.random.default_rng(random_state).random(len(y)) < negative_share)
        self.rows, self.k, self.y = rows[kept], k[kept], y[kept]
        self.weight = np.where(self.y == 1, 1.0, 1.0 / negative_share) if negative_share < 1 else np.ones(len(self.y))
        self.design = _design(X, self.rows, self.k, self.horizons, self.countdowns)
        self.dataset = (lgb.Dataset(self.design, self.y, weight=self.weight if negative_share < 1 else None,
                                    categorical_feature="auto", params=params).construct()
                        if len(self.rows) else None)  # no row at risk: no fit (fit_hazard says why)
        self._position = np.full((len(self.horizons), len(X)), -1, dtype=np.int64)  # -1: no such person-period row
        self._position[k, rows] = -2  # -2: a row without churn left out of the sample
        self._position[self.k, self.rows] = np.arange(len(self.rows))

    def select(self, time: np.ndarray, event: np.ndarray) -> np.ndarray:
        """The positions of :func:`expand_intervals` ``(time, event)``'s rows among these person-period rows
        (those in the sample)."""
        rows, k, y = expand_intervals(time, event, self.horizons)
        at = self._position[k, rows]
        sampled = at >= 0
        if (at == -1).any() or (y[~sampled] != 0).any() or (self.y[at[sampled]] != y[sampled]).any():
            raise ValueError("these outcomes are not the person-period rows' own, censored earlier")
        return at[sampled]

    def subset(self, at: np.ndarray, offset: np.ndarray, *, threads: int | None = None) -> lgb.Dataset:
        """The binned rows ``at`` (with their weights), each starting from the log-odds ``offset`` (one per row);
        ``threads``: LightGBM's ``num_threads`` while it is cut out (None: the binning's; see
        :data:`~churnmodel.booster.SIDE_BY_SIDE`)."""
        params = None if threads is None else {**self.dataset.params, "num_threads": threads}
        part = self.dataset.subset(at, params=params).construct()
        part.set_init_score(offset)
        return part
