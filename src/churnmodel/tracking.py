"""The training run in MLflow: config, data fingerprint, versions, metrics, plots, the model and its registration.

The model is logged as an MLflow pyfunc built from code (:mod:`churnmodel.mlflow_model`) with the
model's plain files as artifacts and this package's code bundled, so it loads without pickle and
without churnmodel installed. No partner rows are logged: only aggregates, metadata and plots.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from churnmodel import plots
from churnmodel.config import Config
from churnmodel.explain import contributions, global_importance
from churnmodel.features import safe_name
from churnmodel.hazard import horizon_columns
from churnmodel.registry import client as store_client
from churnmodel.registry import promote_version, quiet_mlflow
from churnmodel.validation import InputTables

__all__ = ["TrainSummary", "data_fingerprint", "flatten", "log_monitoring", "log_training", "model_signature", "run_name", "store_lock"]

log = logging.getLogger("churnmodel")
PACKAGES = ("churnmodel", "lightgbm", "scikit-learn", "pandas", "numpy", "pyarrow", "mlflow", "shap", "pydantic", "pyyaml")


@dataclass
class TrainSummary:
    run_id: str
    experiment_id: str
    model_uri: str
    registered_name: str
    registered_version: str
    promoted: bool
    champion_version: str | None
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"a.b.c": "value"} for MLflow params."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, sub in value.items():
            out.update(flatten(sub, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(value, default=str) if not isinstance(value, str) else value}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(config: Config, tables: InputTables, *, events_summary: dict | None = None) -> dict[str, Any]:
    """Hashes, sizes, row counts and date ranges of the inputs: enough to know the data, no rows.

    ``events_summary`` (rows, first, last, by_type) when the event log is not in ``tables`` (Spark)."""
    files = {"partners": config.data.partners, "events": config.data.events, "contracts": config.data.contracts}
    out: dict[str, Any] = {}
    for name, path in files.items():
        if path is None:
            continue
        path = Path(path)
        if path.is_dir():  # a folder of Parquet parts (Spark): the hash of its parts' hashes
            parts = sorted(p for p in path.rglob("*") if p.is_file())
            sha = hashlib.sha256("".join(_sha256(p) for p in parts).encode()).hexdigest()
            out[name] = {"file": path.name, "sha256": sha, "bytes": sum(p.stat().st_size for p in parts)}
        else:
            out[name] = {"file": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size}
    out["partners"]["rows"] = len(tables.partners)
    e = tables.events
    out["events"].update(events_summary or {
        "rows": len(e),
        "first": str(e["timestamp"].min()),
        "last": str(e["timestamp"].max()),
        "by_type": {str(k): int(v) for k, v in e["event_type"].value_counts().sort_index().items()},
    })
    if tables.contracts is not None:
        out["contracts"]["rows"] = len(tables.contracts)
    return out


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _git_commit(folder: Path) -> dict[str, str]:
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if commit.returncode != 0:
        return {}
    return {"git_commit": commit.stdout.strip(), "git_dirty": str(bool(dirty.stdout.strip())).lower()}


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise writers of an embedded sqlite store across processes (a lock file beside the database).

    Two trainings started together on a fresh store otherwise race to create its tables and one
    fails; MLflow's server stores handle their own concurrency, so other URIs are not locked.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as MLflow itself
        yield
        return
    path = Path(uri.removeprefix("sqlite:///") + ".lock")
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _experiment(mlflow, config: Config) -> str:
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(config.tracking.experiment)
    if found is not None:
        return found.experiment_id
    location = None
    if config.tracking.uri.startswith("sqlite:///"):  # artifacts beside the database they belong to
        location = (Path(config.tracking.uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    from mlflow.exceptions import MlflowException

    try:  # a model-training experiment: the UI opens on its runs, not on GenAI traces
        return client.create_experiment(config.tracking.experiment, artifact_location=location,
                                        tags={"mlflow.experimentKind": "custom_model_development"})
    except MlflowException:  # another training on the same server created it meanwhile
        found = client.get_experiment_by_name(config.tracking.experiment)
        if found is None:
            raise
        return found.experiment_id


def _requirements() -> list[str]:
    versions = _versions()
    return [f"{name}=={versions[name]}" for name in PACKAGES if name in versions and name != "churnmodel"]


def log_training(result, *, config: Config, tables: InputTables, promote: bool = False,
                 events_summary: dict | None = None, started: float | None = None,
                 stage_seconds: dict[str, float] | None = None) -> TrainSummary:
    """Log a :class:`~churnmodel.train.TrainingResult` as one MLflow run and register its model.

    The config file itself is logged too when ``config`` was loaded from one (``config.source``).
    ``started``: when the training began (seconds since the epoch), so the run spans all of it, not
    only the logging; ``stage_seconds``: how long each stage took (logged as ``seconds_<stage>``)."""

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", message=".*input example was not provided.*")  # by design: no partner rows
    warnings.filterwarnings("ignore", message=".*AnyType.*")  # categoricals accept strings or categories on purpose
    mlflow.set_tracking_uri(config.tracking.uri)
    mlflow.set_registry_uri(config.tracking.uri)
    with store_lock(config.tracking.uri), quiet_mlflow():
        return _log_run(mlflow, result, config=config, tables=tables, promote=promote, events_summary=events_summary,
                        started=started, stage_seconds=stage_seconds or {})


def run_name(config: Config, tables: InputTables, events_summary: dict | None = None) -> str:
    """A readable run name: the config's name and the data's last day, e.g. ``partner_churn, data to 2025-12-31``."""
    last = pd.Timestamp(events_summary["last"]) if events_summary else tables.events["timestamp"].max()
    return f"{config.source.stem if config.source is not None else 'in-memory config'}, data to {last:%Y-%m-%d}"


def _params(config: Config) -> dict[str, str]:
    """The config as MLflow params, paths relative to the config's folder (no machine paths)."""
    home = str(config.source.parent) + "/" if config.source is not None else None
    params = flatten(config.model_dump(mode="json"))
    if home:
        params = {k: v.replace(home, "") for k, v in params.items()}
    return {k: v[:6000] for k, v in params.items()}


def _log_inputs(mlflow, tables: InputTables) -> None:
    """The input tables as MLflow datasets: schema, size and digest (no rows)."""

    import mlflow.data
    from mlflow.models import infer_signature

    # MLflow registers its local-file source twice and warns that the source is ambiguous; it is not
    warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
    warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")  # a dataset's schema, not a model's
    for name in ("partners", "events", "contracts"):
        frame = getattr(tables, name)
        if frame is not None and len(frame):
            source = tables.sources.get(name, name)
            # the digest of every row (MLflow's own reads the first 10,000 rows after typing each cell: 1.3 s)
            digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()[:16]
            dataset = mlflow.data.from_pandas(frame, source=source, name=f"{name} ({source})", digest=digest)
            # MLflow infers a dataset's schema by inspecting every text value (4.5 s for the sample's 380k
            # events); the tables are typed, so the first rows carry the column types, and one row with a
            # missing value per column that has any makes those columns optional, as on the whole table
            missing = frame.isna()
            first_missing = [int(missing[c].to_numpy().argmax()) for c in frame.columns[missing.any().to_numpy()]]
            rows = sorted({*range(min(len(frame), 1000)), *first_missing})
            vars(dataset)["schema"] = infer_signature(frame.iloc[rows]).inputs
            mlflow.log_input(dataset, context="training")


def _register(mlflow, info, run_id: str, config: Config, metrics: dict, split: dict, name: str) -> str:
    """Register the logged model as a new version that says what it is (test AUC, data range, horizon,
    the run's name); the client API, so MLflow prints nothing to the console."""
    from mlflow.exceptions import MlflowException

    client, model_name = mlflow.MlflowClient(), config.tracking.model_name
    try:
        client.create_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    dates = [d for block in split.values() for d in block]
    auc = metrics.get("test_auc", float("nan"))
    ci = f" (95% CI {metrics['test_auc_ci_low']:.3f}-{metrics['test_auc_ci_high']:.3f})" if metrics.get("test_auc_ci_low", float("nan")) == metrics.get("test_auc_ci_low") else ""
    tags = {"test_auc": f"{auc:.4f}", "horizon_days": str(config.label.horizon_days), "label_source": config.label.source,
            "snapshots_from": min(dates), "snapshots_to": max(dates), "run_name": name}
    description = (f"Churn within {config.label.horizon_days} days ({config.label.source} label). Test AUC {auc:.3f}{ci}; "
                   f"snapshots {min(dates)} to {max(dates)}; horizons {config.label.horizons or '-'}. Run: {name}.")
    version = client.create_model_version(model_name, source=info.model_uri, run_id=run_id, tags=tags, description=description,
                                          model_id=info.model_id)
    mlflow.set_tag("mlflow.note.content", description)  # the run page's description says the same
    return str(version.version)


def _log_run(mlflow, result, *, config, tables, promote, events_summary, started, stage_seconds) -> TrainSummary:
    experiment_id = _experiment(mlflow, config)
    model = result.model
    name = run_name(config, tables, events_summary)
    created = mlflow.MlflowClient().create_run(experiment_id, start_time=int(1000 * (started or time.time())), run_name=name)
    with mlflow.start_run(run_id=created.info.run_id) as run, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mlflow.log_params(_params(config))
        _log_inputs(mlflow, tables)
        mlflow.log_metrics({f"seconds_{k}": float(v) for k, v in stage_seconds.items()})
        mlflow.set_tags({**{f"version.{k}": v for k, v in _versions().items()},
                         **(_git_commit(config.source.parent) if config.source is not None else {}),
                         "label.source": config.label.source, "calibration": model.metadata["calibration"]})
        if config.source is not None:
            mlflow.log_artifact(str(config.source), "config")
        (tmp / "resolved_config.json").write_text(config.model_dump_json(indent=2))
        (tmp / "data_fingerprint.json").write_text(json.dumps(data_fingerprint(config, tables, events_summary=events_summary), indent=2))
        (tmp / "split.json").write_text(json.dumps(result.split.dates, indent=2))
        for name in ("resolved_config.json", "data_fingerprint.json", "split.json"):
            mlflow.log_artifact(str(tmp / name), "run")
        metrics = {f"test_{k}" if not k.startswith(("valid_", "baseline_", "cv_", "hazard_", "cox_", "single_oot_", "uplift_")) else k: v
                   for k, v in result.metrics.items()}
        for _, row in result.segments.iterrows():
            for key in ("auc", "churn_rate", "predicted_churn_rate", "lift_top", "prr_observed", "prr_predicted"):
                if pd.notna(row[key]):
                    metrics[f"segment_{row['segment']}_{key}"] = float(row[key])
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if pd.notna(v)})
        result.segments.to_csv(tmp / "segments.csv", index=False)
        model.plan.info().to_csv(tmp / "features.csv", index=False)
        mlflow.log_artifact(str(tmp / "segments.csv"), "evaluation")
        mlflow.log_artifact(str(tmp / "features.csv"), "evaluation")
        _log_plots(mlflow, result, tmp)
        _log_explanations(mlflow, result, tmp)

        model_dir = model.save(tmp / "model")
        info = _log_model(mlflow, model_dir, model)
        version = _register(mlflow, info, run.info.run_id, config, metrics, result.split.dates, name)
        promoted, champion = promote_version(mlflow, config, version, metrics.get("test_auc"), force=promote)
        mlflow.set_tags({"registered_version": version, "promoted": str(promoted).lower()})
    return TrainSummary(run.info.run_id, experiment_id, f"models:/{config.tracking.model_name}/{version}",
                        config.tracking.model_name, version, promoted, champion,
                        {k: float(v) for k, v in metrics.items()})


def _log_model(mlflow, model_dir: Path, model):
    signature = model_signature(model)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("mlflow_model.py")),
        artifacts={"model": str(model_dir)},
        code_paths=[str(Path(__file__).parent)],
        signature=signature,
        pip_requirements=_requirements(),
    )


def model_signature(model):
    """Feature columns in, ``churn_probability`` (and the survival columns, with a hazard model) out. Every input is optional (missing values are
    data); categoricals accept strings or pandas categories, the model maps them to its categories."""
    from mlflow.models import ModelSignature
    from mlflow.types import DataType
    from mlflow.types.schema import AnyType, ColSpec, Schema

    categorical = {f.name for f in model.plan.features if f.unit == "category"}
    inputs = Schema([ColSpec(AnyType() if name in categorical else DataType.double, name, required=False)
                     for name in model.input_columns])
    outputs = ["churn_probability"]
    if model.hazard is not None:
        outputs += horizon_columns(model.hazard.horizons)
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(DataType.double, name) for name in outputs]))


def _log_explanations(mlflow, result, tmp: Path) -> None:
    """Global SHAP: mean |SHAP| per feature and per lever, the lever chart and dependence plots."""
    import matplotlib.pyplot as plt

    sample = result.test_features.sample(n=min(5000, len(result.test_features)), random_state=0)
    contrib = contributions(result.model, sample)
    per_feature, per_lever = global_importance(result.model, contrib)
    per_feature.to_csv(tmp / "shap_features.csv", index=False)
    per_lever.to_csv(tmp / "shap_levers.csv", index=False)
    mlflow.log_artifact(str(tmp / "shap_features.csv"), "explain")
    mlflow.log_artifact(str(tmp / "shap_levers.csv"), "explain")
    mlflow.log_metrics({f"shap_lever_{r.lever}": float(r.mean_abs_shap) for r in per_lever.itertuples()})
    figures = {"shap_levers.png": plots.plot_levers(per_lever)}
    X = result.model.prepare(sample)
    for rank, feature in enumerate(per_feature["feature"].head(4), start=1):
        j = result.model.features.index(feature)
        name = f"dependence_{rank}_{safe_name(feature)}.png"  # a name, never a path
        figures[name] = plots.plot_dependence(X[feature], contrib[:, j], title=per_feature["label_en"].iloc[rank - 1])
    for name, fig in figures.items():
        fig.savefig(tmp / name, dpi=100)
        plt.close(fig)
        mlflow.log_artifact(str(tmp / name), "plots")


def _log_plots(mlflow, result, tmp: Path) -> None:
    import matplotlib.pyplot as plt

    test = result.predictions
    y = test["label"].to_numpy()
    curves = {"LightGBM (calibrated)": test["probability"].to_numpy()}
    if "baseline_probability" in test:
        curves["logistic baseline"] = test["baseline_probability"].to_numpy()
    figures = {
        "roc.png": plots.plot_roc(y, curves),
        "pr.png": plots.plot_pr(y, curves),
        "calibration.png": plots.plot_calibration(y, test["probability"].to_numpy()),
        "lift_gain.png": plots.plot_lift(y, curves),
        "feature_importance.png": plots.plot_importance(result.model.booster, result.model.plan.info()),
    }
    figures["shap_summary.png"] = plots.plot_shap_summary(result.model, result.test_features)
    if result.survival is not None:
        figures["survival.png"] = plots.plot_survival(result.survival.curves, list(result.survival.hazard.horizons), result.metrics)
    if result.uplift:
        figures["uplift.png"] = plots.plot_uplift(result.uplift)
    for name, fig in figures.items():
        fig.savefig(tmp / name, dpi=100)
        plt.close(fig)
        mlflow.log_artifact(str(tmp / name), "plots")


#: A run's verdict as a number (the MLflow metric ``monitor_verdict``).
VERDICT_LEVEL = {"fine": 0, "watch": 1, "retrain": 2}


def log_monitoring(runs: pd.DataFrame, *, config: Config) -> list[str]:
    """Each judged scoring run of a registered model version, logged to that version's training run as metrics
    over time (step: the scoring date in days since 1970; ``monitor_auc`` once matured, ``monitor_estimated_auc``,
    ``monitor_predicted_rate``, ``monitor_observed_rate``, ``monitor_verdict`` 0 fine / 1 watch / 2 retrain), and
    the latest verdict as the version's tag ``monitor_verdict``. Re-logging a run writes the same points.
    Returns the ``NAME/VERSION`` logged; models not in the registry (folders, in memory) are skipped."""
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    client = store_client(config.tracking.uri)
    logged = []
    for (name, number), part in runs.groupby(["model_name", "model_version"], sort=True):
        if not str(number).isdigit():
            continue
        try:
            run_id = client.get_model_version(name, str(number)).run_id
        except MlflowException:
            continue
        metrics = []
        for row in part.itertuples(index=False):
            when = pd.Timestamp(row.as_of)
            step, stamp = int(when.timestamp() // 86400), int(when.timestamp() * 1000)
            values = {"monitor_estimated_auc": row.estimated_auc, "monitor_predicted_rate": row.predicted_rate,
                      "monitor_observed_rate": row.observed_rate, "monitor_auc": getattr(row, "auc", float("nan")),
                      "monitor_verdict": VERDICT_LEVEL[row.verdict]}
            metrics += [Metric(k, float(v), stamp, step) for k, v in values.items() if pd.notna(v)]
        with quiet_mlflow():
            client.log_batch(run_id, metrics=metrics)
            client.set_model_version_tag(name, str(number), "monitor_verdict", str(part["verdict"].iloc[-1]))
        logged.append(f"{name}/{number}")
    return logged
