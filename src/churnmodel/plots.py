"""The figures of an evaluation: ROC, precision-recall, calibration, gain, importance, SHAP,
survival curves and the retention actions' uplift. Each function returns a matplotlib figure; nothing is written or shown here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.evaluate import expected_calibration_error

__all__ = [
    "plain",
    "plot_calibration",
    "plot_dependence",
    "plot_importance",
    "plot_levers",
    "plot_lift",
    "plot_pr",
    "plot_roc",
    "plot_shap_summary",
    "plot_survival",
    "plot_uplift",
]


def plain(text) -> str:
    """Data is never markup: a label from the data with its ``$`` escaped, so matplotlib never reads
    ``$...$`` in a partner id or a category as mathtext (which shows formulas or fails on bad syntax);
    control characters shown as U+FFFD."""
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in str(text))  # control characters have no glyph
    return text.replace("$", r"\$")


def _figure(title: str):
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
    names = [plain(f"{labels.loc[n, 'label_en'][:60]} [{labels.loc[n, 'lever']}]" if n in labels.index else n) for n in best.index]
    ax.barh(names, best.to_numpy())
    ax.set_xlabel("total gain")
    fig.tight_layout()
    return fig


def plot_shap_summary(model, X: pd.DataFrame, *, max_rows: int = 2000, random_state: int = 0):
    """Beeswarm of exact TreeSHAP values (LightGBM's pred_contrib) on a sample of rows."""
    import matplotlib.pyplot as plt
    import shap

    sample = X.sample(n=min(max_rows, len(X)), random_state=random_state) if len(X) > max_rows else X
    prepared = model.prepare(sample)
    contrib = model.booster.predict(prepared, pred_contrib=True)
    numeric = prepared.apply(lambda c: c.cat.codes.astype(float).where(c.notna()) if isinstance(c.dtype, pd.CategoricalDtype) else c)
    explanation = shap.Explanation(values=contrib[:, :-1], base_values=contrib[:, -1], data=numeric.to_numpy(dtype=float),
                                   feature_names=[plain(c) for c in prepared.columns])
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


def plot_levers(per_lever: pd.DataFrame):
    """Mean |SHAP| per retention lever (a bar each): which levers carry the risk."""
    fig, ax = _figure("Risk by retention lever")
    ordered = per_lever.iloc[::-1]
    ax.barh([plain(v) for v in ordered["lever"]], ordered["mean_abs_shap"])
    ax.set_xlabel("mean |SHAP| (log-odds), test block sample")
    fig.tight_layout()
    return fig


def plot_dependence(values: pd.Series, shap_values: np.ndarray, *, title: str):
    """One feature's SHAP value against its value (categories as their codes)."""
    fig, ax = _figure(plain(f"Dependence: {title[:50]}"))
    fig.set_size_inches(5, 3.5)
    x = values.cat.codes.where(values.notna()) if isinstance(values.dtype, pd.CategoricalDtype) else values
    ax.scatter(x, shap_values, s=6, alpha=0.4)
    ax.axhline(0, c="grey", ls=":")
    ax.set_xlabel(plain(values.name))
    ax.set_ylabel("SHAP (log-odds)")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def plot_uplift(evaluations) -> object:
    """Per action, on its held-out randomised campaigns (:class:`~churnmodel.uplift.UpliftEvaluation`).
    Left: the Qini curve (partners kept among the approached beyond the hold-out's rate, approaching in
    the model's order) against random order. Right: observed against predicted effect by decile of the
    prediction (points of churn probability; below 0 the action retains)."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ev in evaluations:
        curve, coefficient = ev.qini()
        share = np.arange(1, len(curve) + 1) / len(curve)
        line, = left.plot(share, curve, label=plain(f"{ev.action} (Qini {coefficient:+.2f})"))
        left.plot([0, 1], [0, curve[-1]], ls=":", color=line.get_color())
        deciles = ev.deciles().dropna(subset=["observed"])
        right.plot(100 * deciles["predicted"], 100 * deciles["observed"], "o", color=line.get_color(), label=plain(ev.action))
    lo, hi = right.get_xlim()
    right.plot([lo, hi], [lo, hi], color="grey", ls=":", label="observed = predicted")
    left.set_xlabel("share of partners approached, in the model's order")
    left.set_ylabel("partners kept beyond the hold-out's rate")
    left.set_title("Qini curves, held-out campaigns (dotted: random order)")
    right.set_xlabel("predicted effect, points of churn probability")
    right.set_ylabel("observed effect, points")
    right.set_title("Uplift by decile of the prediction")
    for ax in (left, right):
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
