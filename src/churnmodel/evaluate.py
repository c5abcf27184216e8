"""Evaluation: classification, calibration, survival and business metrics, overall and per segment
(the figures of them: :mod:`churnmodel.plots`).

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
from churnmodel.hazard import months_to_churn

__all__ = [
    "binary_metrics",
    "bootstrap_auc",
    "campaign_threshold",
    "concordance_index",
    "expected_calibration_error",
    "expected_maximum_profit",
    "population_stability",
    "psi",
    "segment_metrics",
    "survival_metrics",
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


def concordance_index(time: np.ndarray, score: np.ndarray, event: np.ndarray) -> float:
    """Harrell's concordance index of ``score`` (a predicted time: higher = longer) with censored ``time``,
    exactly as ``lifelines.utils.concordance_index`` counts it: a pair is comparable when the earlier time
    is a churn (a censored time tied with a churn counts as later; two tied churns are not compared),
    concordant when the churner's score is lower, one half when the scores tie.

    Why not lifelines' own: it walks the rows in Python (about 1 s per 100,000 rows, and survival_metrics
    takes it at every horizon of two models). Here every row asks "how many of the churns before me (in time
    order) score lower", answered for all rows at once by a merge-sort tree over the churns' scores: per
    power of two, the churns sorted within blocks of that size, and a prefix is at most one block per level.
    O((rows + churns) log^2 churns), vectorised. ``tests/test_evaluate.py`` checks it against lifelines.

    >>> concordance_index(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]), np.array([True, True, False]))
    0.6666666666666666
    """
    time, score, event = np.asarray(time, dtype=np.float64), np.asarray(score, dtype=np.float64), np.asarray(event, dtype=bool)
    order = np.argsort(time[event], kind="stable")
    churn_time = time[event][order]
    levels = np.unique(score[event])  # the churns' distinct scores: a score's rank is how many are below it
    rank = np.searchsorted(levels, score[event][order])
    # per row, the churns it is compared with are the first `before` in time order (a churn: strictly
    # earlier; a censored row: up to its own time), and it is concordant with those scoring lower
    before = np.where(event, np.searchsorted(churn_time, time, side="left"), np.searchsorted(churn_time, time, side="right"))
    lower, upto = np.searchsorted(levels, score, side="left"), np.searchsorted(levels, score, side="right")
    below, at_most = np.zeros(len(time), dtype=np.int64), np.zeros(len(time), dtype=np.int64)
    position, width = np.arange(len(rank)), len(levels) + 1
    for bit in range(max(len(rank).bit_length(), 1)):
        keys = np.sort((position >> bit) * width + rank)  # sorted within blocks of 2**bit churns
        asked = np.flatnonzero((before >> bit) & 1)  # this block is part of the row's prefix
        block = (before[asked] >> (bit + 1)) << 1
        below[asked] += np.searchsorted(keys, block * width + lower[asked]) - (block << bit)
        at_most[asked] += np.searchsorted(keys, block * width + upto[asked]) - (block << bit)
    pairs = before.sum()
    if pairs == 0:
        raise ValueError("no comparable pairs: a concordance index needs a churn before another time")
    return float((below.sum() + 0.5 * (at_most - below).sum()) / pairs)


def survival_metrics(time: np.ndarray, event: np.ndarray, curve: np.ndarray, horizons, *, name: str) -> dict[str, float]:
    """Per horizon: ROC AUC and Brier score with inverse-probability-of-censoring weights (Graf et al.
    1999; a partner censored before ``h`` has no status at ``h`` and weight 0); the integrated Brier score
    over [first, last horizon] (trapezoid over the horizons); Harrell's concordance index of the
    expected time active, truncated at each horizon (``c_index_<h>d``) and at the last (``c_index``).

    ``curve``: P(churn within each horizon), (rows, horizons). Keys are ``{name}_auc_{h}d`` etc."""
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
        out[f"{name}_c_index_{cut}d"] = concordance_index(np.minimum(time, cut), expected, event & (time <= cut))
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


def population_stability(reference: dict, values: np.ndarray) -> float:
    """PSI of numeric values against reference decile bins (missing values are their own bin)."""
    edges = np.asarray(reference["edges"], dtype=np.float64)
    expected = np.append(np.asarray(reference["shares"], dtype=np.float64), reference["missing"])
    finite = ~np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[finite], side="right"), minlength=len(edges) + 1)
    actual = np.append(counts, (~finite).sum()) / max(len(values), 1)
    return psi(expected, actual)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """The population stability index of two share vectors over the same bins (empty bins count as 1e-4)."""
    e, a = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))
