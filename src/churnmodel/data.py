"""Inputs: read partners, events and contracts from files and validate them (the input edge).

This is the only module that reads input files: :func:`read_inputs` takes the ``data:`` config
(paths) and returns validated :class:`~churnmodel.validation.InputTables` (the checks themselves,
pure functions on frames: :mod:`churnmodel.validation`).
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from churnmodel.config import CANONICAL_COLUMNS, DataConfig
from churnmodel.errors import DataError
from churnmodel.times import TIMESTAMP_DTYPE
from churnmodel.validation import InputTables, check_columns, check_unique_columns, validate_tables

__all__ = ["EXACT_FLOATS", "NULL_MARKERS", "InputTables", "read_features", "read_inputs", "read_table", "sniff_delimiter", "summarize", "validate_tables"]

_CSV_SUFFIXES = {".csv": None, ".tsv": "\t", ".txt": None}
#: What reads as missing in a text column (pyarrow's and pandas' usual markers), except in id columns:
#: an id is text, so "NA", "null" or "None" are ids there; only an empty cell is missing.
#: pandas before 3 parses the last digit of some floats inexactly unless asked (3 is exact and deprecates the option).
EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
NULL_MARKERS = (*tuple(pacsv.ConvertOptions().null_values), "None", "<NA>")


# --------------------------------------------------------------------------- reading (the edge)


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".gz"] and len(suffixes) >= 2:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def read_table(
    path: str | Path,
    *,
    table: str,
    columns: Mapping[str, str] | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read one input file (CSV, TSV, Parquet or Excel) and rename its columns to canonical names.

    Values are not parsed here (dates stay as the file has them); :func:`validate_tables` does that.
    """
    path = Path(path)
    mapping = dict(columns or {name: name for name in CANONICAL_COLUMNS[table]})
    if not path.exists():
        raise DataError(f"data.{table}: file not found: {path}")
    if path.is_dir():
        raise DataError(f"data.{table}: {path} is a folder; expected a .csv, .parquet or .xlsx file")
    if path.stat().st_size == 0:
        raise DataError(f"{path.name}: the file is empty (0 bytes); expected a header row and data")
    suffix = _suffix(path)
    id_cols = [mapping["partner_id"]]
    if suffix in _CSV_SUFFIXES:
        frame = _read_csv(path, _CSV_SUFFIXES[suffix] or delimiter, encoding, id_cols, table)
    elif suffix in (".parquet", ".pq"):
        frame = _read_parquet(path)
    elif suffix in (".xlsx", ".xlsm"):
        frame = _read_excel(path, id_cols)
    else:
        raise DataError(
            f"{path.name}: unsupported file type {suffix or '(no extension)'!r} for data.{table}; "
            "use .csv (optionally .csv.gz), .tsv, .parquet or .xlsx"
        )
    if len(frame) == 0:
        raise DataError(f"{path.name}: the file has a header but no rows; expected at least one {table} row")
    check_columns(frame, table=table, source=path.name, mapping=mapping)
    rename = {src: canon for canon, src in mapping.items() if src in frame.columns and src != canon}
    return frame.rename(columns=rename)


def _read_csv(path: Path, delimiter: str, encoding: str, id_cols: list[str], table: str) -> pd.DataFrame:
    def read(types_for: list[str]) -> pa.Table:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),  # a quoted line break is data
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in types_for},
                strings_can_be_null=False,  # ids are text: the null markers are applied below, to other columns only
                timestamp_parsers=[],  # dates stay strings; validate_tables parses them
            ),
        )

    try:
        if delimiter == "auto":
            delimiter = sniff_delimiter(path, encoding)
        arrow = read(id_cols)
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError) as exc:
        raise DataError(_csv_error(path, exc, delimiter, encoding, table)) from None
    except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
        raise DataError(f"{path.name}: cannot read the file ({str(exc).splitlines()[0] or type(exc).__name__}); "
                        "is it a complete export? (a .gz must be a whole gzip file)") from None
    try:
        check_unique_columns(arrow.column_names, source=path.name)
        binary = [f.name for f in arrow.schema if pa.types.is_binary(f.type)]
        if binary:  # pyarrow reads undecodable text as bytes instead of failing
            raise UnicodeDecodeError(encoding, b"", 0, 1, f"undecodable bytes in column(s) {binary}")
        frame = _nulls_outside_ids(arrow, id_cols).to_pandas()
    except UnicodeDecodeError as exc:  # also an undecodable header
        raise DataError(_csv_error(path, exc, delimiter, encoding, table)) from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        for guess, name in _DELIMITERS:
            if guess in header and guess != delimiter:
                raise DataError(
                    f"{path.name}: the file reads as a single column {header[:60]!r}; it looks "
                    f"{name}-delimited. Set data.csv_delimiter: {guess!r} (or 'auto') in the config"
                )
    return frame


def _nulls_outside_ids(arrow: pa.Table, id_cols: list[str]) -> pa.Table:
    """Null markers ("", "NA", "null"...) read as missing in text columns other than the ids."""
    markers = pa.array(NULL_MARKERS, type=pa.string())
    for i, f in enumerate(arrow.schema):
        if f.name not in id_cols and pa.types.is_string(f.type):
            column = arrow.column(i)
            arrow = arrow.set_column(i, f, pc.if_else(pc.is_in(column, value_set=markers), pa.scalar(None, pa.string()), column))
    return arrow


_DELIMITERS = ((",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe"))


def sniff_delimiter(path: Path, encoding: str) -> str:
    """The candidate delimiter that occurs most often in the header line (comma on a tie)."""

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        header = handle.readline(1 << 16).decode(encoding if encoding != "utf-8" else "utf-8-sig", errors="replace")
    counts = {d: header.count(d) for d, _ in _DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 0 else ","


def _csv_error(path: Path, exc: Exception, delimiter: str, encoding: str, table: str) -> str:
    text = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc).splitlines()[0]
    if "UTF8" in text or "UTF-8" in text or isinstance(exc, UnicodeDecodeError):
        hint = ""
        raw = path.read_bytes()[: 1 << 20]
        try:
            decoded = raw.decode("cp1251")
            if any("\u0400" <= ch <= "\u04ff" for ch in decoded):
                hint = " It decodes as Windows-1251 (Cyrillic): set data.csv_encoding: cp1251."
        except UnicodeDecodeError:
            pass
        return f"{path.name}: not valid {encoding} text ({text}).{hint or ' Set data.csv_encoding to the export encoding.'}"
    if isinstance(exc, LookupError):
        return f"{path.name}: unknown encoding {encoding!r} in data.csv_encoding ({text})"
    if "Empty CSV file" in text:
        return f"{path.name}: the file has no header row; expected a header with the {table} columns"
    return (
        f"{path.name}: cannot parse as CSV with delimiter {delimiter!r} ({text}). "
        "Check data.csv_delimiter and that every row has as many fields as the header"
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    """Column by column, text read as a dictionary and decoded once, each column's Arrow buffers freed as
    it becomes pandas: the peak stays near the frame's own size (10M events: 0.65 GB, not 1.0)."""
    try:
        schema = pq.read_schema(path)
        check_unique_columns(schema.names, source=path.name)
        text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        file = pq.ParquetFile(path, read_dictionary=text, pre_buffer=False)
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}  # a saved pandas index
        columns = {}
        for name in (n for n in schema.names if n not in index):
            column = file.read(columns=[name], use_threads=True).column(0)
            if pa.types.is_dictionary(column.type):  # decoded straight to pandas' own text layout (no second copy)
                column = pc.cast(column, pa.large_string())
            columns[name] = pa.table({name: column}).to_pandas(self_destruct=True, split_blocks=True)[name]
            del column
            pa.default_memory_pool().release_unused()
        return pd.DataFrame(columns, copy=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path.name}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _read_excel(path: Path, id_cols: list[str]) -> pd.DataFrame:
    try:
        header = pd.read_excel(path, sheet_name=0, header=None, nrows=1, engine="openpyxl")
        check_unique_columns([str(v) for v in header.iloc[0].tolist()] if len(header) else [], source=path.name)
        frame = pd.read_excel(path, sheet_name=0, dtype={c: str for c in id_cols}, engine="openpyxl", keep_default_na=False,
                              na_values={c: list(NULL_MARKERS) for c in header.iloc[0].astype(str) if c not in id_cols})
    except DataError:
        raise
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise DataError(f"{path.name}: not a readable Excel workbook ({exc})") from None
    for col in id_cols:  # an empty cell is missing; any text (also "NA") is an id
        if col in frame.columns:
            frame[col] = frame[col].mask(frame[col] == "")
    return frame


def read_inputs(cfg: DataConfig) -> InputTables:
    """Read and validate the input files named in the ``data:`` section of the config."""
    kwargs = {"delimiter": cfg.csv_delimiter, "encoding": cfg.csv_encoding}
    cols = cfg.columns
    partners = read_table(cfg.partners, table="partners", columns=cols.partners, **kwargs)
    events = read_table(cfg.events, table="events", columns=cols.events, **kwargs)
    contracts = None
    if cfg.contracts is not None:
        contracts = read_table(cfg.contracts, table="contracts", columns=cols.contracts, **kwargs)
    sources = {"partners": cfg.partners.name, "events": cfg.events.name}
    if cfg.contracts is not None:
        sources["contracts"] = cfg.contracts.name
    return validate_tables(partners, events, contracts, config=cfg, sources=sources)


def read_features(path: str | Path) -> pd.DataFrame:
    """A feature table written by ``churnmodel features`` (.parquet or .csv), snapshots as UTC timestamps."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--features: file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        header = pd.read_csv(path, nrows=0).columns
        check_unique_columns(list(header), source=path.name)
        frame = pd.read_csv(path, dtype={"partner_id": str}, keep_default_na=False, **EXACT_FLOATS,
                            na_values={c: list(NULL_MARKERS) for c in header if c != "partner_id"})
        return frame.assign(snapshot=pd.to_datetime(frame["snapshot"], utc=True).astype(TIMESTAMP_DTYPE))
    raise DataError(f"--features {path.name}: expected .parquet or .csv (as written by churnmodel features)")


# --------------------------------------------------------------------------- summary


def summarize(tables: InputTables) -> dict[str, object]:
    """Headline facts about validated inputs (for ``churnmodel validate`` and reports)."""
    p, e = tables.partners, tables.events
    counts = e["event_type"].value_counts().sort_index()
    return {
        "partners": len(p),
        "churned": int(p["churned_at"].notna().sum()),
        "active": int(p["churned_at"].isna().sum()),
        "events": len(e),
        "first_event": e["timestamp"].min(),
        "last_event": e["timestamp"].max(),
        "contracts": 0 if tables.contracts is None else len(tables.contracts),
        "event_types": {str(k): int(v) for k, v in counts.items()},
        "warnings": len(tables.warnings),
    }

