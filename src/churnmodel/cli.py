"""Command line: a thin typer layer; each command parses its arguments, calls one function of
:mod:`churnmodel.pipeline` and prints the result.

Exit status: 0 ok, 2 bad input (config, data, arguments), 1 unexpected failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys
import time
import traceback
from enum import StrEnum
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from churnmodel.errors import ChurnModelError
from churnmodel.texts import CONSOLE, PLAN_SUMMARY
from churnmodel.times import utc

__all__ = ["app", "main", "tune_allocator"]

app = typer.Typer(
    name="churnmodel",
    help="Predict which business partners are about to leave, explain why, and say what to do.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags as flags, choices as <a|b>
)
# Data is never markup: a region called "[/]" or an id with "[bold]" is printed as it is. Colour comes
# only from Text objects built here.
_out = Console(soft_wrap=True, markup=False, emoji=False)
_err = Console(stderr=True, soft_wrap=True, markup=False, emoji=False)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML config file.", show_default=False)]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Override a config key: --set data.events=other.parquet (repeatable)."),
]


class Engine(StrEnum):
    local = "local"
    spark = "spark"


class Lang(StrEnum):
    en = "en"
    ru = "ru"


class EventsFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


EngineOption = Annotated[
    Engine | None,
    typer.Option("--engine", help="local (in memory) or spark; default: the config's engine key.", show_default=False),
]


def _engine(option: Engine | None) -> str | None:
    return None if option is None else option.value


@contextlib.contextmanager
def _display(first: str):
    """(status, progress) hooks for a long command. On a terminal: one live progress bar whose description
    follows the stages. Otherwise (a log, CI, a pipe): one line per stage with its elapsed time."""
    if not _err.is_terminal:
        yield _stage, None
        return

    columns = (TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task(first, total=None)

        def stage(text: str):
            bar.update(task, description=text, completed=0, total=None)
            return contextlib.nullcontext()

        yield stage, lambda done, total: bar.update(task, completed=done, total=total)


@contextlib.contextmanager
def _stage(text: str):
    """A spinner on a terminal; otherwise (a log, CI, a pipe) one line per stage with its elapsed time."""
    if _err.is_terminal:
        with _err.status(text):
            yield
        return
    start = time.monotonic()
    yield
    _err.print(f"{text}: {time.monotonic() - start:.1f} s")


def _warn(message: str) -> None:
    _err.print(Text.assemble(("warning:", "yellow"), " ", message))


def tune_allocator() -> bool:
    """Let glibc keep freed memory in a batch process instead of returning it to the OS.

    numpy's large temporaries then reuse pages instead of faulting in fresh ones; on the 2-core VMs
    this halves feature build time (see benchmarks/bench_features.py). Called by the CLI and the
    benchmarks, never on import, so a notebook's process is left as it is. Returns False where the
    C library is not glibc.
    """

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    largest = 2**31 - 1  # mallopt takes a C int
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, largest))


def _version(value: bool) -> None:
    if value:
        _out.print(f"churnmodel {version('churnmodel')}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    """Predict which business partners are about to leave, explain why, and say what to do."""


def _user_errors(func):
    """Turn the package's errors into a clear message and exit status 2; anything else exits 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except ChurnModelError as exc:
            _err.print(Text.assemble(("error:", "bold red"), " ", str(exc)))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            _err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            _err.print(traceback.format_exc(), highlight=False)
            _err.print(Text.assemble(("internal error:", "bold red"), f" {type(exc).__name__}: {exc}"))
            raise typer.Exit(1) from None

    return wrapper


@app.command()
@_user_errors
def validate(config: ConfigOption, set_: SetOption = None) -> None:
    """Check the input files against the data contract and print a summary."""
    # pipeline.validate itself, imported from where it lives so that checking the inputs leaves the training stack out
    from churnmodel.preflight import validate

    run = validate(config, set_ or ())
    facts = run.facts
    table = Table(title="Inputs", show_header=False)
    table.add_row("partners", f"{facts['partners']:,} ({facts['active']:,} active, {facts['churned']:,} churned)")
    table.add_row("events", f"{facts['events']:,} from {facts['first_event']:%Y-%m-%d} to {facts['last_event']:%Y-%m-%d}")
    table.add_row("contracts", f"{facts['contracts']:,}")
    for name, count in facts["event_types"].items():
        table.add_row(f"  {name}", f"{count:,}")
    _out.print(table)
    for message in run.warnings:
        _warn(message)
    _out.print(Text.assemble(("OK", "green"), f" inputs match the data contract ({len(run.warnings)} warning(s))."))


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
    from churnmodel import pipeline

    run = pipeline.features(config, set_ or (), engine=_engine(engine), out=out, metadata=metadata, status=_stage, warn=_warn)
    n = run.summary
    _out.print(f"{n['rows']:,} rows ({n['partners']:,} partners x {n['snapshots']} snapshots), {n['features']} features; "
               f"{n['labelled']:,} labelled rows, churn rate {n['churn_rate']:.1%}, {n['censored']:,} censored; "
               f"wrote {out}" + (" (Parquet parts, Spark)" if run.frame is None else ""))


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
    from churnmodel import pipeline

    with _display("training") as (stage, progress):
        run = pipeline.fit(config, set_ or (), engine=_engine(engine), promote=promote, summary=summary, status=stage, warn=_warn,
                           progress=progress)
    _out.print(_metrics_table(run))


def _metrics_table(run) -> Table:
    m, cfg, info = run.metrics, run.config, run.tracking
    table = Table(title=f"Test block {', '.join(run.training.split.dates['test'])}", show_header=False)
    known = m.get("auc_ci_low", float("nan")) == m.get("auc_ci_low")  # train.bootstrap 0: no interval
    table.add_row("ROC AUC", f"{m['auc']:.3f}" + (f" (95% CI {m['auc_ci_low']:.3f}-{m['auc_ci_high']:.3f})" if known else "")
                  + (f"; logistic baseline {m['baseline_auc']:.3f}" if "baseline_auc" in m else "")
                  + (f"; BG/NBD {m['btyd_auc']:.3f}" if "btyd_auc" in m else ""))
    table.add_row("PR AUC", f"{m['pr_auc']:.3f}" + (f"; baseline {m['baseline_pr_auc']:.3f}" if "baseline_pr_auc" in m else ""))
    table.add_row("log loss / Brier / ECE", f"{m['log_loss']:.4f} / {m['brier']:.4f} / {m['ece']:.4f}")
    table.add_row(f"lift / capture, top {cfg.train.top_share:.0%}", f"{m['lift_top']:.2f} / {m['capture_top']:.1%}")
    table.add_row("EMP per partner", f"{m['emp']:.2f} (target {m['emp_targeted_share']:.1%})")
    table.add_row("Partner Retention Rate", f"observed {m['prr_observed']:.1f}%, predicted {m['prr_predicted']:.1f}%")
    if run.survival is not None:
        hs = list(run.survival.hazard.horizons)
        table.add_row("survival, out of fold", f"C-index {m['hazard_c_index']:.3f} (Cox {m['cox_c_index']:.3f}); integrated Brier "
                      f"{m['hazard_ibs']:.4f} (Cox {m['cox_ibs']:.4f})")
        table.add_row("AUC by horizon", " / ".join(f"{h}d {m.get(f'hazard_auc_{h}d', float('nan')):.3f}" for h in hs)
                      + "; Cox " + " / ".join(f"{m.get(f'cox_auc_{h}d', float('nan')):.3f}" for h in hs))
        h = cfg.label.horizon_days
        if f"hazard_oot_auc_{h}d" in m:
            table.add_row(f"{h}-day AUC, test block", f"hazard {m[f'hazard_oot_auc_{h}d']:.3f}, single-horizon {m[f'single_oot_auc_{h}d']:.3f}")
    if info is not None:
        table.add_row("model", f"{info.model_uri} ({'champion' if info.promoted else 'candidate'})")
        table.add_row("run", info.run_id)
    return table


@app.command()
@_user_errors
def explain(
    config: ConfigOption,
    as_of: Annotated[str, typer.Option("--as-of", metavar="YYYY-MM-DD", help="Date to explain at, YYYY-MM-DD (features use what was known before it).")],
    partner: Annotated[str, typer.Option(metavar="ID", help="partner_id to explain.")],
    model: Annotated[str | None, typer.Option(metavar="URI|FOLDER", help="Model: models:/NAME@champion (default from config), runs:/..., or a folder.")] = None,
    lang: Annotated[Lang, typer.Option(help="Language of the output.")] = Lang.en,
    horizon: Annotated[int | None, typer.Option(help="Explain the churn risk within this many days (one of label.horizons).")] = None,
    set_: SetOption = None,
) -> None:
    """Print one partner's risk drivers, their retention levers and what to do."""
    from churnmodel import pipeline

    when, lang = _check_date(as_of), lang.value
    run = pipeline.explain(config, set_ or (), as_of=when, partner=partner, model=model, lang=lang, horizon=horizon)
    t = CONSOLE[lang]
    out = Table(title=f"{t['partner']} {partner}, {when.date()}: {t['probability'].format(days=run.horizon_days)} "
                      f"{run.probability:.1%} ({t['base']} {run.base_rate:.1%})")
    for column in ("#", "driver", "value", "typical", "+pp", "lever", "action"):
        out.add_column(column, overflow="fold")
    for r in run.table.itertuples():
        out.add_row(str(r.rank) if r.kind == "driver" else t[r.kind], r.name, r.value, r.typical,
                    f"{100 * r.points:+.1f}", r.lever, r.action)
    _out.print(out)


@app.command()
@_user_errors
def score(
    config: ConfigOption,
    as_of: Annotated[str, typer.Option("--as-of", metavar="YYYY-MM-DD", help="Score date YYYY-MM-DD: the export date; features use what was known before it.")],
    out: Annotated[Path, typer.Option(help="Ranked list: .csv, .parquet or .xlsx (written atomically).")],
    model: Annotated[str | None, typer.Option(metavar="URI|FOLDER", help="models:/NAME@champion (default from config), runs:/..., or a folder.")] = None,
    lang: Annotated[Lang, typer.Option(help="Language of headers, bands, segments, drivers and actions.")] = Lang.en,
    strict: Annotated[bool, typer.Option("--strict", help="Stop (exit 2) when drift exceeds score.drift_fail.")] = False,
    report: Annotated[Path | None, typer.Option(help="Also write the analyst report here (.html, self-contained).")] = None,
    features: Annotated[Path | None, typer.Option(help="Score this precomputed feature table (.parquet/.csv) instead of building features.")] = None,
    engine: EngineOption = None,
    set_: SetOption = None,
) -> None:
    """Score every active partner: probability, risk band, revenue at risk, drivers and actions."""
    from churnmodel import pipeline

    when, lang = _check_date(as_of), lang.value
    if engine == Engine.spark and features is not None:
        raise typer.BadParameter("--features scores an in-memory table; leave it out with --engine spark", param_hint="--features")
    with _display("scoring") as (stage, progress):
        run = pipeline.score(config, set_ or (), as_of=when, model=model, features=features, lang=lang, strict=strict,
                             engine=_engine(engine), out=out, report=report, status=stage, warn=_warn, progress=progress)
    s = run.summary
    _out.print(f"scored {s['partners']:,} partners at {when.date()}: expected churners {s['expected_churners']:,.1f}, "
               f"high risk {s['high_risk']:,}, revenue at risk {s['revenue_at_risk']:,.0f}; wrote {out}"
               + (" (Parquet parts, Spark)" if run.scores is None else ""))


@app.command()
@_user_errors
def plan(
    config: ConfigOption,
    as_of: Annotated[str, typer.Option("--as-of", metavar="YYYY-MM-DD", help="Plan date YYYY-MM-DD: the export date.")],
    budget: Annotated[float, typer.Option(min=0, help="What the actions may cost in total (the currency of the actions' costs).")],
    out: Annotated[Path | None, typer.Option(help="The plan: .csv, .parquet or .xlsx (written atomically).")] = None,
    model: Annotated[str | None, typer.Option(metavar="URI|FOLDER", help="models:/NAME@champion (default from config), runs:/..., or a folder.")] = None,
    lang: Annotated[Lang, typer.Option(help="Language of headers, bands, segments and levers.")] = Lang.en,
    set_: SetOption = None,
) -> None:
    """Which retention action to fund for whom within a budget, from the model's uplift models."""
    from churnmodel import pipeline

    when = _check_date(as_of)
    with _display("planning") as (stage, _):
        run = pipeline.plan(config, set_ or (), as_of=when, budget=budget, model=model, lang=lang.value, out=out, status=stage, warn=_warn)
    s = run.summary
    t = PLAN_SUMMARY[lang.value]
    _out.print(f"plan at {when.date()}: {s['funded']:,} of {s['partners']:,} partners approached for {s['spent']:,.0f} of {s['budget']:,.0f}"
               + (f"; wrote {out}" if out is not None else ""))
    for key in ("value_plan", "value_risk", "value_revenue_at_risk"):
        _out.print(f"  {t[key]}: {s[key]:,.0f}")
    if s["optimality_gap"] >= 0.5:  # a list too large for the exact solver: how far from the best plan it can be
        _out.print(f"  {t['gap']}: {s['optimality_gap']:,.0f}")


class FailOn(StrEnum):
    watch = "watch"
    retrain = "retrain"


@app.command()
@_user_errors
def monitor(
    config: ConfigOption,
    out: Annotated[Path | None, typer.Option(help="The monitoring report (.html, self-contained).")] = None,
    lang: Annotated[Lang, typer.Option(help="Language of the report.")] = Lang.en,
    fail_on: Annotated[FailOn | None, typer.Option("--fail-on", help="Exit with status 3 when the latest run's verdict is this or worse (for schedulers).")] = None,
    set_: SetOption = None,
) -> None:
    """How past scoring runs turned out, how the maturing ones look, and whether to retrain."""
    from churnmodel import pipeline

    with _display("monitoring") as (stage, _):
        run = pipeline.monitor(config, set_ or (), out=out, lang=lang.value, status=stage, warn=_warn)
    for row in run.runs.itertuples(index=False):
        auc = getattr(row, "auc", float("nan"))
        realised = f"AUC {auc:.3f}" if auc == auc else "AUC not known yet"
        reason = row.reason_ru if lang == Lang.ru else row.reason
        _out.print(f"{pd.Timestamp(row.as_of).date()} {row.model}: {row.status}, {realised}, estimated {row.estimated_auc:.3f}; "
                   f"{row.verdict}: {reason}")
    if out is not None:
        _out.print(f"wrote {out}")
    order = {"fine": 0, "watch": 1, "retrain": 2}
    if fail_on is not None and order[run.verdict] >= order[fail_on.value]:
        _err.print(f"verdict: {run.verdict} (--fail-on {fail_on.value})")
        raise typer.Exit(3)


def _check_date(as_of: str):
    """--as-of checked as a usage error; the date comes back as a UTC timestamp."""

    try:
        return utc(pd.Timestamp(as_of))
    except ValueError:
        raise typer.BadParameter(f"expected a date like 2025-10-01, got {as_of!r}", param_hint="--as-of") from None


@app.command()
@_user_errors
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write partners, contracts, events and ground_truth/ into.")],
    partners: Annotated[int, typer.Option(min=1, help="Number of partners.")] = 1000,
    months: Annotated[int, typer.Option(min=1, max=240, help="Months of history.")] = 36,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives byte-identical files.")] = 0,
    start: Annotated[str, typer.Option(help="First month, YYYY-MM-01.")] = "2023-01-01",
    events_format: Annotated[EventsFormat, typer.Option(help="File type of the event log.")] = EventsFormat.parquet,
    campaigns: Annotated[bool, typer.Option(help="Also retention campaigns (randomised and targeted) with their true effects.")] = False,
) -> None:
    """Simulate partner interaction history with a known ground truth."""
    from churnmodel import pipeline

    run = pipeline.simulate(partners=partners, months=months, random_state=seed, start=start, out=out, events_format=events_format.value,
                            campaigns=campaigns)
    result = run.result
    churners = int(result.partners["churned_at"].notna().sum())
    _out.print(
        f"simulated {len(result.partners):,} partners, {len(result.events):,} events, "
        f"{churners:,} churned; wrote {len(run.written)} files to {out}"
    )


def main() -> None:  # pragma: no cover - console script entry point

    # OpenMP threads that spin while idle starve any other process on a 2-core machine
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures go to files; a notebook keeps its inline backend
    tune_allocator()

    def stop(signum, frame):  # a terminated run unwinds, so temporary files are removed
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
