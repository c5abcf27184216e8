"""Planning: which retention action to fund for whom, within a budget.

Each partner gets at most one action. Its expected gain is the value kept (the partner's value times
the churn probability the action removes, from the uplift models) net of the action's cost. The plan
maximises the total expected gain, with the total cost within the budget. This is a multiple-choice
knapsack, solved exactly as a small mixed-integer programme (``scipy.optimize.milp``, HiGHS). Options
that do not pay for themselves are never funded.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, sparse

__all__ = ["allocate"]


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
