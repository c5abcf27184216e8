"""Writes the notebooks (without outputs) from the cells below: `python notebooks/_build.py`.

Keeping the source here makes notebook diffs reviewable; tests/test_notebooks.py executes the result.
"""

import hashlib
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

    "04_campaigns_and_uplift.ipynb": [
        ("md", "# Retention campaigns and uplift: who stays *because* we act\nThe campaign sample (`data/sample/campaigns/`, config `configs/campaigns.yaml`) records four retention actions in the event log, each pulling one lever: an escalation call (responsiveness), a quarterly business review offer (communication), a holdback release (transparency) and a loyalty bonus. Some campaigns were randomised (a hold-out group, `control`), others targeted at partners the team judged at risk. `pipeline.fit` (what `churnmodel train` runs) learns each action's effect on the 90-day churn probability per partner; `pipeline.plan` (`churnmodel plan`) funds the actions that keep the most value within a budget."),
        ("code", """import pandas as pd
import numpy as np
import matplotlib.pyplot as plt
from churnmodel import load_config, pipeline, plots
CONFIG = "../configs/campaigns.yaml"   # the committed campaign sample in data/sample/campaigns/
cfg = load_config(CONFIG)
tables = pipeline.validate(cfg).tables"""),
        ("md", "## The campaigns in the log\nPer action: randomised campaigns (with a hold-out) and targeted ones, partners approached and held out."),
        ("code", """events = tables.events
acts = events.loc[events["event_type"].isin(list(cfg.data.actions.types))].copy()
acts["kind"] = np.where(acts.groupby("campaign_id")["control"].transform("any"), "randomised", "targeted")
acts.groupby(["event_type", "kind"]).agg(campaigns=("campaign_id", "nunique"), approached=("control", lambda c: int((~c).sum())),
                                         held_out=("control", "sum"))"""),
        ("md", "## Learn each action's effect\nOne DR-learner per action (cross-fitted LightGBM outcome and propensity models; the known propensity in randomised campaigns). The latest quarter of each action's campaigns is held out: the Qini coefficient and the observed against the predicted average effect are measured there, then the model shipped is refitted on every campaign. Effects are in probability of churning within 90 days: below 0 the action retains. `slope` is how much of the predicted difference between partners the cross-fitted pseudo-outcomes bear out (1: all of it, 0: none); the effects the model ships are shrunk towards the average by it. `heterogeneity` says whether the differences between partners held on the held-out campaigns (1) or were dropped (0: each partner's effect is the action's average, scaled to their risk), so the plan does not chase noise."),
        ("code", """fitted = pipeline.fit(CONFIG, tables=tables, track=False)   # as `churnmodel train`: the churn model and its uplift models
effects = pd.DataFrame({u.action: u.metrics for u in fitted.model.uplift}).T
effects[["rows", "treated", "ate", "ate_se", "implied_effect", "implied_effect_se", "slope", "slope_se", "heterogeneity", "qini",
         "observed_effect", "predicted_effect", "heldout_rows"]].round(4)"""),
        ("code", """plots.plot_uplift(fitted.training.uplift);"""),
        ("md", "The sample's held-out quarter has a few dozen partners per action (`heldout_rows`), so a decile holds a handful of them and its observed effect jumps by tens of points when one of them leaves: read the curves for their shape, not their values. `benchmarks/bench_uplift.py` judges the rankings on 4,000 and 12,000 simulated partners, against the true effects (docs/uplift.md)."),
        ("md", "## Against the simulator's truth\nThe ground truth knows each approached or held-out partner's true effect in the randomised campaigns. Two estimates: the AIPW average (`ate`, every row weighed alike) and the average the shipped model gives (`implied_effect`: its log-odds shift, fitted by likelihood under the lever spread, over the same rows). Both average over every partner a campaign could have reached, so the populations differ a little; the bars show 95% intervals."),
        ("code", """truth = pd.read_csv("../data/sample/campaigns/ground_truth/campaigns.csv")
r = truth.loc[truth["randomised"]].copy()
h = 1 - (1 - r["p_without"]) ** (1 / 6)          # the month's hazard; the 90-day label spans three months of it
with_action = 1 / (1 + np.exp(-(np.log(h / (1 - h)) + r["effect_logit"])))
r["true_90d"] = (1 - (1 - with_action) ** 3) - (1 - (1 - h) ** 3)
compare = effects[["ate", "ate_se", "implied_effect", "implied_effect_se"]].join(r.groupby("action")["true_90d"].mean())
fig, ax = plt.subplots(figsize=(6, 3.5))
x = np.arange(len(compare))
ax.errorbar(x - 0.1, 100 * compare["ate"], yerr=196 * compare["ate_se"], fmt="o", capsize=4, label="AIPW average (95% CI)")
ax.errorbar(x + 0.1, 100 * compare["implied_effect"], yerr=196 * compare["implied_effect_se"], fmt="s", capsize=4,
            label="shipped model (95% CI)")
ax.plot(x, 100 * compare["true_90d"], "k_", markersize=20, label="true, randomised campaigns")
ax.axhline(0, color="grey", lw=0.5)
ax.set_xticks(x, compare.index, rotation=15)
ax.set_ylabel("effect on 90-day churn, points")
ax.legend(fontsize=8, loc="lower right")
compare.round(4)"""),
        ("md", "## Plan the budget\nFor every active partner, the best action and the value it keeps net of its cost; the exact allocation within the budget, against approaching the riskiest (or the largest revenue at risk) first with the usual action, valued by the same estimates."),
        ("code", """run = pipeline.plan(CONFIG, as_of="2026-01-01", budget=20_000, model=fitted.model, tables=tables)   # as `churnmodel plan`
print({k: v for k, v in run.summary.items() if k != "funded_by_action"}, run.summary["funded_by_action"])
run.plan.head(10)"""),
        ("code", """budgets = [0, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000]
curve = pd.DataFrame([pipeline.plan(CONFIG, as_of="2026-01-01", budget=b, model=fitted.model, tables=tables).summary for b in budgets])
fig, ax = plt.subplots(figsize=(6, 3.5))
for key, name in (("value_plan", "plan"), ("value_risk", "highest risk first"), ("value_revenue_at_risk", "highest revenue at risk first")):
    ax.plot(curve["budget"], curve[key], "o-", label=name)
ax.set_xlabel("budget")
ax.set_ylabel("expected value kept, net of cost")
ax.legend(fontsize=8)
curve[["budget", "spent", "funded", "value_plan", "value_risk", "value_revenue_at_risk"]].round(0)"""),
    ],}


def build(out: Path = HERE) -> None:
    """Write every notebook into ``out``; a cell's id is its position's hash, so a rebuild changes only the cells that changed."""
    for name, cells in NOTEBOOKS.items():
        ids = [hashlib.sha256(f"{name}:{i}".encode()).hexdigest()[:8] for i in range(len(cells))]
        nb = new_notebook(cells=[new_markdown_cell(src, id=i) if kind == "md" else new_code_cell(src, id=i)
                                 for (kind, src), i in zip(cells, ids, strict=True)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, out / name)


if __name__ == "__main__":
    build()
