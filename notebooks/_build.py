"""Writes the notebooks (without outputs) from the cells below: `python notebooks/_build.py`.

Keeping the source here makes notebook diffs reviewable; tests/test_notebooks.py executes the result.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """import pandas as pd
import numpy as np
import matplotlib.pyplot as plt
from churnmodel import load_config, pipeline
CONFIG = "../configs/partner_churn.yaml"   # always the committed sample in data/sample/
cfg = load_config(CONFIG)
checked = pipeline.validate(cfg)   # the same application layer as `churnmodel validate`
tables = checked.tables"""

NOTEBOOKS = {
    "01_explore_partner_history.ipynb": [
        ("md", "# Partner history: what the sample looks like\nData overview, event volumes by type and segment, cohort retention and the Partner Retention Rate, churn rate by decile of key metrics, LTV and NPS by segment. Everything comes from the package's API."),
        ("code", SETUP),
        ("code", "checked.facts"),
        ("md", "## Event volumes per type and segment\nSegments (strategic / prospective / transactional) as the feature pipeline assigns them at the last labelled snapshot."),
        ("code", """frame = pipeline.features(cfg, tables=tables).frame   # as `churnmodel features`
last = frame.sort_values("snapshot").groupby("partner_id").tail(1)[["partner_id", "segment"]]
events = tables.events.merge(last, on="partner_id", how="left")
volumes = events.pivot_table(index="event_type", columns="segment", values="partner_id", aggfunc="size", observed=True, fill_value=0)
volumes"""),
        ("md", "## Cohort retention and Partner Retention Rate\nPartner Retention Rate = partners at the end / partners at the start x 100."),
        ("code", """p = tables.partners.copy()
p["cohort"] = p["joined_at"].dt.year.clip(lower=2019)
months = np.arange(0, 25, 3)
curves = {}
for cohort, part in p.groupby("cohort"):
    alive = [(part["churned_at"].isna() | (part["churned_at"] > part["joined_at"] + pd.DateOffset(months=int(m)))).mean() for m in months]
    curves[cohort] = alive
fig, ax = plt.subplots(figsize=(6, 3.5))
for cohort, alive in curves.items():
    ax.plot(months, np.array(alive) * 100, marker="o", label=str(cohort))
ax.set_xlabel("months since joining"); ax.set_ylabel("still a partner, %"); ax.legend(title="cohort")
from churnmodel.labels import churn_spells, data_end
from churnmodel.report import partner_retention_rate
end = data_end(tables)
spells = churn_spells(tables, cfg.label, end=end)
print(f"Partner Retention Rate over the last 12 months: {partner_retention_rate(spells, end):.1f}%")
by_cohort = {c: partner_retention_rate(spells.loc[spells["partner_id"].isin(part["partner_id"])], end)
             for c, part in p.groupby("cohort")}
pd.Series(by_cohort, name="Partner Retention Rate, last 12 months, %").round(1)"""),
        ("md", "## Churn rate by decile of key metrics\nUnresolved backlog, NPS, meeting cadence, payment delay: the causes the retention material names."),
        ("code", """labelled = frame.loc[~frame["censored"]]
metrics = {"open_tickets__oldest_days": "oldest unresolved ticket, days", "nps_response__last": "last NPS",
           "meeting__days_since_last": "days since last meeting", "payment_delay__sum_90d": "days late, 90 days"}
fig, axes = plt.subplots(1, 4, figsize=(14, 3))
for ax, (col, title) in zip(axes, metrics.items()):
    decile = pd.qcut(labelled[col].rank(method="first"), 10, labels=False)
    rate = labelled.groupby(decile)["label"].mean() * 100
    ax.bar(rate.index + 1, rate.to_numpy()); ax.set_title(title, fontsize=9); ax.set_xlabel("decile")
axes[0].set_ylabel("churn within 90 days, %")
labelled.groupby(labelled["open_tickets"].clip(upper=4))["label"].mean().rename("churn rate by open tickets (4 = 4+)")"""),
        ("md", "## LTV and NPS by segment\nLTV here: revenue a partner brought over the observed history. NPS = % promoters (9-10) - % detractors (0-6)."),
        ("code", """orders = events.loc[events["event_type"] == "order"].groupby("segment", observed=True)["amount"].sum()
partners = last.groupby("segment", observed=True).size()
nps = events.loc[events["event_type"] == "nps_response"].groupby("segment", observed=True)["amount"]
table = pd.DataFrame({"partners": partners, "LTV (observed revenue per partner)": (orders / partners).round(0),
                      "NPS": nps.apply(lambda s: 100 * ((s >= 9).mean() - (s <= 6).mean())).round(1)})
table"""),
    ],
    "02_train_and_evaluate.ipynb": [
        ("md", "# Train and evaluate\nTrain with `pipeline.fit` (what `churnmodel train` runs: features, out-of-time split, calibrated LightGBM, MLflow run and registry), compare with the logistic baseline, look at calibration and lift with scikit-learn's own tools, then find the runs in MLflow and compare them. MLflow writes to a temporary store here, so the notebook leaves the project's store alone; the hazard model (`label.horizons`) is left out to keep the notebook quick (notebook 03 has it)."),
        ("code", SETUP + """
import tempfile
store = tempfile.mkdtemp()
quick = [f"tracking.uri=sqlite:///{store}/mlflow.db", "train.bootstrap=200", "label.horizons=null"]"""),
        ("code", """first = pipeline.fit(CONFIG, quick, tables=tables)   # tracked in MLflow, registered, champion
m = first.metrics
pd.DataFrame({"LightGBM (calibrated)": {k: m[k] for k in ("auc", "pr_auc", "log_loss", "brier", "ece", "lift_top")},
              "logistic baseline": {k: m[f"baseline_{k}"] for k in ("auc", "pr_auc", "log_loss", "brier", "ece", "lift_top")}}).round(4)"""),
        ("code", """print(f"test AUC {m['auc']:.3f} (95% CI {m['auc_ci_low']:.3f}-{m['auc_ci_high']:.3f}); "
      f"Partner Retention Rate observed {m['prr_observed']:.1f}% vs predicted {m['prr_predicted']:.1f}%")
first.training.segments.round(3)"""),
        ("md", "The model follows scikit-learn's classifier conventions (`predict_proba` of shape (n, 2), `classes_`, `feature_names_in_`), so scikit-learn's metrics and displays take it as it is."),
        ("code", """from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import roc_auc_score
from churnmodel import plots
X_test, y_test = first.training.test_features, first.training.predictions["label"].to_numpy()
print(f"roc_auc_score: {roc_auc_score(y_test, first.model.predict_proba(X_test)[:, 1]):.3f}")
CalibrationDisplay.from_estimator(first.model, X_test, y_test, n_bins=10, strategy="quantile", name="LightGBM (calibrated)")
test = first.training.predictions
plots.plot_lift(test["label"].to_numpy(), {"LightGBM": test["probability"].to_numpy(), "baseline": test["baseline_probability"].to_numpy()});"""),
        ("md", "## Track in MLflow and compare runs\nA second run with sigmoid replaced by isotonic calibration, to compare."),
        ("code", """second = pipeline.fit(CONFIG, [*quick, "train.calibration=isotonic"], tables=tables)
import mlflow
mlflow.set_tracking_uri(first.config.tracking.uri)
runs = mlflow.search_runs(experiment_names=[first.config.tracking.experiment])
runs[["run_id", "params.train.calibration", "metrics.test_auc", "metrics.test_ece", "metrics.test_log_loss", "tags.registered_version"]]"""),
    ],
    "03_explain_and_score.ipynb": [
        ("md", "# Explain and score\nGlobal SHAP by retention lever, one partner's waterfall, batch scoring of the sample with the risk curves, the action list and the drift check. The model is trained in memory (`track=False`) by the same `pipeline.fit` as `churnmodel train`, with two horizons and two hazard folds to keep the notebook quick."),
        ("code", SETUP + """
quick = ["train.bootstrap=0", "label.horizons=[90, 365]", "train.hazard_folds=2"]
model = pipeline.fit(CONFIG, quick, tables=tables, track=False).model
frame = pipeline.features(cfg, tables=tables).frame"""),
        ("code", """from churnmodel.explain import contributions, global_importance
labelled = frame.loc[~frame["censored"]]
sample = labelled.sample(3000, random_state=0)
contrib = contributions(model, sample)
per_feature, per_lever = global_importance(model, contrib)
per_lever"""),
        ("code", """import shap
from churnmodel.explain import explain_partner
worst = sample.iloc[[int(np.argmax(model.predict_proba(sample)[:, 1]))]]
c = contributions(model, worst)
shap.plots.waterfall(shap.Explanation(values=c[0, :-1], base_values=c[0, -1], feature_names=model.features,
                                      data=model.prepare(worst).iloc[0].astype(object).to_numpy()), max_display=10, show=False)
explain_partner(model, worst)"""),
        ("md", "## Batch scoring and the action list"),
        ("code", """result = pipeline.score(CONFIG, quick, as_of="2026-01-01", model=model, tables=tables)   # as `churnmodel score`
actions = result.scores.loc[result.scores["risk_band"] == "high", ["rank", "partner_id", "churn_probability", "p_churn_365d", "revenue_at_risk", "driver_1", "action_1", "action_2"]]
actions.head(10)"""),
        ("code", """print("\\n".join(result.warnings) or "no warnings")   # the drift warning `churnmodel score` prints
result.drift.head(8)"""),
    ],
}


def build() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    build()
