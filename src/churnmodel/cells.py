"""Cells: raw input columns parsed into typed ones, every problem collected (pure functions).

Ids are text (only an empty cell is missing); dates become UTC timestamps within the supported
range (1900 to 2199; a later end date such as 9999-12-31 means "open" and reads as empty, counted);
amounts become finite floats within +/-1e15. Each problem names the file, the column, example rows
(1-based data rows; in a CSV, line = row + 1) and the fix; :class:`Problems` collects them so one
error lists them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnmodel.errors import DataError
from churnmodel.times import EARLIEST, LATEST, TIMESTAMP_DTYPE

__all__ = [
    "FLAG_FALSE",
    "FLAG_TRUE",
    "MAX_AMOUNT",
    "Encoded",
    "Problems",
    "blank",
    "duplicate_events_text",
    "encode_text",
    "in_range",
    "optional_dates",
    "parse_flags",
    "parse_ids",
    "parse_numbers",
    "parse_timestamps",
    "raise_problems",
    "required_dates",
    "rows",
]

_EXAMPLES = 5
#: Amounts and contract values beyond this (in either direction) are a placeholder or an overflow, not money.
MAX_AMOUNT = 1e15


def rows(mask: np.ndarray | pd.Series, *, limit: int = _EXAMPLES) -> str:
    idx = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(str(i) for i in idx[:limit])
    more = f" (+{len(idx) - limit} more)" if len(idx) > limit else ""
    return f"row{'s' if len(idx) > 1 else ''} {shown}{more}"


def raise_problems(problems: list[str]) -> None:
    """Every problem found (each naming its file and column), in one DataError; nothing if none."""
    if problems:
        n = len(problems)
        raise DataError(f"input data has {n} problem{'s' if n > 1 else ''}:\n" + "\n".join(f"  - {m}" for m in problems))


class Problems:
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


def duplicate_events_text(count: int, policy: str, *, where: str = "") -> str:
    """What every engine says about exact duplicate events under ``data.duplicate_events`` (``policy``)."""
    if policy == "error":
        return (f"{count} event(s) repeat an earlier event in every column{where} (data.duplicate_events: error); remove the "
                "copies, or set data.duplicate_events: drop to drop them or keep if identical rows are real events")
    return (f"{count} exact duplicate event(s) dropped{where}; the first copy of each is kept (data.duplicate_events: drop). "
            "If identical rows are real events (two same-day orders of the same amount), set data.duplicate_events: keep")


@dataclass(frozen=True)
class Encoded:
    """A text column as codes into its distinct cleaned values: the rows are hashed once, and every
    later check (known ids, per-type rules, duplicates, membership) works on the small dictionary.

    ``series`` is the cleaned column (text, missing where empty), ``codes`` the position of each row's
    value in ``values`` (-1 where empty; the smallest signed integer type that holds them)."""

    series: pd.Series
    codes: np.ndarray
    values: pd.Index


def encode_text(raw: pd.Series) -> Encoded:
    """Dictionary-encode a text column, trimming spaces: an empty or blank cell is missing; whole floats
    (an id column read as numbers) are written without ".0". Only the distinct values are cleaned."""
    codes, distinct = _factorize(raw)
    if pd.api.types.is_float_dtype(distinct.dtype) and (distinct == np.floor(distinct)).all():
        text = distinct.astype("Int64").astype("str")
    elif distinct.dtype == object or pd.api.types.is_string_dtype(distinct.dtype):
        text = distinct.astype("str").str.strip()
    else:
        text = distinct.astype("str")
    clean_codes, values = pd.factorize(text.where(text != "", None))  # "" -> -1; " a" and "a" become one value
    smallest = np.min_scalar_type(-len(values) - 1)  # int8 for a few event types, int32 for many ids
    values = pd.Index(values, dtype=text.dtype)
    if len(values) == len(distinct) and (clean_codes == np.arange(len(distinct))).all():  # nothing merged or emptied
        row_codes = codes.astype(smallest, copy=False)
        if raw.dtype == text.dtype and text.equals(distinct):  # already clean text: the rows are not copied
            return Encoded(series=raw, codes=row_codes, values=values)
    else:
        row_codes = np.append(clean_codes, -1).astype(smallest)[codes]  # code -1 (missing) picks the appended -1
    return Encoded(series=_take(values, row_codes).rename(raw.name).set_axis(raw.index), codes=row_codes, values=values)


def _factorize(raw: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """int32 codes (-1 where missing) and the distinct values. Arrow-backed text: Arrow finds the distinct
    values, then codes each chunk into one preallocated int32 array (pandas' int64 codes and Arrow's
    encoded copy would cost 120 MB more on 10M events)."""
    if isinstance(raw.dtype, pd.StringDtype) and raw.dtype.storage == "pyarrow" and len(raw):
        chunked = pa.chunked_array(pa.array(raw.array))
        dictionary = pc.unique(chunked)  # the distinct values (nulls left out below), in order of first appearance
        dictionary = dictionary.filter(pc.is_valid(dictionary))
        codes, at = np.empty(len(raw), dtype=np.int32), 0
        for chunk in chunked.chunks:  # chunk by chunk: the only full-length array is the codes themselves
            codes[at:at + len(chunk)] = pc.fill_null(pc.index_in(chunk, value_set=dictionary), -1).to_numpy()
            at += len(chunk)
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
        return codes, pd.Series(dictionary.to_pandas(types_mapper={pa.string(): raw.dtype, pa.large_string(): raw.dtype}.get))
    codes, distinct = pd.factorize(raw)
    return codes.astype(np.int32), pd.Series(distinct)


def _take(values: pd.Index, codes: np.ndarray) -> pd.Series:
    """values[codes] per row, missing where the code is -1 (Arrow-backed text is gathered by Arrow)."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        taken = pa.array(values.to_numpy(dtype=object), type=pa.large_string()).take(pa.array(codes, mask=codes < 0))
        return pd.Series(taken.to_pandas(types_mapper={taken.type: values.dtype}.get), dtype=values.dtype)
    return pd.Series(pd.api.extensions.take(values.to_numpy(dtype=object), codes, allow_fill=True), dtype=values.dtype)


def parse_ids(frame: pd.DataFrame, table: str, report: Problems) -> Encoded:
    """The partner ids of a table, encoded (:func:`encode_text`); an empty id is an error naming the rows."""
    ids = encode_text(frame["partner_id"])
    empty = ids.codes < 0
    if empty.any():
        report.error(table, "partner_id", f"{int(empty.sum())} empty value(s) at {rows(empty)}; every row needs a partner_id")
    return ids


def parse_timestamps(
    values: pd.Series, *, table: str, column: str, tz: str, report: Problems
) -> pd.Series:
    """Parse a date/time column to UTC: naive values are taken as ``tz``; offsets are converted."""
    if values.dtype == TIMESTAMP_DTYPE:
        return values  # already UTC microseconds (a Parquet timestamp column): no copy
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
            f"{int(bad.sum())} unparseable date/time value(s) at {rows(bad)} (e.g. {examples}); "
            "expected ISO-8601 such as 2024-03-31, 2024-03-31T14:05:00 or 2024-03-31T14:05:00+03:00",
        )
    elif has_offset.any() and no_offset.any():
        report.error(
            table,
            column,
            f"mixes timestamps with a UTC offset ({rows(has_offset, limit=3)}) and without one "
            f"({rows(no_offset, limit=3)}); write all with an offset, or all without "
            f"(then they are taken as data.naive_timezone = {tz})",
        )
    if not bad.any() and not (has_offset.any() and no_offset.any()):
        naive = parsed.dt.tz_localize(None)
        return naive.dt.tz_localize(tz).dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    return pd.Series(pd.NaT, index=values.index, dtype=TIMESTAMP_DTYPE)


def parse_numbers(values: pd.Series, *, table: str, column: str, report: Problems) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        report.error(table, column, "expected numbers, got true/false values")
        return pd.Series(np.nan, index=values.index)
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values if values.dtype == np.float64 else values.astype("float64")
    else:
        missing = values.isna().to_numpy()
        text = values.astype("str").str.strip()
        numbers = pd.to_numeric(text.where(~missing & (text != ""), None), errors="coerce").astype("float64")
        bad = numbers.isna().to_numpy() & ~missing & (text != "").to_numpy()
        if bad.any():
            examples = ", ".join(repr(v) for v in text[bad].head(3))
            comma = " (decimal commas are not accepted: write 12.5, not 12,5)" if text[bad].str.contains(",").any() else ""
            report.error(table, column, f"{int(bad.sum())} non-numeric value(s) at {rows(bad)} (e.g. {examples}); expected a number{comma}")
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        report.error(table, column, f"{int(infinite.sum())} infinite value(s) at {rows(infinite)}; expected a finite number")
    array = numbers.to_numpy()
    huge = ((array > MAX_AMOUNT) | (array < -MAX_AMOUNT)) & ~infinite
    if huge.any():
        examples = ", ".join(f"{v:.6g}" for v in numbers[huge].head(3))
        report.error(table, column, f"{int(huge.sum())} value(s) beyond +/-{MAX_AMOUNT:.0e} at {rows(huge)} (e.g. {examples}); "
                                    "sums of them would overflow: a placeholder or a unit error? Correct them or leave them empty")
    return numbers.mask(infinite | huge) if infinite.any() or huge.any() else numbers


#: What a yes/no cell may hold (trimmed, any case); an empty cell is no.
FLAG_TRUE, FLAG_FALSE = ("true", "1", "yes", "1.0"), ("false", "0", "no", "0.0", "")


def parse_flags(values: pd.Series, *, table: str, column: str, report: Problems) -> np.ndarray:
    """A yes/no column as booleans (empty is no); anything else is an error naming the rows."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.fillna(False).to_numpy(dtype=bool)
    text = values.astype("object").where(values.notna(), "").astype("str").str.strip().str.lower()
    yes = text.isin(FLAG_TRUE).to_numpy()
    bad = ~(yes | text.isin(FLAG_FALSE).to_numpy())
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].astype("str").drop_duplicates().head(3))
        report.error(table, column, f"{int(bad.sum())} value(s) that are not yes/no flags at {rows(bad)} (e.g. {examples}); "
                                    "expected true/false, 1/0, yes/no or empty")
    return yes


def in_range(parsed: pd.Series, raw: pd.Series, *, table: str, column: str, report: Problems, open_ended: bool = False) -> pd.Series:
    """Dates outside [EARLIEST, LATEST) are an error, except far-future "open-ended" placeholders
    (9999-12-31) in an end column, which are read as empty with a counted warning."""
    early = (parsed < EARLIEST).to_numpy(dtype=bool)
    late = (parsed >= LATEST).to_numpy(dtype=bool)
    if open_ended and late.any():
        report.warn(table, f"column {column!r}: {int(late.sum())} date(s) on or after {LATEST.date()} at {rows(late, limit=3)} "
                           f"(e.g. {str(raw[late].iloc[0])!r}) read as empty: an open-ended placeholder")
        parsed, late = parsed.mask(late), np.zeros_like(late)
    bad = early | late
    if bad.any():
        examples = ", ".join(repr(str(v)) for v in raw[bad].head(3))
        report.error(table, column, f"{int(bad.sum())} date(s) outside the supported range {EARLIEST.date()} to {LATEST.date()} "
                                    f"at {rows(bad)} (e.g. {examples}); a placeholder or a typo? Correct the dates or leave them empty")
        parsed = parsed.mask(bad)
    return parsed


def blank(raw: pd.Series) -> np.ndarray:
    """Missing or only spaces, per row. Only text can be spaces: typed columns (datetimes from Parquet,
    numbers) are never formatted as text for the check (10M timestamps would take half a minute)."""
    missing = raw.isna().to_numpy()
    if raw.dtype == object or str(raw.dtype) in ("str", "string"):
        missing = missing | (raw.astype("str").str.strip() == "").to_numpy()
    return missing


def required_dates(frame: pd.DataFrame, table: str, column: str, tz: str, report: Problems) -> pd.Series:
    parsed = parse_timestamps(frame[column], table=table, column=column, tz=tz, report=report)
    parsed = in_range(parsed, frame[column], table=table, column=column, report=report)
    empty = blank(frame[column])
    if empty.any():
        report.error(table, column, f"{int(empty.sum())} empty value(s) at {rows(empty)}; a date is required in every row")
    return parsed


def optional_dates(frame: pd.DataFrame, table: str, column: str, tz: str, report: Problems) -> pd.Series:
    """An end date (churned_at, end_date, terminated_at): empty means still open."""
    if column not in frame.columns:
        return pd.Series(pd.NaT, index=frame.index, dtype=TIMESTAMP_DTYPE)
    parsed = parse_timestamps(frame[column], table=table, column=column, tz=tz, report=report)
    return in_range(parsed, frame[column], table=table, column=column, report=report, open_ended=True)
