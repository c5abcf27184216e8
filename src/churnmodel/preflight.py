"""What every command does before and around its stages: the config from a file or an object, the
outputs checked against the inputs, the inputs read, the scoring date and the language checked, the
engine chosen, and the hooks the command line passes in (a status spinner, warnings as they arise).
The flows themselves are in :mod:`churnmodel.pipeline`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnmodel.config import Config, load_config
from churnmodel.data import read_inputs, summarize
from churnmodel.errors import ConfigError, DataError
from churnmodel.labels import check_as_of, data_end
from churnmodel.outputs import check_outputs, frame_writer
from churnmodel.texts import LANGS
from churnmodel.validation import InputTables

__all__ = ["ConfigLike", "Status", "Validation", "Warn", "as_config", "check_command_outputs", "check_lang", "check_scoring_date",
           "check_spark_output", "choose_engine", "frame_writers", "ignore", "quiet", "read_tables", "spark_inputs",
           "timed", "validate", "warned"]

#: Called with a stage's description; returns a context manager around the stage (the CLI shows a spinner).
Status = Callable[[str], contextlib.AbstractContextManager]
#: Called with each warning as it arises (the CLI prints it at once); results also carry them all.
Warn = Callable[[str], None]
ConfigLike = Config | str | Path


@contextlib.contextmanager
def timed(status: Status, text: str, seconds: dict[str, float], key: str):
    """A stage under ``status``; its wall time goes to ``seconds[key]``."""
    t0 = time.perf_counter()
    with status(text):
        yield
    seconds[key] = time.perf_counter() - t0


@dataclass(frozen=True)
class Validation:
    tables: InputTables
    facts: dict  # partners, active, churned, events, first/last event, contracts, events per type
    warnings: tuple[str, ...]


def validate(config: ConfigLike, overrides: Sequence[str] = ()) -> Validation:
    """Read the inputs and check them against the data contract (a DataError lists every problem).

    ``churnmodel validate`` and :func:`churnmodel.pipeline.validate` (this function): it lives here, beside the
    other pre-flight steps, so that checking the inputs does not import the training stack (LightGBM, scikit-learn,
    SciPy: 0.1 GB of the peak memory on a 10M-event log)."""
    cfg = as_config(config, overrides)
    tables = read_inputs(cfg.data)
    return Validation(tables, summarize(tables), tables.warnings)


def read_tables(cfg: Config, status: Status, warn: Warn) -> InputTables:
    with status("reading inputs"):
        tables = read_inputs(cfg.data)
    for message in tables.warnings:
        warn(message)
    return tables


def as_config(config: ConfigLike, overrides: Sequence[str]) -> Config:
    if isinstance(config, Config):
        if overrides:
            raise ConfigError("overrides apply to a config file; pass the path, or change the Config with model_copy")
        return config
    if isinstance(config, str | Path):
        return load_config(config, overrides)
    raise TypeError(f"config must be a Config or the path of a YAML file, got {type(config).__name__}")


def check_command_outputs(cfg: Config, *outputs: Path | None, read: Path | None = None, model: object = None) -> None:
    """Outputs are never the configured inputs, the config file, a table given to ``read``, the model
    folder read, or each other."""
    inputs = {p: f"data.{name}" for name in ("partners", "events", "contracts") if (p := getattr(cfg.data, name)) is not None}
    if cfg.source is not None:
        inputs[cfg.source] = "the config file"
    if read is not None:
        inputs[Path(read)] = "the feature table read"
    if isinstance(model, str | Path) and "://" not in str(model) and ":/" not in str(model) and Path(model).exists():
        inputs[Path(model)] = "the model folder read"
    if cfg.monitor.history is not None:
        inputs[Path(cfg.monitor.history)] = "the score history, monitor.history"
    uri = cfg.tracking.uri or ""
    if uri.startswith("sqlite:///"):  # the embedded store: the database, its lock and the artifacts beside it
        store = Path(uri.removeprefix("sqlite:///"))
        inputs |= {store: "the MLflow tracking store, tracking.uri", Path(f"{store}.lock"): "the MLflow tracking store's lock",
                   store.parent / "mlartifacts": "the MLflow artifact store beside tracking.uri"}
    elif uri.startswith("file:") or ("://" not in uri and uri):
        inputs[Path(uri.removeprefix("file://").removeprefix("file:"))] = "the MLflow tracking store, tracking.uri"
    check_outputs(outputs, inputs=inputs)


def frame_writers(cfg: Config, *pairs: tuple[pd.DataFrame, Path | None]) -> list[tuple[Path, Callable[[Path], None]]]:
    """(path, writer) for each frame that has a path, with the configured CSV formula guard."""
    return [(Path(p), frame_writer(f, p, formula_guard=cfg.output.csv_formula_guard)) for f, p in pairs if p is not None]


def warned(warn: Warn, messages: Sequence[str]) -> tuple[str, ...]:
    for message in messages:
        warn(message)
    return tuple(messages)


def check_scoring_date(cfg: Config, tables: InputTables, when: pd.Timestamp, *, first=None, last=None) -> None:
    first = tables.events["timestamp"].min() if first is None else first
    end = data_end(tables, cfg.data.extracted_at, latest_event=last)
    check_as_of(when, first_event=first, end=end, max_days_past_end=cfg.score.max_days_past_data_end,
                source=tables.sources.get("events", "events"))


def check_lang(lang: str) -> None:
    if lang not in LANGS:
        raise ConfigError(f"lang must be one of {list(LANGS)}, got {lang!r}")


def choose_engine(option: str | None, cfg: Config) -> str:
    if option is not None and option not in ("local", "spark"):
        raise ConfigError(f"engine must be 'local' or 'spark', got {option!r}")
    return option or cfg.engine


def check_spark_output(out: Path) -> None:
    """Fail before any Spark work if the Parquet folder could not be written (cluster URIs are Spark's to check)."""
    if "://" not in str(out) and not Path(out).parent.is_dir():
        raise DataError(f"output folder does not exist: {Path(out).parent} (create it first, or choose another path)")


def spark_inputs(cfg: Config, status: Status, warn: Warn):
    from churnmodel import spark

    with status("starting Spark"):
        session = spark.session(cfg.spark)
    with status("reading inputs on Spark"):
        inputs = spark.read_inputs(session, cfg.data)
    warned(warn, inputs.warnings)
    return inputs


def quiet(_: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def ignore(_: str) -> None:
    return None
