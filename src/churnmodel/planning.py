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

from churnmodel.effects import best_actions

__all__ = ["CURVE_SHARES", "MILP_MAX_OPTIONS", "PLAN_COLUMNS", "Plan", "allocate", "allocate_with_bound", "budget_curve", "plan_actions",
           "ranked_policy"]

#: The plan's columns, in order (one row per scored partner: the funded first, by expected gain).
PLAN_COLUMNS = ["plan_order", "partner_id", "rank", "churn_probability", "risk_band", "segment", "revenue", "revenue_at_risk",
                "planned_action", "planned_lever", "action_cost", "expected_effect_points", "expected_gain"]


#: Up to this many fundable (partner, action) options the allocation is solved exactly as a MILP when the
#: Lagrangian solution is not provably optimal; above it, the Lagrangian solution with its proven gap.
MILP_MAX_OPTIONS = 4_000


def allocate(gain: np.ndarray, cost: np.ndarray, *, budget: float) -> np.ndarray:
    """The action to fund per partner (column index into ``gain``, -1 for none), maximising the total of
    ``gain`` (partners x actions, net of cost) with the total ``cost`` (per action, or partners x actions)
    at most ``budget``. See :func:`allocate_with_bound`.

    >>> allocate(np.array([[5.0, 9.0], [4.0, -1.0], [3.0, 2.0]]), np.array([1.0, 3.0]), budget=4).tolist()
    [1, 0, -1]
    """
    return allocate_with_bound(gain, cost, budget=budget)[0]


def allocate_with_bound(gain: np.ndarray, cost: np.ndarray, *, budget: float) -> tuple[np.ndarray, float]:
    """(action per partner or -1, an upper bound on the best total gain any plan within the budget reaches).

    A multiple-choice knapsack. Its Lagrangian relaxation (price the budget at ``lam``: each partner takes the
    option of largest ``gain - lam * cost`` if positive) is solved by bisection on ``lam``, vectorised; its
    dual value bounds the optimum from above. The cheapest side's choice, topped up with the upgrades that
    still fit, is the plan; when its total is not provably optimal (within 1e-9 relative) and there are at
    most :data:`MILP_MAX_OPTIONS` options, HiGHS solves the integer programme exactly
    (``scipy.optimize.milp``). For large lists the Lagrangian plan stands: its gap to the optimum is at most
    the bound minus its total (typically one partner's gain; ``plan_actions`` reports it)."""
    gain = np.asarray(gain, dtype=np.float64)
    n, k = gain.shape
    cost = np.broadcast_to(np.asarray(cost, dtype=np.float64), (n, k))
    if budget < 0 or np.any(cost < 0):
        raise ValueError(f"budget and costs must be >= 0, got budget {budget} and a cost of {cost.min()}")
    worth = (gain > 0) & (cost <= budget)
    if not worth.any():
        return np.full(n, -1), 0.0
    g = np.where(worth, gain, -np.inf)
    rows = np.arange(n)

    def choose(lam: float) -> tuple[np.ndarray, float, float]:  # (choice, its cost, the Lagrangian dual value)
        score = g - lam * cost
        j = score.argmax(axis=1)
        best = score[rows, j]
        take = best > 0
        choice = np.where(take, j, -1)
        return choice, float(cost[rows[take], j[take]].sum()), lam * budget + float(best[take].sum())

    choice, spent, bound = choose(0.0)
    if spent > budget:  # the budget binds: bisect the price between 0 and the largest gain per unit of cost
        lo, hi = 0.0, float(np.max(np.where(worth & (cost > 0), gain / np.where(cost > 0, cost, 1.0), 0.0))) + 1.0
        for _ in range(100):
            mid = (lo + hi) / 2
            if choose(mid)[1] > budget:
                lo = mid
            else:
                hi = mid
        choice, spent, dual = choose(hi)
        bound = min(choose(lo)[2], dual)
        choice = _top_up(choice, g, cost, budget - spent)
    value = float(g[rows[choice >= 0], choice[choice >= 0]].sum())
    if bound - value > 1e-9 * max(1.0, abs(bound)) and worth.sum() <= MILP_MAX_OPTIONS:
        choice = _milp(gain, cost, worth, budget)
        value = bound = float(gain[rows[choice >= 0], choice[choice >= 0]].sum())  # proven optimal
    return choice, max(bound, value)


def _top_up(choice: np.ndarray, g: np.ndarray, cost: np.ndarray, left: float) -> np.ndarray:
    """The choice with upgrades (a partner to a better option) that fit in the money ``left``, largest gain first."""
    choice = choice.copy()
    rows = np.arange(len(choice))
    now = np.maximum(choice, 0)
    extra_gain = g - np.where(choice >= 0, g[rows, now], 0.0)[:, None]
    extra_cost = cost - np.where(choice >= 0, cost[rows, now], 0.0)[:, None]
    i, j = np.nonzero((extra_gain > 0) & (extra_cost <= left))
    changed = np.zeros(len(choice), dtype=bool)
    for at in np.argsort(-extra_gain[i, j], kind="stable"):
        r, c = i[at], j[at]
        if not changed[r] and extra_cost[r, c] <= left:
            left -= extra_cost[r, c]
            choice[r], changed[r] = c, True
    return choice


def _milp(gain: np.ndarray, cost: np.ndarray, worth: np.ndarray, budget: float) -> np.ndarray:
    rows, cols = np.nonzero(worth)
    n, m = len(gain), len(rows)
    one_each = sparse.csr_array((np.ones(m), (rows, np.arange(m))), shape=(n, m))
    constraints = [optimize.LinearConstraint(one_each, 0, 1),
                   optimize.LinearConstraint(cost[rows, cols].reshape(1, -1), 0, budget)]
    result = optimize.milp(-gain[rows, cols], constraints=constraints, integrality=np.ones(m), bounds=optimize.Bounds(0, 1))
    if result.x is None:  # HiGHS always finds a plan here (nothing funded is feasible); kept for safety
        raise RuntimeError(f"the allocation could not be solved: {result.message}")
    choice = np.full(n, -1)
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
    summary: dict  # budget, spent, funded, the expected value kept by the plan and by ranking policies at the same budget,
    # and optimality_gap: how far the plan's value can be from the best possible (0 when proven optimal)


def plan_actions(scores: pd.DataFrame, actions: pd.DataFrame, *, names: list[str], levers: list[str], costs: list[float],
                 budget: float) -> Plan:
    """The budget plan from a ranked list with its uplift columns (``scores``) and every action's effect
    and gain per partner (``actions``: ``<action>__effect``, ``<action>__gain``, in the list's order); ``levers``:
    each action's lever as people read it. The summary: :func:`_policies`."""
    gain, cost = _gains(actions, names), np.asarray(costs, dtype=np.float64)
    effect = actions[[f"{a}__effect" for a in names]].to_numpy(dtype=np.float64)
    choice, summary = _policies(gain, cost, _orders(scores), budget=budget, names=names)
    rows = np.arange(len(scores))
    funded = choice >= 0
    pick = np.where(funded, choice, 0)
    plan = scores.assign(
        planned_action=np.where(funded, np.array(names, dtype=object)[pick], ""),
        planned_lever=np.where(funded, np.array(levers, dtype=object)[pick], ""),
        action_cost=np.where(funded, cost[pick], 0.0),
        expected_effect_points=np.where(funded, -effect[rows, pick], np.nan),
        expected_gain=np.round(np.where(funded, gain[rows, pick], 0.0), 2),
        _gain=np.where(funded, gain[rows, pick], -np.inf))
    plan = plan.sort_values(["_gain", "rank"], ascending=[False, True], kind="stable")
    plan = plan.assign(plan_order=np.arange(1, len(plan) + 1))[PLAN_COLUMNS].reset_index(drop=True)
    return Plan(plan, {**summary, "partners": len(scores)})


def _gains(actions: pd.DataFrame, names: list[str]) -> np.ndarray:
    return actions[[f"{a}__gain" for a in names]].to_numpy(dtype=np.float64)


def _orders(scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The ranking policies' orders: the highest churn risk first, the highest revenue at risk first."""
    return tuple(np.argsort(-scores[c].to_numpy(), kind="stable") for c in ("churn_probability", "revenue_at_risk"))


def _policies(gain: np.ndarray, cost: np.ndarray, orders: tuple[np.ndarray, np.ndarray], *, budget: float,
              names: list[str]) -> tuple[np.ndarray, dict]:
    """(the plan's action per partner, the summary): each policy at the same budget valued by the same uplift
    estimates: the plan (:func:`allocate_with_bound`), and the ranking policies in ``orders``
    (:func:`ranked_policy`); with the plan's proven ``optimality_gap`` and its actions per action."""
    choice, bound = allocate_with_bound(gain, cost, budget=budget)
    by_risk, by_rar = (ranked_policy(order, gain, cost, budget=budget) for order in orders)
    rows = np.arange(len(gain))

    def value(policy: np.ndarray) -> float:
        return float(gain[rows, np.maximum(policy, 0)][policy >= 0].sum())

    def spent(policy: np.ndarray) -> float:
        return float(cost[policy[policy >= 0]].sum())

    return choice, {"budget": float(budget), "spent": spent(choice), "funded": int((choice >= 0).sum()), "value_plan": value(choice),
                    "value_risk": value(by_risk), "spent_risk": spent(by_risk), "value_revenue_at_risk": value(by_rar),
                    "optimality_gap": max(bound - value(choice), 0.0),
                    "funded_by_action": {a: int((choice == j).sum()) for j, a in enumerate(names)}}


#: The budgets of :func:`budget_curve`, as shares of what funding every partner's best action costs.
CURVE_SHARES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.6, 1.0)


def budget_curve(scores: pd.DataFrame, actions: pd.DataFrame, *, names: list[str], costs: list[float]) -> pd.DataFrame:
    """What the plan and the ranking policies keep (``value_plan``, ``value_risk``, ``value_revenue_at_risk``)
    and spend, at the budgets :data:`CURVE_SHARES` of what funding every partner's best action costs."""
    gain, cost, orders = _gains(actions, names), np.asarray(costs, dtype=np.float64), _orders(scores)
    best, _ = best_actions(gain)
    full = float(cost[best[best >= 0]].sum())
    rows = []
    for budget in full * np.asarray(CURVE_SHARES) if full > 0 else [0.0]:
        summary = _policies(gain, cost, orders, budget=float(budget), names=names)[1]
        rows.append({k: summary[k] for k in ("budget", "spent", "funded", "value_plan", "value_risk", "value_revenue_at_risk")})
    return pd.DataFrame(rows)
