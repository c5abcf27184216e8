"""Snapshots and labels: who was active at each snapshot date, and did they churn within the horizon.

One boundary everywhere: what a row at snapshot ``s`` knows is what happened strictly *before* ``s``
(features use events ``t < s``). A relationship is a list of *spells* (start, end): the partner is
active at snapshot ``s`` when ``start < s < end`` (:func:`active_at`); ``end`` is the churn date (NaT
while it goes on). An event or a joining stamped exactly at ``s`` belongs to the future of ``s``, for
the row set and labels as for the features. Three ways to get spells
(``label.source``):

- ``churned_at``: one spell per partner, ``[joined_at, churned_at)``.
- ``contracts``: contracts (effective end = ``terminated_at`` if earlier than ``end_date``) chained
  into spells; a new contract within ``grace_days`` of the previous end is a renewal, a later one a
  re-join. Churn is dated at the end of the spell's last contract.
- ``inactivity``: activity points (joining and events of ``activity_types``) chained into spells;
  silence of ``inactive_days`` is churn, dated when the rule fires (last activity + inactive_days).

Label: 1 if the churn date is in ``(s, s + horizon]``. A snapshot is *censored* when
``s + horizon (+ grace_days for contracts)`` is after the data end: its label is not known yet, so
it is left out of training and kept for scoring. Nothing after ``data_end`` is used.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from churnmodel.actions import interactions
from churnmodel.config import Config, FeaturesConfig, LabelConfig, SnapshotConfig
from churnmodel.config.inputs import lookback_budget
from churnmodel.errors import ConfigError, DataError
from churnmodel.times import TIMESTAMP_DTYPE, utc
from churnmodel.validation import InputTables

__all__ = ["active_at", "check_as_of", "churn_spells", "data_end", "fit_history", "history_days", "label_snapshots", "make_snapshots", "observation_end", "snapshot_dates"]

_DAY = pd.Timedelta(days=1)


def data_end(tables: InputTables, extracted_at=None, *, latest_event: pd.Timestamp | None = None) -> pd.Timestamp:
    """The moment the data ends: ``extracted_at`` if given, else the day after the latest input date.

    ``latest_event``: the latest event time when the log is not in ``tables.events`` (another engine)."""
    if extracted_at is not None:
        return utc(extracted_at)
    dates = [tables.events["timestamp"].max() if latest_event is None else latest_event, tables.partners["joined_at"].max(), tables.partners["churned_at"].max()]
    if tables.contracts is not None:
        dates += [tables.contracts["start_date"].max(), tables.contracts["terminated_at"].max()]
    latest = max(d for d in dates if pd.notna(d))
    return latest.floor("D") + _DAY


def check_as_of(as_of: pd.Timestamp, *, first_event: pd.Timestamp, end: pd.Timestamp, max_days_past_end: int,
                source: str = "events") -> None:
    """An ``--as-of`` must lie within what the data covers: not before its first event (nothing is known
    yet) and not more than ``max_days_past_end`` days after its end (the silence after an export is
    missing data, not partners going quiet)."""
    if as_of < first_event.floor("D"):
        raise DataError(f"--as-of {as_of.date()} is before the data starts ({source}: first event {first_event.date()}); "
                        "pass a date the data covers, such as the export date")
    late = (as_of.date() - end.date()).days  # dates, not timestamps: no overflow for 9999-12-31 at any pandas version
    if late > max_days_past_end:
        raise DataError(f"--as-of {as_of.date()} is {late:,} days after the data ends ({end.date()}); "
                        f"features would read the silence after the export as partners going quiet. Pass the export date "
                        f"(at most score.max_days_past_data_end = {max_days_past_end} days after the end)")


def observation_end(end: pd.Timestamp, cfg: LabelConfig) -> pd.Timestamp:
    """Until when outcomes are known: the data end, less the grace period when churn by contracts is
    only confirmed once no renewal came within ``grace_days``."""
    return end - pd.Timedelta(days=cfg.grace_days) if cfg.source == "contracts" else end


def _spells_from_chain(pid: np.ndarray, start: np.ndarray, end: np.ndarray, gap: np.timedelta64) -> pd.DataFrame:
    """Merge per-partner intervals sorted by (pid, start) into spells; a gap > ``gap`` splits."""
    frame = pd.DataFrame({"partner_id": pid, "start": start, "end": end})
    running_end = frame.groupby("partner_id", sort=False)["end"].cummax()
    previous_end = running_end.groupby(frame["partner_id"], sort=False).shift(1)
    new_spell = previous_end.isna() | (frame["start"] > previous_end + gap)
    spell = new_spell.cumsum()
    spells = frame.assign(end=running_end).groupby(spell, sort=False).agg(
        partner_id=("partner_id", "first"), start=("start", "min"), end=("end", "max")
    )
    return spells.reset_index(drop=True)


def churn_spells(tables: InputTables, cfg: LabelConfig, *, end: pd.Timestamp, types_present=None) -> pd.DataFrame:
    """One row per continuous relationship: ``partner_id, start, end`` (end = churn date or NaT).

    ``types_present``: the event types of the whole log when ``tables`` hold a part of it."""
    p = tables.partners
    if cfg.source == "churned_at":
        spells = p.loc[p["joined_at"] < end, ["partner_id", "joined_at", "churned_at"]]
        spells = spells.rename(columns={"joined_at": "start", "churned_at": "end"})
    elif cfg.source == "contracts":
        c = tables.contracts
        if c is None:
            raise ConfigError("label.source is 'contracts' but data.contracts is not set; add the contracts file or use churned_at")
        c = c.loc[c["start_date"] < end]
        effective = c["end_date"].where(c["terminated_at"].isna() | (c["terminated_at"] > c["end_date"]), c["terminated_at"])
        far = pd.Timestamp.max.tz_localize("UTC").floor("D")
        c = c.assign(eff=effective.fillna(far)).sort_values(["partner_id", "start_date"], kind="stable")
        spells = _spells_from_chain(
            c["partner_id"].to_numpy(), c["start_date"].to_numpy(), c["eff"].to_numpy(), np.timedelta64(cfg.grace_days, "D")
        )
        spells["end"] = spells["end"].where(spells["end"] < far)
    else:
        e = interactions(tables.events)  # a hold-out assignment is no activity
        if cfg.activity_types is not None:
            present = sorted(e["event_type"].unique() if types_present is None else types_present)
            unknown = sorted(set(cfg.activity_types) - set(present))
            if unknown:
                raise ConfigError(f"label.activity_types: {unknown} do not occur in the events; types present: {present}")
            e = e.loc[e["event_type"].isin(cfg.activity_types)]
        e = e.loc[e["timestamp"] < end, ["partner_id", "timestamp"]]
        points = pd.concat([p.loc[p["joined_at"] < end, ["partner_id", "joined_at"]].rename(columns={"joined_at": "timestamp"}), e])
        points = points.sort_values(["partner_id", "timestamp"], kind="stable")
        silence = np.timedelta64(cfg.inactive_days, "D")
        ts = points["timestamp"].to_numpy()
        # an activity at exactly last + inactive_days comes after the rule fired: a new spell
        spells = _spells_from_chain(points["partner_id"].to_numpy(), ts, ts, silence - np.timedelta64(1, "us"))
        spells["end"] = spells["end"] + pd.Timedelta(days=cfg.inactive_days)
    spells = spells.reset_index(drop=True)
    for col in ("start", "end"):
        spells[col] = pd.to_datetime(spells[col], utc=True).astype(TIMESTAMP_DTYPE)
    spells["end"] = spells["end"].where(spells["end"] <= end)
    return spells


def snapshot_dates(cfg: SnapshotConfig, *, first_event: pd.Timestamp, end: pd.Timestamp, lookbacks: Mapping[str, int]) -> pd.DatetimeIndex:
    """The snapshot grid between ``cfg.start`` (default: first event + the longest of ``lookbacks``, the
    days of history each setting needs, by key path) and ``cfg.end`` (default: data end)."""
    warmup_days = max(lookbacks.values())
    start = pd.Timestamp(cfg.start, tz="UTC") if cfg.start else first_event.floor("D") + pd.Timedelta(days=warmup_days)
    stop = pd.Timestamp(cfg.end, tz="UTC") if cfg.end else end
    if stop > end:
        raise ConfigError(f"snapshots.end {stop.date()} is after the data end {end.date()}; nothing after the data end is known")
    dates = pd.date_range(start, stop, freq=cfg.freq, tz="UTC")
    if len(dates) == 0:
        where = f"no snapshot dates between {start.date()} and {stop.date()} at frequency {cfg.freq}"
        if cfg.start:
            raise DataError(f"{where}: set snapshots.start earlier or snapshots.end later")
        days = (end - first_event.floor("D")).days
        raise DataError(f"{where}: the data runs {first_event.date()} to {end.date()} ({days} days), and the first snapshot waits "
                        f"until the features have the {warmup_days} days of history they look back over. {history_needs(lookbacks, days=days)}")
    return dates.as_unit("us")


def history_needs(lookbacks: Mapping[str, int], *, days: int) -> str:
    """Which settings look back over more than a third of ``days`` of history, and values that fit: the
    end of a "not enough history" message (the other two thirds are left for the snapshots).

    >>> print(history_needs({"features.windows": 28, "features.trends[0]": 120, "features.segments.revenue_window_days": 365}, days=151))
    Too long for this history: features.trends[0] (120 days: recent_days + prior_days), features.segments.revenue_window_days (365 days). Set snapshots.start earlier, or keep each look-back within 50 days: features.trends: auto (here [{recent_days: 7, prior_days: 21}]), features.segments.revenue_window_days: auto (here 30)
    """
    budget = lookback_budget(days)
    fitted = FeaturesConfig().for_history(days)
    trends = ", ".join(f"{{recent_days: {t.recent_days}, prior_days: {t.prior_days}}}" for t in fitted.trends)
    values = {"features.windows": f"features.windows: auto (here {fitted.windows})",
              "features.trends": f"features.trends: auto (here [{trends}])",
              "features.segments.revenue_window_days": f"features.segments.revenue_window_days: auto (here {fitted.segments.revenue_window_days})"}
    too_long = {key: need for key, need in lookbacks.items() if need > budget}
    if not too_long:  # the look-backs fit: the grid's end (snapshots.end) comes too early
        return "Set snapshots.start earlier or snapshots.end later"
    named = [f"{key} ({need} days{': recent_days + prior_days' if key.startswith('features.trends[') else ''})" for key, need in too_long.items()]
    fixes = dict.fromkeys(values[key.split("[")[0]] for key in too_long if key.split("[")[0] in values)
    return (f"Too long for this history: {', '.join(named)}. Set snapshots.start earlier, or keep each look-back within "
            f"{budget} days: {', '.join(fixes)}")


def history_days(first_event: pd.Timestamp, end: pd.Timestamp) -> int:
    """Whole days from the first event's day to the data end: the history ``auto`` look-backs are fitted to."""
    return 0 if pd.isna(first_event) else int((end - first_event.floor("D")).days)


def fit_history(config: Config, *, first_event: pd.Timestamp, end: pd.Timestamp) -> Config:
    """``config`` with its ``auto`` look-backs fixed for the history from ``first_event`` to ``end``
    (:meth:`FeaturesConfig.for_history`); the one place they are fixed for labels, grid and features."""
    features = config.features.for_history(history_days(first_event, end))
    return config if features == config.features else config.model_copy(update={"features": features})


def _micros(values: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 microseconds (NaT -> int64 min)."""
    return values.astype(TIMESTAMP_DTYPE).dt.tz_convert(None).to_numpy("datetime64[us]").view(np.int64)


def _from_micros(values: np.ndarray) -> pd.Series:
    return pd.Series(values.astype(np.int64).view("datetime64[us]")).dt.tz_localize("UTC")


def active_at(spells: pd.DataFrame, when: pd.Timestamp) -> np.ndarray:
    """Which spells are going on at ``when``: begun strictly before it, not ended by it."""
    return ((spells["start"] < when) & (spells["end"].isna() | (spells["end"] > when))).to_numpy()


def make_snapshots(
    spells: pd.DataFrame,
    dates: pd.DatetimeIndex,
    *,
    horizon_days: int,
    end: pd.Timestamp,
    confirm_days: int = 0,
) -> pd.DataFrame:
    """One row per (partner, snapshot date) inside a spell, with ``label``, ``censored`` and ``churn_date``."""
    grid = dates.as_unit("us").asi8
    starts = _micros(spells["start"])
    ends = _micros(spells["end"])
    first = np.searchsorted(grid, starts, side="right")  # the first snapshot strictly after the start
    open_ended = ends == np.iinfo(np.int64).min
    last = np.where(open_ended, len(grid), np.searchsorted(grid, ends, side="left"))
    counts = np.maximum(last - first, 0)
    row_spell = np.repeat(np.arange(len(spells)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    snap = grid[np.repeat(first, counts) + offsets]
    out = pd.DataFrame(
        {
            "partner_id": spells["partner_id"].to_numpy()[row_spell],
            "snapshot": _from_micros(snap),
            "churn_date": _from_micros(ends[row_spell]),
        }
    )
    horizon = pd.Timedelta(days=horizon_days)
    out["censored"] = (out["snapshot"] + horizon + pd.Timedelta(days=confirm_days)) > end
    churns = (out["churn_date"] <= out["snapshot"] + horizon).fillna(False).astype("int8")
    out["label"] = pd.array(churns, dtype="Int8")
    out.loc[out["censored"], "label"] = pd.NA
    return out.sort_values(["snapshot", "partner_id"], kind="stable").reset_index(drop=True)


def label_snapshots(tables: InputTables, config: Config, *, log=None) -> pd.DataFrame:
    """Spells, grid and labels from a config: the rows features are built for.

    ``log``: facts of the whole data (``first`` event time, event ``types``, data ``end``) when ``tables`` hold only a partition of it (the Spark engine); by default taken from ``tables``.
    """
    log = log or {}
    end = log["end"] if "end" in log else data_end(tables, config.data.extracted_at)
    spells = churn_spells(tables, config.label, end=end, types_present=log.get("types"))
    first = log["first"] if "first" in log else tables.events["timestamp"].min()
    config = fit_history(config, first_event=first, end=end)
    dates = snapshot_dates(config.snapshots, first_event=first, end=end, lookbacks=config.features.lookbacks())
    confirm = config.label.grace_days if config.label.source == "contracts" else 0
    return make_snapshots(spells, dates, horizon_days=config.label.horizon_days, end=end, confirm_days=confirm)
