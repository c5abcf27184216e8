"""The application layer's flows after scoring: which retention action to fund for whom within a budget
(:func:`plan`, ``churnmodel plan``) and how past scoring runs turned out (:func:`monitor`, ``churnmodel
monitor``). Like :mod:`churnmodel.pipeline` (which re-exports both): a config in, the stages run, a result
object out, paths only here at the edge.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from churnmodel.errors import ConfigError
from churnmodel.history import read_drift, read_history
from churnmodel.labels import churn_spells, data_end, observation_end
from churnmodel.model import ChurnModel
from churnmodel.monitoring import moved_inputs, outcomes, run_metrics, verdicts
from churnmodel.outputs import check_output, check_target, write_all
from churnmodel.planning import plan_actions
from churnmodel.preflight import (
    ConfigLike,
    Status,
    Warn,
    as_config,
    check_command_outputs,
    check_lang,
    check_scoring_date,
    ignore,
    quiet,
    read_tables,
    warned,
)
from churnmodel.registry import TrackingError, check_tracking, resolve_model
from churnmodel.report import render_monitor_report
from churnmodel.runs import MonitorRun, PlanRun
from churnmodel.score import for_model
from churnmodel.score import score as score_partners
from churnmodel.times import utc
from churnmodel.tracking import log_monitoring
from churnmodel.validation import InputTables
from churnmodel.workbook import plan_writer

__all__ = ["monitor", "plan"]


def plan(config: ConfigLike, overrides: Sequence[str] = (), *, as_of, budget: float, model: ChurnModel | str | None = None,
         tables: InputTables | None = None, lang: str = "en", out: Path | None = None, status: Status = quiet,
         warn: Warn = ignore) -> PlanRun:
    """Which retention action to fund for whom at ``as_of`` within ``budget``: every active partner scored,
    each action's effect from the model's uplift models, the exact allocation that keeps the most expected
    value net of the actions' costs (as trained with the model), and what ranking by churn risk or by
    revenue at risk would keep at the same budget. ``out``: the plan (.csv, .parquet, .xlsx)."""
    cfg = as_config(config, overrides)
    when = utc(as_of)
    check_lang(lang)
    if not (isinstance(budget, int | float) and math.isfinite(budget) and budget >= 0):
        raise ConfigError(f"--budget must be an amount >= 0, got {budget!r}")
    check_command_outputs(cfg, out, model=model)
    if out is not None:
        check_output(out)
    churn_model, name, version = resolve_model(cfg, model)
    label = f"{name} {version}".strip()
    if not churn_model.uplift:
        raise ConfigError(f"model {label} has no uplift models, so it cannot tell what an action changes: declare the actions "
                          "under data.actions.types and retrain on an event log with their campaigns")
    cfg = for_model(cfg, churn_model)
    if tables is None:
        tables = read_tables(cfg, status, warn)
    check_scoring_date(cfg, tables, when)
    with status("scoring and planning"):
        result = score_partners(churn_model, tables, as_of=when, config=cfg, lang=lang, model_name=name, model_version=version)
        named = {k: getattr(v, lang) for k, v in cfg.explain.lever_names.items()}
        up = churn_model.uplift
        planned = plan_actions(result.scores, result.actions, names=[u.action for u in up], levers=[named.get(u.lever, u.lever) for u in up],
                               costs=[u.cost for u in up], budget=float(budget))
    warnings = (*tables.warnings, *warned(warn, result.warnings))
    written = write_all([plan_writer(planned.partners, out, lang=lang, output=cfg.output, summary=planned.summary, as_of=when,
                                     model_label=label)]) if out is not None else []
    return PlanRun(when, label, planned.summary, planned.partners, tuple(warnings), tuple(written))


def monitor(config: ConfigLike, overrides: Sequence[str] = (), *, tables: InputTables | None = None, out: Path | None = None,
            lang: str = "en", track: bool = True, status: Status = quiet, warn: Warn = ignore) -> MonitorRun:
    """How every scoring run kept in ``monitor.history`` turned out: outcomes from today's data by the same
    label logic as training (runs whose horizon has not passed are *maturing*), realised and estimated
    performance per run and per segment, and a verdict per run (fine, watch, retrain). ``out``: the HTML report.
    ``track``: log the runs of registered model versions to MLflow (:func:`~churnmodel.tracking.log_monitoring`)."""
    cfg = as_config(config, overrides)
    check_lang(lang)
    if cfg.monitor.history is None:
        raise ConfigError("monitor.history is not set: there is no score history to judge. Set it, then score (churnmodel score)")
    check_command_outputs(cfg, out)
    if out is not None:
        if Path(out).suffix.lower() != ".html":
            raise ConfigError(f"--out {out}: expected an .html file")
        check_target(out)
    history = read_history(cfg.monitor.history)
    if tables is None:
        tables = read_tables(cfg, status, warn)
    with status("judging the scoring runs"):
        end = data_end(tables, cfg.data.extracted_at)
        frame = outcomes(history, churn_spells(tables, cfg.label, end=end), observed_until=observation_end(end, cfg.label))
        runs = verdicts(run_metrics(frame, cfg=cfg.monitor, random_state=cfg.random_state), cfg=cfg.monitor)
        segments = run_metrics(frame, cfg=cfg.monitor.model_copy(update={"bootstrap": 0}), random_state=cfg.random_state, by=("segment",))
    if track and "model_version" in runs and runs["model_version"].astype(str).str.isdigit().any():
        try:
            check_tracking(cfg.tracking.uri, timeout=cfg.tracking.timeout_seconds)
            with status("logging the verdicts to MLflow"):
                log_monitoring(runs, config=cfg)
        except TrackingError as exc:
            warned(warn, [f"monitor: the verdicts were not logged to MLflow ({exc})"])
    drift = read_drift(cfg.monitor.history)
    result = MonitorRun(runs.merge(moved_inputs(drift), on=["as_of", "model"], how="left"), segments, drift=drift)
    if out is None:
        return result
    page = render_monitor_report(result.runs, segments, lang=lang, data_end=end, deciding=result.deciding, drift=drift)
    return dataclasses.replace(result, written=tuple(write_all([(Path(out), lambda tmp: tmp.write_text(page, encoding="utf-8"))])))
