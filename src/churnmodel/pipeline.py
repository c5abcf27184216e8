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

import dataclasses
import difflib
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from churnmodel.config import Config
from churnmodel.data import read_features, read_inputs
from churnmodel.errors import ConfigError, DataError
from churnmodel.explain import explain_partner
from churnmodel.features import (
    build_features,
    build_training_frame,
    check_tables,
    frame_summary,
)
from churnmodel.followup import monitor, plan
from churnmodel.history import drift_writer, history_writer
from churnmodel.labels import data_end, observation_end
from churnmodel.model import ChurnModel
from churnmodel.outputs import (
    atomic_write,
    check_output,
    check_target,
    write_all,
)
from churnmodel.planning import budget_curve
from churnmodel.preflight import (
    ConfigLike,
    Status,
    Validation,
    Warn,
    as_config,
    check_command_outputs,
    check_lang,
    check_scoring_date,
    check_spark_output,
    choose_engine,
    frame_writers,
    ignore,
    quiet,
    read_tables,
    spark_inputs,
    timed,
    validate,  # checking the inputs: a pre-flight step that does not import the training stack
    warned,
)
from churnmodel.registry import check_tracking, resolve_model
from churnmodel.report import retention_rate
from churnmodel.runs import (
    Explanation,
    FeaturesRun,
    FitResult,
    MonitorRun,
    PlanRun,
    ScoreRun,
    Simulated,
)
from churnmodel.score import check_drift, drift_warnings, for_model, score_features, score_summary
from churnmodel.score import score as score_partners
from churnmodel.simulate import simulate as simulate_partners
from churnmodel.simulate import write_simulation
from churnmodel.survival import add_survival
from churnmodel.times import TIMESTAMP_DTYPE, utc, utc_series
from churnmodel.tracking import log_training
from churnmodel.train import train
from churnmodel.uplift import add_uplift
from churnmodel.validation import InputTables
from churnmodel.workbook import scored_list_writer

__all__ = ["Explanation", "FeaturesRun", "FitResult", "MonitorRun", "PlanRun", "ScoreRun", "Simulated", "Validation",
           "explain", "features", "fit", "monitor", "plan", "score", "simulate", "validate"]



# --------------------------------------------------------------------------- features


def features(config: ConfigLike, overrides: Sequence[str] = (), *, tables: InputTables | None = None, engine: str | None = None,
             out: Path | None = None, metadata: Path | None = None, status: Status = quiet, warn: Warn = ignore) -> FeaturesRun:
    """Point-in-time features and labels for every (partner, snapshot date); written to ``out`` (and the
    feature metadata to ``metadata``) when given. With ``engine="spark"``, ``out`` is a Parquet folder."""
    cfg = as_config(config, overrides)
    use = choose_engine(engine, cfg)
    check_command_outputs(cfg, out, metadata)
    if use == "spark":
        if out is None:
            raise ConfigError("engine spark writes the feature table as Parquet parts: give an output folder (--out)")
        return _features_on_spark(cfg, out, metadata, status, warn)
    for target in (out, metadata):
        if target is not None:
            check_output(target)
    if tables is None:
        tables = read_tables(cfg, status, warn)
    with status("building features"):
        frame, plan = build_training_frame(tables, cfg)
    written = tuple(write_all(frame_writers(cfg, (frame, out), (plan.info(), metadata))))
    return FeaturesRun(plan, frame_summary(frame, plan), frame, tables.warnings, written)


def _features_on_spark(cfg: Config, out: Path, metadata: Path | None, status: Status, warn: Warn) -> FeaturesRun:
    from churnmodel import spark

    check_spark_output(out)
    if metadata is not None:
        check_output(metadata)
    inputs = spark_inputs(cfg, status, warn)
    with status("building features on Spark"):
        sframe, plan = spark.training_frame(inputs, cfg)
        spark.write_parquet(sframe, out)
    written = [out, *write_all(frame_writers(cfg, (plan.info(), metadata)))]
    return FeaturesRun(plan, spark.frame_summary(inputs.spark.read.parquet(str(out)), plan), None, tuple(inputs.warnings), tuple(written))


# --------------------------------------------------------------------------- fit


def fit(config: ConfigLike, overrides: Sequence[str] = (), *, tables: InputTables | None = None, engine: str | None = None,
        track: bool = True, promote: bool = False, summary: Path | None = None, status: Status = quiet,
        warn: Warn = ignore, progress: Callable[[int, int], None] | None = None) -> FitResult:
    """Train the calibrated churn model out of time, the hazard model when ``label.horizons`` is set,
    and (``track``) log both to MLflow, register the model and promote it when it beats the champion
    (``promote``: whatever its AUC). ``summary``: also write run id, model URI, version and metrics as JSON.
    ``progress(done, total)``: the survival stage's fits as they finish."""
    cfg = as_config(config, overrides)
    if summary is not None:
        check_target(summary)
    check_command_outputs(cfg, summary)
    if summary is not None and not track:
        raise ConfigError("a training summary describes the tracked run; leave track on to write one")
    if track:
        check_tracking(cfg.tracking.uri, timeout=cfg.tracking.timeout_seconds)  # before any work
    started, seconds = time.time(), {}
    with timed(quiet, "", seconds, "inputs_and_features"):
        frame, plan, tables, events_summary, warnings = _training_frame(cfg, tables, choose_engine(engine, cfg), status, warn)
    with timed(status, "training", seconds, "training"):
        result = train(frame, plan, cfg)
    warnings = (*warnings, *warned(warn, result.warnings))
    if cfg.label.horizons:
        latest = None if events_summary is None else pd.Timestamp(events_summary["last"])
        until = observation_end(data_end(tables, cfg.data.extracted_at, latest_event=latest), cfg.label)
        with timed(status, f"survival: hazard model for horizons {cfg.label.horizons} and the Cox baseline", seconds, "survival"):
            result = add_survival(result, frame, cfg, observed_until=until, progress=progress)
    if cfg.data.actions.types:
        if tables is None:  # the campaigns' rows are read from the local event log
            warnings = (*warnings, *warned(warn, ["uplift: campaigns are learned from with engine local only; no uplift models"]))
        else:
            with timed(status, "uplift: the retention actions' effects", seconds, "uplift"):
                result, found = add_uplift(result, frame, tables.events, cfg)
            warnings = (*warnings, *warned(warn, found))
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
        inputs = spark_inputs(cfg, status, warn)
        with status("building features on Spark"):
            sframe, plan = spark.training_frame(inputs, cfg)
            frame = spark.to_pandas(sframe, plan)
        return frame, plan, inputs.dimensions(), spark.event_summary(inputs.events), tuple(inputs.warnings)
    if tables is None:
        tables = read_tables(cfg, status, warn)
    with status("building features"):
        frame, plan = build_training_frame(tables, cfg)
    return frame, plan, tables, None, tables.warnings


# --------------------------------------------------------------------------- score


def score(config: ConfigLike, overrides: Sequence[str] = (), *, as_of, model: ChurnModel | str | None = None,
          tables: InputTables | None = None, features: pd.DataFrame | Path | None = None, lang: str = "en",
          strict: bool = False, engine: str | None = None, out: Path | None = None, report: Path | None = None,
          progress: Callable[[int, int], None] | None = None, status: Status = quiet, warn: Warn = ignore) -> ScoreRun:
    """Score every partner active at ``as_of``: probability, risk band, revenue at risk, survival
    columns, drivers and actions, and the drift against the training data.

    ``model``: a model in memory, a URI (models:/NAME@champion, runs:/...) or folder; default the
    configured name's champion. ``features``: score this precomputed feature table (a frame, or a
    .parquet/.csv file written by :func:`features`) instead of building features. ``out``: write the
    ranked list (.csv, .parquet, .xlsx; with Spark a Parquet folder); ``report``: the HTML report.
    ``strict``: stop before writing when drift exceeds ``score.drift_fail``."""
    cfg = as_config(config, overrides)
    when = utc(as_of)
    use = choose_engine(engine, cfg)
    check_lang(lang)
    check_command_outputs(cfg, out, report, read=features if isinstance(features, str | Path) else None, model=model)
    if use == "spark" and features is not None:
        raise ConfigError("--features scores an in-memory table; leave it out with engine spark")
    if out is not None:
        check_output(out) if use == "local" else check_spark_output(out)
    if report is not None:
        if Path(report).suffix.lower() != ".html":
            raise ConfigError(f"--report {report}: expected an .html file")
        check_target(report)
    churn_model, name, version = resolve_model(cfg, model)
    cfg = for_model(cfg, churn_model)  # bands and horizon as the model was trained
    label = f"{name} {version}".strip()
    if use == "spark":
        if cfg.monitor.history is not None:
            warned(warn, ["monitor.history: the Spark engine does not keep scoring runs yet; this run is not kept"])
        return _score_on_spark(cfg, churn_model, name, version, when, out, report, lang=lang, strict=strict, status=status, warn=warn)
    if tables is None and (features is None or report is not None):
        tables = read_tables(cfg, status, warn)
    if tables is not None:
        check_scoring_date(cfg, tables, when)
    if features is None:
        result = score_partners(churn_model, tables, as_of=when, config=cfg, lang=lang, model_name=name, model_version=version,
                                progress=progress)
    else:
        frame = read_features(features) if isinstance(features, str | Path) else features
        result = score_features(churn_model, frame, config=cfg, lang=lang, model_name=name, model_version=version, progress=progress)
    warnings = (*(tables.warnings if tables is not None else ()),
                *warned(warn, (*result.warnings, *drift_warnings(result.drift, cfg))))
    if strict:
        check_drift(result.drift, cfg)
    prr = retention_rate(tables, cfg.label, when) if tables is not None else None
    budgets = None if result.actions is None or report is None else budget_curve(result.scores, result.actions, names=[u.action for u in churn_model.uplift],
                                                               costs=[u.cost for u in churn_model.uplift])
    run = ScoreRun(when, label, score_summary(result.scores), result.scores, result.drift, tuple(warnings), prr, budgets=budgets)
    writes = [scored_list_writer(run.scores, out, lang=lang, output=cfg.output, summary=run.summary, prr=run.prr, as_of=when,
                                 model_label=label)] if out is not None else []
    if cfg.monitor.history is not None:  # the run is kept with its list: both, or neither
        writes.append(history_writer(run.scores, folder=cfg.monitor.history, as_of=when, model_name=name, model_version=version,
                                     horizon_days=cfg.label.horizon_days, test=churn_model.metadata.get("test", {})))
        writes.append(drift_writer(run.drift, folder=cfg.monitor.history, as_of=when, model_name=name, model_version=version))
    if report is not None:
        page = run.report(config=cfg, lang=lang)
        writes.append((Path(report), lambda tmp: tmp.write_text(page, encoding="utf-8")))
    written = write_all(writes)  # the list and its report appear together, or neither
    return dataclasses.replace(run, written=tuple(written))


def _score_on_spark(cfg: Config, model: ChurnModel, name: str, version: str, when: pd.Timestamp, out: Path | None,
                    report: Path | None, *, lang: str, strict: bool, status: Status, warn: Warn) -> ScoreRun:
    """Features and scores on Spark; the ranked list is written as a folder of Parquet parts (with its
    report, or neither: nothing half-written)."""

    from churnmodel import spark

    if out is None:
        raise ConfigError("engine spark writes the ranked list as Parquet parts: give an output folder (--out)")
    inputs = spark_inputs(cfg, status, warn)
    span = spark.event_summary(inputs.events)
    check_scoring_date(cfg, inputs.dimensions(), when, first=pd.Timestamp(span["first"]), last=pd.Timestamp(span["last"]))
    label = f"{name} {version}".strip()
    with status("scoring on Spark"):
        frame = spark.scoring_frame(inputs, model.plan, cfg, when)
        scores, drift = spark.score(model, frame, config=cfg, lang=lang, model_name=name, model_version=version)
        warnings = warned(warn, drift_warnings(drift, cfg))
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


# --------------------------------------------------------------------------- explain


def explain(config: ConfigLike, overrides: Sequence[str] = (), *, as_of, partner: str, model: ChurnModel | str | None = None,
            tables: InputTables | None = None, lang: str = "en", horizon: int | None = None) -> Explanation:
    """One partner's risk drivers at ``as_of``, their retention levers and what to do; ``horizon``
    (one of ``label.horizons``): the churn risk within that many days, from the hazard model."""
    cfg = as_config(config, overrides)
    when = utc(as_of)
    check_lang(lang)
    churn_model, _, _ = resolve_model(cfg, model)
    if tables is None:
        tables = read_inputs(cfg.data)
    check_scoring_date(cfg, tables, when)
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


