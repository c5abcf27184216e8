"""The configuration's shared parts: the strict base model, the data contract's columns, the levers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["CANONICAL_COLUMNS", "LEVERS", "Lever", "Strict"]


#: The data contract: canonical column names per input, and which are required.
CANONICAL_COLUMNS: dict[str, dict[str, bool]] = {
    "partners": {"partner_id": True, "joined_at": True, "churned_at": False},
    "events": {"partner_id": True, "timestamp": True, "event_type": True, "amount": False},
    "contracts": {
        "partner_id": True,
        "start_date": True,
        "end_date": True,
        "value": True,
        "terminated_at": False,
    },
}



class Strict(BaseModel):
    """A config section: unknown keys are rejected, values cannot change after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


LEVERS = (
    "responsiveness",
    "communication",
    "transparency",
    "mutual_value",
    "conflict",
    "development",
    "loyalty",
    "satisfaction",
    "profile",
)
Lever = Literal[
    "responsiveness", "communication", "transparency", "mutual_value", "conflict",
    "development", "loyalty", "satisfaction", "profile",
]

