"""Explanations: exact SHAP risk drivers per partner, the retention lever of each, and what to do.

SHAP values are exact TreeSHAP in log-odds, from LightGBM's ``pred_contrib`` (default) or
``shap.TreeExplainer`` (the same numbers; a test checks they agree to 1e-6). They are reported in
**probability points of the calibrated output**: a partner's log-odds contributions are rescaled so
that they add up to ``probability - base rate``, where the base rate is the calibrated probability at
the model's expected log-odds (the SHAP base value). The rescaling keeps each contribution's sign and
share of the total.

Drivers are the features that raise risk most, among features that belong to a retention lever;
profile facts (tenure, contract timing, region) are shown once as context. Several drivers on one
lever give one action. Texts are in English or Russian.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit

from churnmodel.config import ExplainConfig
from churnmodel.errors import ConfigError, DataError
from churnmodel.hazard import anchor_curve, curve_from_hazards
from churnmodel.model import ChurnModel
from churnmodel.texts import CONSOLE, LANGS

__all__ = ["SCOPE_ORDER", "contributions", "explain", "explain_partner", "global_importance", "horizon_points", "probability_points",
           "select_scope"]



def contributions(model: ChurnModel, frame: pd.DataFrame, *, route: str = "auto", batch_rows: int = 50_000,
                  n_jobs: int = 2) -> np.ndarray:
    """Exact SHAP values in log-odds: (rows, features + 1), the last column the base value.

    ``route``: ``tables`` (:class:`~churnmodel.shapley.PatternShap`, shallow trees), ``lightgbm``
    (``pred_contrib``), ``shap`` (``TreeExplainer``) - the same values; ``auto``: tables when every
    tree has at most 8 splits, else ``pred_contrib``."""
    X = model.prepare(frame)
    if route in ("auto", "tables"):
        tables = model.shap_tables()
        if tables is None and route == "tables":
            raise ConfigError("explain.route tables needs trees of at most 8 splits (e.g. max_depth 3); use auto or lightgbm")
        if tables is not None:
            parts = [tables.contributions(X.iloc[i : i + batch_rows]) for i in range(0, len(X), batch_rows)]
            return np.vstack(parts) if parts else np.empty((0, len(model.features) + 1))
        route = "lightgbm"
    if route == "shap":
        import shap

        explainer = shap.TreeExplainer(model.booster)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*output has changed to a list of ndarray.*")
            values = explainer.shap_values(X)
        values = values[1] if isinstance(values, list) else values
        base = np.broadcast_to(np.asarray(explainer.expected_value).reshape(-1)[-1], (len(X), 1))
        return np.hstack([values, base])
    if route != "lightgbm":
        raise ConfigError(f"explain.route must be 'auto', 'tables', 'lightgbm' or 'shap', got {route!r}")
    parts = [model.booster.predict(X.iloc[i : i + batch_rows], pred_contrib=True, num_threads=n_jobs)
             for i in range(0, len(X), batch_rows)]
    return np.vstack(parts) if parts else np.empty((0, len(model.features) + 1))


def probability_points(model: ChurnModel, contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rescale log-odds contributions to probability points. Returns (points, probability, base rate)."""
    phi, base_raw = contrib[:, :-1], contrib[:, -1]
    raw = phi.sum(axis=1) + base_raw
    p, p0 = model.calibrator(raw), model.calibrator(base_raw)
    total = raw - base_raw
    with np.errstate(invalid="ignore", divide="ignore"):
        # where the log-odds barely move, use the calibrator's local slope instead of 0/0
        eps = 1e-4
        slope = (model.calibrator(raw + eps) - model.calibrator(raw - eps)) / (2 * eps)
        scale = np.where(np.abs(total) > 1e-9, (p - p0) / np.where(np.abs(total) > 1e-9, total, 1.0), slope)
    return phi * scale[:, None], p, p0


def horizon_points(model, frame: pd.DataFrame, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per feature, its share of the churn probability within ``horizon`` in probability points:
    (points (rows, features), probability, base probability).

    Each interval's log-odds split exactly into feature terms: the booster's TreeSHAP values (a
    countdown's interval columns count for the countdown feature) times the interval's tree weight,
    plus the linear score's centred contributions times its linear weight. They are weighted by how
    much that interval's log-odds move the cumulative probability (the hazard's slope times the
    survival of the other intervals), then rescaled, keeping signs and shares, so that they add up to
    ``probability - base``, where the base has every feature at its expected effect."""
    hazard = model.hazard
    if hazard is None:
        raise DataError("this model has no hazard model; train it with label.horizons to explain a horizon")
    if horizon not in hazard.horizons:
        raise DataError(f"--horizon {horizon}: the model's horizons are {list(hazard.horizons)} (days)")
    K = hazard.horizons.index(horizon) + 1
    X = model.prepare(frame)
    features = list(model.features)
    F = len(features)
    linear = np.zeros((len(X), F))
    linear[:, [features.index(n) for n in hazard.linear.features]] = hazard.linear.contributions(X)
    source = [features.index(c) for c in hazard.countdowns for _ in range(2)]  # the design columns after the interval's
    anchor = hazard.horizons.index(model.headline_horizon) if model.headline_horizon is not None else None
    intervals = K if anchor is None else max(K, anchor + 1)  # the base curve up to the anchor too
    phis, z, z0 = [], [], []
    for k in range(intervals):
        contrib = hazard.booster.predict(hazard.expanded(X, k), pred_contrib=True)
        trees = contrib[:, :F].copy()
        for j, f in enumerate(source):
            trees[:, f] += contrib[:, F + 1 + j]
        c, a, b = hazard.stack[k]
        rest = c + a * (contrib[:, F] + contrib[:, -1] + hazard.offsets[k]) + b * hazard.linear.intercept
        phi = a * trees + b * linear
        phis.append(phi)
        z.append(rest + phi.sum(axis=1))
        z0.append(rest)
    h, h0 = expit(np.column_stack(z)), expit(np.column_stack(z0))
    curve, curve0 = curve_from_hazards(h), curve_from_hazards(h0)
    if anchor is not None:  # the model's curve is anchored on churn_probability: so is its explanation
        base_raw = float(model.booster.predict(X.iloc[:1], pred_contrib=True)[0, -1])
        curve = anchor_curve(curve, model.probabilities(X), anchor)
        curve0 = anchor_curve(curve0, model.calibrator(np.full(len(X), base_raw)), anchor)
    p, p0 = curve[:, K - 1], curve0[:, K - 1]
    h = h[:, :K]
    raw = np.zeros((len(X), F))
    for k in range(K):
        others = np.prod(np.delete(1.0 - h, k, axis=1), axis=1)
        raw += (h[:, k] * (1.0 - h[:, k]) * others)[:, None] * phis[k]
    total = raw.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(np.abs(total) > 1e-12, (p - p0) / np.where(np.abs(total) > 1e-12, total, 1.0), 1.0)
    return raw * scale[:, None], p, p0


def _fmt(value, unit: str) -> str:
    """One value as a reason code shows it (missing: a dash; text as it is; numbers by :func:`_fmt_numbers`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, str):
        return value
    return _fmt_numbers([float(value)], unit)[0]


def _fmt_many(values: np.ndarray, unit: str) -> list[str]:
    """:func:`_fmt` of many values without missing ones (a million texts in seconds)."""
    if values.dtype == object:
        return [_fmt(v, unit) for v in values]
    return _fmt_numbers(values.astype(np.float64).tolist(), unit)  # Python floats: fast to format


def _fmt_numbers(plain: list[float], unit: str) -> list[str]:
    """The one set of number formats, by unit: one format chosen per unit, then applied to every value."""
    if unit == "days":
        return [f"{v:,.0f}" for v in plain]
    if unit == "share":
        return [f"{v:.1%}" for v in plain]
    if unit == "flag":
        return ["yes" if v >= 0.5 else "no" for v in plain]
    if unit.startswith("change"):
        return [f"{v:+.2f}" for v in plain]
    return [f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.0f}" if v.is_integer() else f"{v:.2f}" for v in plain]


#: How the explanation scope ``top_n`` ranks partners: revenue at risk, largest first; ties by partner id.
SCOPE_ORDER = (("revenue_at_risk", False), ("partner_id", True))


def select_scope(scores: pd.DataFrame, *, config: ExplainConfig, threshold: float) -> np.ndarray:
    """Which rows of a scored list get reason codes (a boolean mask), by ``explain.scope``: everyone,
    no one, the partners at or above the risk threshold (``explain.at_risk_probability``, else
    ``threshold``), or the ``top_n`` by :data:`SCOPE_ORDER`. ``scores`` needs ``churn_probability``,
    and for ``top_n`` ``revenue_at_risk`` and ``partner_id``. The one rule, whatever the engine: applied
    to a part of the list it gives a superset of the part's rows the whole list would pick."""
    n = len(scores)
    if config.scope == "all":
        return np.ones(n, dtype=bool)
    if config.scope == "none":
        return np.zeros(n, dtype=bool)
    if config.scope == "at_risk":
        cut = config.at_risk_probability if config.at_risk_probability is not None else threshold
        return scores["churn_probability"].to_numpy() >= cut
    columns, ascending = zip(*SCOPE_ORDER, strict=True)
    order = scores[list(columns)].reset_index(drop=True).sort_values(list(columns), ascending=list(ascending), kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order.index.to_numpy()[: config.top_n]] = True
    return mask


def explain(model: ChurnModel, frame: pd.DataFrame, *, config: ExplainConfig | None = None, lang: str = "en",
            contrib: np.ndarray | None = None) -> pd.DataFrame:
    """One row per input row: probability, base rate, top drivers with levers and actions, protective factor.

    ``frame`` is a feature frame (``partner_id`` and ``snapshot`` columns are carried over if present).
    The drivers add up to the churn probability (with a hazard model, also the survival curve's value at
    the headline horizon: the curve is anchored there).
    """
    cfg = config or ExplainConfig()
    if lang not in LANGS:
        raise ConfigError(f"lang must be one of {LANGS}, got {lang!r}")
    if contrib is None:
        contrib = contributions(model, frame, route=cfg.route, batch_rows=cfg.batch_rows, n_jobs=cfg.n_jobs)
    points, p, p0 = probability_points(model, contrib)
    info = model.plan.info().set_index("name").loc[model.features]
    label = info[f"label_{lang}"].to_numpy()
    lever = info["lever"].to_numpy()
    unit = info["unit"].to_numpy()
    actionable = lever != "profile"
    typical = model.reference.get("typical", {})
    X = model.prepare(frame)
    names = {k: getattr(v, lang) for k, v in cfg.lever_names.items()}
    actions = {k: getattr(v, lang) for k, v in cfg.actions.items()}
    k = cfg.top_k
    n = len(frame)
    risk = np.where(actionable[None, :], points, -np.inf)
    top = np.argsort(-risk, axis=1, kind="stable")[:, :k]
    protect = np.argmin(np.where(actionable[None, :], points, np.inf), axis=1)
    context = np.argmax(np.where(~actionable[None, :], points, -np.inf), axis=1) if (~actionable).any() else None
    out = {}
    if "partner_id" in frame.columns:
        out["partner_id"] = frame["partner_id"].to_numpy()
    if "snapshot" in frame.columns:
        out["snapshot"] = frame["snapshot"].array  # kept as dates, not boxed into Timestamp objects
    out["churn_probability"] = p
    out["base_rate"] = p0
    typical_word = CONSOLE[lang]["typical"]

    rows_all = np.arange(n)
    feature_names = np.array(model.features, dtype=object)
    lever_text = np.array([names.get(v, v) for v in lever], dtype=object)
    action_text = np.array([actions.get(v, "") for v in lever], dtype=object)
    typical_text = [_fmt(typical.get(f), u) for f, u in zip(model.features, unit, strict=True)]

    def texts(chosen: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Readable driver texts, formatted feature by feature (a few hundred groups, not n rows)."""
        result = np.full(n, "", dtype=object)
        for j in np.unique(chosen[keep]):
            at = np.flatnonzero(keep & (chosen == j))
            codes, uniques = pd.factorize(X[model.features[j]].to_numpy()[at])  # each distinct value formatted once
            shown = np.array([*_fmt_many(uniques, unit[j]), "—"], dtype=object)[codes]  # -1 (missing): the dash
            head, tail = f"{label[j]}: ", f" ({typical_word} {typical_text[j]})"
            result[at] = [head + text + tail for text in shown]
        return result

    seen = np.zeros((n, 0), dtype=object)
    for slot in range(min(k, top.shape[1])):
        j = top[:, slot]
        pts = points[rows_all, j]
        keep = pts > 0
        repeated = (seen == lever[j][:, None]).any(axis=1) if seen.shape[1] else np.zeros(n, dtype=bool)
        out[f"driver_{slot + 1}"] = texts(j, keep)
        out[f"lever_{slot + 1}"] = np.where(keep, lever_text[j], "")
        out[f"action_{slot + 1}"] = np.where(keep & ~repeated, action_text[j], "")
        out[f"driver_{slot + 1}_feature"] = np.where(keep, feature_names[j], "")
        out[f"driver_{slot + 1}_points"] = np.where(keep, pts, np.nan)
        seen = np.hstack([seen, np.where(keep, lever[j], None)[:, None]])
    pts = points[rows_all, protect]
    out["protective_factor"] = texts(protect, pts < 0)
    out["protective_points"] = np.where(pts < 0, pts, np.nan)
    if context is not None:
        out["context"] = texts(context, points[rows_all, context] > 0)
    return pd.DataFrame(out, index=frame.index)


def global_importance(model: ChurnModel, contrib: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean |SHAP| (log-odds) per feature and per lever, largest first."""
    info = model.plan.info().set_index("name").loc[model.features]
    per_feature = pd.DataFrame({
        "feature": model.features,
        "label_en": info["label_en"].to_numpy(),
        "lever": info["lever"].to_numpy(),
        "mean_abs_shap": np.abs(contrib[:, :-1]).mean(axis=0),
    }).sort_values("mean_abs_shap", ascending=False, kind="stable")
    # per lever: the mean |sum of the lever's contributions| (effects of one lever net out within a partner)
    lever_sums = pd.DataFrame(contrib[:, :-1], columns=model.features).T.groupby(info["lever"].to_numpy()).sum().T
    per_lever = lever_sums.abs().mean().rename("mean_abs_shap").sort_values(ascending=False).rename_axis("lever").reset_index()
    return per_feature.reset_index(drop=True), per_lever


def explain_partner(model: ChurnModel, features: pd.DataFrame, *, config: ExplainConfig | None = None,
                    lang: str = "en", horizon: int | None = None) -> pd.DataFrame:
    """One partner's drivers as a long table: rank, feature, readable name, value, typical value,
    contribution (probability points), lever and action; then the protective factor and context.

    ``features`` is the one-row feature frame of the partner at the date of interest. ``horizon``
    (days, one of ``label.horizons``): explain the churn probability within that horizon from the
    hazard model instead of the single-horizon model's.
    """
    cfg = config or ExplainConfig()
    if len(features) != 1:
        raise ValueError(f"explain_partner takes one row, got {len(features)}")
    if horizon is None or horizon == model.headline_horizon:  # the headline: the churn model's own number
        points, p, p0 = probability_points(model, contributions(model, features, route=cfg.route))
    else:
        points, p, p0 = horizon_points(model, features, horizon)
    info = model.plan.info().set_index("name").loc[model.features]
    X = model.prepare(features)
    typical = model.reference.get("typical", {})
    names = {k: getattr(v, lang) for k, v in cfg.lever_names.items()}
    actions = {k: getattr(v, lang) for k, v in cfg.actions.items()}
    order = np.argsort(-points[0], kind="stable")
    rows, seen = [], set()

    def row(kind: str, j: int, rank) -> dict:
        name, lever = model.features[j], info["lever"].iloc[j]
        action = "" if lever in seen or kind != "driver" else actions.get(lever, "")
        if kind == "driver":
            seen.add(lever)
        return {"kind": kind, "rank": rank, "feature": name, "name": info[f"label_{lang}"].iloc[j],
                "value": _fmt(X[name].iloc[0], info["unit"].iloc[j]), "typical": _fmt(typical.get(name), info["unit"].iloc[j]),
                "points": float(points[0, j]), "lever": names.get(lever, lever), "action": action}

    drivers = [j for j in order if info["lever"].iloc[j] != "profile" and points[0, j] > 0][: cfg.top_k]
    rows += [row("driver", j, i + 1) for i, j in enumerate(drivers)]
    protective = [j for j in order[::-1] if info["lever"].iloc[j] != "profile" and points[0, j] < 0][:1]
    rows += [row("protective", j, None) for j in protective]
    context = [j for j in order if info["lever"].iloc[j] == "profile" and points[0, j] > 0][:1]
    rows += [row("context", j, None) for j in context]
    table = pd.DataFrame(rows, columns=["kind", "rank", "feature", "name", "value", "typical", "points", "lever", "action"])
    table["rank"] = table["rank"].astype("Int64")
    table.attrs.update({"churn_probability": float(p[0]), "base_rate": float(p0[0])})
    return table
