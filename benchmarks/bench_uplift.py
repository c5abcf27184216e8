"""Retention uplift on the simulator's campaigns, side by side: which partners to fund, at several budgets.

Uplift models (one DR-learner per action, fitted and checked as training does: ``uplift.fit_action``) learn
from the earlier campaigns; the last four campaigns of each action are held out. At the snapshots of the
held-out randomised campaigns, every partner active then may get one action, within budgets that are shares
(``--shares``) of what the team spent there. The value each
policy retains is computed from the simulator's true effects (the ground truth's cause contributions,
the action's relief and who dislikes being approached), as the 90-day churn probability removed times
the partner's 12-month revenue, net of the actions' cost:

- (a) the planner: the uplift models' effects, the exact budget allocation, with each action's log-odds shift
  spread over partners by its lever's risk (``spread: lever``, the default; the shift fitted by likelihood
  under that shape) and, beside it, the same for everyone (``spread: uniform``; the shift that reproduces
  the AIPW average);
- (b) the highest churn risk first (the churn model), each given the action with the best mean gain in the
  models' view (``planning.ranked_policy``, as ``churnmodel plan`` compares);
- (c) the highest revenue at risk first, the same action;
- (d) random partners, the same action.

It also prints the Qini coefficient of each action's uplift model (both spreads) on the held-out randomised
rows against the oracle's (ranking by the true effect), from the observed outcomes and, without their noise,
with each row's true effect as its outcome (:func:`expected_qini`); and, across actions, over the pool:
each partner's most retaining action by the models, ranked by its effect, with that action's true effect
as the outcome, against the oracle's best action ranked by its true effect, both measured above one random
line (a random action for a random partner). Tuned on nothing public: simulator only.
The simulator builds each action's true effect from the cause behind its lever, which is what ``spread: lever``
assumes of the world: how far the churn model's lever risks follow those causes is what is measured.

    .venv/bin/python benchmarks/bench_uplift.py [--partners 4000] [--seed 3] [--shares 0.1,0.25,0.5,1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from churnmodel import load_config, read_inputs
from churnmodel.actions import campaign_rows
from churnmodel.calibration import Calibrator
from churnmodel.effects import ActionEffect
from churnmodel.features import build_training_frame
from churnmodel.model import ChurnModel
from churnmodel.planning import allocate, ranked_policy
from churnmodel.simulate import simulate, write_simulation
from churnmodel.simulate.campaigns import ACTIONS, BACKLASH
from churnmodel.train import train
from churnmodel.uplift import fit_action, lever_weight, qini

HORIZON_MONTHS = 3  # the 90-day label


def true_effects(sim, rows: pd.DataFrame) -> np.ndarray:
    """(rows x actions): each action's true effect on P(churn within 90 days) at the row's snapshot."""
    hz = sim.hazard.set_index(["partner_id", "month"]).reindex(pd.MultiIndex.from_frame(rows[["partner_id", "snapshot"]]))
    dislikes = sim.truth.set_index("partner_id")["dislikes_contact"].reindex(rows["partner_id"]).to_numpy(dtype=bool)
    logit = (hz["logit"] - hz["action_effect"]).to_numpy()  # without any action running
    out = np.zeros((len(rows), len(ACTIONS)))
    for j, (cause, relief, _) in enumerate(ACTIONS.values()):
        tau = -relief * np.maximum(hz[f"contrib_{cause}"].to_numpy(), 0) + BACKLASH * dislikes
        h0, h1 = 1 / (1 + np.exp(-logit)), 1 / (1 + np.exp(-(logit + tau)))
        out[:, j] = (1 - (1 - h1) ** HORIZON_MONTHS) - (1 - (1 - h0) ** HORIZON_MONTHS)
    return np.nan_to_num(out)


def expected_qini(effect: np.ndarray, truth: np.ndarray, random_total: float | None = None) -> float:
    """The Qini area of ranking rows by ``effect`` (most retained first) with each row's *true* effect as its
    outcome: the mean, over k, of the true probability removed by the top k less k/n of what random targeting
    removes from all of them (``random_total``; by default the rows' own total: the same action for all). Outcome
    noise (a few dozen churns per held-out campaign) drops out, so it can be set against the oracle's."""
    gained = np.cumsum(-truth[np.argsort(effect, kind="stable")])
    total = gained[-1] if random_total is None else random_total
    return float(np.mean(gained - np.arange(1, len(truth) + 1) / len(truth) * total))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--shares", default="0.1,0.25,0.5,1", help="budgets, as shares of what the team spent at those snapshots")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sim = simulate(args.partners, 36, random_state=args.seed, campaigns=True)
        write_simulation(sim, root)
        types = "".join(f"      {a}: {{lever: {cause}, cost: {c}}}\n" for a, (cause, _, c) in ACTIONS.items())  # the lever it pulls
        (root / "c.yaml").write_text("data:\n  partners: partners.csv\n  events: events.parquet\n  contracts: contracts.csv\n"
                                     f"  actions:\n    types:\n{types}label:\n  horizon_days: 90\ntrain:\n  bootstrap: 0\n")
        cfg = load_config(root / "c.yaml")
        tables = read_inputs(cfg.data)
        frame, plan = build_training_frame(tables, cfg)
    churn = train(frame, plan, cfg).model  # risk targeting's ranking
    shell = ChurnModel(booster=None, calibrator=Calibrator("none"), plan=plan)
    held, models, print_rows, uses = None, {"lever": {}, "uniform": {}}, [], []
    for action in ACTIONS:
        rows = campaign_rows(frame, tables.events, action=action, others=[a for a in ACTIONS if a != action])
        X = shell.prepare(rows)
        cut = np.sort(rows["snapshot"].unique())[-4]
        early = (rows["snapshot"] < cut).to_numpy()
        X_early = X[early].reset_index(drop=True)
        p_early = churn.probabilities(X_early)
        test = (~early & rows["randomised"]).to_numpy()
        truth = true_effects(sim, rows[test].reset_index(drop=True))[:, list(ACTIONS).index(action)]
        y, t = rows.loc[test, "label"].to_numpy(), rows.loc[test, "treated"].to_numpy()
        spec = cfg.data.actions.types[action]
        for spread in models:  # as training does: each checked on its own latest campaigns
            weight, scale = lever_weight(churn, X_early, spec.lever) if spread == "lever" else (1.0, 0.0)
            fitted = fit_action(rows[early].reset_index(drop=True), X_early, p_early, action=action, random_state=cfg.random_state,
                                weight=weight)
            models[spread][action] = effect = ActionEffect(action, spec.lever, spec.cost, fitted.model.booster,
                                                           projection=fitted.model.projection[:3], lever_scale=scale)
            uses.append(f"{action} ({spread}) {'with' if fitted.metrics['heterogeneity'] else 'without'} differences between partners")
            predicted = effect.effect(X[test], churn.probabilities(X[test]), churn.lever_risk(X[test], [spec.lever])[:, 0])
            q, q_oracle = qini(y, t, predicted)[1], qini(y, t, truth)[1]
            e, e_oracle = expected_qini(predicted, truth), expected_qini(truth, truth)
            print_rows.append(f"  {action + ' (' + spread + ')':>27}: Qini {q:6.2f} vs oracle {q_oracle:6.2f} ({q / q_oracle:5.0%}); "
                              f"with the true effects as outcomes {e:.4f} vs {e_oracle:.4f} ({e / e_oracle:4.0%}); {test.sum():,} held-out rows")
        snaps = set(rows.loc[test, "snapshot"])
        held = snaps if held is None else held | snaps
    # every partner active at a held-out randomised campaign's snapshot may get one action
    pool = frame.loc[frame["snapshot"].isin(held) & ~frame["censored"]].reset_index(drop=True)
    Xp = churn.prepare(pool)
    value = pool["order__sum_365d"].fillna(0).to_numpy() if "order__sum_365d" in pool else np.ones(len(pool))
    risk = churn.probabilities(Xp)
    cost = np.array([c for _, _, c in ACTIONS.values()])
    levers = [cfg.data.actions.types[a].lever for a in ACTIONS]
    lever_risk = dict(zip(levers, churn.lever_risk(Xp, levers).T, strict=False))
    gain = {spread: value[:, None] * -np.column_stack([m[a].effect(Xp, risk, lever_risk[m[a].lever]) for a in ACTIONS]) - cost[None, :]
            for spread, m in models.items()}  # the models' view, as scoring and `churnmodel plan` value it
    truth = true_effects(sim, pool)
    spent = sim.campaigns.loc[sim.campaigns["month"].isin(held) & ~sim.campaigns["control"].astype(bool)]
    spent_total = float(spent["action"].map({a: c for a, (_, _, c) in ACTIONS.items()}).sum())
    retained = lambda choice: float(sum(value[i] * -truth[i, a] - cost[a] for i, a in enumerate(choice) if a >= 0))  # noqa: E731
    orders = {"highest churn risk": np.argsort(-risk, kind="stable"), "highest revenue at risk": np.argsort(-(risk * value), kind="stable"),
              "random": np.random.default_rng(0).permutation(len(pool))}
    print(f"{args.partners:,} partners x 36 months, campaigns from month 6; held-out snapshots {sorted(str(s.date()) for s in held)}; "
          f"{len(pool):,} partners in the pool; the team spent {spent_total:,.0f} there; {time.perf_counter() - started:.0f} s")
    print("value retained net of cost (x the highest churn risk first, at the same budget); ranking policies give every "
          "partner the action with the best mean gain in the shipped models' view (spread: lever; planning.ranked_policy)")
    shares = [float(x) for x in args.shares.split(",")]
    table = {}
    for share in shares:
        budget = share * spent_total
        policies = {**{f"planner (spread: {spread})": allocate(g, cost, budget=budget) for spread, g in gain.items()},
                    **{name: ranked_policy(order, gain["lever"], cost, budget=budget) for name, order in orders.items()},
                    "oracle (true effects)": allocate(value[:, None] * -truth - cost[None, :], cost, budget=budget)}
        kept = {name: retained(choice) for name, choice in policies.items()}
        for name, v in kept.items():
            table.setdefault(name, []).append(f"{v / 1e6:8.2f}M ({v / kept['highest churn risk']:5.2f}x)")
    print(f"  {'budget (share of the spend)':>34}: " + " ".join(f"{s:>18.0%}" for s in shares))
    for name, cells in table.items():
        print(f"  {name:>34}: " + " ".join(f"{c:>18}" for c in cells))
    print("uplift models on the held-out randomised campaigns (" + "; ".join(uses) + "):")
    print("\n".join(print_rows))
    # which action for whom and whom first: every pool partner's most retaining action by the models, ranked by its
    # effect, the true effect of that action as the outcome, against the oracle's best action and ranking; both over
    # one random line, a random action for a random partner (each policy's own line would reward worse picks)
    oracle_best, random_total = truth.min(axis=1), float(-truth.sum(axis=0).mean())
    cells = []
    for spread, m in models.items():
        effect = np.column_stack([m[a].effect(Xp, risk, lever_risk[m[a].lever]) for a in ACTIONS])
        pick = effect.argmin(axis=1)
        e = expected_qini(effect[np.arange(len(pool)), pick], truth[np.arange(len(pool)), pick], random_total)
        cells.append(f"spread {spread} {e / expected_qini(oracle_best, oracle_best, random_total):4.0%}")
    print(f"each pool partner's most retaining action by the models, ranked by its effect (the {len(pool):,} pool partners, "
          "true effects as outcomes, against a random action in random order), as a share of the oracle's Qini: " + ", ".join(cells))


if __name__ == "__main__":
    main()
