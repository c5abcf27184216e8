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
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from churnmodel.actions import CONTROL, check_actions
from churnmodel.cells import (
    Encoded,
    Problems,
    blank,
    duplicate_events_text,
    encode_text,
    in_range,
    optional_dates,
    parse_ids,
    parse_numbers,
    parse_timestamps,
    required_dates,
    rows,
)
from churnmodel.config import CANONICAL_COLUMNS, DataConfig
from churnmodel.errors import DataError
from churnmodel.times import DAY

__all__ = ["InputTables", "check_columns", "check_unique_columns", "validate_dimensions", "validate_tables"]

log = logging.getLogger("churnmodel")
_CHUNK = 1 << 18  # rows per block in the row-wise passes over the events: their temporaries stay a few MB



@dataclass(frozen=True)
class InputTables:
    """Validated inputs with canonical column names and dtypes (timestamps in UTC)."""

    partners: pd.DataFrame
    events: pd.DataFrame
    contracts: pd.DataFrame | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()



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


def check_unique_columns(names: list[str], *, source: str) -> None:
    """Every column name once: a duplicated header makes every later step ambiguous."""
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        seen.setdefault(name, []).append(i)
    dups = {name: where for name, where in seen.items() if len(where) > 1}
    if dups:
        listed = "; ".join(f"{name!r} (columns {', '.join(map(str, where))})" for name, where in dups.items())
        raise DataError(f"{source}: duplicated column name(s): {listed}; every column needs its own name "
                        "(rename or remove the copies in the export)")


def _validate_partners(frame: pd.DataFrame, tz: str, report: Problems) -> pd.DataFrame:
    ids = parse_ids(frame, "partners", report).series
    dup = ids.duplicated(keep=False).to_numpy() & ids.notna().to_numpy()
    if dup.any():
        examples = ", ".join(repr(v) for v in ids[dup].drop_duplicates().head(3))
        report.error(
            "partners", "partner_id",
            f"{int(ids[dup].nunique())} duplicated partner id(s) (e.g. {examples}) at {rows(dup)}; "
            "the partners table needs exactly one row per partner",
        )
    joined = required_dates(frame, "partners", "joined_at", tz, report)
    churned = optional_dates(frame, "partners", "churned_at", tz, report)
    before = (churned < joined).fillna(False).to_numpy(dtype=bool)
    if before.any():
        report.error("partners", "churned_at", f"{int(before.sum())} partner(s) churned before they joined at {rows(before)}; churned_at must be on or after joined_at")
    return frame.assign(partner_id=ids, joined_at=joined, churned_at=churned)


@dataclass(frozen=True)
class _EventKeys:
    """Per validated event row, its partner id and type as codes (into ``id_values`` and the types'
    distinct values): they follow the rows as events are dropped."""

    ids: np.ndarray
    id_values: pd.Index
    types: np.ndarray

    def subset(self, keep: np.ndarray) -> _EventKeys:
        return replace(self, ids=self.ids[keep], types=self.types[keep])


def _validate_events(
    frame: pd.DataFrame, known: pd.Series, cfg: DataConfig, report: Problems
) -> tuple[pd.DataFrame, _EventKeys]:
    ids = parse_ids(frame, "events", report)
    ts = parse_timestamps(frame["timestamp"], table="events", column="timestamp", tz=cfg.naive_timezone, report=report)
    ts = in_range(ts, frame["timestamp"], table="events", column="timestamp", report=report)
    nat = blank(frame["timestamp"])
    if nat.any():
        report.error("events", "timestamp", f"{int(nat.sum())} event(s) without a timestamp (NaT) at {rows(nat)}; every event needs a time")
    types = encode_text(frame["event_type"])
    type_missing = types.codes < 0
    if type_missing.any():
        report.error("events", "event_type", f"{int(type_missing.sum())} empty value(s) at {rows(type_missing)}; every event needs a type")
    if "amount" in frame.columns:
        amount = parse_numbers(frame["amount"], table="events", column="amount", report=report)
        signed = _per_row(types, types.values.isin(list(cfg.signed_amount_types)))
        negative = (amount < 0).to_numpy() & ~signed
        if negative.any():
            per_type = types.series[negative].value_counts().head(5).to_dict()
            report.error(
                "events", "amount",
                f"{int(negative.sum())} negative amount(s) at {rows(negative)} (by type: {per_type}); amounts must be >= 0 "
                "(order value, hours, days late...). If a type is legitimately signed (refunds), list it in data.signed_amount_types",
            )
    else:
        amount = pd.Series(np.nan, index=frame.index)
    out = frame.assign(partner_id=ids.series, timestamp=ts, event_type=types.series, amount=amount)
    control = check_actions(frame, types, cfg, report)
    if control is not None:  # the hold-out flag as the canonical boolean column
        out = out.drop(columns=[cfg.actions.control_column]).assign(**{CONTROL: control})
    keys = _EventKeys(ids=ids.codes, id_values=ids.values, types=types.codes)
    unknown = ~_per_row(ids, ids.values.isin(known)) & (ids.codes >= 0)
    if unknown.any():
        examples = ", ".join(repr(v) for v in ids.series[unknown].drop_duplicates().head(3))
        text = (f"{int(unknown.sum())} event(s) for {len(np.unique(ids.codes[unknown]))} partner id(s) not in the partners table "
                f"(e.g. {examples}) at {rows(unknown)}")
        if cfg.unknown_partners == "error":
            report.error("events", "partner_id", text + "; add the partners, or set data.unknown_partners: drop to ignore them")
        else:
            report.warn("events", text + "; dropped (data.unknown_partners: drop)")
            out, keys = out.loc[~unknown], keys.subset(~unknown)
    return out, keys


def _per_row(encoded: Encoded, per_value: np.ndarray) -> np.ndarray:
    """A property of each distinct value, per row (False where the row's value is empty)."""
    return np.append(np.asarray(per_value, dtype=bool), False)[encoded.codes]


def _validate_contracts(frame: pd.DataFrame, known: pd.Series, tz: str, report: Problems) -> pd.DataFrame:
    ids = parse_ids(frame, "contracts", report).series
    unknown = ~ids.isin(known).to_numpy() & ids.notna().to_numpy()
    if unknown.any():
        examples = ", ".join(repr(v) for v in ids[unknown].drop_duplicates().head(3))
        report.error("contracts", "partner_id", f"{int(unknown.sum())} contract(s) for partner id(s) not in the partners table (e.g. {examples}) at {rows(unknown)}; add the partners or remove the contracts")
    start = required_dates(frame, "contracts", "start_date", tz, report)
    end = optional_dates(frame, "contracts", "end_date", tz, report)
    terminated = optional_dates(frame, "contracts", "terminated_at", tz, report)
    value = parse_numbers(frame["value"], table="contracts", column="value", report=report)
    backwards = (end < start).fillna(False).to_numpy(dtype=bool)
    if backwards.any():
        report.error("contracts", "end_date", f"{int(backwards.sum())} contract(s) end before they start at {rows(backwards)}; end_date must be on or after start_date")
    early = (terminated < start).fillna(False).to_numpy(dtype=bool)
    if early.any():
        report.error("contracts", "terminated_at", f"{int(early.sum())} contract(s) terminated before they start at {rows(early)}; terminated_at must be on or after start_date")
    negative = (value < 0).to_numpy()
    if negative.any():
        report.error("contracts", "value", f"{int(negative.sum())} negative value(s) at {rows(negative)}; value is the recurring monthly value, >= 0")
    no_value = frame["value"].isna().to_numpy()
    if no_value.any():
        report.error("contracts", "value", f"{int(no_value.sum())} empty value(s) at {rows(no_value)}; every contract needs its monthly value (0 is allowed)")
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
        check_unique_columns([str(c) for c in frame.columns], source=sources[table])
        check_columns(frame, table=table, source=sources[table], mapping=identity[table])
    report = Problems(sources)
    tz = cfg.naive_timezone
    p = _validate_partners(partners.reset_index(drop=True), tz, report)
    known = p["partner_id"].dropna()
    e, keys = _validate_events(events.reset_index(drop=True), known, cfg, report)
    c = None if contracts is None else _validate_contracts(contracts.reset_index(drop=True), known, tz, report)
    report.raise_errors()
    _check_span(p, e, c, cfg, report)
    report.raise_errors()
    # every event's partner is known and unique now: its row in the partners table, per distinct id
    positions = pd.Index(p["partner_id"]).get_indexer(keys.id_values).astype(np.int32)  # per distinct id: its partners row
    keep = None if cfg.duplicate_events == "keep" else _unique_events(e, positions, keys, report, policy=cfg.duplicate_events)
    report.raise_errors()
    if keep is not None:
        e, keys = e.loc[keep], keys.subset(keep)
    _warn_outside_membership(p, e, positions, keys.ids, report)
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
    report = Problems(sources)
    p = _validate_partners(partners.reset_index(drop=True), cfg.naive_timezone, report)
    c = None if contracts is None else _validate_contracts(contracts.reset_index(drop=True), p["partner_id"].dropna(), cfg.naive_timezone, report)
    report.raise_errors()
    return p.reset_index(drop=True), None if c is None else c.reset_index(drop=True)


def _check_span(partners: pd.DataFrame, events: pd.DataFrame, contracts: pd.DataFrame | None, cfg: DataConfig,
                report: Problems) -> None:
    """Nothing may stretch the snapshot grid beyond what the data supports: events cut off from the rest
    of the log by more than ``data.max_gap_days`` without any event (a typo, a placeholder year), and
    partner or contract dates that far after the data's end, are errors naming the rows."""
    ts = events["timestamp"]
    if ts.isna().all():
        return
    limit = cfg.max_gap_days
    micros = ts.array.asi8  # int64 microseconds, no copy of the column
    first, last = micros.min() // (DAY * 1_000_000), micros.max() // (DAY * 1_000_000)
    if last - first > limit:
        counts = np.zeros(last - first + 1, dtype=np.int64)
        for lo in range(0, len(micros), _CHUNK):
            counts += np.bincount(micros[lo:lo + _CHUNK] // (DAY * 1_000_000) - first, minlength=len(counts))
        present = np.flatnonzero(counts)
        cut = np.flatnonzero(np.diff(present) > limit)
        if cut.size:  # the largest block of events is the log; the others are cut off from it
            day = micros // (DAY * 1_000_000)
            edges = np.concatenate([[0], cut + 1, [present.size]])
            blocks = [(present[a] + first, present[b - 1] + first) for a, b in itertools.pairwise(edges)]
            sizes = [int(((day >= lo) & (day <= hi)).sum()) for lo, hi in blocks]
            lo, hi = blocks[int(np.argmax(sizes))]
            stray = (day < lo) | (day > hi)
            span = f"{_date(lo)} to {_date(hi)}"
            report.error("events", "timestamp", f"{int(stray.sum())} event(s) at {rows(stray)} (e.g. {str(ts[stray].iloc[0].date())!r}) lie "
                         f"more than {limit} days from the rest of the log ({span}) with no event in between; a typo or a "
                         "placeholder date? Correct or remove them (or raise data.max_gap_days)")
            return
    end = pd.Timestamp(cfg.extracted_at, tz="UTC") if cfg.extracted_at is not None else ts.max()
    bound = end + pd.Timedelta(days=limit)
    for table, frame, column in (("partners", partners, "joined_at"), ("partners", partners, "churned_at"),
                                 ("contracts", contracts, "start_date"), ("contracts", contracts, "terminated_at")):
        if frame is None:
            continue
        late = (frame[column] > bound).to_numpy(dtype=bool)
        if late.any():
            report.error(table, column, f"{int(late.sum())} date(s) at {rows(late)} (e.g. {str(frame[column][late].iloc[0].date())!r}) "
                         f"more than {limit} days after the data ends ({end.date()}: "
                         f"{'data.extracted_at' if cfg.extracted_at is not None else 'the latest event'}); a typo or a placeholder? "
                         "Correct them, leave an end date empty when it is open, or raise data.max_gap_days")


def _date(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _unique_events(events: pd.DataFrame, positions: np.ndarray, keys: _EventKeys, report: Problems, *,
                   policy: str = "drop") -> np.ndarray | None:
    """Exact duplicate events (equal in every column): dropped with a warning, the first copy kept
    (``policy`` "drop"), or an error naming the rows ("error"). Returns the rows to keep, or None when
    nothing is dropped.

    Rows are hashed on (partner, type, time, amount) into 32 bits; only rows whose hash occurs more than
    once (sorting the hashes finds them) are compared exactly, over all columns, by pandas. The hash is
    a filter, never the verdict, so a collision cannot drop an event (10M events: ~10k rows collide by
    chance and are compared for nothing). Memory: the hashes (40 MB for 10M events), sorted in place and
    computed again per block, instead of pandas' 0.3 GB hash table."""
    ts = events["timestamp"].array.asi8
    amount = events["amount"].to_numpy(dtype=np.float64)
    ids, types = keys.ids, keys.types
    n_types = int(types.max(initial=0)) + 1

    def hashed(lo: int) -> np.ndarray:
        block = slice(lo, lo + _CHUNK)
        a = amount[block] + 0.0  # -0.0 equals 0.0, as in pandas
        a[np.isnan(a)] = np.nan  # one NaN bit pattern
        with np.errstate(over="ignore"):
            mixed = (pd.util.hash_array(ts[block]) * np.uint64(0x9E3779B97F4A7C15)
                     + pd.util.hash_array(positions[ids[block]].astype(np.int64) * n_types + types[block])
                     * np.uint64(0xC2B2AE3D27D4EB4F) + pd.util.hash_array(a.view(np.int64)))
        return ((mixed >> np.uint64(32)) ^ (mixed & np.uint64(0xFFFFFFFF))).astype(np.uint32)

    hashes = np.empty(len(events), dtype=np.uint32)
    for lo in range(0, len(events), _CHUNK):
        hashes[lo:lo + _CHUNK] = hashed(lo)
    hashes.sort()
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    del hashes
    if repeated.size == 0:
        return None
    candidate = np.zeros(len(events), dtype=bool)
    for lo in range(0, len(events), _CHUNK):
        h = hashed(lo)
        candidate[lo:lo + _CHUNK] = repeated[np.minimum(np.searchsorted(repeated, h), repeated.size - 1)] == h
    where = np.flatnonzero(candidate)
    # the candidates' canonical values from the codes (an Arrow text column gathered by row concatenates
    # its chunks: 10M ids, 0.2 GB); any other column as it is
    exact = pd.DataFrame({"partner_id": positions[ids[where]], "event_type": types[where], "timestamp": ts[where],
                          "amount": amount[where]})
    extra = [c for c in events.columns if c not in exact.columns]
    exact = pd.concat([exact, events[extra].iloc[where].reset_index(drop=True)], axis=1) if extra else exact
    dup = np.zeros(len(events), dtype=bool)
    dup[where[exact.duplicated(keep="first").to_numpy()]] = True
    if not dup.any():
        return None
    text = duplicate_events_text(int(dup.sum()), policy, where=f" (first at {rows(dup, limit=3)})")
    if policy == "error":
        report.error("events", None, text)
        return None
    report.warn("events", text)
    return ~dup


def _warn_outside_membership(partners: pd.DataFrame, events: pd.DataFrame, positions: np.ndarray, ids: np.ndarray,
                             report: Problems) -> None:
    """Counted warnings for events before the partner joined or on/after churned_at (times as int64
    microseconds, gathered per block from the partners table: never boxed into Timestamp objects)."""
    joined = partners["joined_at"].array.asi8
    churned = np.where(partners["churned_at"].isna().to_numpy(), np.iinfo(np.int64).max, partners["churned_at"].array.asi8)
    ts = events["timestamp"].array.asi8
    before = after = 0
    for lo in range(0, len(events), _CHUNK):
        rows_ = positions[ids[lo:lo + _CHUNK]]
        before += int((ts[lo:lo + _CHUNK] < joined[rows_]).sum())
        after += int((ts[lo:lo + _CHUNK] >= churned[rows_]).sum())
    if before:
        report.warn("events", f"{before} event(s) dated before the partner joined; kept")
    if after:
        report.warn("events", f"{after} event(s) dated on or after the partner's churned_at; kept (features only use events before each snapshot date)")
