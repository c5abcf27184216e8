"""Evaluation: classification, calibration and business metrics, per segment, and the plots.

Business metrics follow the retention material: Partner Retention Rate (partners still there at
the end of the horizon / partners at the start x 100), lift and capture in the top share of the
ranking, and the expected maximum profit of a retention campaign (EMP, Verbraken et al. 2013):
targeting a churner who accepts the offer (probability gamma ~ Beta) keeps ``clv - incentive``;
every approach costs ``contact``; a non-churner who is approached takes the incentive anyway.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.config import CampaignConfig
from churnmodel.survival import months_to_churn

__all__ = [
    "binary_metrics",
    "bootstrap_auc",
    "campaign_threshold",
    "expected_calibration_error",
    "expected_maximum_profit",
    "plot_calibration",
    "plot_importance",
    "plot_lift",
    "plot_pr",
    "plot_roc",
    "plot_shap_summary",
    "plot_survival",
    "reference_distributions",
    "segment_metrics",
    "survival_metrics",
    "typical_values",
]


def _weighted_auc(unique_pos: np.ndarray, unique_neg: np.ndarray) -> float:
    """AUC from positive/negative weights per distinct score (ascending); ties count one half."""
    below = np.cumsum(unique_neg) - unique_neg
    total = unique_pos.sum() * unique_neg.sum()
    return float((unique_pos * (below + 0.5 * unique_neg)).sum() / total) if total > 0 else float("nan")


def bootstrap_auc(y: np.ndarray, p: np.ndarray, *, n: int, random_state: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile confidence interval of ROC AUC; O(rows) per resample (scores ranked once)."""
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(random_state)
    _, inverse = np.unique(p, return_inverse=True)
    k = inverse.max() + 1
    aucs = np.empty(n)
    for i in range(n):
        weight = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y))
        pos = np.bincount(inverse, weights=weight * y, minlength=k)
        neg = np.bincount(inverse, weights=weight * (1 - y), minlength=k)
        aucs[i] = _weighted_auc(pos, neg)
    aucs = aucs[~np.isnan(aucs)]
    tail = (1 - level) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> float:
    """Share-weighted |mean predicted - observed churn| over equal-width probability bins."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, weights=p, minlength=bins) - np.bincount(which, weights=y, minlength=bins))
    return float(gap.sum() / max(count.sum(), 1))


def _profit_lines(y: np.ndarray, p: np.ndarray, c: CampaignConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cut-off (target the top k, k = 0..n): profit per partner = a[k] * gamma + b[k]."""
    order = np.argsort(-p, kind="stable")
    ys = y[order].astype(np.float64)
    n = len(y)
    tp = np.concatenate([[0.0], np.cumsum(ys)])
    fp = np.concatenate([[0.0], np.cumsum(1 - ys)])
    a = tp * (c.clv - c.incentive_cost) / n
    b = -(tp * c.contact_cost + fp * (c.incentive_cost + c.contact_cost)) / n
    return a, b, np.concatenate([[np.inf], p[order]])


def expected_maximum_profit(y: np.ndarray, p: np.ndarray, campaign: CampaignConfig, *, grid: int = 200) -> tuple[float, float]:
    """EMP per partner and the expected share of partners targeted (acceptance rate ~ Beta)."""
    from scipy.stats import beta

    gammas = beta.ppf((np.arange(grid) + 0.5) / grid, campaign.acceptance_alpha, campaign.acceptance_beta)
    a, b, _ = _profit_lines(y, p, campaign)
    best = np.empty(grid)
    share = np.empty(grid)
    for i, g in enumerate(gammas):
        profit = a * g + b
        k = int(np.argmax(profit))
        best[i], share[i] = profit[k], k / len(y)
    return float(best.mean()), float(share.mean())


def campaign_threshold(y: np.ndarray, p: np.ndarray, campaign: CampaignConfig) -> float:
    """The probability cut-off that maximises expected campaign profit at the mean acceptance rate."""
    gamma = campaign.acceptance_alpha / (campaign.acceptance_alpha + campaign.acceptance_beta)
    a, b, cut = _profit_lines(y, p, campaign)
    k = int(np.argmax(a * gamma + b))
    return float(cut[k]) if k > 0 else 1.0


def binary_metrics(
    y: np.ndarray,
    p: np.ndarray,
    *,
    top_share: float,
    bootstrap: int,
    random_state: int,
    campaign: CampaignConfig,
    threshold: float | None = None,
) -> dict[str, float]:
    """Every test metric as a flat dict of floats (ready for MLflow)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=np.int8)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    n, positives = len(y), int(y.sum())
    top = max(1, round(top_share * n))
    order = np.argsort(-p, kind="stable")
    caught = int(y[order[:top]].sum())
    rate = positives / n
    out = {
        "rows": float(n),
        "churn_rate": rate,
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "lift_top": (caught / top) / rate if rate > 0 else float("nan"),
        "capture_top": caught / positives if positives else float("nan"),
        "prr_observed": 100.0 * (1.0 - rate),
        "prr_predicted": 100.0 * (1.0 - float(p.mean())),
    }
    out["auc_ci_low"], out["auc_ci_high"] = bootstrap_auc(y, p, n=bootstrap, random_state=random_state)
    out["emp"], out["emp_targeted_share"] = expected_maximum_profit(y, p, campaign)
    if threshold is not None:
        flagged = p >= threshold
        out["threshold"] = float(threshold)
        out["flagged_share"] = float(flagged.mean())
        out["precision_at_threshold"] = float(y[flagged].mean()) if flagged.any() else float("nan")
        out["recall_at_threshold"] = float(y[flagged].sum() / positives) if positives else float("nan")
    return out


def _censoring_survival(time: np.ndarray, event: np.ndarray):
    """G(t) = P(still observed at t): Kaplan-Meier of the censoring times (left limit at event times)."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(time, event_observed=~event)
    times = km.survival_function_.index.to_numpy()
    values = km.survival_function_.iloc[:, 0].to_numpy()

    def G(t: np.ndarray, *, left: bool = False) -> np.ndarray:
        idx = np.searchsorted(times, t, side="left" if left else "right") - 1
        return np.where(idx >= 0, values[np.maximum(idx, 0)], 1.0)

    return G


def survival_metrics(time: np.ndarray, event: np.ndarray, curve: np.ndarray, horizons, *, name: str) -> dict[str, float]:
    """Per horizon: ROC AUC and Brier score with inverse-probability-of-censoring weights (Graf et al.
    1999; a partner censored before ``h`` has no status at ``h`` and weight 0); the integrated Brier score
    over [first, last horizon] (trapezoid over the horizons); Harrell's concordance index of the
    expected time active, truncated at each horizon (``c_index_<h>d``) and at the last (``c_index``).

    ``curve``: P(churn within each horizon), (rows, horizons). Keys are ``{name}_auc_{h}d`` etc."""
    from lifelines.utils import concordance_index
    from sklearn.metrics import roc_auc_score

    time, event = np.asarray(time, dtype=np.float64), np.asarray(event, dtype=bool)
    G = _censoring_survival(time, event)
    out: dict[str, float] = {}
    briers = []
    for j, h in enumerate(horizons):
        churned = event & (time <= h)
        weight = np.where(churned, 1.0 / np.maximum(G(time, left=True), 1e-6), np.where(time > h, 1.0 / max(G(np.array([h]))[0], 1e-6), 0.0))
        p = curve[:, j]
        brier = float(np.sum(weight * (churned - p) ** 2) / len(time))
        briers.append(brier)
        out[f"{name}_brier_{h}d"] = brier
        known = weight > 0
        if churned[known].any() and (~churned[known]).any():
            out[f"{name}_auc_{h}d"] = float(roc_auc_score(churned[known], p[known], sample_weight=weight[known]))
            out[f"{name}_ece_{h}d"] = expected_calibration_error(churned[known].astype(int), p[known])
    h = np.asarray(horizons, dtype=np.float64)
    out[f"{name}_ibs"] = float(np.trapezoid(briers, h) / (h[-1] - h[0])) if len(h) > 1 else briers[0]
    for j, cut in enumerate(horizons):  # truncated at each horizon: the expected time active up to it
        expected, _ = months_to_churn(curve[:, : j + 1], horizons[: j + 1])
        out[f"{name}_c_index_{cut}d"] = float(concordance_index(np.minimum(time, cut), expected, event & (time <= cut)))
    out[f"{name}_c_index"] = out[f"{name}_c_index_{horizons[-1]}d"]
    return out


def segment_metrics(predictions: pd.DataFrame, *, top_share: float) -> pd.DataFrame:
    """Per segment: rows, observed and predicted churn, AUC, lift, Partner Retention Rate."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for segment, part in predictions.groupby("segment", observed=True, sort=True):
        y, p = part["label"].to_numpy(), part["probability"].to_numpy()
        top = max(1, round(top_share * len(y)))
        rate = y.mean()
        caught = y[np.argsort(-p, kind="stable")[:top]].mean()
        rows.append({
            "segment": str(segment), "rows": len(y), "churn_rate": rate, "predicted_churn_rate": p.mean(),
            "auc": roc_auc_score(y, p) if 0 < y.sum() < len(y) else np.nan,
            "lift_top": caught / rate if rate > 0 else np.nan,
            "prr_observed": 100 * (1 - rate), "prr_predicted": 100 * (1 - p.mean()),
        })
    return pd.DataFrame(rows)


def reference_distributions(X: pd.DataFrame, scores: np.ndarray, *, bins: int = 10) -> dict:
    """Training distributions (decile bins, category shares) kept with the model for drift checks."""

    def numeric(values: np.ndarray) -> dict:
        finite = values[~np.isnan(values)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
        counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
        return {"edges": edges.tolist(), "shares": (counts / max(len(values), 1)).tolist(),
                "missing": float(np.isnan(values).mean())}

    out: dict = {"features": {}, "rows": len(X)}
    for col in X.columns:
        if isinstance(X[col].dtype, pd.CategoricalDtype):
            shares = X[col].value_counts(normalize=False, dropna=False)
            out["features"][col] = {"categories": {str(k) if pd.notna(k) else "(missing)": float(v) / len(X) for k, v in shares.items()}}
        else:
            out["features"][col] = numeric(X[col].to_numpy(dtype=np.float64))
    out["score"] = numeric(np.asarray(scores, dtype=np.float64))
    return out


def typical_values(X: pd.DataFrame) -> dict:
    """Median (numeric) or most common value (categorical) per feature: "typical" in explanations."""
    out: dict = {}
    for col in X.columns:
        values = X[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            counts = values.value_counts()
            out[col] = str(counts.index[0]) if len(counts) and counts.iloc[0] > 0 else None
        else:
            median = float(np.nanmedian(values.to_numpy(dtype=np.float64))) if values.notna().any() else None
            out[col] = median
    return out


# --------------------------------------------------------------------------- plots


def _figure(title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    ax.set_title(title)
    return fig, ax


def plot_roc(y, curves: dict[str, np.ndarray]):
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = _figure("ROC, test block")
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (churners caught)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_pr(y, curves: dict[str, np.ndarray]):
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, ax = _figure("Precision-recall, test block")
    for name, p in curves.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, p):.3f})")
    ax.axhline(np.mean(y), ls=":", c="grey", label=f"churn rate {np.mean(y):.1%}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def plot_calibration(y, p, *, bins: int = 10):
    fig, ax = _figure(f"Calibration, test block (ECE {expected_calibration_error(np.asarray(y), np.asarray(p), bins=bins):.4f})")
    qs = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(qs, p, side="right") - 1, 0, len(qs) - 2)
    mean_p = np.bincount(which, weights=p) / np.maximum(np.bincount(which), 1)
    mean_y = np.bincount(which, weights=y) / np.maximum(np.bincount(which), 1)
    top = max(mean_p.max(), mean_y.max()) * 1.05
    ax.plot([0, top], [0, top], ls=":", c="grey", label="perfect")
    ax.plot(mean_p, mean_y, marker="o", label="model (equal-count bins)")
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_lift(y, curves: dict[str, np.ndarray]):
    fig, ax = _figure("Cumulative gain: churners caught by share of partners approached")
    share = None
    for name, p in curves.items():
        ys = np.asarray(y)[np.argsort(-np.asarray(p), kind="stable")]
        share = np.arange(1, len(ys) + 1) / len(ys)
        ax.plot(share, np.cumsum(ys) / max(ys.sum(), 1), label=name)
    if share is not None:
        ax.plot([0, 1], [0, 1], ls=":", c="grey", label="random")
    ax.set_xlabel("share of partners approached (highest risk first)")
    ax.set_ylabel("share of churners caught")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_importance(booster, info: pd.DataFrame, *, top: int = 25):
    gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
    labels = info.set_index("name")
    best = gain.sort_values(ascending=False).head(top)[::-1]
    fig, ax = _figure(f"Feature importance (gain), top {len(best)}")
    fig.set_size_inches(8, 0.3 * len(best) + 1.5)
    names = [f"{labels.loc[n, 'label_en'][:60]} [{labels.loc[n, 'lever']}]" if n in labels.index else n for n in best.index]
    ax.barh(names, best.to_numpy())
    ax.set_xlabel("total gain")
    fig.tight_layout()
    return fig


def plot_shap_summary(model, X: pd.DataFrame, *, max_rows: int = 2000, random_state: int = 0):
    """Beeswarm of exact TreeSHAP values (LightGBM's pred_contrib) on a sample of rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    sample = X.sample(n=min(max_rows, len(X)), random_state=random_state) if len(X) > max_rows else X
    prepared = model.prepare(sample)
    contrib = model.booster.predict(prepared, pred_contrib=True)
    numeric = prepared.apply(lambda c: c.cat.codes.astype(float).where(c.notna()) if isinstance(c.dtype, pd.CategoricalDtype) else c)
    explanation = shap.Explanation(values=contrib[:, :-1], base_values=contrib[:, -1], data=numeric.to_numpy(dtype=float),
                                   feature_names=list(prepared.columns))
    plt.figure(figsize=(8, 7), dpi=100)
    shap.plots.beeswarm(explanation, max_display=20, show=False)
    fig = plt.gcf()
    fig.suptitle("SHAP (log-odds), test block sample")
    fig.tight_layout()
    return fig


def plot_survival(curves: pd.DataFrame, horizons: list[int], metrics: dict):
    """Left: observed churn by horizon (Kaplan-Meier over the out-of-fold rows) against the mean
    predicted curve of the hazard model and of the Cox baseline. Right: AUC by horizon, both models."""
    import matplotlib.pyplot as plt
    from lifelines import KaplanMeierFitter

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    km = KaplanMeierFitter().fit(curves["time"], event_observed=curves["event"])
    grid = np.linspace(0, horizons[-1], 100)
    left.step(grid, 1 - km.survival_function_at_times(grid).to_numpy(), where="post", label="observed (Kaplan-Meier)", color="black")
    h = [0, *horizons]
    left.plot(h, [0, *(curves[f"p_churn_{x}d"].mean() for x in horizons)], "o-", label="hazard model (mean)")
    left.plot(h, [0, *(curves[f"cox_{x}d"].mean() for x in horizons)], "s--", label="Cox baseline (mean)")
    left.set_xlabel("days after the snapshot")
    left.set_ylabel("share churned")
    left.set_title("Churn by horizon, out of fold")
    left.legend(fontsize=8)
    x = np.arange(len(horizons))
    right.bar(x - 0.2, [metrics.get(f"hazard_auc_{v}d", np.nan) for v in horizons], 0.4, label="hazard model")
    right.bar(x + 0.2, [metrics.get(f"cox_auc_{v}d", np.nan) for v in horizons], 0.4, label="Cox baseline")
    right.set_xticks(x, [f"{v}d" for v in horizons])
    right.set_ylim(0.5, 1.0)
    right.set_title(f"AUC by horizon; C-index {metrics.get('hazard_c_index', np.nan):.3f} vs {metrics.get('cox_c_index', np.nan):.3f}")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
