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


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> bytes:
    """An MLflow sqlite store with its schema in place and nothing in it (the bytes of its file)."""

    def build():
        import mlflow

        path = tmp_path_factory.mktemp("empty_store") / "mlflow.db"
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
        return path.read_bytes()

    return once_per_run(tmp_path_factory, "empty_store", build)


@pytest.fixture(scope="session")
def fresh_store(empty_store) -> Callable[[Path], str]:
    """``fresh_store(path)`` puts a new, empty MLflow store at ``path`` and returns its URI. MLflow builds a new
    store's schema in 3.5 s (its migrations, once per store); a copy of one built once per run takes 0.05 s.
    What stores are first created by (a first training, two trainings at once, the README's commands) is
    tested where it matters without this."""

    def make(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(empty_store)
        return f"sqlite:///{path}"

    return make


#: The campaign sample's actions and levers (the simulator's four actions).
LEVERS = {"escalation_call": "responsiveness", "qbr_offer": "communication", "holdback_release": "transparency",
          "loyalty_bonus": "loyalty"}


@pytest.fixture(scope="session")
def campaigns(tmp_path_factory, fresh_store):
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
            f"tracking:\n  uri: {fresh_store(root / 'mlflow.db')}\n")
        fitted = pipeline.fit(root / "c.yaml")
        fitted.model.save(root / "model")
        return root, root / "c.yaml", root / "model", fitted.tracking.run_id

    return once_per_run(tmp_path_factory, "campaigns", build)


#: Session fixtures that take tens of seconds per worker: their tests are "heavy" (make test-fast leaves them out).
HEAVY_FIXTURES = {"survival_model", "logged", "campaigns"}


#: Test files whose module fixtures take tens of seconds (a Spark session and the sample read into it; a model
#: logged to MLflow): each runs on one worker as one unit in ``make test``, so the fixture is built once.
GROUPED_FILES = ("tests/test_spark.py", "tests/test_tracking.py")
#: Session fixtures holding a model trained once per run (:func:`once_per_run`: a worker that asks while the other
#: builds it waits)
SHARED_MODELS = {"sample_training", "campaigns"}


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with :data:`GROUPED_FILES` as the groups and every other test a unit of its own.
    (pytest-xdist 3.8's own ``xdist_group`` marks are lost under pytest 9: it renames ``item._nodeid``,
    which pytest 9 no longer reads.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path in GROUPED_FILES else nodeid

    return FileGroups(config, log)


def _run_order(item) -> int:
    """Where a test goes in the run (``make test``: its units in this order, each worker taking the next when
    nearly done): the Spark tests first on one worker while the other builds the sample's model and the
    campaign model and runs their tests, then the tests that take a minute, then the rest, so that both
    workers finish together. The Spark tests that need neither model go first: the JVM starts and they run
    while the other worker builds the models, instead of waiting for them (they took 20-30 s to build)."""
    names = set(getattr(item, "fixturenames", ()))
    if "spark" in names:
        return 1 if names & SHARED_MODELS else 0
    if "campaigns" in names:
        return 2
    return 3 if item.get_closest_marker("slow") else 4


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)
    items.sort(key=_run_order)  # stable: the file order within each class
