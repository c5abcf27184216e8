"""The application layer: the flow of every command, the same for the CLI, notebooks, benchmarks and tests.

Each function takes a config (a :class:`~churnmodel.config.Config`, or the path of a YAML file and
``--set`` style overrides) and optionally tables already in memory, runs the stages and returns a
result object. Paths are taken here and only here (the edge): inputs are read, outputs written
atomically, after checking that no output path is an input. ``churnmodel <command>`` calls exactly
one of these functions and prints its result, so a notebook that calls :func:`fit` and :func:`score`
gets the model and the scored list the command line gets from the same config.

>>> from churnmodel import pipeline                                                  # doctest: +SKIP
>>> trained = pipeline.fit("configs/partner_churn.yaml")                             # doctest: +SKIP
>>> run = pipeline.score("configs/partner_churn.yaml", as_of="2026-01-01", model=trained.model)  # doctest: +SKIP
>>> run.scores.head()                                                                # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import difflib
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from churnmodel.config import Config, load_config
from churnmodel.data import read_features, read_inputs, summarize
from churnmodel.errors import ConfigError, DataError
from churnmodel.explain import explain_partner
from churnmodel.features import (
    build_features,
    build_training_frame,
    check_tables,
    frame_summary,
)
from churnmodel.labels import check_as_of, data_end, observation_end
from churnmodel.model import ChurnModel
from churnmodel.outputs import (
    atomic_write,
    check_output,
    check_outputs,
    check_target,
    frame_writer,
    write_all,
)
from churnmodel.registry import check_tracking, resolve_model
from churnmodel.report import retention_rate
from churnmodel.runs import Explanation, FeaturesRun, FitResult, ScoreRun, Simulated, Validation
from churnmodel.score import check_drift, drift_warnings, for_model, score_features, score_summary
from churnmodel.score import score as score_partners
from churnmodel.simulate import simulate as simulate_partners
from churnmodel.simulate import write_simulation
from churnmodel.survival import add_survival
from churnmodel.texts import LANGS
from churnmodel.times import TIMESTAMP_DTYPE, utc, utc_series
from churnmodel.tracking import log_training
from churnmodel.train import train
from churnmodel.validation import InputTables
from churnmodel.workbook import scored_list_writer

__all__ = ["Explanation", "FeaturesRun", "FitResult", "ScoreRun", "Simulated", "Validation",
           "explain", "features", "fit", "score", "simulate", "validate"]

#: Called with a stage's description; returns a context manager around the stage (the CLI shows a spinner).
Status = Callable[[str], contextlib.AbstractContextManager]
#: Called with each warning as it arises (the CLI prints it at once); results also carry them all.
Warn = Callable[[str], None]
ConfigLike = Config | str | Path


def _quiet(_: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def _ignore(_: str) -> None:
    return None


@contextlib.contextmanager
def _timed(status: Status, text: str, seconds: dict[str, float], key: str):
    """A stage under ``status``; its wall time goes to ``seconds[key]``."""
    t0 = time.perf_counter()
    with status(text):
        yield
    seconds[key] = time.perf_counter() - t0


def _read(cfg: Config, status: Status, warn: Warn) -> InputTables:
    with status("reading inputs"):
        tables = read_inputs(cfg.data)
    for message in tables.warnings:
        warn(message)
    return tables


def _config(config: ConfigLike, overrides: Sequence[str]) -> Config:
    if isinstance(config, Config):
        if overrides:
            raise ConfigError("overrides apply to a config file; pass the path, or change the Config with model_copy")
        return config
    if isinstance(config, str | Path):
        return load_config(config, overrides)
    raise TypeError(f"config must be a Config or the path of a YAML file, got {type(config).__name__}")


def _check_outputs(cfg: Config, *outputs: Path | None, read: Path | None = None, model: object = None) -> None:
    """Outputs are never the configured inputs, the config file, a table given to ``read``, the model
    folder read, or each other."""
    inputs = {p: f"data.{name}" for name in ("partners", "events", "contracts") if (p := getattr(cfg.data, name)) is not None}
    if cfg.source is not None:
        inputs[cfg.source] = "the config file"
    if read is not None:
        inputs[Path(read)] = "the feature table read"
    if isinstance(model, str | Path) and "://" not in str(model) and ":/" not in str(model) and Path(model).exists():
        inputs[Path(model)] = "the model folder read"
    uri = cfg.tracking.uri or ""
    if uri.startswith("sqlite:///"):  # the embedded store: the database, its lock and the artifacts beside it
        store = Path(uri.removeprefix("sqlite:///"))
        inputs |= {store: "the MLflow tracking store, tracking.uri", Path(f"{store}.lock"): "the MLflow tracking store's lock",
                   store.parent / "mlartifacts": "the MLflow artifact store beside tracking.uri"}
    elif uri.startswith("file:") or ("://" not in uri and uri):
        inputs[Path(uri.removeprefix("file://").removeprefix("file:"))] = "the MLflow tracking store, tracking.uri"
    check_outputs(outputs, inputs=inputs)


def _frames(cfg: Config, *pairs: tuple[pd.DataFrame, Path | None]) -> list[tuple[Path, Callable[[Path], None]]]:
    """(path, writer) for each frame that has a path, with the configured CSV formula guard."""
    return [(Path(p), frame_writer(f, p, formula_guard=cfg.output.csv_formula_guard)) for f, p in pairs if p is not None]


# --------------------------------------------------------------------------- validate


def validate(config: ConfigLike, overrides: Sequence[str] = ()) -> Validation:
    """Read the inputs and check them against the data contract (a DataError lists every problem)."""
    cfg = _config(config, overrides)
    tables = read_inputs(cfg.data)
    return Validation(tables, summarize(tables), tables.warnings)


# --------------------------------------------------------------------------- features


def features(config: ConfigLike, overrides: Sequence[str] = (), *, tables: InputTables | None = None, engine: str | None = None,
             out: Path | None = None, metadata: Path | None = None, status: Status = _quiet, warn: Warn = _ignore) -> FeaturesRun:
    """Point-in-time features and labels for every (partner, snapshot date); written to ``out`` (and the
    feature metadata to ``metadata``) when given. With ``engine="spark"``, ``out`` is a Parquet folder."""
    cfg = _config(config, overrides)
    use = _engine(engine, cfg)
    _check_outputs(cfg, out, metadata)
    if use == "spark":
        if out is None:
            raise ConfigError("engine spark writes the feature table as Parquet parts: give an output folder (--out)")
        return _features_on_spark(cfg, out, metadata, status, warn)
    for target in (out, metadata):
        if target is not None:
            check_output(target)
    if tables is None:
        tables = _read(cfg, status, warn)
    with status("building features"):
        frame, plan = build_training_frame(tables, cfg)
    written = tuple(write_all(_frames(cfg, (frame, out), (plan.info(), metadata))))
    return FeaturesRun(plan, frame_summary(frame, plan), frame, tables.warnings, written)


def _features_on_spark(cfg: Config, out: Path, metadata: Path | None, status: Status, warn: Warn) -> FeaturesRun:
    from churnmodel import spark

    _check_spark_output(out)
    if metadata is not None:
        check_output(metadata)
    inputs = _spark_inputs(cfg, status, warn)
    with status("building features on Spark"):
        sframe, plan = spark.training_frame(inputs, cfg)
        spark.write_parquet(sframe, out)
    written = [out, *write_all(_frames(cfg, (plan.info(), metadata)))]
    return FeaturesRun(plan, spark.frame_summary(inputs.spark.read.parquet(str(out)), plan), None, tuple(inputs.warnings), tuple(written))


# --------------------------------------------------------------------------- fit


def fit(config: ConfigLike, overrides: Sequence[str] = (), *, tables: InputTables | None = None, engine: str | None = None,
        track: bool = True, promote: bool = False, summary: Path | None = None, status: Status = _quiet,
        warn: Warn = _ignore, progress: Callable[[int, int], None] | None = None) -> FitResult:
    """Train the calibrated churn model out of time, the hazard model when ``label.horizons`` is set,
    and (``track``) log both to MLflow, register the model and promote it when it beats the champion
    (``promote``: whatever its AUC). ``summary``: also write run id, model URI, version and metrics as JSON.
    ``progress(done, total)``: the survival stage's fits as they finish."""
    cfg = _config(config, overrides)
    if summary is not None:
        check_target(summary)
    _check_outputs(cfg, summary)
    if summary is not None and not track:
        raise ConfigError("a training summary describes the tracked run; leave track on to write one")
    if track:
        check_tracking(cfg.tracking.uri, timeout=cfg.tracking.timeout_seconds)  # before any work
    started, seconds = time.time(), {}
    with _timed(_quiet, "", seconds, "inputs_and_features"):
        frame, plan, tables, events_summary, warnings = _training_frame(cfg, tables, _engine(engine, cfg), status, warn)
    with _timed(status, "training", seconds, "training"):
        result = train(frame, plan, cfg)
    warnings = (*warnings, *_warned(warn, result.warnings))
    if cfg.label.horizons:
        latest = None if events_summary is None else pd.Timestamp(events_summary["last"])
        until = observation_end(data_end(tables, cfg.data.extracted_at, latest_event=latest), cfg.label)
        with _timed(status, f"survival: hazard model for horizons {cfg.label.horizons} and the Cox baseline", seconds, "survival"):
            result = add_survival(result, frame, cfg, observed_until=until, progress=progress)
    info = None
    if track:
        with status("logging to MLflow"):
            info = log_training(result, config=cfg, tables=tables, promote=promote, events_summary=events_summary,
                                started=started, stage_seconds=seconds)
        if summary is not None:
            atomic_write(summary, lambda tmp: tmp.write_text(info.to_json() + "\n"))
    return FitResult(cfg, result.model, result.metrics, result, result.survival, info, warnings)


def _training_frame(cfg: Config, tables: InputTables | None, engine: str, status: Status, warn: Warn):
    """(frame, plan, tables, events summary, warnings): local, or built on Spark and fitted on the driver."""
    if engine == "spark":
        from churnmodel import spark

        if tables is not None:
            raise ConfigError("engine spark reads the inputs itself (the event log stays on Spark); leave tables out")
        inputs = _spark_inputs(cfg, status, warn)
        with status("building features on Spark"):
            sframe, plan = spark.training_frame(inputs, cfg)
            frame = spark.to_pandas(sframe, plan)
        return frame, plan, inputs.dimensions(), spark.event_summary(inputs.events), tuple(inputs.warnings)
    if tables is None:
        tables = _read(cfg, status, warn)
    with status("building features"):
        frame, plan = build_training_frame(tables, cfg)
    return frame, plan, tables, None, tables.warnings


# --------------------------------------------------------------------------- score


def score(config: ConfigLike, overrides: Sequence[str] = (), *, as_of, model: ChurnModel | str | None = None,
          tables: InputTables | None = None, features: pd.DataFrame | Path | None = None, lang: str = "en",
          strict: bool = False, engine: str | None = None, out: Path | None = None, report: Path | None = None,
          progress: Callable[[int, int], None] | None = None, status: Status = _quiet, warn: Warn = _ignore) -> ScoreRun:
    """Score every partner active at ``as_of``: probability, risk band, revenue at risk, survival
    columns, drivers and actions, and the drift against the training data.

    ``model``: a model in memory, a URI (models:/NAME@champion, runs:/...) or folder; default the
    configured name's champion. ``features``: score this precomputed feature table (a frame, or a
    .parquet/.csv file written by :func:`features`) instead of building features. ``out``: write the
    ranked list (.csv, .parquet, .xlsx; with Spark a Parquet folder); ``report``: the HTML report.
    ``strict``: stop before writing when drift exceeds ``score.drift_fail``."""
    cfg = _config(config, overrides)
    when = utc(as_of)
    use = _engine(engine, cfg)
    _check_lang(lang)
    _check_outputs(cfg, out, report, read=features if isinstance(features, str | Path) else None, model=model)
    if use == "spark" and features is not None:
        raise ConfigError("--features scores an in-memory table; leave it out with engine spark")
    if out is not None:
        check_output(out) if use == "local" else _check_spark_output(out)
    if report is not None:
        if Path(report).suffix.lower() != ".html":
            raise ConfigError(f"--report {report}: expected an .html file")
        check_target(report)
    churn_model, name, version = resolve_model(cfg, model)
    cfg = for_model(cfg, churn_model)  # bands and horizon as the model was trained
    label = f"{name} {version}".strip()
    if use == "spark":
        return _score_on_spark(cfg, churn_model, name, version, when, out, report, lang=lang, strict=strict, status=status, warn=warn)
    if tables is None and (features is None or report is not None):
        tables = _read(cfg, status, warn)
    if tables is not None:
        _check_as_of(cfg, tables, when)
    if features is None:
        result = score_partners(churn_model, tables, as_of=when, config=cfg, lang=lang, model_name=name, model_version=version,
                                progress=progress)
    else:
        frame = read_features(features) if isinstance(features, str | Path) else features
        result = score_features(churn_model, frame, config=cfg, lang=lang, model_name=name, model_version=version, progress=progress)
    warnings = (*(tables.warnings if tables is not None else ()),
                *_warned(warn, (*result.warnings, *drift_warnings(result.drift, cfg))))
    if strict:
        check_drift(result.drift, cfg)
    prr = retention_rate(tables, cfg.label, when) if tables is not None else None
    run = ScoreRun(when, label, score_summary(result.scores), result.scores, result.drift, tuple(warnings), prr)
    writes = [scored_list_writer(run.scores, out, lang=lang, output=cfg.output, summary=run.summary, prr=run.prr, as_of=when,
                                 model_label=label)] if out is not None else []
    if report is not None:
        page = run.report(config=cfg, lang=lang)
        writes.append((Path(report), lambda tmp: tmp.write_text(page, encoding="utf-8")))
    written = write_all(writes)  # the list and its report appear together, or neither
    return ScoreRun(when, label, run.summary, run.scores, run.drift, run.warnings, prr, tuple(written))


def _warned(warn: Warn, messages: Sequence[str]) -> tuple[str, ...]:
    for message in messages:
        warn(message)
    return tuple(messages)


def _score_on_spark(cfg: Config, model: ChurnModel, name: str, version: str, when: pd.Timestamp, out: Path | None,
                    report: Path | None, *, lang: str, strict: bool, status: Status, warn: Warn) -> ScoreRun:
    """Features and scores on Spark; the ranked list is written as a folder of Parquet parts (with its
    report, or neither: nothing half-written)."""

    from churnmodel import spark

    if out is None:
        raise ConfigError("engine spark writes the ranked list as Parquet parts: give an output folder (--out)")
    inputs = _spark_inputs(cfg, status, warn)
    span = spark.event_summary(inputs.events)
    _check_as_of(cfg, inputs.dimensions(), when, first=pd.Timestamp(span["first"]), last=pd.Timestamp(span["last"]))
    label = f"{name} {version}".strip()
    with status("scoring on Spark"):
        frame = spark.scoring_frame(inputs, model.plan, cfg, when)
        scores, drift = spark.score(model, frame, config=cfg, lang=lang, model_name=name, model_version=version)
        warnings = _warned(warn, drift_warnings(drift, cfg))
        if strict:
            check_drift(drift, cfg)
        spark.write_parquet(scores, out)
    written_frame = inputs.spark.read.parquet(str(out))
    run = ScoreRun(when, label, spark.score_summary(written_frame), None, drift, (*inputs.warnings, *warnings), None, (out,))
    if report is None:
        return run
    try:  # the report needs the list in memory: fine for the ranked list of one run
        local = spark.collect(written_frame.orderBy("rank"))
        local = local.assign(as_of=utc_series(local["as_of"]), scored_at=utc_series(local["scored_at"]))
        # an inactivity label needs the event log, which stays on Spark: no retention rate then
        prr = None if cfg.label.source == "inactivity" else retention_rate(inputs.dimensions(), cfg.label, when)
        run = ScoreRun(when, label, run.summary, None, drift, run.warnings, prr, (out,))
        page = ScoreRun(when, label, run.summary, local, drift, run.warnings, prr).report(config=cfg, lang=lang)
        atomic_write(report, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # nothing half-written: the list goes with its report
        raise
    return ScoreRun(when, label, run.summary, None, drift, run.warnings, run.prr, (out, Path(report)))


def _check_as_of(cfg: Config, tables: InputTables, when: pd.Timestamp, *, first=None, last=None) -> None:
    first = tables.events["timestamp"].min() if first is None else first
    end = data_end(tables, cfg.data.extracted_at, latest_event=last)
    check_as_of(when, first_event=first, end=end, max_days_past_end=cfg.score.max_days_past_data_end,
                source=tables.sources.get("events", "events"))


# --------------------------------------------------------------------------- explain


def explain(config: ConfigLike, overrides: Sequence[str] = (), *, as_of, partner: str, model: ChurnModel | str | None = None,
            tables: InputTables | None = None, lang: str = "en", horizon: int | None = None) -> Explanation:
    """One partner's risk drivers at ``as_of``, their retention levers and what to do; ``horizon``
    (one of ``label.horizons``): the churn risk within that many days, from the hazard model."""
    cfg = _config(config, overrides)
    when = utc(as_of)
    _check_lang(lang)
    churn_model, _, _ = resolve_model(cfg, model)
    if tables is None:
        tables = read_inputs(cfg.data)
    _check_as_of(cfg, tables, when)
    known = tables.partners.set_index("partner_id")
    if partner not in known.index:
        near = ", ".join(repr(p) for p in difflib.get_close_matches(partner, list(known.index), n=3))
        raise DataError(f"--partner {partner!r} is not in {tables.sources.get('partners', 'partners')}"
                        + (f"; similar ids: {near}" if near else ""))
    if known.loc[partner, "joined_at"] > when:
        raise DataError(f"--partner {partner!r} joined on {known.loc[partner, 'joined_at'].date()}, after --as-of {when.date()}")
    rows = pd.DataFrame({"partner_id": [partner], "snapshot": pd.Series([when]).astype(TIMESTAMP_DTYPE)})
    check_tables(churn_model.plan, tables)
    table = explain_partner(churn_model, build_features(tables, rows, churn_model.plan), config=cfg.explain, lang=lang, horizon=horizon)
    days = horizon or churn_model.metadata.get("horizon_days", cfg.label.horizon_days)
    return Explanation(partner, when, days, table, table.attrs["churn_probability"], table.attrs["base_rate"])


# --------------------------------------------------------------------------- simulate


def simulate(*, partners: int, months: int, random_state: int, start: str = "2023-01-01", out: Path | None = None,
             events_format: str = "parquet", campaigns: bool = False) -> Simulated:
    """Simulated partner histories with their ground truth (and campaigns); written to ``out`` when given."""
    if events_format not in ("parquet", "csv"):
        raise ConfigError(f"events format must be 'parquet' or 'csv', got {events_format!r}")
    try:
        result = simulate_partners(partners, months, start=start, random_state=random_state, campaigns=campaigns)
    except ValueError as exc:  # the simulator checks its arguments: start is the one a user types
        raise ConfigError(f"--start {start!r}: {exc}") from None
    written = tuple(write_simulation(result, out, events_format=events_format)) if out is not None else ()
    return Simulated(result, written)


# --------------------------------------------------------------------------- engines


def _check_lang(lang: str) -> None:
    if lang not in LANGS:
        raise ConfigError(f"lang must be one of {list(LANGS)}, got {lang!r}")


def _engine(option: str | None, cfg: Config) -> str:
    if option is not None and option not in ("local", "spark"):
        raise ConfigError(f"engine must be 'local' or 'spark', got {option!r}")
    return option or cfg.engine


def _check_spark_output(out: Path) -> None:
    """Fail before any Spark work if the Parquet folder could not be written (cluster URIs are Spark's to check)."""
    if "://" not in str(out) and not Path(out).parent.is_dir():
        raise DataError(f"output folder does not exist: {Path(out).parent} (create it first, or choose another path)")


def _spark_inputs(cfg: Config, status: Status, warn: Warn):
    from churnmodel import spark

    with status("starting Spark"):
        session = spark.session(cfg.spark)
    with status("reading inputs on Spark"):
        inputs = spark.read_inputs(session, cfg.data)
    _warned(warn, inputs.warnings)
    return inputs
