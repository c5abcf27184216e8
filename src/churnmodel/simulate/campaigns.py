"""Retention campaigns with a known effect per partner: the ground truth uplift models are checked against.

Every third month from month 6 the account team runs one campaign per action. Odd campaigns are
randomised: a random tenth of the partners present is drawn and half of them get the action, the other
half is the hold-out (``control`` rows in the log: assigned, never approached). Even campaigns are
targeted: the team approaches the partners it believes most at risk (the true hazard, seen through
noise), with no hold-out. An action relieves the cause it belongs to -- a QBR helps partners drifting on
communication, releasing holdbacks helps opacity cases, an escalation call helps a ticket backlog, a
loyalty bonus helps a partner who gains too little -- by a share of that cause's log-odds, for six
months: the month it is taken and the five after. One partner in ten dislikes being approached ("sleeping dogs"): any
action adds to its log-odds instead.

The campaigns draw from their own random stream, so a simulation without them is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["ACTIONS", "Campaigns"]

#: Action (its event type) -> (the cause and lever it relieves, share of that cause's log-odds removed, cost).
ACTIONS = {
    "escalation_call": ("responsiveness", 0.7, 200.0),
    "qbr_offer": ("communication", 0.7, 300.0),
    "holdback_release": ("transparency", 0.8, 1500.0),
    "loyalty_bonus": ("mutual_value", 0.7, 800.0),
}
FIRST_MONTH, EVERY, LASTS = 6, 3, 6
RANDOM_SHARE, TARGETED_SHARE = 0.10, 0.05
BACKLASH, DISLIKE_SHARE = 0.6, 0.10


@dataclass
class Campaigns:
    """The campaigns of one simulation: who got what when (assignments) and the effect still running."""

    rng: np.random.Generator
    dislikes: np.ndarray  # partners an approach pushes away
    effect: np.ndarray  # log-odds added this month and later, per partner, by months ahead
    rows: list[pd.DataFrame] = field(default_factory=list)

    @classmethod
    def start(cls, random_state: int, n_partners: int, months: int) -> Campaigns:
        rng = np.random.default_rng([random_state, 23])
        return cls(rng, rng.random(n_partners) < DISLIKE_SHARE, np.zeros((months + LASTS, n_partners)))

    def month(self, m: int, *, present: np.ndarray, contrib: dict[str, np.ndarray], logit: np.ndarray, t0: float) -> np.ndarray:
        """Run this month's campaigns (if any) and return the log-odds every partner's actions add now."""
        if m >= FIRST_MONTH and (m - FIRST_MONTH) % EVERY == 0:
            randomised = ((m - FIRST_MONTH) // EVERY) % 2 == 0
            for k, (action, (cause, relief, _)) in enumerate(ACTIONS.items()):
                self._run(m, k, action, cause, relief, present=present, contrib=contrib, logit=logit, t0=t0, randomised=randomised)
        return self.effect[m]

    def _run(self, m, k, action, cause, relief, *, present, contrib, logit, t0, randomised) -> None:
        idx = np.flatnonzero(present)
        if randomised:
            drawn = idx[self.rng.random(len(idx)) < RANDOM_SHARE]
            treated = self.rng.random(len(drawn)) < 0.5
        else:  # the team's own pick: the riskiest as it sees them, no hold-out
            seen = logit[idx] + self.rng.normal(0, 0.5, len(idx))
            drawn = idx[np.argsort(-seen)[: max(1, int(TARGETED_SHARE * len(idx)))]]
            treated = np.ones(len(drawn), dtype=bool)
        tau = -relief * np.maximum(contrib[cause][drawn], 0.0) + BACKLASH * self.dislikes[drawn]
        got = drawn[treated]
        self.effect[m : m + LASTS, got] += tau[treated]
        base = 1 / (1 + np.exp(-logit[drawn]))
        with_action = 1 / (1 + np.exp(-(logit[drawn] + tau)))
        self.rows.append(pd.DataFrame({
            "pid": drawn, "month": m, "action": action, "campaign_id": f"M{m:03d}-{action}", "control": ~treated,
            "randomised": randomised, "effect_logit": tau,
            # P(churn within the action's six months) without and with it, at this month's hazard
            "p_without": 1 - (1 - base) ** LASTS, "p_with": 1 - (1 - with_action) ** LASTS,
            "t": t0 + 3600.0 * (1 + k),  # the approach: the first hours of the month, after the month-start snapshot
        }))

    def assignments(self) -> pd.DataFrame:
        """Every assignment: partner index, month, action, campaign_id, control, randomised, true effect."""
        if not self.rows:
            return pd.DataFrame(columns=["pid", "month", "action", "campaign_id", "control", "randomised", "effect_logit",
                                         "p_without", "p_with", "t"])
        return pd.concat(self.rows, ignore_index=True)
