"""Validation: check raw input frames against the data contract and type them (pure functions).

:func:`validate_tables` checks and types raw frames (read from files by :mod:`churnmodel.data`, or
built in memory). Problems are collected and reported together; each names the file, the column,
example rows (1-based data rows; in a CSV, line = row + 1) and the fix.

>>> import pandas as pd
>>> partners = pd.DataFrame({"partner_id": ["a"], "joined_at": ["2024-01-01"]})
>>> events = pd.DataFrame({"partner_id": ["a"], "timestamp": ["2024-02-01T10:00:00Z"],
...                        "event_type": ["order"], "amount": [120.0]})
>>> tables = validate_tables(partners, events)
>>> str(tables.events["timestamp"].dtype)
'datetime64[us, UTC]'
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from churnmodel.config import CANONICAL_COLUMNS, DataConfig
from churnmodel.errors import DataError
from churnmodel.times import TIMESTAMP_DTYPE

__all__ = ["InputTables", "check_columns", "raise_problems", "validate_dimensions", "validate_tables"]

log = logging.getLogger("churnmodel")

_EXAMPLES = 5


@dataclass(frozen=True)
class InputTables:
    """Validated inputs with canonical column names and dtypes (timestamps in UTC)."""

    partners: pd.DataFrame
    events: pd.DataFrame
    contracts: pd.DataFrame | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()



def _rows(mask: np.ndarray | pd.Series, *, limit: int = _EXAMPLES) -> str:
    idx = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(str(i) for i in idx[:limit])
    more = f" (+{len(idx) - limit} more)" if len(idx) > limit else ""
    return f"row{'s' if len(idx) > 1 else ''} {shown}{more}"


def check_columns(frame: pd.DataFrame, *, table: str, source: str, mapping: Mapping[str, str]) -> None:
    present = [str(c) for c in frame.columns]
    problems = []
    for canon, required in CANONICAL_COLUMNS[table].items():
        name = mapping.get(canon, canon)
        if not required or name in present:
            continue
        near = difflib.get_close_matches(name, present, n=1, cutoff=0.6)
        near = near or difflib.get_close_matches(name.lower(), [p.lower() for p in present], n=1, cutoff=0.6)
        taken = {mapping.get(c, c) for c in CANONICAL_COLUMNS[table]}
        near = near or [p for p in present if len(p) >= 3 and p not in taken and p.lower() in name.lower()][:1]  # "type" for event_type
        hint = (
            f"; nearest column in the file: {near[0]!r} (rename it, or map it in the config: "
            f"data.columns.{table}.{canon}: {near[0]})"
            if near
            else f"; map your column to it in the config: data.columns.{table}.{canon}: <your column>"
        )
        problems.append(f"missing required column {name!r}{hint}")
    if problems:
        expected = [mapping.get(c, c) for c, req in CANONICAL_COLUMNS[table].items() if req]
        diff = "\n".join(
            "      " + line
            for line in difflib.unified_diff(sorted(expected), sorted(present), "expected", "found", lineterm="", n=0)
            if not line.startswith("@@")
        )
        raise DataError(f"{source}: " + "; ".join(problems) + f".\n    Column diff (required vs file):\n{diff}")


def raise_problems(problems: list[str]) -> None:
    """Every problem found (each naming its file and column), in one DataError; nothing if none."""
    if problems:
        n = len(problems)
        raise DataError(f"input data has {n} problem{'s' if n > 1 else ''}:\n" + "\n".join(f"  - {m}" for m in problems))


class _Report:
    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, table: str, column: str | None, text: str) -> None:
        where = f"column {column!r}: " if column else ""
        self.errors.append(f"{self.sources.get(table, table)}: {where}{text}")

    def raise_errors(self) -> None:
        """Every problem found, in one DataError."""
        raise_problems(self.errors)

    def warn(self, table: str, text: str) -> None:
        self.warnings.append(f"{self.sources.get(table, table)}: {text}")


def _ids(frame: pd.DataFrame, table: str, report: _Report) -> pd.Series:
    raw = frame["partner_id"]
    missing = raw.isna().to_numpy()
    ids = raw.astype("str").str.strip() if raw.dtype == object or str(raw.dtype) in ("str", "string") else raw.astype("str")
    if pd.api.types.is_float_dtype(raw.dtype):
        whole = raw.dropna() == np.floor(raw.dropna())
        if whole.all():
            ids = raw.astype("Int64").astype("str")
    empty = missing | (ids == "").to_numpy()
    if empty.any():
        report.error(table, "partner_id", f"{int(empty.sum())} empty value(s) at {_rows(empty)}; every row needs a partner_id")
    return ids.where(~empty, None)


def _parse_timestamps(
    values: pd.Series, *, table: str, column: str, tz: str, report: _Report
) -> pd.Series:
    """Parse a date/time column to UTC: naive values are taken as ``tz``; offsets are converted."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    missing = values.isna().to_numpy()
    if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
        report.error(table, column, f"expected dates or timestamps, got {values.dtype} values (e.g. {values.dropna().iloc[0]!r})")
        return pd.Series(pd.NaT, index=values.index, dtype=TIMESTAMP_DTYPE)
    text = values.astype("str").str.strip()
    missing = missing | (text == "").to_numpy()
    objects = text.to_numpy(dtype=object)
    objects[missing] = None
    arrow = pa.array(objects, type=pa.string())
    for arrow_type, aware in ((pa.timestamp("us"), False), (pa.timestamp("us", "UTC"), True)):
        try:
            parsed = pd.Series(arrow.cast(arrow_type).to_pandas(), index=values.index)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        parsed = parsed.astype("datetime64[us]") if not aware else parsed
        if aware:
            return parsed.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
        return parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    # Slow path: say exactly what is wrong.
    has_offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False).to_numpy() & ~missing
    no_offset = ~has_offset & ~missing
    parsed = pd.to_datetime(pd.Series(objects, index=values.index), format="ISO8601", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy() & ~missing
    if bad.any():
        examples = ", ".join(repr(v) for v in text[bad].head(3))
        report.error(
            table,
            column,
            f"{int(bad.sum())} unparseable date/time value(s) at {_rows(bad)} (e.g. {examples}); "
            "expected ISO-8601 such as 2024-03-31, 2024-03-31T14:05:00 or 2024-03-31T14:05:00+03:00",
        )
    elif has_offset.any() and no_offset.any():
        report.error(
            table,
            column,
            f"mixes timestamps with a UTC offset ({_rows(has_offset, limit=3)}) and without one "
            f"({_rows(no_offset, limit=3)}); write all with an offset, or all without "
            f"(then they are taken as data.naive_timezone = {tz})",
        )
    if not bad.any() and not (has_offset.any() and no_offset.any()):
        naive = parsed.dt.tz_localize(None)
        return naive.dt.tz_localize(tz).dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    return pd.Series(pd.NaT, index=values.index, dtype=TIMESTAMP_DTYPE)


def _parse_numbers(values: pd.Series, *, table: str, column: str, report: _Report) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        report.error(table, column, "expected numbers, got true/false values")
        return pd.Series(np.nan, index=values.index)
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype("float64")
    else:
        missing = values.isna().to_numpy()
        text = values.astype("str").str.strip()
        numbers = pd.to_numeric(text.where(~missing & (text != ""), None), errors="coerce").astype("float64")
        bad = numbers.isna().to_numpy() & ~missing & (text != "").to_numpy()
        if bad.any():
            examples = ", ".join(repr(v) for v in text[bad].head(3))
            comma = " (decimal commas are not accepted: write 12.5, not 12,5)" if text[bad].str.contains(",").any() else ""
            report.error(table, column, f"{int(bad.sum())} non-numeric value(s) at {_rows(bad)} (e.g. {examples}); expected a number{comma}")
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        report.error(table, column, f"{int(infinite.sum())} infinite value(s) at {_rows(infinite)}; expected a finite number")
    return numbers


def _required_dates(frame: pd.DataFrame, table: str, column: str, tz: str, report: _Report) -> pd.Series:
    parsed = _parse_timestamps(frame[column], table=table, column=column, tz=tz, report=report)
    empty = frame[column].isna().to_numpy() | (frame[column].astype("str").str.strip() == "").to_numpy()
    if empty.any():
        report.error(table, column, f"{int(empty.sum())} empty value(s) at {_rows(empty)}; a date is required in every row")
    return parsed


def _optional_dates(frame: pd.DataFrame, table: str, column: str, tz: str, report: _Report) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NaT, index=frame.index, dtype=TIMESTAMP_DTYPE)
    return _parse_timestamps(frame[column], table=table, column=column, tz=tz, report=report)


def _validate_partners(frame: pd.DataFrame, tz: str, report: _Report) -> pd.DataFrame:
    ids = _ids(frame, "partners", report)
    dup = ids.duplicated(keep=False).to_numpy() & ids.notna().to_numpy()
    if dup.any():
        examples = ", ".join(repr(v) for v in ids[dup].drop_duplicates().head(3))
        report.error(
            "partners", "partner_id",
            f"{int(ids[dup].nunique())} duplicated partner id(s) (e.g. {examples}) at {_rows(dup)}; "
            "the partners table needs exactly one row per partner",
        )
    joined = _required_dates(frame, "partners", "joined_at", tz, report)
    churned = _optional_dates(frame, "partners", "churned_at", tz, report)
    before = (churned < joined).fillna(False).to_numpy(dtype=bool)
    if before.any():
        report.error("partners", "churned_at", f"{int(before.sum())} partner(s) churned before they joined at {_rows(before)}; churned_at must be on or after joined_at")
    return frame.assign(partner_id=ids, joined_at=joined, churned_at=churned)


def _validate_events(
    frame: pd.DataFrame, known: pd.Series, cfg: DataConfig, report: _Report
) -> pd.DataFrame:
    ids = _ids(frame, "events", report)
    ts = _parse_timestamps(frame["timestamp"], table="events", column="timestamp", tz=cfg.naive_timezone, report=report)
    nat = frame["timestamp"].isna().to_numpy() | (frame["timestamp"].astype("str").str.strip() == "").to_numpy()
    if nat.any():
        report.error("events", "timestamp", f"{int(nat.sum())} event(s) without a timestamp (NaT) at {_rows(nat)}; every event needs a time")
    types = frame["event_type"]
    type_missing = types.isna().to_numpy()
    types = types.astype("str").str.strip()
    type_missing = type_missing | (types == "").to_numpy()
    if type_missing.any():
        report.error("events", "event_type", f"{int(type_missing.sum())} empty value(s) at {_rows(type_missing)}; every event needs a type")
    types = types.where(~type_missing, None)
    if "amount" in frame.columns:
        amount = _parse_numbers(frame["amount"], table="events", column="amount", report=report)
        signed = types.isin(list(cfg.signed_amount_types)).to_numpy()
        negative = (amount < 0).to_numpy() & ~signed
        if negative.any():
            per_type = types[negative].value_counts().head(5).to_dict()
            report.error(
                "events", "amount",
                f"{int(negative.sum())} negative amount(s) at {_rows(negative)} (by type: {per_type}); amounts must be >= 0 "
                "(order value, hours, days late...). If a type is legitimately signed (refunds), list it in data.signed_amount_types",
            )
    else:
        amount = pd.Series(np.nan, index=frame.index)
    out = frame.assign(partner_id=ids, timestamp=ts, event_type=types, amount=amount)
    unknown = ~ids.isin(known).to_numpy() & ids.notna().to_numpy()
    if unknown.any():
        examples = ", ".join(repr(v) for v in ids[unknown].drop_duplicates().head(3))
        text = f"{int(unknown.sum())} event(s) for {ids[unknown].nunique()} partner id(s) not in the partners table (e.g. {examples}) at {_rows(unknown)}"
        if cfg.unknown_partners == "error":
            report.error("events", "partner_id", text + "; add the partners, or set data.unknown_partners: drop to ignore them")
        else:
            report.warn("events", text + "; dropped (data.unknown_partners: drop)")
            out = out.loc[~unknown]
    return out


def _validate_contracts(frame: pd.DataFrame, known: pd.Series, tz: str, report: _Report) -> pd.DataFrame:
    ids = _ids(frame, "contracts", report)
    unknown = ~ids.isin(known).to_numpy() & ids.notna().to_numpy()
    if unknown.any():
        examples = ", ".join(repr(v) for v in ids[unknown].drop_duplicates().head(3))
        report.error("contracts", "partner_id", f"{int(unknown.sum())} contract(s) for partner id(s) not in the partners table (e.g. {examples}) at {_rows(unknown)}; add the partners or remove the contracts")
    start = _required_dates(frame, "contracts", "start_date", tz, report)
    end = _optional_dates(frame, "contracts", "end_date", tz, report)
    terminated = _optional_dates(frame, "contracts", "terminated_at", tz, report)
    value = _parse_numbers(frame["value"], table="contracts", column="value", report=report)
    backwards = (end < start).fillna(False).to_numpy(dtype=bool)
    if backwards.any():
        report.error("contracts", "end_date", f"{int(backwards.sum())} contract(s) end before they start at {_rows(backwards)}; end_date must be on or after start_date")
    early = (terminated < start).fillna(False).to_numpy(dtype=bool)
    if early.any():
        report.error("contracts", "terminated_at", f"{int(early.sum())} contract(s) terminated before they start at {_rows(early)}; terminated_at must be on or after start_date")
    negative = (value < 0).to_numpy()
    if negative.any():
        report.error("contracts", "value", f"{int(negative.sum())} negative value(s) at {_rows(negative)}; value is the recurring monthly value, >= 0")
    no_value = frame["value"].isna().to_numpy()
    if no_value.any():
        report.error("contracts", "value", f"{int(no_value.sum())} empty value(s) at {_rows(no_value)}; every contract needs its monthly value (0 is allowed)")
    return frame.assign(partner_id=ids, start_date=start, end_date=end, terminated_at=terminated, value=value)


def validate_tables(
    partners: pd.DataFrame,
    events: pd.DataFrame,
    contracts: pd.DataFrame | None = None,
    *,
    config: DataConfig | None = None,
    sources: Mapping[str, str] | None = None,
) -> InputTables:
    """Check raw frames (canonical column names) against the data contract and type them.

    Raises :class:`~churnmodel.errors.DataError` listing every problem found. Harmless issues
    (exact duplicate events, events outside a partner's membership) are counted warnings.
    The input frames are never modified.
    """
    cfg = config or DataConfig(partners="partners", events="events")
    sources = {"partners": "partners", "events": "events", "contracts": "contracts", **(sources or {})}
    identity = {t: {c: c for c in cols} for t, cols in CANONICAL_COLUMNS.items()}
    for table, frame in (("partners", partners), ("events", events), ("contracts", contracts)):
        if frame is None:
            continue
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{table} must be a pandas DataFrame, got {type(frame).__name__}")
        if len(frame) == 0:
            raise DataError(f"{sources[table]}: no rows; expected at least one {table} row")
        check_columns(frame, table=table, source=sources[table], mapping=identity[table])
    report = _Report(sources)
    tz = cfg.naive_timezone
    p = _validate_partners(partners.reset_index(drop=True), tz, report)
    known = p["partner_id"].dropna()
    e = _validate_events(events.reset_index(drop=True), known, cfg, report)
    c = None if contracts is None else _validate_contracts(contracts.reset_index(drop=True), known, tz, report)
    report.raise_errors()
    e = _drop_duplicate_events(e, report)
    _warn_outside_membership(p, e, report)
    for message in report.warnings:
        log.warning(message)
    return InputTables(
        partners=p.reset_index(drop=True),
        events=e.reset_index(drop=True),
        contracts=None if c is None else c.reset_index(drop=True),
        sources=dict(sources),
        warnings=tuple(report.warnings),
    )


def validate_dimensions(
    partners: pd.DataFrame,
    contracts: pd.DataFrame | None = None,
    *,
    config: DataConfig | None = None,
    sources: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Check and type the partners and contracts tables alone (the event log is checked elsewhere,
    e.g. on Spark). Same rules and messages as :func:`validate_tables`."""
    cfg = config or DataConfig(partners="partners", events="events")
    sources = {"partners": "partners", "contracts": "contracts", **(sources or {})}
    for table, frame in (("partners", partners), ("contracts", contracts)):
        if frame is None:
            continue
        if len(frame) == 0:
            raise DataError(f"{sources[table]}: no rows; expected at least one {table} row")
        check_columns(frame, table=table, source=sources[table], mapping={c: c for c in CANONICAL_COLUMNS[table]})
    report = _Report(sources)
    p = _validate_partners(partners.reset_index(drop=True), cfg.naive_timezone, report)
    c = None if contracts is None else _validate_contracts(contracts.reset_index(drop=True), p["partner_id"].dropna(), cfg.naive_timezone, report)
    report.raise_errors()
    return p.reset_index(drop=True), None if c is None else c.reset_index(drop=True)


def _drop_duplicate_events(events: pd.DataFrame, report: _Report) -> pd.DataFrame:
    dup = events.duplicated(keep="first").to_numpy()
    if dup.any():
        report.warn("events", f"{int(dup.sum())} exact duplicate event(s) dropped (first at {_rows(dup, limit=3)}); the first copy of each is kept")
        return events.loc[~dup]
    return events


def _warn_outside_membership(partners: pd.DataFrame, events: pd.DataFrame, report: _Report) -> None:
    bounds = partners.set_index("partner_id")[["joined_at", "churned_at"]]
    joined = bounds["joined_at"].reindex(events["partner_id"]).to_numpy()
    churned = bounds["churned_at"].reindex(events["partner_id"]).to_numpy()
    ts = events["timestamp"].to_numpy()
    before = ts < joined
    after = ts >= churned  # NaT compares False
    if before.any():
        report.warn("events", f"{int(before.sum())} event(s) dated before the partner joined; kept")
    if after.any():
        report.warn("events", f"{int(after.sum())} event(s) dated on or after the partner's churned_at; kept (features only use events before each snapshot date)")

