"""Batch scoring: every partner active at ``as_of`` -> probability, risk band, revenue at risk, reasons.

Partners are processed in chunks (``score.chunk_partners``) so memory stays bounded; features use
only what was known before ``as_of``; reason codes are computed for the explanation scope
(``explain.scope``). Drift: the population stability index (PSI) of every feature and of the score
against the training distributions stored with the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnmodel.config import Config
from churnmodel.data import TIMESTAMP_DTYPE, InputTables
from churnmodel.errors import DataError
from churnmodel.explain import explain, select_scope
from churnmodel.features import build_features, check_tables, unseen_inputs
from churnmodel.labels import churn_spells
from churnmodel.model import ChurnModel
from churnmodel.survival import horizon_frame

__all__ = ["ScoreResult", "active_rows", "drift_report", "population_stability", "reason_columns", "score", "score_features"]


@dataclass
class ScoreResult:
    scores: pd.DataFrame
    drift: pd.DataFrame  # feature, psi (the row "(score)" is the score distribution)
    warnings: tuple[str, ...] = ()  # inputs the model never saw in training (unseen event types, categories)

    @property
    def max_feature_psi(self) -> float:
        features = self.drift.loc[self.drift["feature"] != "(score)", "psi"]
        return float(features.max()) if len(features) else 0.0

    @property
    def score_psi(self) -> float:
        return float(self.drift.loc[self.drift["feature"] == "(score)", "psi"].iloc[0])


def active_rows(tables: InputTables, config: Config, as_of: pd.Timestamp, *, types_present=None) -> pd.DataFrame:
    """Partners active at ``as_of`` by the configured label source (known facts only, up to ``as_of``).

    ``types_present``: the event types of the whole log when ``tables`` hold one partition of it."""
    if tables.events["timestamp"].max() >= as_of + pd.Timedelta(days=1):
        late = int((tables.events["timestamp"] >= as_of + pd.Timedelta(days=1)).sum())
        raise DataError(
            f"{tables.sources.get('events', 'events')}: {late} event(s) are dated after --as-of {as_of.date()}; "
            "scoring must not see the future: pass the export date as --as-of, or filter the export"
        )
    spells = churn_spells(tables, config.label, end=as_of, types_present=types_present)
    active = spells.loc[(spells["start"] <= as_of) & (spells["end"].isna() | (spells["end"] > as_of)), "partner_id"]
    ids = pd.unique(active)
    return pd.DataFrame({"partner_id": ids, "snapshot": pd.Series([as_of] * len(ids), dtype=TIMESTAMP_DTYPE)})


def population_stability(reference: dict, values: np.ndarray) -> float:
    """PSI of numeric values against reference decile bins (missing values are their own bin)."""
    edges = np.asarray(reference["edges"], dtype=np.float64)
    expected = np.append(np.asarray(reference["shares"], dtype=np.float64), reference["missing"])
    finite = ~np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[finite], side="right"), minlength=len(edges) + 1)
    actual = np.append(counts, (~finite).sum()) / max(len(values), 1)
    return _psi(expected, actual)


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_report(model: ChurnModel, X: pd.DataFrame, probability: np.ndarray) -> pd.DataFrame:
    """PSI per feature and for the score, largest first."""
    rows = []
    for col, ref in model.reference.get("features", {}).items():
        if col not in X.columns:
            continue
        if "categories" in ref:
            counts = X[col].astype("object").where(X[col].notna(), "(missing)").astype(str).value_counts(normalize=True)
            keys = sorted(set(ref["categories"]) | set(counts.index))
            rows.append((col, _psi(np.array([ref["categories"].get(k, 0.0) for k in keys]), np.array([counts.get(k, 0.0) for k in keys]))))
        else:
            rows.append((col, population_stability(ref, X[col].to_numpy(dtype=np.float64))))
    if "score" in model.reference:
        rows.append(("(score)", population_stability(model.reference["score"], np.asarray(probability, dtype=np.float64))))
    return pd.DataFrame(rows, columns=["feature", "psi"]).sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def _bands(p: np.ndarray, config: Config) -> np.ndarray:
    bands = config.score.bands
    return np.where(p >= bands.high, "high", np.where(p >= bands.medium, "medium", "low"))


def _score_chunk(model: ChurnModel, frame: pd.DataFrame, config: Config, lang: str, offset: int):
    """Probabilities, bands, revenue at risk and (for the scope) reason codes of one chunk of feature rows."""
    frame = frame.reset_index(drop=True)
    X = model.prepare(frame)
    p = model.probabilities(X)
    revenue_col = f"{model.plan.segments.get('revenue_type', 'order')}__sum_365d" if model.plan.segments else None
    revenue = frame[revenue_col].to_numpy(dtype=np.float64) if revenue_col in frame else np.zeros(len(frame))
    contract = frame["contract__value"].to_numpy(dtype=np.float64) * 12 if "contract__value" in frame else np.zeros(len(frame))
    basis = np.maximum(np.nan_to_num(revenue), np.nan_to_num(contract))
    base = pd.DataFrame({
        "_row": offset + np.arange(len(frame)),
        "partner_id": frame["partner_id"].to_numpy(),
        "as_of": frame["snapshot"].to_numpy(),
        "churn_probability": p,
        "risk_band": _bands(p, config),
        "segment": frame["segment"].astype("object").to_numpy() if "segment" in frame else "",
        "revenue": np.round(np.nan_to_num(revenue), 2),
        "revenue_at_risk": np.round(p * basis, 2),
    })
    if model.hazard is not None:  # the survival curve: churn within each horizon, months to churn
        base = pd.concat([base, horizon_frame(model.hazard, X).set_axis(base.index)], axis=1)
    mask = select_scope(p, config=config.explain, threshold=config.score.bands.medium,
                        revenue_at_risk=base["revenue_at_risk"].to_numpy())
    reasons = None
    if mask.any():
        reasons = explain(model, frame.loc[mask], config=config.explain, lang=lang)
        reasons = reasons.drop(columns=["partner_id", "snapshot", "churn_probability", "base_rate"], errors="ignore")
        reasons.insert(0, "_row", offset + np.flatnonzero(mask))  # rows, not partner ids: ids may repeat
    sample = X.sample(n=min(len(frame), 20_000), random_state=config.random_state)
    return base, reasons, (sample, p)


def _with_reasons(scores: pd.DataFrame, explained: list[pd.DataFrame], config: Config, *, top_n_done: bool = False) -> pd.DataFrame:
    """Scores with the reason-code columns (driver/lever/action per rank, protective factor), '' where none."""
    if explained:
        reasons = pd.concat(explained, ignore_index=True)
        if config.explain.scope == "top_n" and not top_n_done:  # chunks each kept their own top n; keep the overall top n
            keep = scores.nlargest(config.explain.top_n, "revenue_at_risk")["_row"]
            reasons = reasons.loc[reasons["_row"].isin(keep)]
        keep_cols = ["_row"] + [c for c in reasons.columns if c.startswith(("driver_", "lever_", "action_"))
                                and not c.endswith(("_feature", "_points"))] + ["protective_factor"]
        scores = scores.merge(reasons[keep_cols], on="_row", how="left", validate="one_to_one")
    for col in reason_columns(config):
        if col not in scores:
            scores[col] = ""
        scores[col] = scores[col].fillna("")
    return scores


def reason_columns(config: Config) -> list[str]:
    """Names of the reason-code columns of a scored list, in order."""
    return [f"{k}_{i}" for i in range(1, config.explain.top_k + 1) for k in ("driver", "lever", "action")] + ["protective_factor"]


def _assemble(parts, explained, drift_parts, model, config: Config, model_name: str, model_version: str) -> ScoreResult:
    scores = _with_reasons(pd.concat(parts, ignore_index=True), explained, config)
    order = "revenue_at_risk" if config.score.sort_by == "revenue_at_risk" else "churn_probability"
    scores = scores.sort_values([order, "partner_id", "_row"], ascending=[False, True, True], kind="stable")
    scores = scores.drop(columns="_row").reset_index(drop=True)
    scores.insert(4, "rank", np.arange(1, len(scores) + 1))
    scores["model_name"] = model_name
    scores["model_version"] = model_version
    scores["scored_at"] = scores["as_of"]  # the moment the data describes: re-runs give identical files
    X_sample = pd.concat([x for x, _ in drift_parts])
    p_all = np.concatenate([p for _, p in drift_parts])
    return ScoreResult(scores, drift_report(model, X_sample, p_all))


def _run(chunks, total: int, model: ChurnModel, config: Config, lang: str, model_name: str, model_version: str,
         progress: Callable[[int, int], None] | None) -> ScoreResult:
    """Score feature chunks (an iterable of (offset, frame)) and assemble the result."""
    parts, explained, drift_parts = [], [], []
    for start, frame in chunks:
        base, reasons, drift = _score_chunk(model, frame, config, lang, start)
        parts.append(base)
        drift_parts.append(drift)
        if reasons is not None:
            explained.append(reasons)
        if progress is not None:
            progress(min(start + len(frame), total), total)
    return _assemble(parts, explained, drift_parts, model, config, model_name, model_version)


def score_features(model: ChurnModel, features: pd.DataFrame, *, config: Config, lang: str = "en", model_name: str = "",
                   model_version: str = "", progress: Callable[[int, int], None] | None = None) -> ScoreResult:
    """Score a precomputed feature frame (``partner_id``, ``snapshot`` and the model's columns), in chunks."""
    missing = {"partner_id", "snapshot"} - set(features.columns)
    if missing:
        raise DataError(f"feature table: missing identity column(s) {sorted(missing)}; expected partner_id and snapshot")
    model.check_columns(features)
    step = config.score.chunk_partners
    chunks = ((start, features.iloc[start : start + step]) for start in range(0, len(features), step))
    return _run(chunks, len(features), model, config, lang, model_name, model_version, progress)


def score(
    model: ChurnModel,
    tables: InputTables,
    *,
    as_of: pd.Timestamp,
    config: Config,
    lang: str = "en",
    model_name: str = "",
    model_version: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ScoreResult:
    """Score every partner active at ``as_of``; returns the ranked frame and the drift report.

    Features are built chunk by chunk (``score.chunk_partners``), so memory stays bounded.
    """
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    check_tables(model.plan, tables)
    rows = active_rows(tables, config, as_of)
    if rows.empty:
        raise DataError(f"no partner is active at {as_of.date()} by label.source = {config.label.source}")
    step = config.score.chunk_partners
    chunks = ((start, build_features(tables, rows.iloc[start : start + step].reset_index(drop=True), model.plan))
              for start in range(0, len(rows), step))
    result = _run(chunks, len(rows), model, config, lang, model_name, model_version, progress)
    result.warnings = tuple(unseen_inputs(model.plan, tables))
    return result
