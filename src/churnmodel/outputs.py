"""Outputs: write frames (.parquet, .csv, .xlsx) and files atomically, all of a command's outputs together.

The other edge of the pipeline: nothing is written anywhere else. Every write goes to a temporary
file beside its target, named ``.<target>.<pid>.<random>.churnmodel-tmp``; only when *every*
output of a command has been written are they renamed into place, so a failure (a bad value, a full
disk, Ctrl-C) leaves no half-written file and no report without its list. A temporary file left by
a killed run is recognisable by that name and removed by the next write to the same folder.

Data is never code: a text cell of an ``.xlsx`` is always a string cell (never a formula, whatever
it starts with; control characters that the format cannot hold are written as ``\\xHH``, and a
carriage return reads back as a line feed, as XML normalises line ends), and in a
``.csv`` a text value a spreadsheet would evaluate (starting with ``= + - @``, a tab or a carriage
return, and not a plain number) gets a leading ``'`` unless the guard is switched off
(``output.csv_formula_guard: false``, for machine consumers). Parquet keeps raw values.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from churnmodel.errors import ChurnModelError, DataError

__all__ = [
    "TEMP_SUFFIX",
    "CsvDialect",
    "OutputError",
    "Sheet",
    "atomic_write",
    "check_finite",
    "check_output",
    "check_outputs",
    "check_target",
    "frame_writer",
    "neutralise_formulas",
    "write_all",
    "write_frame",
    "write_xlsx",
]

#: Every temporary file this package writes ends with this (and names the process that writes it).
TEMP_SUFFIX = ".churnmodel-tmp"
_TEMP = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + "$")
FRAME_SUFFIXES = (".parquet", ".csv", ".xlsx")
# What a spreadsheet evaluates (OWASP CSV injection): = + - @ first, or a tab / CR first.
_LIVE = re.compile(r"^[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?%?$")
# Characters an .xlsx cell cannot hold (XML 1.0): C0 controls except tab, newline, carriage return.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class OutputError(ChurnModelError):
    """An output cannot be written (path, permission, space); the message names the path and the cause."""


# --------------------------------------------------------------------------- checks before any work


def check_output(path: str | Path) -> Path:
    """Fail before any work if a frame could not be written to ``path``."""
    path = Path(path)
    if path.suffix.lower() not in FRAME_SUFFIXES:
        raise DataError(f"{path.name}: unsupported output type {path.suffix or '(none)'!r}; use .parquet, .csv or .xlsx")
    return check_target(path)


def check_target(path: str | Path) -> Path:
    """The folder exists and is writable, and ``path`` is not a folder."""
    path = Path(path)
    if not path.parent.is_dir():
        if path.parent.exists():
            raise OutputError(f"{path}: cannot write: {path.parent} is a file, not a folder")
        raise OutputError(f"{path}: cannot write: the output folder does not exist: {path.parent} "
                          "(create it first, or choose another path)")
    if path.is_dir():
        raise OutputError(f"{path}: cannot write: it is an existing folder; give a file name")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            raise OutputError(f"{path}: cannot write: {path.parent} is on a read-only file system")
        raise OutputError(f"{path}: cannot write: no permission to write in {path.parent}")
    return path


def check_outputs(outputs: Iterable[str | Path | None], *, inputs: dict[Path, str]) -> None:
    """No output may be an input (it would be replaced; ``inputs``: path -> what it is), lie inside an
    input folder (a model folder), or be another output of the same run. Raises before anything is written."""
    taken = {Path(p).resolve(): what for p, what in inputs.items()}
    seen: dict[Path, str] = {}
    for out in outputs:
        if out is None:
            continue
        resolved = Path(out).resolve()
        for path, what in taken.items():
            if resolved == path or path in resolved.parents or resolved in path.parents:
                raise DataError(f"{out}: this output path is an input ({what}: {path}); nothing was written. "
                                "Choose another output path")
        if resolved in seen:
            raise DataError(f"{out}: the same path is given for two outputs ({seen[resolved]} and {out}); "
                            "nothing was written. Choose two paths")
        seen[resolved] = str(out)


# --------------------------------------------------------------------------- values


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy where every text value (and column name) a spreadsheet would evaluate starts with ``'``.

    Vectorised per column (the scored list can hold millions of cells); a column that mixes text with
    other values is checked value by value."""

    def guard(value):
        if isinstance(value, str) and _LIVE.match(value) and not _PLAIN_NUMBER.match(value):
            return "'" + value
        return value

    out = frame.rename(columns=lambda c: guard(c) if isinstance(c, str) else c)
    for col in out.columns:
        values = out[col]
        if not _is_text(values):
            continue
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            out[col] = values.map(guard, na_action="ignore")
            continue
        text = values.astype("string")
        live = (text.str.match(_LIVE.pattern) & ~text.str.fullmatch(_PLAIN_NUMBER.pattern)).fillna(False).to_numpy(dtype=bool)
        if live.any():
            out[col] = values.where(~live, "'" + text.astype(object))
    return out


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype) or isinstance(series.dtype, pd.CategoricalDtype)


def check_finite(frame: pd.DataFrame, path: Path) -> None:
    """No output column holds inf (NaN is an empty cell)."""
    for col in frame.columns:
        if pd.api.types.is_float_dtype(frame[col].dtype):
            bad = np.isinf(frame[col].to_numpy(dtype="float64"))
            if bad.any():
                rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:5])
                raise DataError(f"{path.name}: column {col!r} would hold infinite values (rows {rows}); nothing was "
                                "written. An input amount is out of range: check the events' amount column")


# --------------------------------------------------------------------------- writers


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV is written: for machines (comma, point, no BOM), or for a spreadsheet in a language
    (a UTF-8 BOM so Excel reads the encoding; in Russian the semicolon and the decimal comma)."""

    sep: str = ","
    decimal: str = "."
    bom: bool = False

    @classmethod
    def spreadsheet(cls, lang: str) -> CsvDialect:
        return cls(";", ",", True) if lang == "ru" else cls(",", ".", True)


def _write_csv(frame: pd.DataFrame, tmp: Path, *, formula_guard: bool, dialect: CsvDialect | None = None) -> None:
    dialect = dialect or CsvDialect()
    out = neutralise_formulas(frame) if formula_guard else frame
    text = [c for c in out.columns if _is_text(out[c])]
    strings = {c: out[c].astype("string") for c in text}  # one conversion per column for both checks below
    nul = [c for c in text if strings[c].str.contains("\x00", regex=False).fillna(False).any()]
    if nul:  # pandas before 3 reads a NUL as the end of the field: written as the text \x00
        out = out.assign(**{c: out[c].map(lambda v: v.replace("\x00", "\\x00") if isinstance(v, str) else v) for c in nul})
    # A bare carriage return is not a line end to Python's csv writer (lineterminator "\n"), so it is not
    # quoted and the file no longer parses: then every text field is quoted.
    has_cr = any(strings[c].str.contains("\r", regex=False).fillna(False).any() for c in text)
    quoting = csv.QUOTE_NONNUMERIC if has_cr or any("\r" in str(c) for c in out.columns) else csv.QUOTE_MINIMAL
    if quoting == csv.QUOTE_NONNUMERIC:  # quote text only: numbers stay numbers, missing stays empty
        out = out.astype({c: object for c in text})
    out.to_csv(tmp, index=False, lineterminator="\n", quoting=quoting, sep=dialect.sep, decimal=dialect.decimal,
               encoding="utf-8-sig" if dialect.bom else "utf-8")


def _cell_text(value: str) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


@dataclass(frozen=True)
class Sheet:
    """One worksheet: a frame, Excel number formats by column (e.g. ``0.0%``, ``#,##0``, ``yyyy-mm-dd``),
    with a bold frozen header, an autofilter and widths that fit the content."""

    name: str
    frame: pd.DataFrame
    formats: Mapping[str, str] = field(default_factory=dict)


def write_xlsx(sheets: Sequence[Sheet], tmp: Path) -> None:
    """A workbook where every text is a string cell, never a formula (see the module's docstring)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    header = {"font": Font(bold=True), "fill": PatternFill("solid", fgColor="DDE5F0"), "alignment": Alignment(wrap_text=True, vertical="top")}
    for spec in sheets:
        sheet = book.create_sheet(_cell_text(spec.name)[:31])
        frame, columns = spec.frame, [str(c) for c in spec.frame.columns]
        for k, col in enumerate(frame.columns, start=1):
            sample = [len(str(v)) for v in frame[col].head(200) if v is not None and v == v]
            sheet.column_dimensions[get_column_letter(k)].width = min(max([len(columns[k - 1]), *sample, 6]) + 2, 60)
        sheet.freeze_panes = "A2"
        if len(frame.columns):
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(frame.columns))}{len(frame) + 1}"
        sheet.append([_xlsx_cell(sheet, c, style=header) for c in columns])
        formats = [spec.formats.get(c) or _default_format(frame[c]) for c in frame.columns]
        for row in frame.itertuples(index=False, name=None):
            sheet.append([_xlsx_cell(sheet, v, fmt=f) for v, f in zip(row, formats, strict=True)])
    book.save(tmp)


def _xlsx_cell(sheet, value, *, fmt: str | None = None, style: dict | None = None):
    from openpyxl.cell import WriteOnlyCell

    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        value = (value.tz_localize(None) if value.tzinfo else value).to_pydatetime()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and not value:
        return None
    c = WriteOnlyCell(sheet, value=None)
    c.value = _cell_text(value) if isinstance(value, str) else value
    if isinstance(value, str):
        c.data_type = "s"  # after the value: assigning "=..." would have made it a formula
    for key, item in (style or {}).items():
        setattr(c, key, item)
    if fmt:
        c.number_format = fmt
    return c


def _default_format(series: pd.Series) -> str | None:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        times = series.dropna()
        return "yyyy-mm-dd" if len(times) == 0 or (times == times.dt.normalize()).all() else "yyyy-mm-dd hh:mm"
    return None


def frame_writer(frame: pd.DataFrame, path: str | Path, *, formula_guard: bool = True,
                 csv_dialect: CsvDialect | None = None) -> Callable[[Path], None]:
    """``write(tmp)`` for a frame by the extension of ``path`` (checked first: type, folder, no inf).
    ``csv_dialect``: how a .csv is written (default: comma, point, no BOM: for machines)."""
    path = check_output(path)
    check_finite(frame, path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return lambda tmp: frame.to_parquet(tmp, index=False)
    if suffix == ".csv":
        return lambda tmp: _write_csv(frame, tmp, formula_guard=formula_guard, dialect=csv_dialect)
    return lambda tmp: write_xlsx([Sheet(frame.attrs.get("sheet", "data"), frame)], tmp)


def write_frame(frame: pd.DataFrame, path: str | Path, *, formula_guard: bool = True) -> Path:
    """Write a frame as .parquet, .csv or .xlsx (by extension), atomically."""
    return atomic_write(path, frame_writer(frame, path, formula_guard=formula_guard))


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    An interrupted or failing write leaves no file at ``path`` (and removes the temporary one).
    """
    return write_all([(Path(path), write)])[0]


def write_all(writes: Sequence[tuple[Path, Callable[[Path], None]]]) -> list[Path]:
    """Write every output to its temporary file, then rename them all into place: a command's outputs
    appear together or not at all. OS errors become an :class:`OutputError` naming the path and the cause."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, write in writes:
            path = check_target(path)
            _remove_stale(path.parent)
            tmp = _temp_file(path)
            temps.append((tmp, path))
            _guarded(path, lambda tmp=tmp, write=write: write(tmp))
        for tmp, path in temps:
            _guarded(path, lambda tmp=tmp, path=path: os.replace(tmp, path))
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return [path for _, path in temps]


def _guarded(path: Path, action: Callable[[], None]) -> None:
    try:
        action()
    except OSError as exc:
        if exc.errno is None:
            raise
        cause = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                 errno.EFBIG: "file too large for this file system or limit", errno.EROFS: "read-only file system",
                 errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                 errno.EISDIR: "it is an existing folder", errno.ENOENT: "the folder does not exist"}.get(exc.errno, exc.strerror)
        raise OutputError(f"{path}: cannot write: {cause}; nothing was written") from None


def _temp_file(path: Path) -> Path:
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    _guarded(path, lambda: _create(tmp))
    return tmp


def _create(tmp: Path) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the usual permissions (umask applies)
    os.close(fd)


#: A temporary file this old is stale even if a process with its writer's id runs (the id was reused,
#: e.g. after a container restart): no single write takes a day.
STALE_SECONDS = 86_400


def _remove_stale(folder: Path) -> None:
    """Remove temporary files of this package whose writing process is gone (a killed run), or a day old."""
    try:
        entries = {e.name: e.stat().st_mtime for e in os.scandir(folder) if e.name.endswith(TEMP_SUFFIX)}
    except OSError:
        return
    now = time.time()
    for name, mtime in entries.items():
        match = _TEMP.match(name)
        if match and (now - mtime > STALE_SECONDS or not _alive(int(match.group(1)))):
            with contextlib.suppress(OSError):
                (folder / name).unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
