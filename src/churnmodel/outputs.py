"""Outputs: write frames (.parquet, .csv, .xlsx) and files atomically; check output paths first.

The other edge of the pipeline: nothing is written anywhere else. A write goes to a temporary file
beside the target and is renamed into place, so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from churnmodel.errors import DataError

__all__ = ["atomic_write", "check_output", "check_outputs", "write_frame"]


_FRAME_WRITERS = {
    ".parquet": lambda frame, tmp: frame.to_parquet(tmp, index=False),
    ".csv": lambda frame, tmp: frame.to_csv(tmp, index=False, lineterminator="\n"),
    ".xlsx": lambda frame, tmp: _to_excel(frame, tmp),
}


def _to_excel(frame: pd.DataFrame, tmp: Path) -> None:
    out = frame.copy()
    for col in out.columns:  # Excel has no time zones
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_localize(None)
    out.to_excel(tmp, index=False, engine="openpyxl")


def check_output(path: str | Path) -> Path:
    """Fail before any work if a frame could not be written to ``path``."""
    path = Path(path)
    if path.suffix.lower() not in _FRAME_WRITERS:
        raise DataError(f"{path.name}: unsupported output type {path.suffix or '(none)'!r}; use .parquet, .csv or .xlsx")
    if not path.parent.is_dir():
        raise DataError(f"output folder does not exist: {path.parent} (create it first, or choose another path)")
    return path


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame as .parquet, .csv or .xlsx (by extension), atomically."""
    path = check_output(path)
    return atomic_write(path, lambda tmp: _FRAME_WRITERS[path.suffix.lower()](frame, tmp))


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    An interrupted or failing write leaves no file at ``path`` (and removes the temporary one).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise DataError(f"output folder does not exist: {path.parent} (create it first, or choose another --out)")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_outputs(outputs, *, inputs: dict[Path, str]) -> None:
    """No output may be an input (it would be replaced; ``inputs``: path -> what it is) or another output
    of the same run. Raises a DataError before anything is written."""
    taken = {Path(p).resolve(): what for p, what in inputs.items()}
    seen: set[Path] = set()
    for out in outputs:
        if out is None:
            continue
        resolved = Path(out).resolve()
        if resolved in taken:
            raise DataError(f"{out}: this output path is an input ({taken[resolved]}); nothing was written. "
                            "Choose another output path")
        if resolved in seen:
            raise DataError(f"{out}: the same path is given for two outputs; nothing was written. Choose two paths")
        seen.add(resolved)
