"""Retention actions in the event log: which event types are actions (``data.actions``), their campaign,
and the randomised hold-out.

One rule for every engine and stage: a hold-out row (``control`` true) records that the partner was
assigned to an action's control group and never approached. It is not an interaction, so features and
activity (the inactivity label) never see it; the validated log keeps it, as the canonical boolean
column ``control``, for measuring what the actions do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.cells import Encoded, Problems, parse_flags, rows
from churnmodel.config import DataConfig

__all__ = ["CONTROL", "check_actions", "interactions"]

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
