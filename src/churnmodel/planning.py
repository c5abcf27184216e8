"""Planning: which retention action to fund for whom, within a budget.

Each partner gets at most one action. Its expected gain is the value kept (the partner's value times
the churn probability the action removes, from the uplift models) net of the action's cost. The plan
maximises the total expected gain, with the total cost within the budget. This is a multiple-choice
knapsack, solved exactly as a small mixed-integer programme (``scipy.optimize.milp``, HiGHS). Options
that do not pay for themselves are never funded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, sparse

__all__ = ["PLAN_COLUMNS", "Plan", "allocate", "plan_actions", "ranked_policy"]

#: The plan's columns, in order (one row per scored partner: the funded first, by expected gain).
PLAN_COLUMNS = ["plan_order", "partner_id", "rank", "churn_probability", "risk_band", "segment", "revenue", "revenue_at_risk",
                "planned_action", "planned_lever", "action_cost", "expected_effect_points", "expected_gain"]


def allocate(gain: np.ndarray, cost: np.ndarray, *, budget: float) -> np.ndarray:
    """The action to fund per partner (column index into ``gain``, -1 for none), maximising the total of
    ``gain`` (partners x actions, net of cost) with the total ``cost`` (per action, or partners x actions)
    at most ``budget``.

    >>> allocate(np.array([[5.0, 9.0], [4.0, -1.0], [3.0, 2.0]]), np.array([1.0, 3.0]), budget=4).tolist()
    [1, 0, -1]
    """
    gain = np.asarray(gain, dtype=np.float64)
    n, k = gain.shape
    cost = np.broadcast_to(np.asarray(cost, dtype=np.float64), (n, k))
    if budget < 0 or np.any(cost < 0):
        raise ValueError(f"budget and costs must be >= 0, got budget {budget} and a cost of {cost.min()}")
    worth = (gain > 0) & (cost <= budget)
    choice = np.full(n, -1)
    if not worth.any():
        return choice
    rows, cols = np.nonzero(worth)
    m = len(rows)
    one_each = sparse.csr_array((np.ones(m), (rows, np.arange(m))), shape=(n, m))
    constraints = [optimize.LinearConstraint(one_each, 0, 1),
                   optimize.LinearConstraint(cost[rows, cols].reshape(1, -1), 0, budget)]
    result = optimize.milp(-gain[rows, cols], constraints=constraints, integrality=np.ones(m), bounds=optimize.Bounds(0, 1))
    if result.x is None:  # HiGHS always finds a plan here (nothing funded is feasible); kept for safety
        raise RuntimeError(f"the allocation could not be solved: {result.message}")
    funded = result.x > 0.5
    choice[rows[funded]] = cols[funded]
    return choice


def ranked_policy(order: np.ndarray, gain: np.ndarray, cost: np.ndarray, *, budget: float) -> np.ndarray:
    """The action per partner (-1 for none) of a ranking policy: partners in ``order``, each given the one
    action whose mean gain over all partners is highest, funded while the budget lasts (what a team does
    when it approaches the riskiest first with its usual action)."""
    choice = np.full(len(gain), -1)
    if not gain.shape[1] or not len(gain):
        return choice
    usual = int(np.argmax(gain.mean(axis=0)))
    n = int(min(len(order), budget // cost[usual])) if cost[usual] > 0 else len(order)
    choice[order[:n]] = usual
    return choice


@dataclass(frozen=True)
class Plan:
    partners: pd.DataFrame  # PLAN_COLUMNS
    summary: dict  # budget, spent, funded, and the expected value kept by the plan and by ranking policies at the same budget


def plan_actions(scores: pd.DataFrame, actions: pd.DataFrame, *, names: list[str], levers: list[str], costs: list[float],
                 budget: float) -> Plan:
    """The budget plan from a ranked list with its uplift columns (``scores``) and every action's effect
    and gain per partner (``actions``: ``<action>__effect``, ``<action>__gain``, in the list's order); ``levers``:
    each action's lever as people read it.

    The summary values each policy at the same budget by the same uplift estimates: the plan (the exact
    allocation, :func:`allocate`), the highest churn risk first and the highest revenue at risk first
    (:func:`ranked_policy`)."""
    gain = actions[[f"{a}__gain" for a in names]].to_numpy(dtype=np.float64)
    effect = actions[[f"{a}__effect" for a in names]].to_numpy(dtype=np.float64)
    cost = np.asarray(costs, dtype=np.float64)
    choice = allocate(gain, cost, budget=budget)
    rows = np.arange(len(scores))
    funded = choice >= 0
    pick = np.where(funded, choice, 0)

    def value(policy: np.ndarray) -> float:
        return float(gain[rows, np.where(policy >= 0, policy, 0)][policy >= 0].sum())

    def spent(policy: np.ndarray) -> float:
        return float(cost[policy[policy >= 0]].sum())

    by_risk = ranked_policy(np.argsort(-scores["churn_probability"].to_numpy(), kind="stable"), gain, cost, budget=budget)
    by_rar = ranked_policy(np.argsort(-scores["revenue_at_risk"].to_numpy(), kind="stable"), gain, cost, budget=budget)
    plan = scores.assign(
        planned_action=np.where(funded, np.array(names, dtype=object)[pick], ""),
        action_cost=np.where(funded, cost[pick], 0.0),
        expected_effect_points=np.where(funded, -effect[rows, pick], np.nan),
        expected_gain=np.round(np.where(funded, gain[rows, pick], 0.0), 2))
    plan["planned_lever"] = np.where(funded, np.array(levers, dtype=object)[pick], "")
    plan = plan.assign(_gain=np.where(funded, gain[rows, pick], -np.inf)).sort_values(["_gain", "rank"], ascending=[False, True], kind="stable")
    plan = plan.assign(plan_order=np.arange(1, len(plan) + 1))[PLAN_COLUMNS].reset_index(drop=True)
    summary = {"budget": float(budget), "spent": spent(choice), "funded": int(funded.sum()), "partners": len(scores),
               "value_plan": value(choice), "value_risk": value(by_risk), "spent_risk": spent(by_risk),
               "value_revenue_at_risk": value(by_rar), "funded_by_action": {a: int((choice == j).sum()) for j, a in enumerate(names)}}
    return Plan(plan, summary)
