"""Monitoring: how past scoring runs turned out, how the maturing ones are doing, and whether to retrain.

**Outcomes.** A run scored at ``as_of`` with horizon ``h`` asks "who leaves within (as_of, as_of + h]?".
The answer comes from the same label logic as training (:func:`~churnmodel.labels.churn_spells`): a
partner's relationship active at ``as_of`` that ends in the window churned; one observed to the
window's end without ending stayed; the rest are not known yet. A run whose window the data do not
cover yet is *maturing*: its churners so far are real, its stayers are not known.

**Estimated performance before outcomes.** Confidence-based performance estimation (CBPE, as NannyML
implements it): if the probabilities are calibrated, each partner churns with its probability, so
the expected true- and false-positive counts at every threshold, hence the expected ROC curve and AUC,
follow from the probabilities alone. The band is the 5th-95th percentile of the AUC over outcomes
drawn from the probabilities.

**Verdicts.** Per run: ``retrain`` when the realised AUC fell below the model's test AUC by more than
``monitor.retrain_drop`` and its interval lies below the model's, or when two matured runs in a row
are at ``watch``; ``watch`` when the realised (or, maturing, the estimated) AUC fell by more than
``monitor.watch_drop``, or the observed churn rate is off the predicted beyond its sampling band and
``monitor.calibration_tolerance``; else ``fine``. Once a model's run calls for a retrain, its later runs
keep that verdict (it does not go away until another model scores). Each verdict comes with its reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnmodel.config import MonitorConfig
from churnmodel.evaluate import bootstrap_auc, expected_calibration_error
from churnmodel.texts import MONITOR_REASONS

__all__ = ["estimated_auc", "estimated_band", "moved_inputs", "outcomes", "run_metrics", "verdicts"]


def outcomes(history: pd.DataFrame, spells: pd.DataFrame, *, observed_until: pd.Timestamp) -> pd.DataFrame:
    """The history with ``churned`` (1 left within the run's horizon, 0 stayed, NaN not known yet) and
    ``matured`` (the data cover the run's whole window). ``spells``: partner_id, start, end (churn or NaT)."""
    h = history.reset_index(drop=True).assign(_row=lambda d: np.arange(len(d)))
    window_end = h["as_of"] + pd.to_timedelta(h["horizon_days"], unit="D")
    pairs = h[["_row", "partner_id", "as_of"]].merge(spells[["partner_id", "start", "end"]], on="partner_id", how="inner")
    active = (pairs["start"] <= pairs["as_of"]) & (pairs["end"].isna() | (pairs["end"] > pairs["as_of"]))
    ended = pairs.loc[active].drop_duplicates("_row").set_index("_row")["end"].reindex(h["_row"])
    churned = ended.notna().to_numpy() & (ended.to_numpy() <= window_end.to_numpy()) & (ended.to_numpy() <= observed_until)
    seen_to_end = (window_end <= observed_until).to_numpy()
    known = churned | (seen_to_end & ended.index.isin(pairs.loc[active, "_row"]))
    return h.drop(columns="_row").assign(churned=np.where(known, churned.astype(float), np.nan), matured=seen_to_end)


def estimated_auc(p: np.ndarray) -> float:
    """The expected AUC if each partner churns with its probability ``p`` (CBPE's ROC estimate).

    >>> round(estimated_auc(np.array([0.9, 0.1])), 3)
    0.9
    """
    p = np.sort(np.asarray(p, dtype=np.float64))[::-1]
    tp, fp = np.cumsum(p), np.cumsum(1.0 - p)
    if tp[-1] <= 0 or fp[-1] <= 0:
        return float("nan")
    tpr, fpr = np.concatenate([[0.0], tp / tp[-1]]), np.concatenate([[0.0], fp / fp[-1]])
    return float(np.trapezoid(tpr, fpr))


def estimated_band(p: np.ndarray, *, draws: int = 200, random_state: int = 0) -> tuple[float, float]:
    """The 5th and 95th percentiles of the AUC over outcomes drawn from the probabilities ``p`` (the AUC of each
    draw from the ranks of ``p``, all draws at once)."""
    from scipy.stats import rankdata

    p = np.asarray(p, dtype=np.float64)
    ranks = rankdata(p)  # ties share their mean rank, as the AUC counts them half
    y = np.random.default_rng(random_state).random((draws, len(p))) < p
    n1 = y.sum(axis=1)
    n0 = len(p) - n1
    ok = (n1 > 0) & (n0 > 0)
    if not ok.any():
        return float("nan"), float("nan")
    auc = (y[ok] @ ranks - n1[ok] * (n1[ok] + 1) / 2) / (n1[ok] * n0[ok])
    return float(np.percentile(auc, 5)), float(np.percentile(auc, 95))


def _realised(part: pd.DataFrame, cfg: MonitorConfig, random_state: int) -> dict:
    from sklearn.metrics import roc_auc_score

    known = part["churned"].notna().to_numpy()
    y, p = part["churned"].to_numpy()[known].astype(int), part["churn_probability"].to_numpy()[known]
    out = {"known": int(known.sum()), "churners": int(y.sum()), "observed_rate": float(y.mean()) if len(y) else np.nan}
    if y.sum() >= cfg.min_outcomes and (1 - y).sum() >= cfg.min_outcomes:
        out["auc"] = float(roc_auc_score(y, p))
        out["auc_ci_low"], out["auc_ci_high"] = bootstrap_auc(y, p, n=cfg.bootstrap, random_state=random_state) if cfg.bootstrap else (np.nan, np.nan)
        out["ece"] = expected_calibration_error(y, p)
        top = max(1, round(0.1 * len(y)))
        caught = y[np.argsort(-p, kind="stable")[:top]]
        out["lift_top_decile"], out["capture_top_decile"] = float(caught.mean() / y.mean()), float(caught.sum() / y.sum())
    return out


def run_metrics(frame: pd.DataFrame, *, cfg: MonitorConfig, random_state: int, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per scoring run (``as_of``, ``model``; and per ``by`` column, e.g. segment) of :func:`outcomes`: partners,
    maturity, predicted and observed churn rate, Partner Retention Rate predicted and observed, revenue at risk
    and revenue lost, realised AUC (with its interval), ECE, top-decile lift and capture (matured runs with
    :data:`MonitorConfig.min_outcomes` of each class), and the estimated AUC with its band."""
    rows = []
    for key, part in frame.groupby(["as_of", "model", *by], sort=True, observed=True):
        p = part["churn_probability"].to_numpy(dtype=np.float64)
        matured = bool(part["matured"].iloc[0])
        row = dict(zip(["as_of", "model", *by], key if isinstance(key, tuple) else (key,), strict=True))
        row |= {c: part[c].iloc[0] for c in ("model_name", "model_version") if c in part}
        row |= {"status": "matured" if matured else "maturing", "partners": len(part), "predicted_rate": float(p.mean()),
                "revenue_at_risk": float(part["revenue_at_risk"].sum()),
                "revenue_lost": float(part.loc[part["churned"] == 1, "revenue"].sum()),
                "estimated_auc": estimated_auc(p), "model_test_auc": float(part.get("model_test_auc", pd.Series([np.nan])).iloc[0]),
                "model_test_auc_ci_low": float(part.get("model_test_auc_ci_low", pd.Series([np.nan])).iloc[0])}
        row["estimated_low"], row["estimated_high"] = estimated_band(p, random_state=random_state)
        row |= _realised(part, cfg, random_state) if matured else {"known": int(part["churned"].notna().sum()),
                                                                  "churners": int((part["churned"] == 1).sum()), "observed_rate": np.nan}
        row["prr_predicted"] = 100 * (1 - row["predicted_rate"])
        row["prr_observed"] = 100 * (1 - row["observed_rate"]) if matured else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def moved_inputs(drift: pd.DataFrame, *, top: int = 3) -> pd.DataFrame:
    """Per scoring run (``as_of``, ``model``) of the kept drift reports: the score's PSI and the ``top`` inputs that
    moved most, in words (``inputs_moved``, ``inputs_moved_ru``)."""
    rows = []
    for (as_of, model), part in drift.groupby(["as_of", "model"], sort=True):
        moved = part.loc[part["feature"] != "(score)"].sort_values("psi", ascending=False, kind="stable").head(top)
        words = {f"inputs_moved{suffix}": "; ".join(f"{label} (PSI {psi:.2f})" for label, psi in zip(moved[f"label_{lang}"], moved["psi"], strict=True))
                 for lang, suffix in (("en", ""), ("ru", "_ru"))}
        rows.append({"as_of": as_of, "model": model, "score_psi": float(part.loc[part["feature"] == "(score)", "psi"].sum()), **words})
    return pd.DataFrame(rows, columns=["as_of", "model", "score_psi", "inputs_moved", "inputs_moved_ru"])


def _say(key: str, **values) -> tuple[str, str]:
    """A verdict's reason in English and Russian (:data:`churnmodel.texts.MONITOR_REASONS`)."""
    return tuple(MONITOR_REASONS[lang][key].format(**values) for lang in ("en", "ru"))


def verdicts(runs: pd.DataFrame, *, cfg: MonitorConfig) -> pd.DataFrame:
    """``runs`` (:func:`run_metrics`, one row per run, in date order) with ``verdict`` and its ``reason`` (and
    ``reason_ru``)."""
    out, streak, called = [], 0, {}  # called: model -> the date a matured run of it called for a retrain
    for row in runs.itertuples(index=False):
        ref, ref_low = row.model_test_auc, row.model_test_auc_ci_low
        verdict, reason = "fine", _say("fine" if row.status == "matured" else "fine_maturing")
        if row.status == "matured" and np.isfinite(getattr(row, "auc", np.nan)):
            drop = ref - row.auc
            off = abs(row.observed_rate - row.predicted_rate)
            band = 2 * np.sqrt(max(row.predicted_rate * (1 - row.predicted_rate), 1e-12) / max(row.known, 1))
            if drop > cfg.retrain_drop and (not np.isfinite(ref_low) or row.auc_ci_high < ref_low):
                verdict, reason = "retrain", _say("auc_interval", auc=row.auc, drop=drop, ref=ref)
            elif drop > cfg.watch_drop:
                verdict, reason = "watch", _say("auc", auc=row.auc, drop=drop, ref=ref)
            elif off > max(band, cfg.calibration_tolerance * row.predicted_rate):
                verdict, reason = "watch", _say("calibration", observed=row.observed_rate, predicted=row.predicted_rate)
            streak = streak + 1 if verdict != "fine" else 0
            if verdict == "watch" and streak >= 2:
                verdict, reason = "retrain", tuple(a + b for a, b in zip(_say("streak"), reason, strict=True))
        elif row.status == "maturing" and np.isfinite(ref) and ref - row.estimated_auc > cfg.watch_drop:
            verdict, reason = "watch", _say("estimated", auc=row.estimated_auc, drop=ref - row.estimated_auc, ref=ref)
        if verdict == "retrain":
            called.setdefault(row.model, pd.Timestamp(row.as_of))
        elif row.model in called:  # a retrain does not go away by itself: the same model still scores
            verdict = "retrain"
            reason = tuple(a + b for a, b in zip(reason, _say("sticky", date=called[row.model].date()), strict=True))
        out.append((verdict, reason))
    return runs.assign(verdict=[v for v, _ in out], reason=[r[0] for _, r in out], reason_ru=[r[1] for _, r in out])
