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
from churnmodel.effects import best_actions, gains
from churnmodel.errors import DataError
from churnmodel.evaluate import population_stability, psi
from churnmodel.explain import contributions, explain, select_scope
from churnmodel.features import build_features, check_tables, unseen_inputs
from churnmodel.labels import active_at, churn_spells
from churnmodel.model import ChurnModel
from churnmodel.times import TIMESTAMP_DTYPE, utc
from churnmodel.validation import InputTables

__all__ = [
    "ScoreResult",
    "action_columns",
    "active_rows",
    "check_drift",
    "drift_report",
    "drift_warnings",
    "for_model",
    "point_columns",
    "rank_columns",
    "rank_scores",
    "reason_columns",
    "score",
    "score_features",
    "score_frame",
    "score_summary",
]


@dataclass
class ScoreResult:
    scores: pd.DataFrame
    drift: pd.DataFrame  # feature, psi (the row "(score)" is the score distribution)
    warnings: tuple[str, ...] = ()  # inputs the model never saw in training (unseen event types, categories)
    actions: pd.DataFrame | None = None  # with uplift models, per partner (list order): <action>__effect and <action>__gain


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
    active = spells.loc[active_at(spells, as_of), "partner_id"]
    ids = pd.unique(active)
    return pd.DataFrame({"partner_id": ids, "snapshot": pd.Series([as_of] * len(ids), dtype=TIMESTAMP_DTYPE)})


def drift_report(model: ChurnModel, X: pd.DataFrame, probability: np.ndarray, *, month: int | None = None) -> pd.DataFrame:
    """PSI per feature and for the score, largest first, with each input's readable label_en and label_ru.
    ``month``: the scoring date's calendar month;
    the training rows of the same month are the reference when the model kept them (seasonal signals
    such as quarterly surveys are then not reported as drift), else all training rows."""
    rows = []
    reference = model.reference.get("by_month", {}).get(str(month)) or model.reference
    for col, ref in reference.get("features", {}).items():
        if col not in X.columns:
            continue
        if "categories" in ref:
            counts = X[col].astype("object").where(X[col].notna(), "(missing)").astype(str).value_counts(normalize=True)
            keys = sorted(set(ref["categories"]) | set(counts.index))
            rows.append((col, psi(np.array([ref["categories"].get(k, 0.0) for k in keys]), np.array([counts.get(k, 0.0) for k in keys]))))
        else:
            rows.append((col, population_stability(ref, X[col].to_numpy(dtype=np.float64))))
    if "score" in reference:
        rows.append(("(score)", population_stability(reference["score"], np.asarray(probability, dtype=np.float64))))
    out = pd.DataFrame(rows, columns=["feature", "psi"]).sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
    labels = model.plan.info().set_index("name")
    for lang in ("en", "ru"):  # what people read in the report
        out[f"label_{lang}"] = out["feature"].map(labels[f"label_{lang}"]).fillna(out["feature"]).to_numpy(dtype=object)
    return out


def drift_warnings(drift: pd.DataFrame, config: Config) -> list[str]:
    """A warning when an input or the score drifted beyond ``score.drift_warn`` (PSI)."""
    if not len(drift) or drift["psi"].iloc[0] <= config.score.drift_warn:
        return []
    worst = drift.iloc[0]
    score_psi = drift.loc[drift["feature"] == "(score)", "psi"].sum()
    shifted = int((drift["psi"] > config.score.drift_warn).sum())
    return [f"drift: {shifted} input(s) with PSI > {config.score.drift_warn} (largest {worst['feature']} {worst['psi']:.2f}); "
            f"score PSI {score_psi:.2f}"]


def check_drift(drift: pd.DataFrame, config: Config) -> None:
    """Raise a DataError when drift exceeds ``score.drift_fail`` (``--strict``), before anything is written."""
    if len(drift) and drift["psi"].iloc[0] > config.score.drift_fail:
        worst = drift.iloc[0]
        raise DataError(f"drift: PSI {worst['psi']:.2f} for {worst['feature']!r} exceeds score.drift_fail "
                        f"{config.score.drift_fail}; the data no longer looks like the training data. Nothing was written")


def for_model(config: Config, model: ChurnModel) -> Config:
    """The config to score with: what depends on how the model was trained comes from the model (its
    risk bands and its whole ``label`` section: the horizon, and what churn and an active partner are),
    never from the config used to score. Models saved before the label section was stored keep their
    horizon."""
    bands = model.metadata.get("bands")
    label = model.metadata.get("label")
    update = {}
    now = config.score.bands
    trained = bands and now.model_validate({**now.model_dump(), "mode": "probability", **bands})  # as trained, and how set
    if trained and ((trained.high, trained.medium) != (now.high, now.medium) or trained.mode == "share"):
        update["score"] = config.score.model_copy(update={"bands": trained})
    if label and label != config.label.model_dump(mode="json"):
        update["label"] = config.label.model_validate(label)
    elif not label and (horizon := model.metadata.get("horizon_days")) and horizon != config.label.horizon_days:
        update["label"] = config.label.model_copy(update={"horizon_days": int(horizon)})
    return config.model_copy(update=update) if update else config


def _bands(p: np.ndarray, config: Config) -> np.ndarray:
    bands = config.score.bands
    return np.where(p >= bands.high, "high", np.where(p >= bands.medium, "medium", "low"))


def rank_columns(config: Config) -> list[tuple[str, bool]]:
    """The scored list's order, as (column, ascending): ``score.sort_by`` largest first, ties by partner id."""
    return [(config.score.sort_by, False), ("partner_id", True)]


def reason_columns(config: Config) -> list[str]:
    """Names of the reason-code columns of a scored list, in order (text)."""
    return [f"{k}_{i}" for i in range(1, config.explain.top_k + 1) for k in ("driver", "lever", "action")] + ["protective_factor"]


def point_columns(config: Config) -> list[str]:
    """Names of the reason codes' sizes, in probability points (positive: adds risk; the protective
    factor's is negative), in order; empty where the driver is."""
    return [f"driver_{i}_points" for i in range(1, config.explain.top_k + 1)] + ["protective_points"]


def action_columns(model: ChurnModel) -> dict[str, str]:
    """The scored list's retention-action columns (name: Spark type), with uplift models: the action that
    keeps the most value net of its cost where one pays for itself (empty where none does), its lever,
    the churn probability it removes (points) and the value kept net of its cost."""
    if not model.uplift:
        return {}
    return {"best_action": "string", "best_action_lever": "string", "expected_effect_points": "double", "expected_gain": "double"}


def _spread_levers(model: ChurnModel) -> list[str]:
    """The levers whose risk shares out an uplift model's effect (``spread: lever``)."""
    return sorted({u.lever for u in model.uplift if u.lever_scale > 0})


def _actions(model: ChurnModel, X: pd.DataFrame, p: np.ndarray, value: np.ndarray, *, config: Config, lang: str,
             contrib: np.ndarray | None) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """(the action columns, every action's effect and gain per row) from the uplift models, with the rows' SHAP
    values ``contrib`` where an action is spread by its lever. An effect never takes the churn probability ``p``
    below 0 or above 1: one question, one answer."""
    spread = _spread_levers(model)
    risk = dict(zip(spread, model.lever_risk(X, spread, contrib=contrib).T, strict=True)) if spread else {}
    effect = np.column_stack([u.effect(X, p, risk.get(u.lever)) for u in model.uplift])  # never below -p nor above 1 - p
    gain = gains(effect, value, np.array([u.cost for u in model.uplift]))
    best, top = best_actions(gain)
    some = best >= 0
    pick = np.where(some, best, 0)
    names = np.array([u.action for u in model.uplift] + [""], dtype=object)
    named = {k: getattr(v, lang) for k, v in config.explain.lever_names.items()}
    levers = np.array([named.get(u.lever, u.lever) for u in model.uplift] + [""], dtype=object)
    every = pd.DataFrame({**{f"{u.action}__effect": effect[:, j] for j, u in enumerate(model.uplift)},
                          **{f"{u.action}__gain": gain[:, j] for j, u in enumerate(model.uplift)}})
    return {"best_action": names[np.where(some, best, -1)], "best_action_lever": levers[np.where(some, best, -1)],
            "expected_effect_points": np.where(some, -effect[np.arange(len(X)), pick], np.nan),
            "expected_gain": np.round(top, 2)}, every


def _score_chunk(model: ChurnModel, frame: pd.DataFrame, config: Config, lang: str):
    """(scored rows, prepared features, each action's gain per row or None) of one chunk: see :func:`score_frame`."""
    frame = frame.reset_index(drop=True)
    X = model.prepare(frame)
    p = model.probabilities(X)
    # churn within each horizon and months to churn: the curve anchored on p at the headline horizon
    curve = model.horizon_frame(X, probability=p) if model.hazard is not None else None
    revenue_col = f"{model.plan.segments.revenue_type}__sum_365d" if model.plan.segments is not None else None
    revenue = frame[revenue_col].to_numpy(dtype=np.float64) if revenue_col in frame else np.zeros(len(frame))
    contract = frame["contract__value"].to_numpy(dtype=np.float64) * 12 if "contract__value" in frame else np.zeros(len(frame))
    basis = np.maximum(np.nan_to_num(revenue), np.nan_to_num(contract))
    base = pd.DataFrame({
        "partner_id": frame["partner_id"].to_numpy(),
        "as_of": frame["snapshot"].array,  # dates stay dates (no Timestamp objects)
        "churn_probability": p,
        "risk_band": _bands(p, config),
        "segment": frame["segment"].astype("object").to_numpy() if "segment" in frame else "",
        "revenue": np.round(np.nan_to_num(revenue), 2),
        "revenue_at_risk": np.round(p * basis, 2),
    })
    if curve is not None:
        base = pd.concat([base, curve.set_axis(base.index)], axis=1)
    gain, contrib = None, None
    if model.uplift:  # the value a partner's leaving loses: the same basis as revenue at risk
        if _spread_levers(model):  # every row's SHAP values, once: the lever risks and the drivers share them
            cfg = config.explain
            contrib = contributions(model, frame, route=cfg.route, batch_rows=cfg.batch_rows, n_jobs=cfg.n_jobs)
        columns, gain = _actions(model, X, p, basis, config=config, lang=lang, contrib=contrib)
        base = base.assign(**columns)
    candidates = select_scope(base, config=config.explain, threshold=config.score.bands.medium)
    columns, sizes = reason_columns(config), point_columns(config)
    texts, points = np.full((len(base), len(columns)), "", dtype=object), np.full((len(base), len(sizes)), np.nan)
    if candidates.any():  # filled as arrays and framed once (setting rows of text columns in place is slow)
        explained = explain(model, frame.loc[candidates], config=config.explain, lang=lang,
                            contrib=contrib[candidates] if contrib is not None else None)
        texts[candidates] = explained.reindex(columns=columns, fill_value="").to_numpy(dtype=object)
        points[candidates] = explained.reindex(columns=sizes).to_numpy(dtype=np.float64)
    reasons = pd.DataFrame(texts, index=base.index, columns=columns)
    return pd.concat([base, reasons, pd.DataFrame(points, index=base.index, columns=sizes)], axis=1).assign(_explained=candidates), X, gain


def score_frame(model: ChurnModel, frame: pd.DataFrame, *, config: Config, lang: str = "en") -> pd.DataFrame:
    """One chunk of feature rows scored, in its own order: probability, risk band, segment, revenue at
    risk, the survival columns (with a hazard model) and the reason codes of the rows the explanation
    scope picks within the chunk (``_explained``: a superset of those the whole list picks, which
    :func:`rank_scores` settles). Every engine scores its chunks with this function."""
    return _score_chunk(model, frame, config, lang)[0]


def rank_scores(scores: pd.DataFrame, *, config: Config, model_name: str = "", model_version: str = "") -> pd.DataFrame:
    """The ranked list from scored chunks: reason codes kept for the rows the explanation scope picks
    over the whole list (:func:`~churnmodel.explain.select_scope`), rows in :func:`rank_columns` order
    with their ``rank``, the model's name and version, and ``scored_at`` (the as-of date: re-runs give
    identical files)."""
    scores = scores.reset_index(drop=True)
    keep = select_scope(scores, config=config.explain, threshold=config.score.bands.medium)
    if "_explained" in scores:
        keep &= scores["_explained"].to_numpy(dtype=bool)
    scores.loc[~keep, reason_columns(config)] = ""
    scores.loc[~keep, point_columns(config)] = np.nan
    columns, ascending = zip(*rank_columns(config), strict=True)
    scores = scores.sort_values(list(columns), ascending=list(ascending), kind="stable")
    scores = scores.drop(columns="_explained", errors="ignore").reset_index(drop=True)
    scores.insert(4, "rank", np.arange(1, len(scores) + 1))
    scores["model_name"] = model_name
    scores["model_version"] = model_version
    scores["scored_at"] = scores["as_of"]
    return scores


def _run(chunks, total: int, model: ChurnModel, config: Config, lang: str, model_name: str, model_version: str,
         progress: Callable[[int, int], None] | None) -> ScoreResult:
    """Score feature chunks (an iterable of (offset, frame)) and rank the whole list."""
    config = for_model(config, model)
    parts, samples, probabilities, gain = [], [], [], []
    for start, frame in chunks:
        scored, X, chunk_gain = _score_chunk(model, frame, config, lang)
        parts.append(scored)
        if chunk_gain is not None:
            gain.append(chunk_gain.assign(partner_id=scored["partner_id"].to_numpy()))
        samples.append(X.sample(n=min(len(X), 20_000), random_state=config.random_state))
        probabilities.append(scored["churn_probability"].to_numpy())
        if progress is not None:
            progress(min(start + len(frame), total), total)
    scores = rank_scores(pd.concat(parts, ignore_index=True), config=config, model_name=model_name, model_version=model_version)
    month = int(scores["as_of"].iloc[0].month) if len(scores) else None
    actions = pd.concat(gain, ignore_index=True).set_index("partner_id").reindex(scores["partner_id"]).reset_index() if gain else None
    return ScoreResult(scores, drift_report(model, pd.concat(samples), np.concatenate(probabilities), month=month), actions=actions)


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
    as_of = utc(as_of)
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


def score_summary(s: pd.DataFrame) -> dict:
    """Partners, expected churners, high-risk partners and revenue at risk of a ranked list."""
    return {"partners": len(s), "expected_churners": float(s["churn_probability"].sum()),
            "high_risk": int((s["risk_band"] == "high").sum()), "revenue_at_risk": float(s["revenue_at_risk"].sum())}
