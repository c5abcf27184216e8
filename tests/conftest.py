"""Shared helpers: tiny inline frames and a way to write them as a project on disk."""

from __future__ import annotations

import os

# Two test workers share two cores: OpenMP threads that spin while waiting starve each other
# (a 5-second LightGBM fit took minutes). Passive waiting must be set before OpenMP starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import fcntl
import pickle
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
#: Examples per fuzz test (hypothesis); raise it for a longer hunt: CHURNMODEL_FUZZ_EXAMPLES=5000
FUZZ_EXAMPLES = int(os.environ.get("CHURNMODEL_FUZZ_EXAMPLES", "300"))
SAMPLE = REPO / "data" / "sample"


def tiny_partners() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "partner_id": ["p1", "p2", "p3"],
            "joined_at": ["2023-01-15", "2023-03-01", "2024-02-10"],
            "churned_at": [None, "2024-06-30", None],
            "region": ["North", "South", "North"],
        }
    )


def tiny_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "partner_id": ["p1", "p1", "p2", "p2", "p3"],
            "timestamp": [
                "2024-01-05T10:00:00Z",
                "2024-01-06T11:30:00Z",
                "2024-02-01T09:00:00Z",
                "2024-03-01T09:00:00Z",
                "2024-03-02T08:00:00Z",
            ],
            "event_type": ["order", "ticket_opened", "order", "nps_response", "order"],
            "amount": [1200.0, None, 300.0, 6.0, 50.0],
            "channel": ["web", "phone", "web", "email", "web"],
        }
    )


def tiny_contracts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "partner_id": ["p1", "p2"],
            "start_date": ["2023-01-15", "2023-03-01"],
            "end_date": ["2024-01-15", "2025-03-01"],
            "value": [1000.0, 250.0],
            "terminated_at": [None, "2024-06-30"],
        }
    )


def write_project(
    root: Path,
    *,
    partners: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    contracts: pd.DataFrame | None = None,
    extra_yaml: str = "",
    events_name: str = "events.csv",
) -> Path:
    """Write inputs as CSV next to a config.yaml and return the config path."""
    (tiny_partners() if partners is None else partners).to_csv(root / "partners.csv", index=False)
    events = tiny_events() if events is None else events
    if events_name.endswith(".parquet"):
        events.to_parquet(root / events_name, index=False)
    else:
        events.to_csv(root / events_name, index=False)
    lines = ["data:", "  partners: partners.csv", f"  events: {events_name}"]
    if contracts is not None:
        contracts.to_csv(root / "contracts.csv", index=False)
        lines.append("  contracts: contracts.csv")
    config = root / "config.yaml"
    config.write_text("\n".join(lines) + "\n" + extra_yaml)
    return config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, contracts=tiny_contracts())


@pytest.fixture(scope="session")
def sample_config():
    from churnmodel.config import load_config

    return load_config(REPO / "configs" / "partner_churn.yaml")


@pytest.fixture(scope="session")
def sample_tables(sample_config):
    from churnmodel.data import read_inputs

    return read_inputs(sample_config.data)


def once_per_run(tmp_path_factory, name: str, build: Callable[[], object]):
    """A session fixture's value built by one test worker and read by the others (pytest-xdist's own
    recipe: a pickle next to the workers' temporary folders, built under a file lock). The others wait
    instead of building the same thing on the same two cores."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return build()
    root = tmp_path_factory.getbasetemp().parent  # one per run, shared by its workers
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / f"{name}.pickle").is_file():
            return pickle.loads((root / f"{name}.pickle").read_bytes())
        value = build()
        (root / f"{name}.pickle").write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def sample_training(sample_config, sample_tables, tmp_path_factory):
    """The sample's training frame, plan and a trained result (built once per test run)."""
    from churnmodel.features import build_training_frame
    from churnmodel.train import train

    def build():
        cfg = sample_config.model_copy(update={"train": sample_config.train.model_copy(update={"bootstrap": 200})})
        frame, plan = build_training_frame(sample_tables, cfg)
        return frame, plan, train(frame, plan, cfg), cfg

    return once_per_run(tmp_path_factory, "sample_training", build)


#: The campaign sample's actions and levers (the simulator's four actions).
LEVERS = {"escalation_call": "responsiveness", "qbr_offer": "communication", "holdback_release": "transparency",
          "loyalty_bonus": "loyalty"}


@pytest.fixture(scope="session")
def campaigns(tmp_path_factory):
    """1,200 simulated partners over 36 months with retention campaigns, a config declaring the four actions
    (with their simulated costs), and a model trained and tracked on it: (folder, config, model folder, run id)."""

    def build():
        from churnmodel import pipeline
        from churnmodel.simulate.campaigns import ACTIONS

        root = tmp_path_factory.mktemp("campaigns")
        pipeline.simulate(partners=1200, months=36, random_state=3, out=root, campaigns=True)
        types = "".join(f"      {a}: {{lever: {LEVERS[a]}, cost: {c}}}\n" for a, (_, _, c) in ACTIONS.items())
        (root / "c.yaml").write_text(
            "data:\n  partners: partners.csv\n  events: events.parquet\n  contracts: contracts.csv\n"
            f"  actions:\n    types:\n{types}label:\n  horizon_days: 90\ntrain:\n  bootstrap: 0\n"
            f"tracking:\n  uri: sqlite:///{root / 'mlflow.db'}\n")
        fitted = pipeline.fit(root / "c.yaml")
        fitted.model.save(root / "model")
        return root, root / "c.yaml", root / "model", fitted.tracking.run_id

    return once_per_run(tmp_path_factory, "campaigns", build)


#: Session fixtures that take tens of seconds per worker: their tests are "heavy" (make test-fast leaves them out).
HEAVY_FIXTURES = {"survival_model", "logged", "campaigns"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)
