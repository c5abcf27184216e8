"""Retention actions in the event log: which event types are actions (``data.actions``), their campaign,
and the randomised hold-out; and the campaigns' rows an action's effect is learned from.

One rule for every engine and stage: a hold-out row (``control`` true) records that the partner was
assigned to an action's control group and never approached. It is not an interaction, so features and
activity (the inactivity label) never see it; the validated log keeps it, as the canonical boolean
column ``control``, for measuring what the actions do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from churnmodel.cells import Encoded, Problems, parse_flags, rows
from churnmodel.config import DataConfig
from churnmodel.errors import DataError
from churnmodel.times import DAY, TIMESTAMP_DTYPE

__all__ = ["ALSO", "CONTROL", "campaign_rows", "check_actions", "interactions"]

#: The validated log's hold-out flag (read from ``data.actions.control_column``).
CONTROL = "control"


def check_actions(frame: pd.DataFrame, types: Encoded, cfg: DataConfig, report: Problems) -> np.ndarray | None:
    """The hold-out flag per row of the raw events ``frame`` (None when it has no such column). Errors: values
    that are not flags, hold-out rows whose type is not a declared action. A warning per declared action
    type without any event."""
    declared = list(cfg.actions.types)
    absent = [t for t in declared if t not in set(types.values)]
    if absent:
        report.warn("events", f"data.actions.types: {absent} have no events in the log")
    column = cfg.actions.control_column
    if column not in frame.columns:
        return None
    control = parse_flags(frame[column], table="events", column=column, report=report)
    is_action = np.append(types.values.isin(declared), False)[types.codes]  # code -1 (no type): not an action
    stray = control & ~is_action
    if stray.any():
        examples = sorted(set(types.series[stray].dropna().astype(str)))[:3]
        report.error("events", column, f"{int(stray.sum())} hold-out row(s) at {rows(stray)} whose event_type is not an action "
                                       f"in data.actions.types (e.g. {examples}); a hold-out row records an assignment to an "
                                       "action's control group: declare the type under data.actions.types, or clear the flag")
    return control


def interactions(events: pd.DataFrame) -> pd.DataFrame:
    """The events that happened to the partners: the log without the hold-out's rows."""
    if CONTROL not in events.columns:
        return events
    return events.loc[~events[CONTROL].to_numpy(dtype=bool)]


#: Prefix of :func:`campaign_rows`' columns flagging another action taken at the same snapshot.
ALSO = "also__"


def campaign_rows(frame: pd.DataFrame, events: pd.DataFrame, *, action: str, others: Sequence[str] = (),
                  window_days: int = 7) -> pd.DataFrame:
    """The labelled rows of ``frame`` at the snapshots that open ``action``'s campaigns, with ``treated``,
    ``assigned`` (treated or held out), ``randomised`` (the campaign has a hold-out) and ``campaign_id``, and per
    action of ``others`` a column ``also__<other>``: the partner was approached with it in the same window.
    A randomised campaign keeps only its assigned partners; a targeted one every partner active then."""
    snaps = pd.DatetimeIndex(sorted(frame["snapshot"].unique()))
    found = _approaches(events, [action, *others], snaps, window_days)
    if found is None:
        raise DataError(f"no {action!r} events: nothing to learn its effect from")
    taken = found.loc[found["event_type"] == action]
    per = taken.groupby(["partner_id", "snapshot"], as_index=False).agg(held=("held", "all"), campaign_id=("campaign_id", "first"))
    randomised = taken.groupby("snapshot")["held"].any()
    rows = frame.loc[~frame["censored"].to_numpy() & frame["snapshot"].isin(randomised.index)]
    rows = rows.merge(per, on=["partner_id", "snapshot"], how="left")
    rows["assigned"] = rows["held"].notna()
    rows["treated"] = rows["assigned"] & ~rows["held"].fillna(True).astype(bool)
    rows["randomised"] = rows["snapshot"].map(randomised).astype(bool)
    also = found.loc[~found["held"], ["partner_id", "snapshot", "event_type"]].drop_duplicates()
    for other in others:  # approached with another action too: a co-treatment (counted by training, not adjusted for)
        mine = also.loc[also["event_type"] == other, ["partner_id", "snapshot"]].assign(_on=True)
        rows[f"{ALSO}{other}"] = rows[["partner_id", "snapshot"]].merge(mine, how="left")["_on"].notna().to_numpy()
    keep = ~rows["randomised"] | rows["assigned"]
    return rows.loc[keep].drop(columns="held").reset_index(drop=True)


def _approaches(events: pd.DataFrame, types: list[str], snaps: pd.DatetimeIndex, window_days: int) -> pd.DataFrame | None:
    """The rows of the action ``types`` within ``window_days`` after a snapshot of ``snaps``: partner, event type,
    that snapshot, ``held`` (a hold-out row) and ``campaign_id`` (the snapshot's month where the log has none);
    None when the log has no row of ``types[0]`` at all. One pass over the log."""
    mine = events.loc[events["event_type"].isin(types), ["partner_id", "timestamp", "event_type",
                                                          *[c for c in ("campaign_id", CONTROL) if c in events]]]
    if not (mine["event_type"] == types[0]).any():
        return None
    held = mine[CONTROL].to_numpy(dtype=bool) if CONTROL in mine else np.zeros(len(mine), dtype=bool)
    when = mine["timestamp"].astype(TIMESTAMP_DTYPE).array.asi8  # microseconds, as the snapshots'
    pos = np.searchsorted(snaps.as_unit("us").asi8, when, side="right") - 1
    at = snaps[np.maximum(pos, 0)]  # the snapshot just before each approach
    near = (pos >= 0) & (when - at.as_unit("us").asi8 <= window_days * DAY * 1_000_000)
    return pd.DataFrame({"partner_id": mine["partner_id"].to_numpy(), "event_type": mine["event_type"].astype(str).to_numpy(),
                         "snapshot": at, "held": held,
                         "campaign_id": mine["campaign_id"].to_numpy() if "campaign_id" in mine else at.strftime("%Y-%m")})[near]
