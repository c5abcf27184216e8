"""Time helpers shared by every stage: one timestamp dtype (UTC, microseconds), whole seconds, days.

>>> utc("2025-10-01")
Timestamp('2025-10-01 00:00:00+0000', tz='UTC')
>>> int(seconds(pd.Series([utc("1970-01-02")]))[0]) == DAY
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["DAY", "EARLIEST", "LATEST", "MONTH_DAYS", "TIMESTAMP_DTYPE", "seconds", "utc", "utc_series"]

#: Every date/time column is normalised to this dtype.
TIMESTAMP_DTYPE = "datetime64[us, UTC]"
#: Seconds in a day.
DAY = 86_400
#: Days in an average month.
MONTH_DAYS = 30.4375
#: Supported dates: on or after EARLIEST and before LATEST. Later values in an end column (churned_at,
#: end_date, terminated_at) are "open-ended" placeholders such as 9999-12-31 and read as empty.
EARLIEST = pd.Timestamp("1900-01-01", tz="UTC")
LATEST = pd.Timestamp("2200-01-01", tz="UTC")


def utc(value) -> pd.Timestamp:
    """A timestamp in UTC: a naive value is taken as UTC, an aware one converted."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def utc_series(values) -> pd.Series:
    """Timestamps in :data:`TIMESTAMP_DTYPE`: naive values taken as UTC, aware ones converted."""
    ts = pd.to_datetime(pd.Series(values) if not isinstance(values, pd.Series) else values)
    return (ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")).astype(TIMESTAMP_DTYPE)


def seconds(values: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 whole seconds since the epoch (floor)."""
    micros = values.astype(TIMESTAMP_DTYPE).array.asi8
    return np.floor_divide(micros, 1_000_000)
