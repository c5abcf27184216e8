"""Command line: a thin typer layer, one function call per command.

Exit status: 0 ok, 2 bad input (config, data, arguments), 1 unexpected failure.
"""

from __future__ import annotations

import functools
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from churnmodel.errors import ChurnModelError, ConfigError, DataError

__all__ = ["app", "main", "tune_allocator"]

app = typer.Typer(
    name="churnmodel",
    help="Predict which business partners are about to leave, explain why, and say what to do.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML config file.", show_default=False)]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set data.events=other.parquet (repeatable)."),
]

EngineOption = Annotated[
    str | None,
    typer.Option("--engine", help="local (in memory) or spark; default: the config's engine key.", show_default=False),
]


def _engine(option: str | None, cfg) -> str:
    if option is not None and option not in ("local", "spark"):
        raise typer.BadParameter(f"expected 'local' or 'spark', got {option!r}", param_hint="--engine")
    return option or cfg.engine


def _check_spark_output(out: Path) -> None:
    """Fail before any Spark work if the Parquet folder could not be written (cluster URIs are Spark's to check)."""
    if "://" not in str(out) and not out.parent.is_dir():
        raise DataError(f"output folder does not exist: {out.parent} (create it first, or choose another path)")


def _spark_inputs(cfg):
    """A Spark session and the validated inputs (events on Spark); warnings go to stderr."""
    from churnmodel import spark as engine

    with _err.status("starting Spark"):
        session = engine.session(cfg.spark)
    with _err.status("reading inputs on Spark"):
        inputs = engine.read_inputs(session, cfg.data)
    for message in inputs.warnings:
        _err.print(f"[yellow]warning:[/] {message}", highlight=False)
    return engine, inputs


def tune_allocator() -> bool:
    """Let glibc keep freed memory in a batch process instead of returning it to the OS.

    numpy's large temporaries then reuse pages instead of faulting in fresh ones; on the 2-core VMs
    this halves feature build time (see benchmarks/bench_features.py). Called by the CLI and the
    benchmarks, never on import, so a notebook's process is left as it is. Returns False where the
    C library is not glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    largest = 2**31 - 1  # mallopt takes a C int
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, largest))


def _user_errors(func):
    """Turn the package's errors into a clear message and exit status 2; anything else exits 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except ChurnModelError as exc:
            _err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            _err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            _err.print(traceback.format_exc(), markup=False, highlight=False)
            _err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@app.command()
@_user_errors
def validate(config: ConfigOption, set_: SetOption = None) -> None:
    """Check the input files against the data contract and print a summary."""
    from churnmodel.config import load_config
    from churnmodel.data import read_inputs, summarize

    cfg = load_config(config, set_ or ())
    tables = read_inputs(cfg.data)
    facts = summarize(tables)
    table = Table(title="Inputs", show_header=False)
    table.add_row("partners", f"{facts['partners']:,} ({facts['active']:,} active, {facts['churned']:,} churned)")
    table.add_row("events", f"{facts['events']:,} from {facts['first_event']:%Y-%m-%d} to {facts['last_event']:%Y-%m-%d}")
    table.add_row("contracts", f"{facts['contracts']:,}")
    for name, count in facts["event_types"].items():
        table.add_row(f"  {name}", f"{count:,}")
    _out.print(table)
    for message in tables.warnings:
        _err.print(f"[yellow]warning:[/] {message}", highlight=False)
    _out.print(f"[green]OK[/] inputs match the data contract ({len(tables.warnings)} warning(s)).")


@app.command()
@_user_errors
def features(
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="Output file: .parquet, .csv or .xlsx (with --engine spark: a Parquet folder).")],
    metadata: Annotated[Path | None, typer.Option(help="Also write feature metadata (name, lever, unit, labels) here.")] = None,
    engine: EngineOption = None,
    set_: SetOption = None,
) -> None:
    """Build point-in-time features and labels for every (partner, snapshot date)."""
    from churnmodel.config import load_config
    from churnmodel.data import check_output, read_inputs, write_frame
    from churnmodel.features import build_training_frame

    cfg = load_config(config, set_ or ())
    use = _engine(engine, cfg)
    for target in (out, metadata):
        if target is not None and not (use == "spark" and target is out):
            check_output(target)
    if use == "spark":
        from pyspark.sql import functions as F

        _check_spark_output(out)
        spark, inputs = _spark_inputs(cfg)
        with _err.status("building features on Spark"):
            sframe, plan = spark.training_frame(inputs, cfg)
            spark.write_parquet(sframe, out)
        if metadata is not None:
            write_frame(plan.info(), metadata)
        written = inputs.spark.read.parquet(str(out))
        n = written.agg(F.count("*").alias("rows"), F.countDistinct("partner_id").alias("partners"),
                        F.countDistinct("snapshot").alias("snapshots"), F.sum(F.col("censored").cast("long")).alias("censored"),
                        F.avg(F.when(~F.col("censored"), F.col("label"))).alias("rate")).collect()[0]
        _out.print(f"{n['rows']:,} rows ({n['partners']:,} partners x {n['snapshots']} snapshots), {len(plan.columns)} features; "
                   f"{n['rows'] - n['censored']:,} labelled rows, churn rate {n['rate'] or 0:.1%}, {n['censored']:,} censored; "
                   f"wrote {out} (Parquet parts, Spark)")
        return
    tables = read_inputs(cfg.data)
    frame, plan = build_training_frame(tables, cfg)
    write_frame(frame, out)
    if metadata is not None:
        write_frame(plan.info(), metadata)
    labelled = frame.loc[~frame["censored"]]
    _out.print(
        f"{len(frame):,} rows ({frame['partner_id'].nunique():,} partners x {frame['snapshot'].nunique()} snapshots), "
        f"{len(plan.columns)} features; {len(labelled):,} labelled rows, churn rate {labelled['label'].mean():.1%}, "
        f"{int(frame['censored'].sum()):,} censored; wrote {out}"
    )


@app.command()
@_user_errors
def train(
    config: ConfigOption,
    set_: SetOption = None,
    summary: Annotated[Path | None, typer.Option(help="Write run id, model URI, version and test metrics here as JSON.")] = None,
    promote: Annotated[bool, typer.Option("--promote", help="Make the new model the champion whatever its AUC.")] = False,
    engine: EngineOption = None,
) -> None:
    """Train a calibrated LightGBM churn model, evaluate it out of time and track it in MLflow."""
    import pandas as pd

    from churnmodel.config import load_config, project_dir
    from churnmodel.data import atomic_write, read_inputs
    from churnmodel.features import build_training_frame
    from churnmodel.tracking import check_tracking, log_training
    from churnmodel.train import train as fit

    cfg = load_config(config, set_ or ())
    if summary is not None and not summary.parent.is_dir():
        raise ConfigError(f"--summary: folder {summary.parent} does not exist")
    check_tracking(cfg.tracking.uri, timeout=cfg.tracking.timeout_seconds)  # before any work
    summary_of_events = None
    if _engine(engine, cfg) == "spark":
        spark, inputs = _spark_inputs(cfg)
        with _err.status("building features on Spark"):
            sframe, plan = spark.training_frame(inputs, cfg)
            frame = spark.to_pandas(sframe, plan)  # the model is fitted on the driver
            tables, summary_of_events = inputs.dimensions(), spark.event_summary(inputs.events)
    else:
        with _err.status("reading inputs"):
            tables = read_inputs(cfg.data)
        with _err.status("building features"):
            frame, plan = build_training_frame(tables, cfg)
    with _err.status("training"):
        result = fit(frame, plan, cfg)
    if cfg.label.horizons:
        from churnmodel.labels import data_end, observation_end
        from churnmodel.survival import add_survival

        latest = None if summary_of_events is None else pd.Timestamp(summary_of_events["last"])
        until = observation_end(data_end(tables, cfg.data.extracted_at, latest_event=latest), cfg.label)
        with _err.status(f"survival: hazard model for horizons {cfg.label.horizons} and the Cox baseline"):
            result = add_survival(result, frame, cfg, observed_until=until)
    with _err.status("logging to MLflow"):
        info = log_training(result, config=cfg, config_path=config, tables=tables, project=project_dir(config),
                            promote=promote, events_summary=summary_of_events)
    m = result.metrics
    table = Table(title=f"Test block {', '.join(result.split.dates['test'])}", show_header=False)
    table.add_row("ROC AUC", f"{m['auc']:.3f} (95% CI {m['auc_ci_low']:.3f}-{m['auc_ci_high']:.3f})"
                  + (f"; baseline {m['baseline_auc']:.3f}" if "baseline_auc" in m else ""))
    table.add_row("PR AUC", f"{m['pr_auc']:.3f}" + (f"; baseline {m['baseline_pr_auc']:.3f}" if "baseline_pr_auc" in m else ""))
    table.add_row("log loss / Brier / ECE", f"{m['log_loss']:.4f} / {m['brier']:.4f} / {m['ece']:.4f}")
    table.add_row(f"lift / capture, top {cfg.train.top_share:.0%}", f"{m['lift_top']:.2f} / {m['capture_top']:.1%}")
    table.add_row("EMP per partner", f"{m['emp']:.2f} (target {m['emp_targeted_share']:.1%})")
    table.add_row("Partner Retention Rate", f"observed {m['prr_observed']:.1f}%, predicted {m['prr_predicted']:.1f}%")
    if cfg.label.horizons:
        hs = cfg.label.horizons
        table.add_row("survival, out of fold", f"C-index {m['hazard_c_index']:.3f} (Cox {m['cox_c_index']:.3f}); integrated Brier "
                      f"{m['hazard_ibs']:.4f} (Cox {m['cox_ibs']:.4f})")
        table.add_row("AUC by horizon", " / ".join(f"{h}d {m.get(f'hazard_auc_{h}d', float('nan')):.3f}" for h in hs)
                      + "; Cox " + " / ".join(f"{m.get(f'cox_auc_{h}d', float('nan')):.3f}" for h in hs))
        h = cfg.label.horizon_days
        if f"hazard_oot_auc_{h}d" in m:
            table.add_row(f"{h}-day AUC, test block", f"hazard {m[f'hazard_oot_auc_{h}d']:.3f}, single-horizon {m[f'single_oot_auc_{h}d']:.3f}")
    table.add_row("model", f"{info.model_uri} ({'champion' if info.promoted else 'candidate'})")
    table.add_row("run", info.run_id)
    _out.print(table)
    if summary is not None:
        atomic_write(summary, lambda tmp: tmp.write_text(info.to_json() + "\n"))


@app.command()
@_user_errors
def explain(
    config: ConfigOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Date to explain at, YYYY-MM-DD (features use what was known before it).")],
    partner: Annotated[str, typer.Option(help="partner_id to explain.")],
    model: Annotated[str | None, typer.Option(help="Model: models:/NAME@champion (default from config), runs:/..., or a folder.")] = None,
    lang: Annotated[str, typer.Option(help="en or ru.")] = "en",
    horizon: Annotated[int | None, typer.Option(help="Explain the churn risk within this many days (one of label.horizons).")] = None,
    set_: SetOption = None,
) -> None:
    """Print one partner's risk drivers, their retention levers and what to do."""
    import pandas as pd

    from churnmodel.config import load_config
    from churnmodel.data import read_inputs
    from churnmodel.explain import explain_partner
    from churnmodel.features import build_features, check_tables

    when = _check_lang_and_date(lang, as_of)
    cfg = load_config(config, set_ or ())
    _, churn_model = _load_model(cfg, model)
    tables = read_inputs(cfg.data)
    known = tables.partners.set_index("partner_id")
    if partner not in known.index:
        near = ", ".join(repr(p) for p in __import__("difflib").get_close_matches(partner, list(known.index), n=3))
        raise DataError(f"--partner {partner!r} is not in {tables.sources['partners']}" + (f"; similar ids: {near}" if near else ""))
    if known.loc[partner, "joined_at"] > when:
        raise DataError(f"--partner {partner!r} joined on {known.loc[partner, 'joined_at'].date()}, after --as-of {when.date()}")
    rows = pd.DataFrame({"partner_id": [partner], "snapshot": pd.Series([when]).astype("datetime64[us, UTC]")})
    check_tables(churn_model.plan, tables)
    features = build_features(tables, rows, churn_model.plan)
    table = explain_partner(churn_model, features, config=cfg.explain, lang=lang, horizon=horizon)
    days = horizon or churn_model.metadata.get("horizon_days", cfg.label.horizon_days)
    head = "Partner" if lang == "en" else "Партнёр"
    prob = f"churn probability within {days} days" if lang == "en" else f"вероятность ухода в ближайшие {days} дней"
    base = "base rate" if lang == "en" else "базовый уровень"
    out = Table(title=f"{head} {partner}, {when.date()}: {prob} {table.attrs['churn_probability']:.1%} ({base} {table.attrs['base_rate']:.1%})")
    for column in ("#", "driver", "value", "typical", "+pp", "lever", "action"):
        out.add_column(column, overflow="fold")
    labels = {"protective": "protects" if lang == "en" else "защищает", "context": "context" if lang == "en" else "контекст"}
    for r in table.itertuples():
        out.add_row(str(r.rank) if r.kind == "driver" else labels[r.kind], r.name, r.value, r.typical,
                    f"{100 * r.points:+.1f}", r.lever, r.action)
    _out.print(out)


@app.command()
@_user_errors
def score(
    config: ConfigOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Score date YYYY-MM-DD: the export date; features use what was known before it.")],
    out: Annotated[Path, typer.Option(help="Ranked list: .csv, .parquet or .xlsx (written atomically).")],
    model: Annotated[str | None, typer.Option(help="models:/NAME@champion (default from config), runs:/..., or a folder.")] = None,
    lang: Annotated[str, typer.Option(help="Language of drivers and actions: en or ru.")] = "en",
    strict: Annotated[bool, typer.Option("--strict", help="Stop (exit 2) when drift exceeds score.drift_fail.")] = False,
    report: Annotated[Path | None, typer.Option(help="Also write the analyst report here (.html, self-contained).")] = None,
    features: Annotated[Path | None, typer.Option(help="Score this precomputed feature table (.parquet/.csv) instead of building features.")] = None,
    engine: EngineOption = None,
    set_: SetOption = None,
) -> None:
    """Score every active partner: probability, risk band, revenue at risk, drivers and actions."""
    import pandas as pd
    from rich.progress import Progress

    from churnmodel.config import load_config
    from churnmodel.data import check_output, read_inputs, write_frame
    from churnmodel.score import score as run

    when = _check_lang_and_date(lang, as_of)
    cfg = load_config(config, set_ or ())
    use = _engine(engine, cfg)
    if use == "spark" and features is not None:
        raise typer.BadParameter("--features scores an in-memory table; leave it out with --engine spark", param_hint="--features")
    check_output(out) if use == "local" else _check_spark_output(out)
    if report is not None and (report.suffix.lower() != ".html" or not report.parent.is_dir()):
        raise ConfigError(f"--report {report}: expected an .html file in an existing folder")
    uri, churn_model = _load_model(cfg, model)
    if use == "spark":
        _score_on_spark(cfg, churn_model, uri, when, out, lang=lang, strict=strict, report=report)
        return
    tables = read_inputs(cfg.data) if features is None or report is not None else None
    name, version = _model_label(uri)
    with Progress(console=_err, transient=True, disable=not _err.is_terminal) as bar:
        task = bar.add_task("scoring", total=None)
        tick = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
        if features is None:
            result = run(churn_model, tables, as_of=when, config=cfg, lang=lang, model_name=name, model_version=version, progress=tick)
        else:
            from churnmodel.score import score_features

            result = score_features(churn_model, _read_features(features), config=cfg, lang=lang, model_name=name,
                                    model_version=version, progress=tick)
    for message in (*(tables.warnings if tables is not None else ()), *result.warnings):
        _err.print(f"[yellow]warning:[/] {message}", highlight=False)
    _check_drift(result.drift, cfg, strict)
    if report is not None:
        _write_report(report, result.scores, result.drift, tables, cfg, when, f"{name} {version}".strip(), lang)
    write_frame(result.scores, out)
    s = result.scores
    _out.print(f"scored {len(s):,} partners at {pd.Timestamp(when).date()}: expected churners {s['churn_probability'].sum():,.1f}, "
               f"high risk {int((s['risk_band'] == 'high').sum()):,}, revenue at risk {s['revenue_at_risk'].sum():,.0f}; wrote {out}")


def _check_drift(drift, cfg, strict: bool) -> None:
    """Warn on drift above score.drift_warn; with --strict stop above score.drift_fail (before writing)."""
    score_psi = drift.loc[drift["feature"] == "(score)", "psi"].sum()
    worst = drift.iloc[0] if len(drift) else None
    if worst is not None and worst["psi"] > cfg.score.drift_warn:
        shifted = drift.loc[drift["psi"] > cfg.score.drift_warn]
        _err.print(f"[yellow]warning:[/] drift: {len(shifted)} input(s) with PSI > {cfg.score.drift_warn} "
                   f"(largest {worst['feature']} {worst['psi']:.2f}); score PSI {score_psi:.2f}", highlight=False)
        if strict and worst["psi"] > cfg.score.drift_fail:
            raise DataError(f"drift: PSI {worst['psi']:.2f} for {worst['feature']!r} exceeds score.drift_fail "
                            f"{cfg.score.drift_fail}; the data no longer looks like the training data. Nothing was written")


def _write_report(report: Path, scores, drift, tables, cfg, when, model_label: str, lang: str) -> None:
    from churnmodel.data import atomic_write
    from churnmodel.labels import churn_spells
    from churnmodel.report import partner_retention_rate, render_report

    prr = partner_retention_rate(churn_spells(tables, cfg.label, end=when), when)
    page = render_report(scores, drift, as_of=when, prr=prr, horizon_days=cfg.label.horizon_days,
                         bands=cfg.score.bands.model_dump(), drift_warn=cfg.score.drift_warn, model_label=model_label, lang=lang)
    atomic_write(report, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def _score_on_spark(cfg, churn_model, uri: str, when, out: Path, *, lang: str, strict: bool, report: Path | None) -> None:
    """Features and scores on Spark; the ranked list is written as a folder of Parquet parts."""
    from pyspark.sql import functions as F

    spark, inputs = _spark_inputs(cfg)
    name, version = _model_label(uri)
    with _err.status("scoring on Spark"):
        frame = spark.scoring_frame(inputs, churn_model.plan, cfg, when)
        scores, drift = spark.score(churn_model, frame, config=cfg, lang=lang, model_name=name, model_version=version)
        _check_drift(drift, cfg, strict)
        spark.write_parquet(scores, out)
    written = inputs.spark.read.parquet(str(out))
    if report is not None:  # the report needs the list in memory: fine for the ranked list of one run
        import pandas as pd

        local = spark.collect(written.orderBy("rank"))
        for col in ("as_of", "scored_at"):
            local[col] = pd.to_datetime(local[col]).dt.tz_localize("UTC")
        try:
            _write_report(report, local, drift, inputs.dimensions(), cfg, when, f"{name} {version}".strip(), lang)
        except BaseException:
            import shutil

            shutil.rmtree(out, ignore_errors=True)  # nothing half-written: the list goes with its report
            raise
    n = written.agg(F.count("*").alias("n"), F.sum("churn_probability").alias("p"), F.sum("revenue_at_risk").alias("r"),
                    F.sum((F.col("risk_band") == "high").cast("long")).alias("high")).collect()[0]
    _out.print(f"scored {n['n']:,} partners at {when.date()}: expected churners {n['p'] or 0:,.1f}, high risk {n['high'] or 0:,}, "
               f"revenue at risk {n['r'] or 0:,.0f}; wrote {out} (Parquet parts, Spark)")


def _check_lang_and_date(lang: str, as_of: str):
    """--lang and --as-of checked as usage errors; the date comes back as a UTC timestamp."""
    import pandas as pd

    if lang not in ("en", "ru"):
        raise typer.BadParameter(f"expected 'en' or 'ru', got {lang!r}", param_hint="--lang")
    try:
        when = pd.Timestamp(as_of)
    except ValueError:
        raise typer.BadParameter(f"expected a date like 2025-10-01, got {as_of!r}", param_hint="--as-of") from None
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")


def _load_model(cfg, model: str | None):
    """The model from --model (default: the configured name's champion), checking the tracking store first."""
    from churnmodel.tracking import check_tracking, load_churn_model

    uri = model or f"models:/{cfg.tracking.model_name}@champion"
    if ":/" in uri and not Path(uri).exists():
        check_tracking(cfg.tracking.uri, timeout=cfg.tracking.timeout_seconds)
    return uri, load_churn_model(uri, tracking_uri=cfg.tracking.uri)


def _model_label(uri: str) -> tuple[str, str]:
    """models:/NAME@ALIAS or models:/NAME/VERSION -> (NAME, ALIAS or VERSION); other URIs -> (URI, "")."""
    if not uri.startswith("models:/"):
        return uri, ""
    rest = uri.removeprefix("models:/")
    name, sep, alias = rest.partition("@")
    if sep:
        return name, alias
    name, _, version = rest.partition("/")
    return name, version


def _read_features(path: Path):
    import pandas as pd

    if not path.is_file():
        raise DataError(f"--features: file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
        frame["snapshot"] = pd.to_datetime(frame["snapshot"], utc=True)
        return frame
    raise DataError(f"--features {path.name}: expected .parquet or .csv (as written by churnmodel features)")


@app.command()
@_user_errors
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write partners, contracts, events and ground_truth/ into.")],
    partners: Annotated[int, typer.Option(min=1, help="Number of partners.")] = 1000,
    months: Annotated[int, typer.Option(min=1, max=240, help="Months of history.")] = 36,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives byte-identical files.")] = 0,
    start: Annotated[str, typer.Option(help="First month, YYYY-MM-01.")] = "2023-01-01",
    events_format: Annotated[str, typer.Option(help="parquet or csv.")] = "parquet",
) -> None:
    """Simulate partner interaction history with a known ground truth."""
    from churnmodel.simulate import simulate as run
    from churnmodel.simulate import write_simulation

    if events_format not in ("parquet", "csv"):
        raise typer.BadParameter(f"expected 'parquet' or 'csv', got {events_format!r}", param_hint="--events-format")
    try:
        result = run(partners, months, start=start, random_state=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--start") from None
    paths = write_simulation(result, out, events_format=events_format)
    churners = int(result.partners["churned_at"].notna().sum())
    _out.print(
        f"simulated {len(result.partners):,} partners, {len(result.events):,} events, "
        f"{churners:,} churned; wrote {len(paths)} files to {out}"
    )


def main() -> None:  # pragma: no cover - console script entry point
    import os

    # OpenMP threads that spin while idle starve any other process on a 2-core machine
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    tune_allocator()
    import signal

    def stop(signum, frame):  # a terminated run unwinds, so temporary files are removed
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
